"""The fast path for the most common layouts (ShareGPT `conversations`, `messages`) in JSONL: a chunk of lines
is parsed by Arrow's C++ JSON reader with an explicit schema and mapped with Arrow compute (role aliases,
flattened text), so no Python runs per turn. A chunk Arrow cannot take as is (a bad line, a wrong type, a
missing role, typed content parts) goes through the per-record path (read.py), which gives each row its
exact reason; both paths produce identical rows (tests compare them).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from ..schema import numbered_ids
from .arrow_checks import bools
from .formats import ARROW_MESSAGE, ROLE_ALIASES, arrow_schema

# Lines parsed as one Arrow batch: up to this many, or this many bytes of JSON. Measured on the instruct bench
# (1M conversations of ~1.2 KB): 8000 lines a batch take 25 CPU-s where 2000 took 29 (per-batch work in the
# checks, the writer and the summaries); long conversations stop at the byte limit instead.
CHUNK_LINES = 8000
CHUNK_BYTES = 16 << 20
_ALIAS_KEYS = pa.array(list(ROLE_ALIASES))
_ALIAS_VALUES = pa.array(list(ROLE_ALIASES.values()))
_SCALAR_TYPES = {bool: pa.bool_(), int: pa.int64(), float: pa.float64(), str: pa.string()}


class FastMapper:
    """Maps chunks of JSONL lines of one source with Arrow, or says it cannot (`None`)."""

    def __init__(self, mapper: Any, sample: list[dict]):
        from .read import META_MAX_CHARS

        opts = mapper.opts
        self.mapper = mapper
        self.max_meta = META_MAX_CHARS
        sharegpt = opts.layout == "sharegpt"
        self.field = opts.fields.get("messages", "conversations" if sharegpt else "messages")
        self.role_key, self.content_key = ("from", "value") if sharegpt else ("role", "content")
        used = {self.field, *opts.fields.values()}
        self.scalars: dict[str, pa.DataType] = {}
        for record in sample:
            for k, v in record.items():
                if k in used or k.startswith("__") or v is None or type(v) not in _SCALAR_TYPES:
                    continue
                self.scalars.setdefault(k, _SCALAR_TYPES[type(v)])
        turn = pa.struct([(self.role_key, pa.string()), (self.content_key, pa.string())])
        self.schema = pa.schema([(self.field, pa.list_(turn))] + list(self.scalars.items()))
        self.out_schema = arrow_schema("sft")

    @staticmethod
    def applies(mapper: Any, sample: list[dict]) -> bool:
        """Only plain SFT conversations: no system prompt field, no id field, no renamed roles."""
        opts = mapper.opts
        if mapper.use != "sft" or opts.layout not in ("sharegpt", "messages") or mapper.id_field:
            return False
        if set(opts.fields) - {"messages"}:
            return False
        return not any("system" in r for r in sample)

    def batch(self, lines: list[tuple[int, bytes]], path: str, relpath: str) -> pa.RecordBatch | None:
        """Canonical rows of the lines (line number, raw bytes), or None when Arrow cannot map them all."""
        return self.batch_bytes(b"\n".join(raw.rstrip(b"\r\n") for _, raw in lines),
                                np.fromiter((lineno for lineno, _ in lines), np.int64, len(lines)), path, relpath)

    def batch_bytes(self, data: bytes, linenos: np.ndarray, path: str, relpath: str) -> pa.RecordBatch | None:
        """Canonical rows of newline-delimited JSON lines (no blank ones) numbered ``linenos``, or None when
        Arrow cannot map them all."""
        try:
            table = pj.read_json(io.BytesIO(data),
                                 read_options=pj.ReadOptions(use_threads=False, block_size=1 << 30),
                                 parse_options=pj.ParseOptions(explicit_schema=self.schema,
                                                               unexpected_field_behavior="ignore"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        if table.num_rows != len(linenos):
            return None
        convs = table.column(self.field).combine_chunks()
        if convs.null_count:
            return None
        turns = convs.values
        if turns.null_count:
            return None
        roles = turns.field(self.role_key)
        contents = turns.field(self.content_key)
        if roles.null_count or contents.null_count:
            return None
        idx = pc.index_in(pc.utf8_lower(pc.utf8_trim_whitespace(roles)), value_set=_ALIAS_KEYS)
        role = pc.if_else(pc.is_null(idx), roles, pc.take(_ALIAS_VALUES, idx))
        offsets = convs.offsets
        if convs.offset:  # a sliced list array: rebase its offsets
            offsets = pc.subtract(offsets, offsets[0])
        messages = pa.ListArray.from_arrays(offsets, pa.StructArray.from_arrays([role, contents],
                                                                                 fields=list(ARROW_MESSAGE)))
        n = len(linenos)
        texts = _joined_nonempty(contents, np.asarray(pc.list_parent_indices(convs)), n)
        source = self.mapper.source
        ids = numbered_ids(source, f"{relpath}:", linenos.tolist())
        nulls = pa.nulls(n, pa.string())
        return pa.RecordBatch.from_arrays(
            [pa.array(ids, pa.string()), texts, pa.array([source] * n, pa.string()), nulls,
             self._meta(table, path, linenos), nulls, messages], schema=self.out_schema)

    def _meta(self, table: pa.Table, path: str, linenos: np.ndarray) -> pa.MapArray:
        """Per row: each other scalar field as `str()` gives it (not null, up to `max_meta` characters), then
        `file` and `where` (line N), built column by column."""
        n = len(linenos)
        keys = list(self.scalars) + ["file", "where"]
        values, keep = [], []
        for k, typ in self.scalars.items():
            col = table.column(k).combine_chunks()
            if typ == pa.string() or pa.types.is_integer(typ):
                text = col.cast(pa.string())
            elif typ == pa.bool_():
                text = pc.if_else(col, "True", "False")
            else:  # floats: Python's repr (1.0, 1e-05), which Arrow's cast does not give
                text = pa.array([None if v is None else str(v) for v in col.to_pylist()], pa.string())
            values.append(text)
            keep.append(bools(pc.less_equal(pc.utf8_length(text), self.max_meta)))
        values.append(pa.array([path], pa.string()).take(pa.array(np.zeros(n, np.int64))))
        values.append(pc.binary_join_element_wise("line ", pa.array(linenos).cast(pa.string()), ""))
        keep += [np.ones(n, dtype=bool), np.ones(n, dtype=bool)]
        mask = np.stack(keep, axis=1)  # row-major: row i's entries in key order
        rows, cols = np.nonzero(mask)
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(mask.sum(axis=1), out=offsets[1:])
        items = pa.concat_arrays(values).take(pa.array(cols * n + rows))
        return pa.MapArray.from_arrays(pa.array(offsets), pa.array(keys, pa.string()).take(pa.array(cols)), items,
                                       type=self.out_schema.field("meta").type)


# what bytes.strip() strips: a line of these only is blank
_BLANK_BYTES = np.zeros(256, dtype=bool)
_BLANK_BYTES[list(b" \t\n\r\x0b\x0c")] = True


def line_spans(block: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, end) of each line of a block of whole lines (the end past its newline) and which lines are
    blank; only lines starting with a blank byte are looked at whole (JSON lines start with `{`)."""
    buf = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10) + 1
    if len(buf) and buf[-1] != 10:  # the file's last line, without a newline
        ends = np.append(ends, len(buf))
    starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
    blank = np.zeros(len(starts), dtype=bool)
    for i in np.flatnonzero(_BLANK_BYTES[buf[starts]]).tolist():
        blank[i] = not block[starts[i]:ends[i]].strip()
    return starts, ends, blank


def _joined_nonempty(contents: pa.Array, parents: np.ndarray, n: int) -> pa.Array:
    """Per row, its non-empty turn contents joined by a blank line (what `flat_text` gives)."""
    keep = np.asarray(pc.greater(pc.binary_length(contents), 0).fill_null(False))
    counts = np.bincount(parents[keep], minlength=n)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    kept = contents.filter(pa.array(keep))
    return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), kept), "\n\n")

"""Read instruction data: JSONL (files spread over tasks), Parquet and Hugging Face datasets (Spark's reader, Arrow
batches) -> canonical rows of the source's method, each record mapped by its layout (layouts.py).

A record that cannot be mapped is a counted removal `read:<reason>` naming its file and line / row (or, with
`on_error: raise` on a JSONL source, an error naming them). OASST1 message rows are grouped by tree in one
keyed shuffle and become threads.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ..errors import ConfigError, InputError
from ..io.fields import InstructMap
from ..io.jsonl import JsonlOptions, json_lines, json_records, line_blocks, source_records
from ..io.paths import common_root
from ..io.records import Row, logged_skips, skip_row, to_batches
from ..io.sources import INSTRUCT_READERS, ParquetSource, list_files, split_lines, stream_frame
from ..schema import stable_id
from .formats import arrow_schema, spark_schema
from .layouts import LAYOUTS, Bad, Detected, MapOptions, detect, flat_text, oasst1_threads, project

log = logging.getLogger("tokenmill.instruct")

META_MAX_CHARS = 200  # other top-level scalar fields up to this long are kept in `meta` (category, level, lang)
OASST_FIELDS = ("message_id", "parent_id", "message_tree_id", "role", "text", "rank", "lang", "deleted")


@dataclass(frozen=True)
class Mapper:
    """Everything a task needs to map records of one source (picklable)."""

    source: str
    use: str
    opts: MapOptions
    id_field: str | None
    on_error: str = "skip"

    def row(self, record: dict, key: str, path: str, where: str) -> Row:
        """The canonical row of one record, or its removal row."""
        try:
            conv = LAYOUTS[self.opts.layout].fn(record, self.opts)
            cols = project(conv, self.use, self.opts.answer_from)
        except Bad as bad:
            if self.on_error == "raise":
                raise InputError(path, where, bad.detail) from None
            return skip_row(self.source, path, where, bad.reason, bad.detail, key=key)
        if self.id_field:
            value = record.get(self.id_field)
            if value is None:
                if self.on_error == "raise":
                    raise InputError(path, where, f"field '{self.id_field}' (id_field) is missing")
                return skip_row(self.source, path, where, "missing_field",
                                f"field '{self.id_field}' (id_field) is missing", key=key)
            key = str(value)
        meta = _scalars(record, self.opts)
        meta.update(conv.notes)
        meta.update(file=path, where=where)
        if self.id_field:
            meta["orig_id"] = key
        return {"id": stable_id(self.source, key), "text": flat_text(cols, self.use), "source": self.source,
                "url": None, "meta": meta, "removed_by": None, **cols}


def _scalars(record: dict, opts: MapOptions) -> dict[str, str]:
    """Short scalar fields of the record that the layout does not use: category, level, lang, ..."""
    used = set(LAYOUTS[opts.layout].needs) | set(opts.fields.values())
    out = {}
    for k, v in record.items():
        if k in used or k.startswith("__") or isinstance(v, (dict, list)) or v is None:
            continue
        s = str(v)
        if len(s) <= META_MAX_CHARS:
            out[k] = s
    return out


# ---- layout detection on the driver ---------------------------------------------------------------------

def peek(src, where: str, work_dir: str, n: int) -> list[dict]:
    """The first ``n`` records of the source (the first file's first lines or row group)."""
    if src.format == "jsonl":
        files = list_files(src, where)
        opts = JsonlOptions(source=src.name, fields=src.fields, on_error="skip", max_doc_bytes=src.max_doc_bytes,
                            storage_options=src.storage_options, container=src.container, records_key=src.records_key,
                             explode=src.explode, retry=src.retry)
        out: list[dict] = []
        for f in files:
            for item in source_records(f.path, f.relpath, f.size, opts):
                if isinstance(item, tuple):
                    out.append(item[1])
                    if len(out) >= n:
                        return out
        return out
    import fsspec
    import pyarrow.parquet as pq

    for f in list_files(_as_parquet(src, work_dir, None), where):
        with fsspec.open(f.path, "rb", **src.storage_options) as handle:
            pf = pq.ParquetFile(handle)
            if pf.metadata.num_rows:
                return pf.read_row_group(0).slice(0, n).to_pylist()
    return []


def _as_parquet(src, work_dir: str, spark: SparkSession | None):
    if src.format == "parquet":
        return src
    if spark is None:
        spark = SparkSession.getActiveSession()
    from ..io.hf import stage_hf_dataset

    staged = stage_hf_dataset(spark, src, src.staging_dir or os.path.join(work_dir, "hf", src.name))
    return ParquetSource(name=src.name, format="parquet", paths=[staged], max_doc_bytes=src.max_doc_bytes)


def resolve_layout(m: InstructMap, sample: list[dict], where: str) -> Detected:
    """The layout to use: the configured one (checked against the method), or the detected one."""
    if m.layout != "auto":
        if m.layout not in LAYOUTS:
            raise ConfigError(f"{where}.instruct.layout: unknown layout {m.layout!r}; known: {', '.join(LAYOUTS)}")
        if m.use not in LAYOUTS[m.layout].gives:
            raise ConfigError(f"{where}.instruct: layout {m.layout} cannot feed {m.use} (it gives "
                              f"{', '.join(LAYOUTS[m.layout].gives)})")
        return Detected(m.layout, f"configured ({LAYOUTS[m.layout].why})", [m.layout], False)
    found = detect(sample, m.use, m.fields)
    if found.layout is None:
        raise ConfigError(f"{where}.instruct: cannot prepare this source for {m.use}: {found.why}; set "
                          f"`instruct.layout` (one of {', '.join(LAYOUTS)}) and `instruct.fields`")
    if found.ambiguous:
        log.warning("%s: layouts %s all match; using %s (set instruct.layout to choose)", where,
                    ", ".join(found.candidates), found.layout)
    return found


# ---- the reader -----------------------------------------------------------------------------------------

def read_instruct(spark: SparkSession, src, where: str, work_dir: str, opens=None,
                  detected: Detected | None = None, sample: list[dict] | None = None) -> DataFrame:
    """Canonical instruction rows of one source (its `instruct` mapping)."""
    m: InstructMap = src.instruct
    if sample is None:
        sample = peek(src, where, work_dir, m.detect_rows)
    if detected is None:
        detected = resolve_layout(m, sample, where)
    opts = MapOptions(layout=detected.layout, fields=dict(m.fields), template=m.template,
                      answer_from=m.answer_from, margin=m.margin)
    on_error = getattr(src, "on_error", "skip") if src.format == "jsonl" else "skip"
    mapper = Mapper(src.name, m.use, opts, m.id_field, on_error)
    if opts.layout == "oasst1":
        return _read_oasst1(spark, src, where, work_dir, opens, mapper, m.threads)
    if src.format == "jsonl":
        files = list_files(src, where)
        lines = (split_lines(spark, files, src.task_bytes(), src.storage_options, src.retry)
                 if src.container == "lines" else {})
        jopts = JsonlOptions(source=src.name, fields=src.fields, on_error=on_error, max_doc_bytes=src.max_doc_bytes,
                             storage_options=src.storage_options, container=src.container, records_key=src.records_key,
                             explode=src.explode, retry=src.retry, lines_before=lines)

        from .fastmap import CHUNK_BYTES, CHUNK_LINES, FastMapper, line_spans

        fast = FastMapper(mapper, sample) if FastMapper.applies(mapper, sample) else None

        def slow(lines, path: str, relpath: str) -> Iterator[Row]:
            for item in json_records(lines, path, relpath, jopts):
                if isinstance(item, dict):
                    yield item
                else:
                    lineno, record = item
                    yield mapper.row(record, f"{relpath}:{lineno}", path, f"line {lineno}")

        def flush(chunk, path: str, relpath: str):
            batch = fast.batch(chunk, path, relpath)
            if batch is None:
                yield from slow(chunk, path, relpath)
            else:
                yield batch

        def fast_block(first: int, block: bytes, path: str, relpath: str) -> Iterator[Row | pa.RecordBatch]:
            """A block of whole lines through the fast mapper (no per-line Python): blank lines dropped,
            lines over max_doc_bytes, and blocks Arrow cannot map whole, through the per-record path."""
            starts, ends, blank = line_spans(block)
            long = ~blank & (ends - starts > jopts.max_doc_bytes)
            for i in np.flatnonzero(long).tolist():
                yield from slow([(first + i, block[starts[i]:ends[i]])], path, relpath)
            keep = np.flatnonzero(~blank & ~long)
            if not len(keep):
                return
            data = block if len(keep) == len(starts) else b"".join(
                block[a:b] for a, b in zip(starts[keep].tolist(), ends[keep].tolist(), strict=True))
            batch = fast.batch_bytes(data, first + keep, path, relpath)
            if batch is None:
                yield from slow([(first + i, block[starts[i]:ends[i]]) for i in keep.tolist()], path, relpath)
            else:
                yield batch

        def read_one(path: str, relpath: str, size: int, start: int, end: int) -> Iterator[Row | pa.RecordBatch]:
            if jopts.container != "lines":  # a whole-file container: records one by one
                for item in source_records(path, relpath, size, jopts, start, end):
                    if isinstance(item, dict):
                        yield item
                    else:
                        n, record = item
                        yield mapper.row(record, f"{relpath}:{n}", path, f"{jopts.unit} {n}")
                return
            blocks = line_blocks(path, size, jopts, start, end) if fast is not None else None
            if blocks is not None:  # a plain file: whole blocks of lines
                for first, block in blocks:
                    yield from fast_block(first, block, path, relpath)
                return
            lines = json_lines(path, relpath, size, jopts, start, end)
            if fast is None:
                yield from slow(lines, path, relpath)
                return
            chunk: list[tuple[int, bytes]] = []
            held = 0
            for item in lines:
                if isinstance(item, dict):  # an unreadable part of the file: a skip row already
                    yield item
                    continue
                raw = item[1]
                if not raw.strip():
                    continue
                if len(raw) > jopts.max_doc_bytes:
                    yield from slow([item], path, relpath)
                    continue
                chunk.append(item)
                held += len(raw)
                if len(chunk) >= CHUNK_LINES or held >= CHUNK_BYTES:
                    yield from flush(chunk, path, relpath)
                    chunk, held = [], 0
            if chunk:
                yield from flush(chunk, path, relpath)

        return stream_frame(spark, files, read_one, opens, spark_schema(m.use), arrow_schema(m.use),
                            src.task_bytes())
    return _map_parquet(spark, _as_parquet(src, work_dir, spark), where, mapper, work_dir)


def _keyed_parquet(spark: SparkSession, src: ParquetSource, where: str, work_dir: str) -> DataFrame:
    """The source's Parquet rows with `__key` (file under the common root + row index) and `__file`."""
    from ..io.sources import _relative_path, parquet_files

    files = parquet_files(spark, src, where, work_dir)
    df = spark.read.parquet(*[f.path for f in files])
    rel = _relative_path(F.col("_metadata.file_path"), common_root(files))
    return df.select("*", F.concat(rel, F.lit(":"), F.col("_metadata.row_index").cast("string")).alias("__key"),
                     F.col("_metadata.file_path").alias("__file"), F.col("_metadata.row_index").alias("__row"))


def _map_parquet(spark: SparkSession, src: ParquetSource, where: str, mapper: Mapper, work_dir: str) -> DataFrame:
    df = _keyed_parquet(spark, src, where, work_dir)
    schema = arrow_schema(mapper.use)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            rows = []
            for record in batch.to_pylist():
                key, path, row = record.pop("__key"), record.pop("__file"), record.pop("__row")
                rows.append(mapper.row(record, key, path, f"row {row}"))
            yield from to_batches(logged_skips(rows, "parquet"), schema=schema)

    return df.mapInArrow(run, spark_schema(mapper.use))


# ---- OASST1 ---------------------------------------------------------------------------------------------

_OASST_SCHEMA = T.StructType([
    T.StructField("tree", T.StringType(), True),
    T.StructField("message_id", T.StringType(), True),
    T.StructField("parent_id", T.StringType(), True),
    T.StructField("role", T.StringType(), True),
    T.StructField("text", T.StringType(), True),
    T.StructField("rank", T.LongType(), True),
    T.StructField("lang", T.StringType(), True),
    T.StructField("deleted", T.BooleanType(), True),
    T.StructField("file", T.StringType(), True),
    T.StructField("where", T.StringType(), True),
    T.StructField("skip_reason", T.StringType(), True),
    T.StructField("skip_detail", T.StringType(), True),
])


def _oasst_message(record: dict, path: str, where: str) -> dict[str, Any]:
    out = {k: record.get(k) for k in OASST_FIELDS}
    missing = [k for k in ("message_id", "role") if not isinstance(out[k], str)]
    text_ok = isinstance(out["text"], str)
    bad = None
    if missing:
        bad = ("missing_field", f"field(s) {', '.join(missing)} missing or not strings")
    elif not text_ok:
        bad = ("non_string_content", f"field 'text' is a {type(out['text']).__name__}, not a string")
    rank = out["rank"]
    return {"tree": str(out["message_tree_id"] or out["message_id"] or f"{path}@{where}"),
            "message_id": out["message_id"], "parent_id": out["parent_id"], "role": out["role"],
            "text": out["text"] if text_ok else None, "rank": int(rank) if isinstance(rank, (int, float)) else None,
            "lang": out["lang"], "deleted": bool(out["deleted"]) if out["deleted"] is not None else None,
            "file": path, "where": where, "skip_reason": bad[0] if bad else None, "skip_detail": bad[1] if bad else None}


def _read_oasst1(spark: SparkSession, src, where: str, work_dir: str, opens, mapper: Mapper, threads: str) -> DataFrame:
    if src.format == "jsonl":
        jopts = JsonlOptions(source=src.name, fields=src.fields, on_error=mapper.on_error,
                             max_doc_bytes=src.max_doc_bytes, storage_options=src.storage_options,
                             container=src.container, records_key=src.records_key,
                             explode=src.explode, retry=src.retry)
        files = list_files(src, where)
        from ..io.sources import _files_frame

        def run(batches):
            for batch in batches:
                cols = [batch.column(i).to_pylist() for i in range(5)]
                for path, relpath, size, start, end in zip(*cols, strict=True):
                    rows = []
                    for item in source_records(path, relpath, size, jopts, start, end):
                        if isinstance(item, dict):  # an unreadable line: its own group, a removal
                            meta = item["meta"]
                            rows.append({"tree": item["id"], "message_id": item["id"], "file": path,
                                         "where": meta.get("where"), "skip_reason": item["removed_by"][5:],
                                         "skip_detail": meta.get("error")})
                        else:
                            rows.append(_oasst_message(item[1], path, f"{jopts.unit} {item[0]}"))
                    if rows:
                        yield pa.RecordBatch.from_pylist(rows, schema=_arrow(_OASST_SCHEMA))

        messages = _files_frame(spark, files, src.task_bytes()).mapInArrow(run, _OASST_SCHEMA)
    else:
        df = _keyed_parquet(spark, _as_parquet(src, work_dir, spark), where, work_dir)

        def run_pq(batches):
            for batch in batches:
                rows = []
                for record in batch.to_pylist():
                    rows.append(_oasst_message(record, record["__file"], f"row {record['__row']}"))
                yield pa.RecordBatch.from_pylist(rows, schema=_arrow(_OASST_SCHEMA))

        messages = df.mapInArrow(run_pq, _OASST_SCHEMA)
    schema = arrow_schema(mapper.use)

    def threads_of(table: pa.Table) -> Iterator[pa.RecordBatch]:
        rows = table.to_pylist()
        out = [skip_row(mapper.source, r["file"], r["where"], r["skip_reason"], r["skip_detail"] or "",
                        key=r["message_id"]) for r in rows if r["skip_reason"]]
        good = [r for r in rows if not r["skip_reason"]]
        for leaf, msgs, meta in oasst1_threads(good, threads):
            cols = {"messages": msgs}
            meta.update(file=good[0]["file"])
            out.append({"id": stable_id(mapper.source, leaf), "text": flat_text(cols, mapper.use),
                        "source": mapper.source, "url": None, "meta": {**meta, "orig_id": leaf},
                        "removed_by": None, **cols})
        yield from to_batches(out, schema=schema)

    def per_tree(table: pa.Table) -> pa.Table:
        return pa.Table.from_batches(list(threads_of(table)), schema=schema)

    return messages.groupBy("tree").applyInArrow(per_tree, spark_schema(mapper.use))


def _arrow(schema: T.StructType) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(schema)


INSTRUCT_READERS["instruct"] = read_instruct

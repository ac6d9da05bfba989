"""The SFT checks (checks.py) and the ChatML rendering (stage.py) over Arrow batches, vectorised over every
turn of a batch with Arrow compute and numpy: the same answers as the Spark expressions, row for row (tests
compare them), for code that already holds the rows as Arrow in a Python task.

Why a second form: measured on the instruct bench, reading, mapping and writing 200k conversations costs
about 6 us a row in one Python process with Arrow and 60 us a row once the rows cross into the JVM and come
back (row conversion, Parquet writer). Stages that can run on the batches where the reader made them are the
way to the issue's 3x; the Spark expressions stay the definition (validation, other layouts).

Spark semantics kept on purpose: a null role neither matches nor mismatches a role (SQL three-valued logic,
so `no_assistant` is not raised when a null role might have been the assistant's); Java's `\\s` includes
the vertical tab, RE2's does not, so the word split names its characters.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .checks import BLANK_CHARS, MOJIBAKE, NAMES, TRUNCATED_END, TRUNCATED_MIN_WORDS
from .formats import ROLES

SFT_CHECKS = NAMES["sft"]
# Java's \s (the bytes of " \t\n\x0b\f\r"), which Spark's split(text, '\\s+') splits on
_SPACE_BYTES = np.zeros(256, dtype=bool)
_SPACE_BYTES[[ord(c) for c in " \t\n\x0b\f\r"]] = True


def _rows_any(turn_flags: np.ndarray, parents: np.ndarray, n: int) -> np.ndarray:
    """Per row: does any of its turns have the flag."""
    return np.bincount(parents[turn_flags], minlength=n) > 0


def bools(arr: pa.Array) -> np.ndarray:
    """A boolean array as numpy, null as False."""
    return np.asarray(arr.fill_null(False), dtype=bool)


def _bytes(strings: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The UTF-8 bytes of a string array, each string's first byte and length (nulls: length 0)."""
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32, count=len(strings) + 1, offset=strings.offset * 4)
    buf = strings.buffers()[2]
    data = np.frombuffer(buf, dtype=np.uint8) if buf is not None else np.zeros(0, np.uint8)
    return data, offsets[:-1].astype(np.int64), np.diff(offsets).astype(np.int64)


# Bytes a string of blanks may start with: the ASCII blanks, and the lead bytes of U+00A0 (C2), U+2002-U+200B
# (E2) and U+3000 (E3).
_BLANK_LEADS = np.zeros(256, dtype=bool)
_BLANK_LEADS[[ord(c) for c in " \t\n\r\f\v"] + [0xC2, 0xE2, 0xE3]] = True


def _blank(content: pa.Array, data: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Strings made of blanks only (or empty): only those starting with a byte a blank can start with are
    trimmed; the others (nearly all) are decided by their first byte."""
    out = sizes == 0
    maybe = np.flatnonzero(~out)
    maybe = maybe[_BLANK_LEADS[data[starts[maybe]]]] if len(data) else maybe[:0]
    if len(maybe):
        trimmed = pc.utf8_trim(content.take(pa.array(maybe)), characters=BLANK_CHARS)
        out[maybe] = bools(pc.equal(pc.binary_length(trimmed), 0))
    return out


def _has_lead(data: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Strings holding a byte every mojibake lead starts with (C3 for Ã, Â and â; EF for U+FFFD): one pass
    over the batch's bytes instead of one substring search per lead."""
    out = np.zeros(len(starts), dtype=bool)
    if not len(data):
        return out
    at = np.flatnonzero((data == 0xC3) | (data == 0xEF))
    if len(at):
        owner = np.searchsorted(starts, at, side="right") - 1
        out[np.unique(owner)] = True
    return out & (sizes > 0)


def _finish_length(meta: pa.Array | None, n: int) -> np.ndarray:
    """Rows whose meta says finish_reason = length (a generation cut at max_tokens)."""
    if meta is None:
        return np.zeros(n, dtype=bool)
    meta = meta.combine_chunks() if isinstance(meta, pa.ChunkedArray) else meta
    offsets = np.asarray(meta.offsets, dtype=np.int64)
    start, stop = offsets[0], offsets[-1]
    keys, items = meta.keys.slice(start, stop - start), meta.items.slice(start, stop - start)
    hit = bools(pc.and_(pc.equal(keys, "finish_reason"), pc.equal(items, "length")))
    parents = np.repeat(np.arange(n), np.diff(offsets))
    return _rows_any(hit & np.asarray(meta.is_valid(), dtype=bool)[parents], parents, n)


def _truncated(text: pa.Array) -> np.ndarray:
    """checks._truncated's `stopped` on each final reply (null: False); words are counted only where the
    reply ends open, as Spark's `when` does (a regex count over every reply was most of the checks' time)."""
    trimmed = pc.utf8_trim(text, characters=BLANK_CHARS)
    out = bools(pc.match_substring_regex(pc.utf8_slice_codeunits(trimmed, -1), TRUNCATED_END.replace("(?U)", "")))
    rows = np.flatnonzero(out)
    if len(rows):
        out[rows] = _space_runs(trimmed.take(pa.array(rows))) + 1 >= TRUNCATED_MIN_WORDS
    return out


def _space_runs(trimmed: pa.Array) -> np.ndarray:
    """Per string, its runs of Java's \\s (`_SPACE_BYTES`): the strings are trimmed, so no
    run starts at a string's first byte and the runs of neighbouring strings never join."""
    data, starts, sizes = _bytes(trimmed)
    if not len(data):
        return np.zeros(len(trimmed), dtype=np.int64)
    space = _SPACE_BYTES[data]
    run_starts = np.flatnonzero(space & ~np.concatenate([[False], space[:-1]]))
    owner = np.searchsorted(starts, run_starts, side="right") - 1
    return np.bincount(owner, minlength=len(trimmed))


def sft_problems(messages: pa.Array, meta: pa.Array | None = None) -> dict[str, np.ndarray]:
    """Check name -> a boolean per row, as `checks.checks("sft")` wrapped in coalesce(..., false); rows
    whose messages are null fail nothing (Spark's checks are null there)."""
    if isinstance(messages, pa.ChunkedArray):
        messages = messages.combine_chunks()
    n = len(messages)
    valid = np.asarray(messages.is_valid(), dtype=bool)
    offsets = np.asarray(messages.offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    turns = messages.values.slice(offsets[0], offsets[-1] - offsets[0]) if n else messages.values.slice(0, 0)
    parents = np.repeat(np.arange(n), lengths)
    live = valid[parents]  # a null list's slots (if any) are no turns
    role, content = turns.field("role"), turns.field("content")
    position = np.arange(len(turns)) - np.repeat(offsets[:-1] - offsets[0], lengths)
    role_known = np.asarray(role.is_valid(), dtype=bool)
    is_system = live & bools(pc.equal(role, "system"))
    is_assistant = live & bools(pc.equal(role, "assistant"))

    data, starts, sizes = _bytes(content)
    blank = live & (~np.asarray(content.is_valid(), dtype=bool) | _blank(content, data, starts, sizes))
    out = {"empty_turn": _rows_any(blank, parents, n)}

    # the first turn whose role is known and not system
    candidates = np.flatnonzero(live & role_known & ~is_system)
    first_rows, first_at = np.unique(parents[candidates], return_index=True)
    assistant_first = np.zeros(n, dtype=bool)
    assistant_first[first_rows] = is_assistant[candidates[first_at]]
    out["assistant_first"] = assistant_first

    codes = np.asarray(pc.index_in(role, value_set=pa.array(ROLES)).fill_null(-1), dtype=np.int64)
    role_ids = np.asarray(pc.dictionary_encode(role).indices.fill_null(-1), dtype=np.int64) if len(turns) else codes
    later = position >= 1
    prev = np.roll(role_ids, 1)
    same = live & later & (role_ids >= 0) & (role_ids == prev) & (codes != ROLES.index("tool"))
    out["same_role_twice"] = _rows_any(same, parents, n)

    has_assistant = _rows_any(is_assistant, parents, n)
    has_null_role = _rows_any(live & ~role_known, parents, n)
    out["no_assistant"] = valid & ~has_assistant & ~has_null_role
    out["unknown_role"] = _rows_any(live & (codes < 0), parents, n)
    out["system_not_first"] = _rows_any(later & is_system, parents, n)

    replies = np.flatnonzero(is_assistant)
    truncated = np.zeros(n, dtype=bool)
    if len(replies):
        rows_rev, last_rev = np.unique(parents[replies][::-1], return_index=True)
        last = replies[::-1][last_rev]
        truncated[rows_rev] = _truncated(content.take(pa.array(last)))
    out["truncated_response"] = truncated | _finish_length(meta, n)

    lead = live & _has_lead(data, starts, sizes)
    moji = np.zeros(len(turns), dtype=bool)
    if lead.any():
        where = np.flatnonzero(lead)
        moji[where] = bools(pc.match_substring_regex(content.take(pa.array(where)), MOJIBAKE))
    out["mojibake"] = _rows_any(moji, parents, n)
    return out


def first_problem(found: dict[str, np.ndarray], names: list[str], live: np.ndarray) -> pa.Array:
    """The first of ``names`` each live row fails, or null (checks.first_problem)."""
    n = len(live)
    out = np.full(n, None, dtype=object)
    todo = live.copy()
    for name in names:
        hit = todo & found[name]
        out[hit] = name
        todo &= ~hit
    return pa.array(out, pa.string())


def chatml(messages: pa.Array, add_generation_prompt: bool = False) -> pa.Array:
    """Each conversation in ChatML (stage._chatml): a null role or content reads "None", as Jinja's would."""
    if isinstance(messages, pa.ChunkedArray):
        messages = messages.combine_chunks()
    turns = messages.values
    role = pc.fill_null(turns.field("role"), "None")
    content = pc.fill_null(turns.field("content"), "None")
    rendered = pc.binary_join_element_wise("<|im_start|>", role, "\n", content, "<|im_end|>\n", "")
    offsets = pa.array(np.asarray(messages.offsets))  # a slice's offsets, as an array of their own
    lists = pa.ListArray.from_arrays(offsets, rendered, mask=pc.invert(messages.is_valid()))
    text = pc.binary_join(lists, "")
    if add_generation_prompt:
        text = pc.binary_join_element_wise(text, "<|im_start|>assistant\n", "")
    return text

"""Rows produced by readers before they become Arrow batches: documents and counted skips."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa

from ..schema import ARROW_DOCUMENT_SCHEMA, stable_id

log = logging.getLogger("tokenmill.read")

Row = dict[str, Any]


def doc_row(source: str, key: str, text: str, url: str | None, meta: dict[str, str]) -> Row:
    """A kept document with its stable id."""
    return {"id": stable_id(source, key), "text": text, "source": source, "url": url,
            "meta": meta, "removed_by": None}


def skip_row(source: str, path: str, where: str, reason: str, detail: str,
             url: str | None = None, key: str | None = None) -> Row:
    """A counted skip: no text, the reason in `removed_by`, the location in `meta` (logged by `logged_skips`)."""
    meta = {"file": path, "where": where, "error": detail[:500]}
    return {"id": stable_id(source, key or f"{path}@{where}"), "text": None, "source": source,
            "url": url, "meta": meta, "removed_by": f"read:{reason}"}


LOG_FIRST_PER_REASON = 5


def logged_skips(rows: Iterable[Row], path: str, first: int = LOG_FIRST_PER_REASON) -> Iterator[Row]:
    """Pass rows through, logging the first ``first`` skips per reason of this file and then one summary
    line per reason: a file with a million bad records does not flood the log (the manifest counts all)."""
    counts: dict[str, int] = {}
    for row in rows:
        if isinstance(row, pa.RecordBatch):  # rows a fast path already batched (all kept)
            yield row
            continue
        reason = row["removed_by"]
        if reason is not None:
            n = counts[reason] = counts.get(reason, 0) + 1
            if n <= first:
                meta = row["meta"]
                log.warning("skip %s: %s: %s: %s", reason.removeprefix("read:"), path, meta.get("where"),
                            meta.get("error"))
        yield row
    for reason, n in counts.items():
        if n > first:
            log.warning("skip %s: %s: %d more not shown (%d in all; every one is counted in the manifest)",
                        reason.removeprefix("read:"), path, n - first, n)


def to_batches(rows: Iterable[Row], batch_rows: int = 1000, batch_bytes: int = 32 << 20,
               schema: pa.Schema | None = None) -> Iterator[pa.RecordBatch]:
    """Group rows into Arrow record batches of ``schema`` (the canonical document schema by default), bounded
    in rows and text bytes; record batches among the rows pass through in order."""
    buf: list[Row] = []
    size = 0
    for row in rows:
        if isinstance(row, pa.RecordBatch):
            if buf:
                yield _batch(buf, schema)
                buf, size = [], 0
            yield row
            continue
        buf.append(row)
        size += len(row["text"] or "")
        if len(buf) >= batch_rows or size >= batch_bytes:
            yield _batch(buf, schema)
            buf, size = [], 0
    if buf:
        yield _batch(buf, schema)


def _batch(rows: list[Row], schema: pa.Schema | None = None) -> pa.RecordBatch:
    """Rows -> one record batch, column by column; map columns (`meta`) from flat key/value lists and
    offsets, four times faster than converting a list of pairs per row (measured: bench/ingest.py)."""
    schema = schema or ARROW_DOCUMENT_SCHEMA
    columns = [_map_column(rows, f) if pa.types.is_map(f.type) else pa.array([r.get(f.name) for r in rows], f.type)
               for f in schema]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _map_column(rows: list[Row], field: pa.Field) -> pa.Array:
    keys: list = []
    values: list = []
    offsets = [0]
    for row in rows:
        mapping = row.get(field.name)
        if mapping is not None:
            keys.extend(mapping.keys())
            values.extend(mapping.values())
        offsets.append(len(keys))
    nulls = [row.get(field.name) is None for row in rows]
    return pa.MapArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(keys, field.type.key_type),
                                   pa.array(values, field.type.item_type),
                                   mask=pa.array(nulls) if any(nulls) else None)

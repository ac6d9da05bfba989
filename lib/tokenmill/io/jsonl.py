"""Read JSONL (.jsonl, .jsonl.gz, .jsonl.zst) line by line into canonical rows with a field mapping.

A malformed line is an error naming the file, line and field, or with `on_error: skip` a counted skip.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import fsspec

from ..errors import InputError
from .fields import FieldMap, as_meta_value, lookup
from .records import Row, doc_row, skip_row


@dataclass(frozen=True)
class JsonlOptions:
    source: str
    fields: FieldMap
    on_error: str = "raise"
    max_doc_bytes: int = 10 << 20
    storage_options: dict = field(default_factory=dict)


def _problem(opts: JsonlOptions, path: str, where: str, reason: str, detail: str) -> Iterator[Row]:
    if opts.on_error == "raise":
        raise InputError(path, where, detail)
    yield skip_row(opts.source, path, where, reason, detail)


def read_jsonl_file(path: str, relpath: str, size: int, opts: JsonlOptions) -> Iterator[Row]:
    """Every line of one JSONL file as a document row or a skip row."""
    if size == 0:
        yield from _problem(opts, path, "line 0", "empty_file", "the file is empty")
        return
    with fsspec.open(path, "rb", compression="infer", **opts.storage_options) as stream:
        # zstd readers have no readline; a BufferedReader gives every codec one (and big reads).
        handle = stream if path.endswith((".gz", ".jsonl", ".json")) else io.BufferedReader(stream, 1 << 20)
        lineno = 0
        while True:
            try:
                raw = handle.readline()
            except (OSError, EOFError) as exc:  # truncated .gz/.zst: the rest of the file is unreadable
                yield from _problem(opts, path, f"after line {lineno}", "corrupt_compression", str(exc))
                return
            if not raw:
                return
            lineno += 1
            where = f"line {lineno}"
            if not raw.strip():
                continue
            if len(raw) > opts.max_doc_bytes:
                yield skip_row(opts.source, path, where, "too_large",
                               f"{len(raw)} bytes > max_doc_bytes {opts.max_doc_bytes}", key=f"{relpath}:{lineno}")
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield from _problem(opts, path, where, "bad_utf8", f"invalid UTF-8 at byte {exc.start}")
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield from _problem(opts, path, where, "bad_json", f"invalid JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(record, dict):
                yield from _problem(opts, path, where, "bad_json", f"expected a JSON object, got {type(record).__name__}")
                continue
            yield from _map_record(record, path, relpath, lineno, opts)


def _map_record(record: dict, path: str, relpath: str, lineno: int, opts: JsonlOptions) -> Iterator[Row]:
    fm = opts.fields
    where = f"line {lineno}"
    try:
        text = lookup(record, fm.text_field)
    except KeyError:
        yield from _problem(opts, path, where, "missing_field", f"field '{fm.text_field}' (text_field) is missing")
        return
    if not isinstance(text, str):
        yield from _problem(opts, path, where, "bad_field",
                            f"field '{fm.text_field}' (text_field) is {type(text).__name__}, not a string")
        return
    key = f"{relpath}:{lineno}"
    if fm.id_field:
        try:
            key = str(lookup(record, fm.id_field))
        except KeyError:
            yield from _problem(opts, path, where, "missing_field", f"field '{fm.id_field}' (id_field) is missing")
            return
    url = None
    if fm.url_field:
        try:
            url = as_meta_value(lookup(record, fm.url_field))
        except KeyError:
            url = None
    used = fm.used_top_level()
    names = fm.meta_fields if fm.meta_fields is not None else [k for k in record if k not in used]
    meta = {}
    for name in names:
        try:
            value = as_meta_value(lookup(record, name))
        except KeyError:
            continue
        if value is not None:
            meta[name] = value
    if fm.id_field:
        meta.setdefault("orig_id", key)
    meta["file"] = path
    meta["line"] = str(lineno)
    yield doc_row(opts.source, key, text, url, meta)

"""Read JSONL (.jsonl, .jsonl.gz, .jsonl.zst) line by line into canonical rows with a field mapping; also
whole-file record containers that published datasets use (a JSON array, an object holding one, CSV/TSV).

A malformed line is an error naming the file, line and field, or with `on_error: skip` a counted skip.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import InputError
from .fetch import FetchError, RetryPolicy, open_input
from .fields import FieldMap, as_meta_value, lookup, meta_key
from .gzmembers import GZIP_MAGIC, Gap, GzipMembers
from .records import Row, doc_row, skip_row

SPOOL_BYTES = 64 << 20  # a gzip member's decoded lines are held in memory up to this, then on local disk


@dataclass(frozen=True)
class JsonlOptions:
    source: str
    fields: FieldMap
    on_error: str = "raise"
    max_doc_bytes: int = 10 << 20
    storage_options: dict = field(default_factory=dict)
    container: str = "lines"  # lines (JSONL) | array (a JSON array or object) | csv | tsv
    records_key: str | None = None  # array: the key of the object that holds the records
    explode: str | None = None  # array: a list field of each record whose items are the rows
    column_names: tuple[str, ...] | None = None  # csv/tsv without a header line
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # (path, start) -> newlines before that byte, for byte ranges of split files (`line_index`)
    lines_before: dict = field(default_factory=dict)

    @property
    def unit(self) -> str:
        return {"lines": "line", "array": "record"}.get(self.container, "row")


def _problem(opts: JsonlOptions, path: str, where: str, reason: str, detail: str,
             key: str | None = None) -> Iterator[Row]:
    if opts.on_error == "raise":
        raise InputError(path, where, detail)
    yield skip_row(opts.source, path, where, reason, detail, key=key)


def read_jsonl_file(path: str, relpath: str, size: int, opts: JsonlOptions, start: int = 0,
                    end: int | None = None) -> Iterator[Row]:
    """Every line of one JSONL file (or of the lines starting in [start, end)) as a document or skip row."""
    try:
        yield from _records_to_rows(source_records(path, relpath, size, opts, start, end), path, relpath, opts)
    except FetchError as exc:  # the network, not the file: lines read before the failure are kept
        yield from _problem(opts, path, f"byte {exc.offset}", "fetch_failed", str(exc))


def file_records(path: str, size: int, opts: JsonlOptions) -> Iterator[tuple[int, dict] | Row]:
    """(number, record) of a whole-file container: a JSON array (or the array under `records_key` of a JSON
    object), or the rows of a CSV/TSV file with a header; numbered from 1. A file that cannot be parsed is
    an error naming it, or with `on_error: skip` one counted skip."""
    where = f"{opts.unit} 0"
    if size == 0:
        yield from _problem(opts, path, where, "empty_file", "the file is empty")
        return
    try:
        if opts.container in ("csv", "tsv"):
            import pyarrow.csv as pcsv

            with open_input(path, opts.storage_options, opts.retry, "infer") as handle:
                tsv = opts.container == "tsv"
                # TSV as datasets publish it (Common Voice, OpenSLR): a tab ends a field, quotes are text
                table = pcsv.read_csv(
                    handle, read_options=pcsv.ReadOptions(column_names=list(opts.column_names or []) or None),
                    parse_options=pcsv.ParseOptions(delimiter="\t" if tsv else ",", quote_char=False if tsv else '"',
                                                    newlines_in_values=not tsv))
            records = table.to_pylist()
        else:
            with open_input(path, opts.storage_options, opts.retry, "infer") as handle:
                data = json.load(handle)
            if opts.records_key is not None:
                if not isinstance(data, dict) or not isinstance(data.get(opts.records_key), list):
                    raise ValueError(f"expected an object with a list under {opts.records_key!r}")
                data = data[opts.records_key]
            if not isinstance(data, list):
                raise ValueError(f"expected a JSON array, got {type(data).__name__} (set `records_key` for an "
                                 "object that holds the records)")
            records = data
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        yield from _problem(opts, path, where, "bad_file", f"cannot read the {opts.container} container: {exc}"[:300])
        return
    if opts.explode:
        records = _exploded(records, opts.explode)
    for i, record in enumerate(records, start=1):
        if isinstance(record, dict):
            yield i, record
        else:
            yield from _problem(opts, path, f"{opts.unit} {i}", "bad_json",
                                f"expected an object, got {type(record).__name__}")


def _exploded(records: list, key: str) -> Iterator:
    """The items of each record's ``key`` list, with the record's other scalar fields under `parent.<name>`
    (Visual Genome: one row per region of an image)."""
    for record in records:
        items = record.get(key) if isinstance(record, dict) else None
        if not isinstance(items, list):
            yield record  # not an object or no such list: reported as a bad record
            continue
        parent = {f"parent.{k}": v for k, v in record.items() if k != key and not isinstance(v, (dict, list))}
        for item in items:
            yield {**item, **parent} if isinstance(item, dict) else item


RANGE_CHUNK = 8 << 20


def _range_blocks(path: str, opts: JsonlOptions, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """The lines of a plain file that start in [start, end), in blocks of whole lines (each ends in a newline
    but the file's last may not): (number of the block's first line, bytes). Line numbers count the
    newlines before ``start`` (from the line index, or a sequential read of the prefix), so ids and messages
    match an unsplit read."""
    with open_input(path, opts.storage_options, opts.retry) as handle:
        lineno = opts.lines_before.get((path, start), 0)
        pos = start if (path, start) in opts.lines_before else 0
        while pos < start:  # newlines before the range (no index: read the prefix)
            chunk = handle.read(min(RANGE_CHUNK, start - pos))
            if not chunk:
                return
            lineno += chunk.count(b"\n")
            pos += len(chunk)
        if start > 0:
            handle.seek(start - 1)
            if handle.read(1) != b"\n":  # the line in progress at `start` belongs to the previous range
                rest = handle.readline()
                pos = start + len(rest)
                lineno += 1 if rest.endswith(b"\n") else 0
                if not rest.endswith(b"\n"):
                    return
            else:
                pos = start
        handle.seek(pos)
        carry = b""  # the line in progress at the end of the last block
        while pos < end:
            block = handle.read(RANGE_CHUNK)
            if not block:
                if carry:  # the last line, without a newline
                    yield lineno + 1, carry
                return
            data = carry + block
            cut = data.rfind(b"\n") + 1  # the whole lines end here
            if cut == 0:
                carry = data
                continue
            whole, carry = data[:cut], data[cut:]
            if pos + cut > end:  # the range ends inside: up to the line holding its last byte
                whole = whole[:whole.find(b"\n", end - pos - 1) + 1]
                yield lineno + 1, whole
                return
            yield lineno + 1, whole
            lineno += whole.count(b"\n")
            pos += cut


def _range_lines(path: str, opts: JsonlOptions, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """`_range_blocks` line by line: (line number, the line with its newline)."""
    for first, block in _range_blocks(path, opts, start, end):
        lines = block.split(b"\n")
        last = lines.pop()  # b"" after a final newline, else the file's last line without one
        for i, line in enumerate(lines):
            yield first + i, line + b"\n"
        if last:
            yield first + len(lines), last


def line_blocks(path: str, size: int, opts: JsonlOptions, start: int = 0,
                end: int | None = None) -> Iterator[tuple[int, bytes] | Row] | None:
    """`json_lines` in blocks of whole lines, (first line number, bytes), where the file is plain (not
    compressed); None for the others, which only `json_lines` reads."""
    import fsspec

    end = size if end is None else end
    if size == 0 or fsspec.utils.infer_compression(path) is not None:
        return None
    with open_input(path, opts.storage_options, opts.retry) as raw:
        if raw.read(3) == GZIP_MAGIC:
            return None
    return _range_blocks(path, opts, start, end)


def _newlines(path: str, start: int, end: int, storage_options: dict, retry: RetryPolicy) -> int:
    with open_input(path, storage_options, retry) as handle:
        handle.seek(start)
        count, pos = 0, start
        while pos < end:
            chunk = handle.read(min(RANGE_CHUNK, end - pos))
            if not chunk:
                break
            count += chunk.count(b"\n")
            pos += len(chunk)
    return count


def line_index(spark, ranges: list[tuple[str, int, int]], storage_options: dict, retry: RetryPolicy,
               in_threads: bool | None = None) -> dict:
    """(path, start) -> newlines before ``start``, for the byte ranges (path, start, end) of split files: one
    pass in which every task counts the newlines of its own range, summed in order on the driver, so each
    range's reader numbers its lines without reading the file from the top (which made a file of k ranges
    cost k/2 reads of it)."""
    if not any(start > 0 for _, start, _ in ranges):
        return {}
    sc = spark.sparkContext
    if in_threads if in_threads is not None else sc.master.startswith("local"):
        # Local mode: the executors are this machine's cores, so count in threads here (reads release the GIL),
        # without a job that starts Python workers for a few milliseconds of work each (2.4 of 28 s on the
        # first run of the instruct bench, against 0.5 s in threads).
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max(1, sc.defaultParallelism)) as pool:
            counted = list(pool.map(lambda r: (r[0], r[1], _newlines(r[0], r[1], r[2], storage_options, retry)),
                                    ranges))
    else:
        counted = (sc.parallelize(ranges, len(ranges))
                   .map(lambda r: (r[0], r[1], _newlines(r[0], r[1], r[2], storage_options, retry)))
                   .collect())  # small: one number per range
    out, before = {}, {}
    for path, start, count in sorted(counted):
        out[(path, start)] = before.get(path, 0)
        before[path] = before.get(path, 0) + count
    return out


def _stream_lines(handle, path: str, opts: JsonlOptions) -> Iterator[tuple[int, bytes] | Row]:
    lineno = 0
    while True:
        try:
            raw = handle.readline()
        except (OSError, EOFError) as exc:  # truncated .zst: the rest of the file is unreadable
            yield from _problem(opts, path, f"after line {lineno}", "corrupt_compression", str(exc))
            return
        if not raw:
            return
        lineno += 1
        yield lineno, raw


def _gzip_lines(raw, path: str, relpath: str, opts: JsonlOptions) -> Iterator[tuple[int, bytes] | Row]:
    """Lines of a gzip file, member by member: a member's lines are released only after its CRC checks,
    so nothing decoded from a damaged member is kept; its lines are counted skips with their range."""
    lineno, carry = 0, b""
    for member in GzipMembers(raw):
        if isinstance(member, Gap):
            yield from _problem(opts, path, f"byte {member.offset}", "corrupt_gzip", "bytes that are not gzip data")
            continue
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            spool.write(carry)
            for chunk in member.chunks():
                spool.write(chunk)
            spool.seek(0)
            if member.status == "corrupt":
                spool.seek(0)
                spool.truncate()
                spool.write(carry)
                for chunk in member.salvage():
                    spool.write(chunk)
                spool.seek(0)
                n = sum(1 for line in spool if line.strip())
                first, last = lineno + 1, lineno + max(n, 1)
                where = f"lines {first}-{last} (gzip member at byte {member.offset})"
                detail = f"{member.detail}: nothing decoded from this member is kept"
                if opts.on_error == "raise":
                    raise InputError(path, where, detail)
                for k in range(first, last + 1):
                    yield skip_row(opts.source, path, where, "corrupt_gzip", detail, key=f"{relpath}:{k}")
                lineno, carry = last, b""
                continue
            carry = b""
            for line in spool:
                if not line.endswith(b"\n"):
                    carry = line  # a line continued in the next member
                    break
                lineno += 1
                yield lineno, line
            if member.status == "truncated":
                if carry.strip():
                    yield from _problem(opts, path, f"line {lineno + 1}", "corrupt_compression",
                                        f"{member.detail}; the line is cut short")
                return
    if carry.strip():
        yield lineno + 1, carry


def _records_to_rows(records, path: str, relpath: str, opts: JsonlOptions) -> Iterator[Row]:
    for item in records:
        if isinstance(item, dict):
            yield item
        else:
            yield from _map_record(item[1], path, relpath, item[0], opts)


def json_lines(path: str, relpath: str, size: int, opts: JsonlOptions, start: int = 0,
               end: int | None = None) -> Iterator[tuple[int, bytes] | Row]:
    """The raw lines of one JSONL file (plain, gzip member by member, zstd ...) as (line number, bytes), and
    skip rows for the parts that cannot be read. With a byte range of a plain file: the lines that start in
    [start, end), numbered as in the whole file."""
    end = size if end is None else end
    if size == 0:
        yield from _problem(opts, path, "line 0", "empty_file", "the file is empty")
        return
    with open_input(path, opts.storage_options, opts.retry) as raw:
        gz = raw.read(3) == GZIP_MAGIC
    if (start, end) != (0, size):
        if gz:  # a gzip file named like a plain one: the first range reads it all
            if start == 0:
                yield from json_lines(path, relpath, size, opts)
            return
        yield from _range_lines(path, opts, start, end)
        return
    if gz:
        with open_input(path, opts.storage_options, opts.retry) as raw:
            yield from _gzip_lines(raw, path, relpath, opts)
        return
    with open_input(path, opts.storage_options, opts.retry, "infer") as stream:
        # zstd readers have no readline; a BufferedReader gives every codec one (and big reads).
        handle = stream if path.endswith((".jsonl", ".json")) else io.BufferedReader(stream, 1 << 20)
        yield from _stream_lines(handle, path, opts)


def source_records(path: str, relpath: str, size: int, opts: JsonlOptions, start: int = 0,
                   end: int | None = None) -> Iterator[tuple[int, dict] | Row]:
    """(number, record) pairs and skip rows of one file (or byte range of a JSONL file), whatever its
    container."""
    if opts.container != "lines":
        return file_records(path, size, opts) if start == 0 else iter(())
    return json_records(json_lines(path, relpath, size, opts, start, end), path, relpath, opts)


def json_records(lines, path: str, relpath: str, opts: JsonlOptions) -> Iterator[tuple[int, dict] | Row]:
    """(line number, JSON object) per line, or a skip row (with `on_error: raise`, an error naming the file and
    line) for a line that is too large, not UTF-8, not JSON or not an object; blank lines are ignored."""
    for item in lines:
        if isinstance(item, dict):
            yield item
            continue
        lineno, raw = item
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
            yield from _problem(opts, path, where, "bad_utf8", f"invalid UTF-8 at byte {exc.start + 1} of the line",
                                key=f"{relpath}:{lineno}")
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield from _problem(opts, path, where, "bad_json", f"invalid JSON: {exc.msg} at column {exc.colno}",
                                key=f"{relpath}:{lineno}")
            continue
        if not isinstance(record, dict):
            yield from _problem(opts, path, where, "bad_json", f"expected a JSON object, got {type(record).__name__}",
                                key=f"{relpath}:{lineno}")
            continue
        yield lineno, record


def _map_record(record: dict, path: str, relpath: str, lineno: int, opts: JsonlOptions) -> Iterator[Row]:
    fm = opts.fields
    where = f"{opts.unit} {lineno}"
    try:
        text = lookup(record, fm.text_field)
    except KeyError:
        yield from _problem(opts, path, where, "missing_field", f"field '{fm.text_field}' (text_field) is missing",
                            key=f"{relpath}:{lineno}")
        return
    if not isinstance(text, str):
        yield from _problem(opts, path, where, "bad_field",
                            f"field '{fm.text_field}' (text_field) is {type(text).__name__}, not a string",
                            key=f"{relpath}:{lineno}")
        return
    key = f"{relpath}:{lineno}"
    if fm.id_field:
        try:
            key = str(lookup(record, fm.id_field))
        except KeyError:
            yield from _problem(opts, path, where, "missing_field", f"field '{fm.id_field}' (id_field) is missing",
                                key=f"{relpath}:{lineno}")
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
            meta[meta_key(name)] = value
    if fm.id_field:
        meta.setdefault("orig_id", key)
    meta["file"] = path
    meta["line"] = str(lineno)
    yield doc_row(opts.source, key, text, url, meta)

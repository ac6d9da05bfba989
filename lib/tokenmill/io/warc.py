"""Stream WARC / WET files record by record into canonical rows, with counted skips for bad records.

A corrupt record (bad header, broken gzip member, truncated payload) is a skip at its byte offset;
reading resumes at the next gzip member (or `WARC/` line), so one bad record never loses a file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import fsspec
from fastwarc.warc import ArchiveIterator, WarcRecordType

from ..errors import InputError
from ..extract.html import decode, extract_text
from .records import Row, doc_row, skip_row

GZIP_MAGIC = b"\x1f\x8b\x08"
WARC_MAGIC = b"WARC/"


@dataclass(frozen=True)
class WarcOptions:
    """How one WARC/WET source is read (built from its validated config)."""

    source: str
    kind: str = "warc"  # "warc": response records + HTML extraction; "wet": conversion records as they are
    extractor: str = "resiliparse"
    main_content: bool = True
    content_types: tuple[str, ...] = ("text/html", "application/xhtml+xml")
    max_record_bytes: int = 10 << 20
    min_text_chars: int = 1
    on_error: str = "skip"
    storage_options: dict = field(default_factory=dict)


class _Corrupt(Exception):
    """Raised inside the record loop to trigger a resync at an absolute byte offset."""

    def __init__(self, offset: int, reason: str, detail: str):
        super().__init__(detail)
        self.offset, self.reason, self.detail = offset, reason, detail


def _find_magic(handle, start: int, magic: bytes, chunk: int = 1 << 20) -> int | None:
    """Offset of the next ``magic`` at or after ``start`` (None at end of file)."""
    handle.seek(start)
    carry = b""
    pos = start
    while True:
        data = handle.read(chunk)
        if not data:
            return None
        buf = carry + data
        hit = buf.find(magic)
        if hit >= 0:
            return pos - len(carry) + hit
        carry = buf[-(len(magic) - 1):]
        pos += len(data)


def read_warc_file(path: str, size: int, opts: WarcOptions) -> Iterator[Row]:
    """Every record of one WARC/WET file as a document row or a skip row (or InputError on raise)."""
    if size == 0:
        yield from _problem(opts, path, "byte 0", "empty_file", "the file is empty")
        return
    with fsspec.open(path, "rb", **opts.storage_options) as handle:
        head = handle.read(4)
        magic = GZIP_MAGIC if head[:3] == GZIP_MAGIC else WARC_MAGIC
        start, seen_any, in_bad_region = 0, False, False
        while start is not None:
            handle.seek(start)
            try:
                for row in _records(handle, start, magic, path, opts):
                    seen_any, in_bad_region = True, False
                    yield row
                return
            except _Corrupt as bad:
                # Report once per corrupt region, then resync after the failing offset.
                if not seen_any and bad.offset == 0:
                    reason, detail = "not_warc", f"not a WARC file ({bad.detail})"
                else:
                    reason, detail = bad.reason, bad.detail
                if not in_bad_region:
                    yield from _problem(opts, path, f"byte {bad.offset}", reason, detail)
                in_bad_region = True
                if reason == "not_warc":
                    return
                # Retry at the failing member itself once (it may be fine, after a record that lied about
                # its length); if it fails right there, move past it to the next member.
                start = bad.offset if bad.offset > start else _find_magic(handle, bad.offset + 1, magic)


def _problem(opts: WarcOptions, path: str, where: str, reason: str, detail: str, url: str | None = None,
             key: str | None = None) -> Iterator[Row]:
    if opts.on_error == "raise":
        raise InputError(path, where, detail)
    yield skip_row(opts.source, path, where, reason, detail, url=url, key=key)


def _records(handle, base: int, magic: bytes, path: str, opts: WarcOptions) -> Iterator[Row]:
    record_type = WarcRecordType.conversion if opts.kind == "wet" else WarcRecordType.response
    last_good: int | None = None
    iterator = ArchiveIterator(handle, record_types=record_type, parse_http=opts.kind != "wet",
                               stream_detect=True)
    while True:
        try:
            record = next(iterator)
        except StopIteration:
            return
        except OSError as exc:
            reason = "corrupt_gzip" if "ecompress" in str(exc) else "bad_record"
            # The failing record starts at the next member after the last good one (gzip per record).
            offset = base if last_good is None else _find_magic(handle, last_good + 1, magic)
            raise _Corrupt(base if offset is None else offset, reason, str(exc)) from None
        offset = record.stream_pos  # absolute in the file, also after a resync seek
        last_good = offset
        yield from _record_row(record, path, offset, opts)


def _record_row(record, path: str, offset: int, opts: WarcOptions) -> Iterator[Row]:
    headers = record.headers
    url = headers.get("WARC-Target-URI")
    record_id = headers.get("WARC-Record-ID") or f"{path}@{offset}"
    # WET conversion records point at their WARC response: the same page gets the same id from both.
    key = headers.get("WARC-Refers-To") or record_id if opts.kind == "wet" else record_id
    where = f"record {record_id} at byte {offset}"
    expected = record.content_length
    if expected > opts.max_record_bytes:
        record.reader.consume()
        yield skip_row(opts.source, path, where, "too_large",
                       f"{expected} bytes > max_record_bytes {opts.max_record_bytes}", url=url, key=key)
        return
    meta = {"warc_date": headers.get("WARC-Date") or "", "warc_record_id": record_id,
            "warc_file": path, "warc_offset": str(offset)}
    if opts.kind == "wet":
        body = record.reader.read()
        if len(body) < expected:
            yield from _problem(opts, path, where, "truncated_record",
                                f"payload has {len(body)} of {expected} bytes", url=url, key=key)
            return
        text = body.decode("utf-8", errors="replace")
        meta["content_type"] = headers.get("Content-Type") or "text/plain"
        meta["charset"] = "utf-8"
        if "\ufffd" in text and b"\xef\xbf\xbd" not in body:
            meta["decode_errors"] = str(text.count("\ufffd"))
        lang = headers.get("WARC-Identified-Content-Language")
        if lang:
            meta["cc_lang"] = lang
    else:
        status = record.http_headers.status_code if record.is_http else None
        content_type = (record.http_content_type or "").lower()
        meta["content_type"] = content_type
        if status is not None and status != 200:
            record.reader.consume()
            yield skip_row(opts.source, path, where, "http_status", f"HTTP status {status}", url=url, key=key)
            return
        if not content_type.startswith(opts.content_types):
            record.reader.consume()
            yield skip_row(opts.source, path, where, "not_html",
                           f"content type {content_type or 'missing'}", url=url, key=key)
            return
        body = record.reader.read()
        if len(body) < expected:
            yield from _problem(opts, path, where, "truncated_record",
                                f"payload has {len(body)} of {expected} bytes", url=url, key=key)
            return
        html, charset, how = decode(body, record.http_charset)
        meta["charset"], meta["charset_from"] = charset, how
        try:
            text = extract_text(html, opts.extractor, opts.main_content)
        except Exception as exc:  # an extractor crash on one page is that page's problem
            yield from _problem(opts, path, where, "extract_error", f"{type(exc).__name__}: {exc}", url=url, key=key)
            return
    if len(text.strip()) < opts.min_text_chars:
        yield skip_row(opts.source, path, where, "empty_text", "no text after extraction", url=url, key=key)
        return
    yield doc_row(opts.source, key, text, url, meta)

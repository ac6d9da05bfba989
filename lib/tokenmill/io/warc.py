"""Stream WARC / WET files record by record into canonical rows, with counted skips for bad records.

Gzip files are read member by member (`gzmembers`): a member that fails to decompress or fails its CRC
is one counted skip at its byte offset (none of its bytes are kept), and reading resumes at the next
member. Records are delimited by member ends and header lines (`warcparse`), so a wrong `Content-Length`
costs at most its own record. Only a file whose first bytes are not WARC at all is `not_warc`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import InputError
from .fetch import FetchError, RetryPolicy, open_input
from .gzmembers import GZIP_MAGIC, Gap, GzipMembers
from .html import decode, extract_text
from .records import Row, doc_row, skip_row
from .warcparse import ByteUnit, RawRecord, Region, header_value, records, single_record, split_head

# Records of one gzip member are held until the member's CRC is checked; past this many bytes (a whole
# file compressed as one member) they are released unverified, so memory stays bounded.
MAX_HELD_BYTES = 64 << 20
_CONTENT_TYPE = re.compile(rb"(?:^|\n)Content-Type[ \t]*:([^\r\n]*)", re.I)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)


@dataclass(frozen=True)
class WarcOptions:
    """How one WARC/WET source is read (built from its validated config)."""

    source: str
    kind: str = "warc"  # "warc": response records + HTML extraction; "wet": conversion records as they are
    extractor: str = "resiliparse_clean"
    main_content: bool = True
    content_types: tuple[str, ...] = ("text/html", "application/xhtml+xml")
    max_record_bytes: int = 10 << 20
    min_text_chars: int = 1
    on_error: str = "skip"
    length_mismatch: str = "keep"  # keep: read to the true record end and note it in meta; skip: a counted skip
    storage_options: dict = field(default_factory=dict)
    retry: RetryPolicy = field(default_factory=RetryPolicy)


class _File:
    """Per-file state: the path for messages, the relative path for keys, record ids seen so far."""

    def __init__(self, path: str, relpath: str, opts: WarcOptions):
        self.path, self.relpath, self.opts = path, relpath, opts
        self.seen: set[str] = set()
        self.wanted = _wanted(opts)

    def skip(self, where: str, reason: str, detail: str, url: str | None = None) -> Row:
        """A counted skip, whatever `on_error` says (not HTML, HTTP status, too large, empty)."""
        return skip_row(self.opts.source, self.path, where, reason, detail, url=url, key=f"{self.relpath}@{where}")

    def problem(self, where: str, reason: str, detail: str, url: str | None = None) -> Iterator[Row]:
        """Damage: an InputError with `on_error: raise`, else a counted skip."""
        if self.opts.on_error == "raise":
            raise InputError(self.path, where, detail)
        yield self.skip(where, reason, detail, url)


def read_warc_file(path: str, size: int, opts: WarcOptions, relpath: str | None = None) -> Iterator[Row]:
    """Every record of one WARC/WET file as a document row or a skip row (or InputError on raise)."""
    f = _File(path, relpath or path, opts)
    if size == 0:
        yield from f.problem("byte 0", "empty_file", "the file is empty")
        return
    try:
        with open_input(path, opts.storage_options, opts.retry) as handle:
            head = handle.read(3)
            handle.seek(0)
            if head == GZIP_MAGIC:
                yield from _gzip_file(handle, f)
            else:
                yield from _plain_file(handle, f)
    except FetchError as exc:  # the network, not the file: records read before the failure are kept
        yield from f.problem(f"byte {exc.offset}", "fetch_failed", str(exc))


def _plain_file(handle, f: _File) -> Iterator[Row]:
    def chunks():
        while data := handle.read(1 << 20):
            yield data

    unit = ByteUnit(chunks())
    unit.skip_blank()
    unit.fill(5)
    if not unit.buf.startswith(b"WARC/"):
        yield from f.problem(f"byte {unit.pos}", "not_warc", "not a WARC file (no gzip header, no `WARC/` line)")
        return
    for item in records(unit, lambda pos: f"byte {pos}", False, f.opts.max_record_bytes, f.wanted):
        yield from _item_rows(item, f)


def _gzip_file(handle, f: _File) -> Iterator[Row]:
    first = True
    in_bad_region = False
    for member in GzipMembers(handle):
        if isinstance(member, Gap):
            if not in_bad_region:
                yield from f.problem(f"byte {member.offset}", "bad_record", "bytes that are not a gzip member "
                                     + (f"up to byte {member.end}" if member.end is not None else "up to the end"))
            in_bad_region = True
            continue
        base = member.offset
        chunks = member.chunks()
        parts, size = [], 0
        for chunk in chunks:  # a member up to MAX_HELD_BYTES is decoded whole, its CRC checked
            parts.append(chunk)
            size += len(chunk)
            if size > MAX_HELD_BYTES:
                break
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        if first:
            first = False
            head = data.lstrip(b"\r\n")
            if len(head) >= 5 and not head.startswith(b"WARC/"):
                yield from f.problem("byte 0", "not_warc", "not a WARC file (the gzip data does not start with "
                                     "a `WARC/` line)")
                return
        if member.status == "ok":
            simple = single_record(data, f"byte {base}", f.opts.max_record_bytes, f.wanted)
            if simple is not None:  # the common case: one record, its length right
                in_bad_region = False
                for item in simple:
                    yield from _item_rows(item, f)
                continue
        unit = ByteUnit(itertools.chain([data], chunks))
        held: list[RawRecord | Region] = []
        held_bytes = 0
        where_of = (lambda b: lambda pos: f"byte {b}" if pos == 0 else f"byte {b}+{pos}")(base)
        for item in records(unit, where_of, True, f.opts.max_record_bytes, f.wanted):
            held.append(item)
            held_bytes += len(getattr(item, "body", None) or b"")
            if held_bytes > MAX_HELD_BYTES:  # one huge member: stream its records without the CRC check
                for earlier in held:
                    yield from _item_rows(earlier, f)
                held, held_bytes = [], 0
        member.drain()
        if member.status == "ok":
            in_bad_region = False
            for item in held:
                yield from _item_rows(item, f)
        elif member.status == "truncated":
            for item in held[:-1]:
                yield from _item_rows(item, f)
            cut = held[-1] if held else None
            url = cut.fields.get("warc-target-uri") if isinstance(cut, RawRecord) else None
            yield from f.problem(_where(cut) if isinstance(cut, RawRecord) else f"byte {base}", "truncated_record",
                                 f"{member.detail} (started at byte {base})", url=url)
            return
        else:
            # Nothing decoded from a damaged member is kept: its bytes may be garbled.
            if not in_bad_region:
                urls = [i.fields.get("warc-target-uri") for i in held if isinstance(i, RawRecord)]
                yield from f.problem(f"byte {base}", "corrupt_gzip", f"{member.detail}; reading resumes at the "
                                     "next gzip member", url=urls[0] if urls else None)
            in_bad_region = True


def _where(rec: RawRecord) -> str:
    rid = rec.fields.get("warc-record-id")
    return f"record {rid} at {rec.where}" if rid else rec.where


def _wanted(opts: WarcOptions):
    kind = "conversion" if opts.kind == "wet" else "response"
    return lambda warc_type: warc_type == kind


def _item_rows(item: RawRecord | Region, f: _File) -> Iterator[Row]:
    if isinstance(item, Region):
        yield from f.problem(item.where, item.reason, item.detail)
        return
    url = item.fields.get("warc-target-uri")
    if item.problem:
        reason, detail = item.problem
        if reason == "too_large":
            yield f.skip(_where(item), reason, detail, url)
        else:
            yield from f.problem(_where(item), reason, detail, url)
        return
    if item.length_mismatch and f.opts.length_mismatch == "skip":
        yield from f.problem(_where(item), "bad_length", item.length_mismatch, url)
        return
    yield from _record_row(item, f, url)


def _record_row(rec: RawRecord, f: _File, url: str | None) -> Iterator[Row]:
    opts = f.opts
    record_id = rec.fields.get("warc-record-id") or f"{f.relpath}@{rec.where}"
    # Each record is keyed by its own record id; a repeated one (seen in cc_net's samples) gets its
    # position added, so ids stay unique and the repeat is visible in meta.
    key = record_id
    meta = {"warc_date": rec.fields.get("warc-date", ""), "warc_record_id": record_id,
            "warc_file": f.path, "warc_offset": rec.where.removeprefix("byte "),
            # The page's response record: shared by its WARC response and WET conversion records.
            "page_id": rec.fields.get("warc-refers-to") if opts.kind == "wet" and rec.fields.get("warc-refers-to")
            else record_id}
    if key in f.seen:
        key = f"{record_id}@{f.relpath}:{rec.where}"
        meta["id_disambiguated"] = "repeated WARC-Record-ID"
    f.seen.add(record_id)
    if rec.length_mismatch:
        meta["length_mismatch"] = rec.length_mismatch
    body = rec.body or b""
    if opts.kind == "wet":
        text = body.decode("utf-8", errors="replace")
        meta["content_type"] = rec.fields.get("content-type") or "text/plain"
        meta["charset"] = "utf-8"
        if "\ufffd" in text and b"\xef\xbf\xbd" not in body:
            meta["decode_errors"] = str(text.count("\ufffd"))
        lang = rec.fields.get("warc-identified-content-language")
        if lang:
            meta["cc_lang"] = lang
    else:
        status, raw_type, payload = _http(body, rec.fields)
        content_type = raw_type.split(";")[0].strip().lower()
        meta["content_type"] = content_type
        if status is not None and status != 200:
            yield f.skip(_where(rec), "http_status", f"HTTP status {status}", url)
            return
        if not content_type.startswith(opts.content_types):
            yield f.skip(_where(rec), "not_html", f"content type {content_type or 'missing'}", url)
            return
        m = _CHARSET.search(raw_type)
        html, charset, how = decode(payload, m.group(1) if m else None)
        meta["charset"], meta["charset_from"] = charset, how
        try:
            text = extract_text(html, opts.extractor, opts.main_content)
        except Exception as exc:  # an extractor crash on one page is that page's problem
            yield from f.problem(_where(rec), "extract_error", f"{type(exc).__name__}: {exc}", url)
            return
    if len(text.strip()) < opts.min_text_chars:
        yield f.skip(_where(rec), "empty_text", "no text after extraction", url)
        return
    yield doc_row(opts.source, key, text, url, meta)


def _http(body: bytes, fields: dict) -> tuple[int | None, str, bytes]:
    """(status, Content-Type, payload) of an HTTP response block; CRLF or bare-LF header lines."""
    if body.startswith(b"HTTP/"):
        head = split_head(body)
        if head is not None:
            block, payload = head
            status_line, _, rest = block.partition(b"\n")
            parts = status_line.split()
            status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
            ctype = header_value(rest, b"Content-Type:", _CONTENT_TYPE)
            return status, ctype.decode("latin-1") if ctype is not None else "", payload
    # No HTTP block (a `resource` record, or headers stripped): the record's own type describes the body.
    return None, fields.get("content-type", ""), body

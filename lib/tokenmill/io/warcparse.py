"""WARC records from a byte stream, tolerant of what real crawl files contain.

A record's extent is decided by what is certain, not by its `Content-Length` alone: the end of its gzip
member (crawl files compress each record on its own), or in an uncompressed stream the next `WARC/x.y`
header line. A record whose length disagrees is still delimited correctly and reported
(`length_mismatch`), so one lying header never swallows the records after it. Header lines may end in
CRLF or in bare LF (cc_net's WET samples, ClueWeb22's WARC/0.18 HTTP headers).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

MAX_HEADER_BYTES = 1 << 16
# A header line at the start of a line, followed by a field line: where a record starts.
_HEADER_START = re.compile(rb"(?:^|\n)(WARC/\d+\.\d+\r?\n[!-9;-~]+:)")
_TYPE = re.compile(rb"(?:^|\n)WARC-Type[ \t]*:([^\r\n]*)", re.I)
_LENGTH = re.compile(rb"(?:^|\n)Content-Length[ \t]*:([^\r\n]*)", re.I)
_BLANK_BYTES = frozenset(b"\r\n\x00 \t")
_NONBLANK = re.compile(rb"[^\r\n\x00 \t]")


class ByteUnit:
    """A stream of bytes (a gzip member's output, or a whole uncompressed file) read with look-ahead."""

    def __init__(self, chunks: Iterator[bytes]):
        self._it = iter(chunks)
        self.buf = bytearray()
        self.pos = 0  # offset of buf[0] within the unit
        self.done = False

    def fill(self, n: int) -> int:
        """Buffer at least ``n`` bytes if the unit has them; the buffered length."""
        while len(self.buf) < n and not self.done:
            try:
                self.buf += next(self._it)
            except StopIteration:
                self.done = True
        return len(self.buf)

    def at_end(self) -> bool:
        return self.fill(1) == 0

    def take(self, n: int) -> bytes:
        self.fill(n)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        self.pos += len(out)
        return out

    def skip(self, n: int) -> int:
        """Drop ``n`` bytes without keeping them in memory; how many there were."""
        skipped = 0
        while skipped < n:
            if not self.buf and self.fill(1) == 0:
                break
            step = min(n - skipped, len(self.buf))
            del self.buf[:step]
            self.pos += step
            skipped += step
        return skipped

    def unread(self, data: bytes) -> None:
        self.buf[:0] = data
        self.pos -= len(data)

    def skip_blank(self) -> None:
        if self.buf and self.buf[0] not in _BLANK_BYTES:  # the common case: already at a record
            return
        while self.fill(1):
            m = _NONBLANK.search(self.buf)
            dropped = m.start() if m else len(self.buf)
            if dropped:
                del self.buf[:dropped]
                self.pos += dropped
            if m:
                return

    def head_end(self) -> tuple[int, int] | None:
        """Where the header block at the start of the buffer ends (see `head_end`), reading as needed."""
        while True:
            found = head_end(self.buf)
            if found is not None or len(self.buf) >= MAX_HEADER_BYTES or self.done:
                return found
            self.fill(min(MAX_HEADER_BYTES, len(self.buf) * 2 + 4096))

    def find_header(self, start: int, limit: int) -> int:
        """Index of the next record header line at or after ``start`` (reading up to ``limit``); -1."""
        searched = start
        while True:
            m = _HEADER_START.search(self.buf, searched)
            if m and m.end() < len(self.buf) or m and self.done:
                return m.start(1)
            if len(self.buf) >= limit or self.done:
                return -1
            searched = max(start, len(self.buf) - 64)
            self.fill(min(limit, len(self.buf) * 2 + 65536))


def parse_fields(block: bytes) -> dict[str, str]:
    """`Name: value` lines (CRLF or LF, continuation lines folded) -> {lower-case name: value}."""
    fields: dict[str, str] = {}
    last = None
    for line in block.split(b"\n"):
        if line[:1] in (b" ", b"\t") and last:
            fields[last] += " " + line.strip().decode("utf-8", "replace")
            continue
        name, sep, value = line.partition(b":")
        if sep:
            last = name.strip().decode("latin-1").lower()
            fields[last] = value.strip().decode("utf-8", "replace")
    return fields


def head_end(data: bytes | bytearray, limit: int = MAX_HEADER_BYTES) -> tuple[int, int] | None:
    """(length of the header block, length of the blank line after it) in ``data``, or None."""
    crlf = data.find(b"\r\n\r\n", 0, limit)
    lf = data.find(b"\n\n", 0, crlf + 2 if crlf >= 0 else limit)
    if lf >= 0 and (crlf < 0 or lf < crlf):
        return lf, 2
    if crlf >= 0:
        return crlf, 4
    return None


def split_head(data: bytes, limit: int = MAX_HEADER_BYTES) -> tuple[bytes, bytes] | None:
    """(header block, rest) at the first blank line (CRLF CRLF or LF LF), or None."""
    found = head_end(data, limit)
    if found is None:
        return None
    return data[:found[0]], data[found[0] + found[1]:]


@dataclass
class RawRecord:
    """One WARC record: where it starts, its fields, its body (None when too large to keep)."""

    where: str
    version: str
    fields: dict[str, str]
    declared: int
    body: bytes | None
    length_mismatch: str | None = None
    problem: tuple[str, str] | None = None  # (reason, detail) when the record is unusable


@dataclass
class Region:
    """Bytes that are not a record (garbage between records): reported once, with where they start."""

    where: str
    reason: str
    detail: str


def records(unit: ByteUnit, where_of, bounded: bool, max_body: int, keep) -> Iterator[RawRecord | Region]:
    """Every record in ``unit``. ``bounded``: the unit's end is a record boundary (a gzip member).
    ``keep(warc_type)``: whether this record's body is wanted (others are skipped without keeping them)."""
    while True:
        unit.skip_blank()
        if unit.at_end():
            return
        where = where_of(unit.pos)
        head = unit.head_end()
        if not unit.buf.startswith(b"WARC/") or head is None:
            yield Region(where, "bad_record", "no WARC header here" if not unit.buf.startswith(b"WARC/")
                         else "WARC header without an end")
            _resync(unit, max_body, start=1)
            continue
        block = unit.take(head[0])
        unit.skip(head[1])
        first, _, rest = block.partition(b"\n")
        version = first.strip().decode("latin-1")
        # Type and length first: records not kept (requests, metadata) are passed over unparsed.
        warc_type, length = _type_and_length(rest)
        if length is not None and warc_type is not None and not keep(warc_type):
            _skip_body(unit, length, bounded, max_body)
            continue
        fields = parse_fields(rest)
        try:
            declared = int(fields.get("content-length", ""))
            if declared < 0:
                raise ValueError
        except ValueError:
            yield RawRecord(where, version, fields, -1, None,
                            problem=("bad_record", f"Content-Length {fields.get('content-length')!r} is not a length"))
            _resync(unit, max_body)
            continue
        if not keep(fields.get("warc-type", "").lower()):
            _skip_body(unit, declared, bounded, max_body)
            continue
        if declared > max_body:
            _skip_body(unit, declared, bounded, max_body)
            yield RawRecord(where, version, fields, declared, None,
                            problem=("too_large", f"{declared} bytes > max_record_bytes {max_body}"))
            continue
        yield _read_body(unit, where, version, fields, declared, bounded, max_body)


def single_record(data: bytes, where: str, max_body: int, keep) -> list[RawRecord] | None:
    """The record of a gzip member that holds exactly one, with a right length (the usual case), parsed
    without the streaming machinery: [] if it is not wanted, None if the member needs `records`."""
    if not data.startswith(b"WARC/"):
        return None
    head = head_end(data)
    if head is None:
        return None
    block = data[:head[0]]
    first, _, rest = block.partition(b"\n")
    warc_type, length = _type_and_length(rest)
    if warc_type is None or length is None:
        return None
    end = head[0] + head[1] + length
    if len(data) < end or data[end:].strip(b"\r\n"):
        return None  # short, or more after the body: the general path sorts it out
    if not keep(warc_type):
        return []
    fields = parse_fields(rest)
    version = first.strip().decode("latin-1")
    if length > max_body:
        return [RawRecord(where, version, fields, length, None,
                          problem=("too_large", f"{length} bytes > max_record_bytes {max_body}"))]
    return [RawRecord(where, version, fields, length, data[head[0] + head[1]:end])]


def header_value(block: bytes, name: bytes, pattern: re.Pattern) -> bytes | None:
    """A field's raw value: a plain search for the usual spelling, the pattern for any other."""
    at = block.find(name)
    if at >= 0 and (at == 0 or block[at - 1] == 10):
        end = block.find(b"\n", at)
        return block[at + len(name):end if end >= 0 else len(block)].strip()
    m = pattern.search(block)
    return m.group(1).strip() if m else None


def _type_and_length(block: bytes) -> tuple[str | None, int | None]:
    kind = header_value(block, b"WARC-Type:", _TYPE)
    length = header_value(block, b"Content-Length:", _LENGTH)
    return (kind.decode("latin-1").lower() if kind is not None else None,
            int(length) if length is not None and length.isdigit() else None)


def _resync(unit: ByteUnit, max_body: int, start: int = 0) -> None:
    """Go to the next header line at or after ``start`` (or to the unit's end if there is none)."""
    nxt = unit.find_header(start, max_body + MAX_HEADER_BYTES)
    if nxt < 0:
        while unit.skip(1 << 20):
            pass
    else:
        unit.skip(nxt)


def _at_boundary(unit: ByteUnit) -> bool:
    """After a body (looking ahead, consuming nothing): blank bytes, then the unit's end or `WARC/`."""
    i = 0
    while True:
        n = unit.fill(i + 8)
        while i < n and unit.buf[i] in b"\r\n":
            i += 1
        if i + 5 <= n or unit.done:
            return i >= n or unit.buf.startswith(b"WARC/", i)


def _skip_body(unit: ByteUnit, declared: int, bounded: bool, max_body: int) -> None:
    """Pass over a record not kept; if its length was wrong, go to the next header line."""
    if declared <= max_body:
        body = unit.take(declared)
        if len(body) < declared or not _at_boundary(unit):
            unit.unread(body)
            _resync(unit, max_body)
        return
    unit.skip(declared)
    if not _at_boundary(unit):
        _resync(unit, max_body)


def _read_body(unit: ByteUnit, where: str, version: str, fields: dict, declared: int, bounded: bool,
               max_body: int) -> RawRecord:
    body = unit.take(declared)
    if len(body) == declared and _at_boundary(unit):
        return RawRecord(where, version, fields, declared, body)
    # The length is wrong: the record runs from its body's start to the next header line (which may
    # begin inside what was read: an overstated length) or to the end of its gzip member.
    unit.unread(body)
    nxt = unit.find_header(0, max_body + MAX_HEADER_BYTES)
    if nxt >= 0:
        body = unit.take(nxt)
    elif unit.done and (bounded or len(unit.buf) >= declared):
        body = unit.take(len(unit.buf))
    elif unit.done:
        unit.skip(len(unit.buf))
        return RawRecord(where, version, fields, declared, None,
                         problem=("truncated_record", f"payload has {len(body)} of {declared} bytes"))
    else:
        _resync(unit, max_body)
        return RawRecord(where, version, fields, declared, None,
                         problem=("too_large", f"no record boundary within max_record_bytes {max_body}"))
    body = body.rstrip(b"\r\n") if body.endswith(b"\n") else body
    return RawRecord(where, version, fields, declared, body,
                     length_mismatch=f"declared {declared} bytes, record has {len(body)}")

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
from dataclasses import dataclass, field

MAX_HEADER_BYTES = 1 << 16
# A header line at the start of a line, followed by a field line: where a record starts.
_HEADER_START = re.compile(rb"(?:^|\n)(WARC/\d+\.\d+\r?\n[!-9;-~]+:)")
_BLANK = b"\r\n\x00 \t"


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
        while True:
            if self.fill(1) == 0:
                return
            stripped = self.buf.lstrip(_BLANK)
            dropped = len(self.buf) - len(stripped)
            if dropped == 0:
                return
            del self.buf[:dropped]
            self.pos += dropped

    def find(self, pattern: bytes, start: int, limit: int) -> int:
        """Index of ``pattern`` in the buffer at or after ``start``, reading up to ``limit`` bytes; -1."""
        searched = start
        while True:
            hit = self.buf.find(pattern, searched)
            if hit >= 0:
                return hit
            if len(self.buf) >= limit or self.done:
                return -1
            searched = max(start, len(self.buf) - len(pattern) + 1)
            self.fill(min(limit, len(self.buf) * 2 + 65536))

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


def header_start(data: bytes, start: int = 0) -> int:
    """Index of the first record header line in ``data`` at or after ``start``; -1."""
    m = _HEADER_START.search(data, start)
    return m.start(1) if m else -1


def parse_fields(block: bytes) -> dict[str, str]:
    """`Name: value` lines (CRLF or LF, continuation lines folded) -> {lower-case name: value}."""
    fields: dict[str, str] = {}
    last = None
    for raw in block.split(b"\n"):
        line = raw.rstrip(b"\r")
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and last:
            fields[last] += " " + line.strip().decode("utf-8", "replace")
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        last = name.strip().decode("latin-1").lower()
        fields[last] = value.strip().decode("utf-8", "replace")
    return fields


def split_head(data: bytes, limit: int = MAX_HEADER_BYTES) -> tuple[bytes, bytes] | None:
    """(header block, rest) at the first blank line (CRLF CRLF or LF LF), or None."""
    crlf = data.find(b"\r\n\r\n", 0, limit)
    lf = data.find(b"\n\n", 0, limit)
    if crlf < 0 and lf < 0:
        return None
    if lf >= 0 and (crlf < 0 or lf < crlf):
        return data[:lf], data[lf + 2:]
    return data[:crlf], data[crlf + 4:]


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
    extra: dict = field(default_factory=dict)

    @property
    def type(self) -> str:
        return self.fields.get("warc-type", "").lower()


@dataclass
class Region:
    """Bytes that are not a record (garbage between records): reported once, with where they start."""

    where: str
    reason: str
    detail: str


def records(unit: ByteUnit, where_of, bounded: bool, max_body: int, keep) -> Iterator[RawRecord | Region]:
    """Every record in ``unit``. ``bounded``: the unit's end is a record boundary (a gzip member).
    ``keep(fields)``: whether this record's body is wanted (others are skipped without keeping them)."""
    while True:
        unit.skip_blank()
        if unit.at_end():
            return
        where = where_of(unit.pos)
        unit.fill(MAX_HEADER_BYTES)
        head = split_head(bytes(unit.buf[:MAX_HEADER_BYTES]))
        if not unit.buf.startswith(b"WARC/") or head is None:
            nxt = unit.find_header(1, max_body + MAX_HEADER_BYTES)
            yield Region(where, "bad_record", "no WARC header here" if not unit.buf.startswith(b"WARC/")
                         else "WARC header without an end")
            if nxt < 0:
                while unit.skip(1 << 20):
                    pass
                return
            unit.skip(nxt)
            continue
        block, _ = head
        unit.skip(len(block))
        unit.skip(4 if unit.buf.startswith(b"\r\n\r\n") else 2)
        first, _, rest = block.partition(b"\n")
        fields = parse_fields(rest)
        version = first.strip().decode("latin-1")
        try:
            declared = int(fields.get("content-length", ""))
            if declared < 0:
                raise ValueError
        except ValueError:
            yield RawRecord(where, version, fields, -1, None,
                            problem=("bad_record", f"Content-Length {fields.get('content-length')!r} is not a length"))
            _resync(unit, max_body)
            continue
        if not keep(fields):
            _skip_body(unit, declared, bounded, max_body)
            continue
        if declared > max_body:
            _skip_body(unit, declared, bounded, max_body)
            yield RawRecord(where, version, fields, declared, None,
                            problem=("too_large", f"{declared} bytes > max_record_bytes {max_body}"))
            continue
        yield _read_body(unit, where, version, fields, declared, bounded, max_body)


def _resync(unit: ByteUnit, max_body: int) -> None:
    nxt = unit.find_header(0, max_body + MAX_HEADER_BYTES)
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

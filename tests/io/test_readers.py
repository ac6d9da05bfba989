"""Readers on bad input: every problem is a clear error (file, place, field) or a counted skip."""

from __future__ import annotations

import gzip
import io
import json
import os

import pytest
import zstandard
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from tokenmill.errors import InputError
from tokenmill.io.fields import FieldMap
from tokenmill.io.jsonl import JsonlOptions, read_jsonl_file
from tokenmill.io.warc import WarcOptions, read_warc_file
from tokenmill.schema import stable_id


def make_warc(path, pages, gz=True):
    """pages: (url, body bytes, content type); returns the member start offsets."""
    offsets = []
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=gz)
        for i, (url, body, ctype) in enumerate(pages):
            offsets.append(fh.tell())
            http = StatusAndHeaders("200 OK", [("Content-Type", ctype)], protocol="HTTP/1.1")
            rec = writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http,
                                            warc_headers_dict={"WARC-Record-ID": f"<urn:uuid:0000-{i}>"})
            writer.write_record(rec)
    return offsets


def three_pages_with_member(path, replace):
    """A 3-record WARC.gz whose middle gzip member is replaced by ``replace(member bytes)``; its offsets."""
    offsets = make_warc(path, [page(i) for i in range(3)])
    data = path.read_bytes()
    path.write_bytes(data[:offsets[1]] + replace(data[offsets[1]:offsets[2]]) + data[offsets[2]:])
    return offsets


def page(i):
    return (f"https://t.example/{i}", f"<html><body><p>Page number {i} has a sentence of text.</p></body></html>".encode(),
            "text/html; charset=utf-8")


def read(path, **opts):
    return list(read_warc_file(str(path), os.path.getsize(path), WarcOptions(source="t", **opts)))


def reasons(rows):
    return [r["removed_by"] for r in rows]


def test_reads_every_record_with_stable_ids(tmp_path):
    path = tmp_path / "ok.warc.gz"
    make_warc(path, [page(i) for i in range(3)])
    rows = read(path)
    assert reasons(rows) == [None, None, None]
    assert [r["text"] for r in rows] == [f"Page number {i} has a sentence of text." for i in range(3)]
    assert [r["id"] for r in rows] == [stable_id("t", f"<urn:uuid:0000-{i}>") for i in range(3)]
    assert rows[1]["url"] == "https://t.example/1"
    assert rows[1]["meta"]["charset"] == "utf-8" and rows[1]["meta"]["content_type"] == "text/html"


def test_uncompressed_warc(tmp_path):
    path = tmp_path / "plain.warc"
    make_warc(path, [page(i) for i in range(2)], gz=False)
    assert reasons(read(path)) == [None, None]


def test_truncated_gzip_member_is_a_counted_skip(tmp_path):
    path = tmp_path / "trunc.warc.gz"
    make_warc(path, [page(i) for i in range(3)])
    data = path.read_bytes()
    path.write_bytes(data[:-30])
    rows = read(path)
    assert reasons(rows) == [None, None, "read:truncated_record"]
    assert "the file ends inside this gzip member" in rows[2]["meta"]["error"] and rows[2]["meta"]["file"] == str(path)
    with pytest.raises(InputError, match=r"trunc\.warc\.gz: record <urn:uuid:0000-2> at byte \d+: the file ends inside this gzip member"):
        read(path, on_error="raise")


def test_bad_header_mid_file_resyncs_at_next_record(tmp_path):
    path = tmp_path / "bad.warc.gz"
    offsets = three_pages_with_member(
        path, lambda m: gzip.compress(gzip.decompress(m).replace(b"WARC/1.", b"XXXX/9.", 1)))
    rows = read(path)
    assert reasons(rows) == [None, "read:bad_record", None]
    assert rows[1]["meta"]["where"] == f"byte {offsets[1]}"
    assert rows[2]["text"].startswith("Page number 2")
    with pytest.raises(InputError, match=rf"bad\.warc\.gz: byte {offsets[1]}: no WARC header here"):
        read(path, on_error="raise")


def test_corrupt_gzip_member(tmp_path):
    path = tmp_path / "gz.warc.gz"
    three_pages_with_member(path, lambda m: b"\x1f\x8b\x08\x00garbage-not-deflate")
    rows = read(path)
    assert reasons(rows) == [None, "read:corrupt_gzip", None]


def test_not_a_warc_and_empty_file(tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("these are my notes\n" * 10)
    empty = tmp_path / "empty.warc.gz"
    empty.write_bytes(b"")
    assert reasons(read(other)) == ["read:not_warc"]
    assert reasons(read(empty)) == ["read:empty_file"]
    with pytest.raises(InputError, match=r"notes\.txt: byte 0: not a WARC file"):
        read(other, on_error="raise")


def test_twenty_megabyte_document_is_skipped_by_size(tmp_path):
    path = tmp_path / "big.warc.gz"
    big = b"<html><body><p>" + b"word " * (4 << 20) + b"</p></body></html>"
    make_warc(path, [page(0), ("https://t.example/big", big, "text/html"), page(2)])
    rows = read(path)
    assert reasons(rows) == [None, "read:too_large", None]
    assert "> max_record_bytes" in rows[1]["meta"]["error"]


def test_charset_undeclared_and_declared_in_meta(tmp_path):
    path = tmp_path / "cs.warc.gz"
    text = "Le café de la gare est fermé depuis l'été dernier, à cause des travaux."
    undeclared = f"<html><body><p>{text}</p></body></html>".encode("cp1252")
    in_meta = f'<html><head><meta charset="iso-8859-1"></head><body><p>{text}</p></body></html>'.encode("latin-1")
    make_warc(path, [("https://t.example/a", undeclared, "text/html"), ("https://t.example/b", in_meta, "text/html")])
    rows = read(path)
    assert [r["text"] for r in rows] == [text, text]
    assert rows[0]["meta"]["charset_from"] == "detected" and rows[1]["meta"]["charset"] == "cp1252"


def test_non_html_is_counted(tmp_path):
    path = tmp_path / "mixed.warc.gz"
    make_warc(path, [page(0), ("https://t.example/x.png", b"\x89PNG....", "image/png")])
    assert reasons(read(path)) == [None, "read:not_html"]


def jsonl(path, lines, compress=None):
    raw = b"".join(line if isinstance(line, bytes) else (line + "\n").encode() for line in lines)
    if compress == "gz":
        raw = gzip.compress(raw)
    elif compress == "zst":
        raw = zstandard.ZstdCompressor().compress(raw)
    path.write_bytes(raw)
    return path


def read_jsonl(path, on_error="raise", **fields):
    opts = JsonlOptions(source="j", fields=FieldMap(**fields), on_error=on_error)
    return list(read_jsonl_file(str(path), path.name, os.path.getsize(path), opts))


def test_jsonl_mapping_nested_fields_and_meta(tmp_path):
    rec = {"id": "d1", "text": "hello", "metadata": {"url": "https://x/1", "year": 2020}, "added": "2024"}
    for compress, name in ((None, "a.jsonl"), ("gz", "a.jsonl.gz"), ("zst", "a.jsonl.zst")):
        rows = read_jsonl(jsonl(tmp_path / name, [json.dumps(rec)], compress), layout="dolma")
        assert len(rows) == 1
        row = rows[0]
        assert (row["id"], row["text"], row["url"]) == (stable_id("j", "d1"), "hello", "https://x/1")
        assert row["meta"]["metadata"] == '{"url":"https://x/1","year":2020}' and row["meta"]["added"] == "2024"
        assert row["meta"]["line"] == "1" and row["meta"]["orig_id"] == "d1"


def test_jsonl_without_id_uses_file_and_line(tmp_path):
    path = jsonl(tmp_path / "b.jsonl", ['{"content": "x"}', "", '{"content": "y"}'])
    rows = read_jsonl(path, layout="refinedweb")
    assert [r["id"] for r in rows] == [stable_id("j", "b.jsonl:1"), stable_id("j", "b.jsonl:3")]


def test_jsonl_malformed_line_error_names_file_and_line(tmp_path):
    path = jsonl(tmp_path / "c.jsonl", ['{"text": "a"}', '{"text": "b"', '{"txt": "c"}', b'{"text": "\xff"}\n'])
    with pytest.raises(InputError, match=r"c\.jsonl: line 2: invalid JSON"):
        read_jsonl(path)
    rows = read_jsonl(path, on_error="skip")
    assert reasons(rows) == [None, "read:bad_json", "read:missing_field", "read:bad_utf8"]
    assert rows[2]["meta"]["error"] == "field 'text' (text_field) is missing"
    assert rows[3]["meta"]["where"] == "line 4"


def test_jsonl_wrong_type_and_truncated_gzip(tmp_path):
    path = jsonl(tmp_path / "d.jsonl", ['{"text": 5}'])
    with pytest.raises(InputError, match=r"d\.jsonl: line 1: field 'text' \(text_field\) is int, not a string"):
        read_jsonl(path)
    good = gzip.compress(b"".join(b'{"text": "row %d"}\n' % i for i in range(2000)))
    trunc = tmp_path / "e.jsonl.gz"
    trunc.write_bytes(good[: len(good) // 2])
    rows = read_jsonl(trunc, on_error="skip")
    assert reasons(rows)[-1] == "read:corrupt_compression"
    assert all(r is None for r in reasons(rows)[:-1]) and len(rows) > 1


def test_jsonl_error_column_counts_characters_and_utf8_byte_is_one_based(tmp_path):
    path = jsonl(tmp_path / "u.jsonl", ['{"title": "Grüße aus Köln", "text": oops}', b'{"text": "ok \xff"}\n'])
    rows = read_jsonl(path, on_error="skip")
    # The column an editor shows: characters, not bytes (ü, ß and ö are two bytes each in UTF-8).
    assert rows[0]["meta"]["error"] == "invalid JSON: Expecting value at column 37"
    assert '{"title": "Grüße aus Köln", "text": oops}'.index("oops") + 1 == 37
    assert rows[1]["meta"]["error"] == "invalid UTF-8 at byte 14 of the line"


def test_skips_are_logged_first_five_per_reason_then_summarised(tmp_path, caplog):
    import logging

    from tokenmill.io.records import logged_skips

    lines = ['{"text": "fine"}'] + ["{broken"] * 40 + ['{"txt": "x"}'] * 2
    path = jsonl(tmp_path / "many.jsonl", lines)
    opts = JsonlOptions(source="j", fields=FieldMap(), on_error="skip")
    with caplog.at_level(logging.WARNING, logger="tokenmill.read"):
        rows = list(logged_skips(read_jsonl_file(str(path), path.name, os.path.getsize(path), opts), str(path)))
    assert len(rows) == 43 and sum(r["removed_by"] == "read:bad_json" for r in rows) == 40
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("skip bad_json:") for m in messages) == 6  # 5 shown + 1 summary
    assert f"skip bad_json: {path}: 35 more not shown (40 in all; every one is counted in the manifest)" in messages
    assert sum(m.startswith("skip missing_field:") for m in messages) == 2


@pytest.mark.parametrize("block", [8 << 20, 50])
def test_jsonl_byte_ranges_give_the_same_rows_as_one_read(spark, tmp_path, monkeypatch, block):
    """A big plain JSONL file is read by several tasks, one byte range each: every line exactly once, with
    the line numbers (and so the ids) of a whole-file read, wherever the ranges cut (mid-line, on a newline,
    in a blank line, at the end without a newline); the same with the line index (each range's newlines
    counted by its own task, or thread in local mode) instead of each range reading the file from the top;
    the same when the reads come in blocks smaller than a line."""
    import tokenmill.io.jsonl as jsonl

    monkeypatch.setattr(jsonl, "RANGE_CHUNK", block)
    from dataclasses import replace

    from tokenmill.io.fetch import RetryPolicy
    from tokenmill.io.jsonl import line_index

    lines = [json.dumps({"text": f"document {i} " + "ü" * (i % 7)}) for i in range(40)]
    lines[5] = ""  # a blank line
    lines[9] = '{"text": "broken'
    path = tmp_path / "big.jsonl"
    path.write_bytes(("\n".join(lines)).encode())  # no newline after the last line
    size = os.path.getsize(path)
    opts = JsonlOptions(source="j", fields=FieldMap(), on_error="skip")
    whole = list(read_jsonl_file(str(path), path.name, size, opts))
    for step in (1, 7, 31, 64, 200, size):
        ranges = [(str(path), start, min(start + step, size)) for start in range(0, size, step)]
        # counted by Spark tasks (a cluster) at 7, in the driver's threads (local mode's default) at 64
        index = line_index(spark, ranges, {}, RetryPolicy(), in_threads=step == 64) if step in (7, 64) else {}
        assert bool(index) == (step in (7, 64))
        parts = []
        for _, start, end in ranges:
            parts += read_jsonl_file(str(path), path.name, size, replace(opts, lines_before=index), start, end)
        assert [(r["id"], r["text"], r["removed_by"]) for r in parts] == \
            [(r["id"], r["text"], r["removed_by"]) for r in whole], step
    assert len(whole) == 39 and sum(r["removed_by"] is not None for r in whole) == 1

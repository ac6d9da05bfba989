"""Never lose uncounted: WARC/WET/JSONL files written here, then damaged at chosen offsets.

Every test asserts rows in = kept + removed (each record is a row, kept or a counted skip) and that every
intact record is kept with its exact text.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import zlib

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from tokenmill.errors import InputError
from tokenmill.io.fields import FieldMap
from tokenmill.io.jsonl import JsonlOptions, read_jsonl_file
from tokenmill.io.warc import WarcOptions, read_warc_file

N_PAGES = 22


def text_of(i: int) -> str:
    return f"Seite {i}: Grüße aus Köln — the page's own paragraph, with « quotes » and 12,5 % punctuation."


def html_of(i: int) -> bytes:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Seite {i}</title></head>"
            f"<body><nav>Start | Impressum</nav><article><p>{text_of(i)}</p></article></body></html>").encode()


def write_warc(path, n=N_PAGES, gz=True, warcinfo=True):
    """A crawl-like WARC (warcinfo, then request + response per page) written by warcio; the offset of
    each response record (its gzip member)."""
    offsets = []
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=gz)
        if warcinfo:
            writer.write_record(writer.create_warcinfo_record("crawl.warc.gz", {"software": "test"}))
        for i in range(n):
            url = f"https://de.example.org/seite/{i}"
            req = writer.create_warc_record(url, "request", payload=io.BytesIO(b""),
                                            http_headers=StatusAndHeaders("GET / HTTP/1.1", [("Host", "x")],
                                                                          is_http_request=True))
            writer.write_record(req)
            offsets.append(fh.tell())
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            rec = writer.create_warc_record(url, "response", payload=io.BytesIO(html_of(i)), http_headers=http,
                                            warc_headers_dict={"WARC-Record-ID": f"<urn:uuid:page-{i}>"})
            writer.write_record(rec)
    return offsets


def members(path):
    """(start, end) of every gzip member in a file."""
    data = path.read_bytes()
    out, pos = [], 0
    while pos < len(data):
        d = zlib.decompressobj(31)
        d.decompress(data[pos:])
        end = len(data) - len(d.unused_data)
        out.append((pos, end))
        pos = end
    return out


def read(path, **opts):
    return list(read_warc_file(str(path), os.path.getsize(path), WarcOptions(source="crawl", **opts), path.name))


def kept_pages(rows):
    return sorted(int(r["url"].rsplit("/", 1)[1]) for r in rows if r["removed_by"] is None)


def skips(rows):
    return [(r["removed_by"], r["meta"]["where"]) for r in rows if r["removed_by"] is not None]


def test_gzip_error_inside_a_record_body_is_a_counted_skip_and_reading_goes_on(tmp_path):
    path = tmp_path / "crawl.warc.gz"
    offsets = write_warc(path)
    spans = dict(members(path))
    data = bytearray(path.read_bytes())
    start = offsets[7]
    mid = start + (spans[start] - start) * 2 // 3  # inside the compressed HTML body
    data[mid:mid + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))
    rows = read(path)
    assert len(rows) == N_PAGES  # rows in: every response record, kept or skipped
    assert kept_pages(rows) == [i for i in range(N_PAGES) if i != 7]
    assert skips(rows) == [("read:corrupt_gzip", f"byte {start}")]
    assert all(r["text"] == text_of(int(r["url"].rsplit("/", 1)[1])) for r in rows if r["removed_by"] is None)
    with pytest.raises(InputError, match=rf"crawl\.warc\.gz: byte {start}: gzip decompression error"):
        read(path, on_error="raise")


def test_damage_in_the_first_response_is_not_a_not_warc_file(tmp_path):
    path = tmp_path / "first.warc.gz"
    offsets = write_warc(path)
    data = bytearray(path.read_bytes())
    data[offsets[0] + 30:offsets[0] + 40] = b"\x00" * 10
    path.write_bytes(bytes(data))
    rows = read(path)
    assert kept_pages(rows) == list(range(1, N_PAGES))
    assert skips(rows) == [("read:corrupt_gzip", f"byte {offsets[0]}")]
    # Damage in the very first member (the warcinfo record) loses nothing else either.
    path2 = tmp_path / "info.warc.gz"
    write_warc(path2)
    data = bytearray(path2.read_bytes())
    data[20:30] = b"\x00" * 10
    path2.write_bytes(bytes(data))
    rows = read(path2)
    assert kept_pages(rows) == list(range(N_PAGES)) and skips(rows) == [("read:corrupt_gzip", "byte 0")]


def test_only_a_file_that_is_not_warc_at_all_is_not_warc(tmp_path):
    gz_json = tmp_path / "data.warc.gz"
    gz_json.write_bytes(gzip.compress(b'{"text": "not a warc"}\n' * 10))
    html = tmp_path / "page.warc"
    html.write_bytes(b"<html><body>hello</body></html>")
    for path in (gz_json, html):
        rows = read(path)
        assert [r["removed_by"] for r in rows] == ["read:not_warc"]


def _lying(record: bytes, delta: int) -> bytes:
    """A WARC record with its Content-Length changed by ``delta``."""
    head, sep, rest = record.partition(b"\r\n\r\n")
    lines = [ln if not ln.startswith(b"Content-Length:") else b"Content-Length: %d" % (int(ln.split(b":")[1]) + delta)
             for ln in head.split(b"\r\n")]
    return b"\r\n".join(lines) + sep + rest


def _with_content_length(member: bytes, delta: int) -> bytes:
    """The gzip member with its WARC Content-Length changed by ``delta`` (recompressed)."""
    return gzip.compress(_lying(gzip.decompress(member), delta))


@pytest.mark.parametrize("delta", [1 << 20, 700, -40])
def test_wrong_content_length_in_a_gzip_member_costs_nothing_after_it(tmp_path, delta):
    path = tmp_path / "len.warc.gz"
    offsets = write_warc(path)
    spans = dict(members(path))
    data = path.read_bytes()
    start = offsets[3]
    path.write_bytes(data[:start] + _with_content_length(data[start:spans[start]], delta) + data[spans[start]:])
    rows = read(path)
    assert len(rows) == N_PAGES and kept_pages(rows) == list(range(N_PAGES))  # 22 of 22, none swallowed
    lying = next(r for r in rows if r["url"].endswith("/3"))
    assert lying["meta"]["length_mismatch"].startswith(f"declared {int(lying['meta']['length_mismatch'].split()[1])}")
    assert lying["text"] == text_of(3) and sum("length_mismatch" in r["meta"] for r in rows) == 1
    strict = read(path, length_mismatch="skip")
    assert kept_pages(strict) == [i for i in range(N_PAGES) if i != 3]
    assert [reason for reason, _ in skips(strict)] == ["read:bad_length"]


@pytest.mark.parametrize("delta", [1 << 20, 300, -25])
def test_wrong_content_length_in_an_uncompressed_warc_resyncs_at_the_next_header(tmp_path, delta):
    path = tmp_path / "plain.warc"
    offsets = write_warc(path, gz=False)
    data = path.read_bytes()
    start, end = offsets[5], offsets[6]
    path.write_bytes(data[:start] + _lying(data[start:end], delta) + data[end:])
    rows = read(path)
    assert len(rows) == N_PAGES and kept_pages(rows) == list(range(N_PAGES))
    assert all(r["text"] == text_of(int(r["url"].rsplit("/", 1)[1])) for r in rows)
    assert [r["url"].rsplit("/", 1)[1] for r in rows if "length_mismatch" in r["meta"]] == ["5"]


# cc_net's WET test sample is shaped like this: LF line endings, Content-Length counting characters, and
# two records sharing a WARC-Record-ID and a WARC-Refers-To.
CC_NET_LIKE = """WARC/1.0
WARC-Type: warcinfo
WARC-Date: 2019-03-27T06:10:48Z
WARC-Record-ID: <urn:uuid:info>
Content-Type: application/warc-fields
Content-Length: 44

isPartOf: CC-MAIN-2019-13
publisher: test

WARC/1.0
WARC-Type: conversion
WARC-Target-URI: http://sample_english.com
WARC-Date: 2019-03-18T00:00:00Z
WARC-Record-ID: <urn:uuid:same>
WARC-Refers-To: <urn:uuid:resp-1>
Content-Type: text/plain
Content-Length: 95

Famous Quotes
Facts are stubborn things, but statistics are more pliable.
Truth isn't.

WARC/1.0
WARC-Type: conversion
WARC-Target-URI: http://sample_chinese.zh
WARC-Date: 2019-03-18T00:00:01Z
WARC-Record-ID: <urn:uuid:same>
WARC-Refers-To: <urn:uuid:resp-1>
Content-Type: text/plain
Content-Length: 30

馬克·吐溫名言
不要放棄你的幻想。 當它們消失後，您可能仍然存在，但您已經不復存在。
小說必須堅持可能。 真理不是。

WARC/1.0
WARC-Type: conversion
WARC-Target-URI: http://sample_russian.ru
WARC-Date: 2019-03-18T00:00:02Z
WARC-Record-ID: <urn:uuid:ru>
WARC-Refers-To: <urn:uuid:resp-3>
Content-Type: text/plain
Content-Length: 60

Цитаты знаменитого Марка Твена
Не расставайся со своими иллюзиями.


"""


def test_bare_lf_wet_with_character_lengths_reads_every_record(tmp_path):
    path = tmp_path / "sample.warc.wet"
    path.write_text(CC_NET_LIKE, encoding="utf-8")
    for on_error in ("skip", "raise"):
        rows = read(path, kind="wet", on_error=on_error)
        assert [r["url"] for r in rows] == ["http://sample_english.com", "http://sample_chinese.zh",
                                            "http://sample_russian.ru"]
        assert [r["removed_by"] for r in rows] == [None, None, None]
    assert rows[1]["text"] == ("馬克·吐溫名言\n不要放棄你的幻想。 當它們消失後，您可能仍然存在，但您已經不復存在。\n"
                               "小說必須堅持可能。 真理不是。")
    assert rows[2]["text"] == "Цитаты знаменитого Марка Твена\nНе расставайся со своими иллюзиями."
    assert len({r["id"] for r in rows}) == 3  # the repeated WARC-Record-ID is disambiguated, and says so
    assert rows[1]["meta"]["id_disambiguated"] == "repeated WARC-Record-ID"
    assert rows[0]["meta"]["page_id"] == rows[1]["meta"]["page_id"] == "<urn:uuid:resp-1>"
    gz = tmp_path / "sample.warc.wet.gz"  # the same, gzipped as one member
    gz.write_bytes(gzip.compress(CC_NET_LIKE.encode()))
    assert [r["text"] for r in read(gz, kind="wet")] == [r["text"] for r in rows]


def test_warc_018_with_bare_lf_http_headers_is_html(tmp_path):
    """ClueWeb22-style records: WARC/0.18, HTTP headers ending in bare LF."""
    records = []
    for i in range(3):
        http = (b"HTTP/1.1 200 OK\nContent-Type: text/html; charset=utf-8\nServer: test\n\n") + html_of(i)
        head = (f"WARC/0.18\r\nWARC-Type: response\r\nWARC-Target-URI: https://de.example.org/seite/{i}\r\n"
                f"WARC-Record-ID: <urn:uuid:cw-{i}>\r\nContent-Type: application/http; msgtype=response\r\n"
                f"Content-Length: {len(http)}\r\n\r\n").encode()
        records.append(head + http + b"\r\n\r\n")
    path = tmp_path / "clueweb.warc.gz"
    path.write_bytes(b"".join(gzip.compress(r) for r in records))
    rows = read(path)
    assert [r["removed_by"] for r in rows] == [None, None, None]
    assert [r["text"] for r in rows] == [text_of(i) for i in range(3)]
    assert rows[0]["meta"]["content_type"] == "text/html" and rows[0]["meta"]["charset"] == "utf-8"


def _jsonl_gz(path, n_members, lines_per_member):
    with open(path, "wb") as fh:
        for m in range(n_members):
            body = "".join(json.dumps({"id": f"d{m}-{k}", "text": f"Dokument {m}-{k}: Grüße, ça va?"}) + "\n"
                           for k in range(lines_per_member))
            fh.write(gzip.compress(body.encode()))


def test_jsonl_gzip_member_failing_its_crc_is_dropped_and_counted(tmp_path):
    path = tmp_path / "docs.jsonl.gz"
    _jsonl_gz(path, 3, 40)
    spans = members(path)
    data = bytearray(path.read_bytes())
    start, end = spans[1]
    data[end - 8] ^= 0xFF  # the member's CRC32 no longer matches what it decodes to
    path.write_bytes(bytes(data))
    opts = JsonlOptions(source="docs", fields=FieldMap(id_field="id"), on_error="skip")
    rows = list(read_jsonl_file(str(path), path.name, path.stat().st_size, opts))
    kept = [r for r in rows if r["removed_by"] is None]
    dropped = [r for r in rows if r["removed_by"] is not None]
    assert len(rows) == 120 and len(kept) == 80 and len(dropped) == 40  # in = kept + removed
    assert {r["meta"]["orig_id"].split("-")[0] for r in kept} == {"d0", "d2"}
    assert {r["removed_by"] for r in dropped} == {"read:corrupt_gzip"}
    assert dropped[0]["meta"]["where"] == f"lines 41-80 (gzip member at byte {start})"
    assert all(r["text"].startswith("Dokument") for r in kept)


def test_jsonl_garbled_single_member_keeps_nothing_garbled(tmp_path):
    path = tmp_path / "one.jsonl.gz"
    _jsonl_gz(path, 1, 300)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10  # one flipped bit in the deflate stream
    path.write_bytes(bytes(data))
    opts = JsonlOptions(source="docs", fields=FieldMap(id_field="id"), on_error="skip")
    rows = list(read_jsonl_file(str(path), path.name, path.stat().st_size, opts))
    kept = [r for r in rows if r["removed_by"] is None]
    assert kept == []
    assert {r["removed_by"] for r in rows} <= {"read:corrupt_gzip"} and len(rows) >= 1


@pytest.mark.parametrize("tail", [False, True])
def test_damaged_crawl_through_the_pipeline_balances_and_keeps_every_intact_page(spark, tmp_path, caplog, tail):
    """With `tail`, a decontaminate stage runs in the Arrow write task, which also counts the read notes."""
    from conftest import write_config
    from tokenmill.pipeline import load_pipeline, run

    path = tmp_path / "crawl" / "CC-MAIN-00000.warc.gz"
    path.parent.mkdir()
    offsets = write_warc(path)
    spans = dict(members(path))
    data = bytearray(path.read_bytes())
    bad, lying = offsets[7], offsets[3]
    data[bad + 200:bad + 208] = b"\xff" * 8
    data = bytes(data[:lying]) + _with_content_length(bytes(data[lying:spans[lying]]), 1 << 20) + bytes(data[spans[lying]:])
    path.write_bytes(data)
    config = {"output": str(tmp_path / "out"),
              "sources": [{"name": "cc", "format": "warc", "paths": str(tmp_path / "crawl" / "*.warc.gz")}]}
    if tail:
        (tmp_path / "items.jsonl").write_text(json.dumps({"q": "an item no page of this crawl quotes at all, "
                                                                "thirteen words or more of it"}) + "\n")
        config["stages"] = ["read", {"stage": "decontaminate", "max_docs_per_ngram": 0, "benchmarks": [
            {"name": "b", "path": str(tmp_path / "items.jsonl"), "fields": ["q"]}]}, "write"]
    with caplog.at_level("INFO", logger="tokenmill"):
        result = run(spark, load_pipeline(str(write_config(tmp_path / "c.yaml", config))))
    assert ("decontaminate run in the write task" in caplog.text) == tail
    read_stage = result.manifest["stages"][0]
    assert (read_stage["rows_in"], read_stage["rows_out"], read_stage["removed"]) == (22, 21, {"corrupt_gzip": 1})
    assert result.manifest["output"]["read_notes"] == {"length_mismatch": {"cc": 1}}
    kept = spark.read.parquet(str(tmp_path / "out" / "data")).select("url", "text").collect()  # small: 21 rows
    assert sorted((int(r["url"].rsplit("/", 1)[1]), r["text"]) for r in kept) == [
        (i, text_of(i)) for i in range(N_PAGES) if i != 7]

"""Remote Parquet (hub or HTTP) is copied by Spark tasks into the work folder and read natively: the rows
and ids equal a local read, instruction Parquet maps the same, and a second read fetches nothing."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import TypeAdapter

from tokenmill.catalog import load_stages
from tokenmill.io.sources import Source, read_source

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture()
def server(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    gets: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            gets.append(self.path)
            super().do_GET()

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}", gets
    httpd.shutdown()


def _rows(spark, tmp_path, src: dict) -> list[dict]:
    load_stages()
    source = TypeAdapter(Source).validate_python(src)
    rows = read_source(spark, source, "sources[0]", str(tmp_path / "work")).collect()  # small: a fixture
    return sorted((r.asDict(recursive=True) for r in rows), key=lambda r: r["id"])


def test_remote_parquet_equals_a_local_read(spark, tmp_path, server):
    root, url, gets = server
    fixture = json.loads((FIXTURES / "fineweb.json").read_text())
    rows = [dict(fixture["rows"][0], id=f"<urn:uuid:{i}>", text=f"document {i}") for i in range(5)]
    (root / "data").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), root / "data" / "000_00000.parquet")
    remote = _rows(spark, tmp_path, {"name": "fw", "format": "parquet", "paths": [f"{url}/data/000_00000.parquet"],
                                     "fields": {"layout": "fineweb"}})
    local = _rows(spark, tmp_path, {"name": "fw", "format": "parquet", "paths": [str(root / "data" / "000_00000.parquet")],
                                    "fields": {"layout": "fineweb"}})
    strip = [{k: v for k, v in r.items() if k != "meta"} for r in remote]
    assert strip == [{k: v for k, v in r.items() if k != "meta"} for r in local]
    assert sorted(r["text"] for r in remote) == [f"document {i}" for i in range(5)]
    fetched = len(gets)
    again = _rows(spark, tmp_path, {"name": "fw", "format": "parquet", "paths": [f"{url}/data/000_00000.parquet"],
                                    "fields": {"layout": "fineweb"}})
    assert again == remote and len(gets) == fetched  # the copy in the work folder is read, nothing fetched


def test_remote_instruction_parquet(spark, tmp_path, server):
    root, url, _ = server
    fixture = json.loads((FIXTURES / "no_robots.json").read_text())
    pq.write_table(pa.Table.from_pylist(fixture["rows"]), root / "train-00000.parquet")
    rows = _rows(spark, tmp_path, {"name": "nr", "format": "parquet", "paths": [f"{url}/train-00000.parquet"],
                                   "instruct": {"for": "sft", "layout": "messages"}})
    assert [[m["role"], m["content"]] for m in rows[0]["messages"]] == fixture["expect"]["first"]["messages"]

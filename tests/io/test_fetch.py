"""Remote reads that survive the internet: retries with backoff, resumed reads, counted failures."""

from __future__ import annotations

import os

import pytest
from tests.io.flaky_http import FlakyServer

from tokenmill.io.fetch import FetchError, ResilientFile, RetryPolicy, take_stats, transient

DATA = os.urandom(300_000)
FAST = RetryPolicy(attempts=4, backoff_s=0.01, max_backoff_s=0.05, timeout_s=1.5)


def _read_all(url: str, policy: RetryPolicy = FAST, block: int = 65536) -> bytes:
    with ResilientFile(url, {"block_size": block}, policy) as f:
        out = bytearray()
        while chunk := f.read(40_000):
            out += chunk
    return bytes(out)


def test_throttling_and_a_cut_connection_are_retried_and_the_read_resumes_at_its_byte():
    server = FlakyServer({"/a.warc.gz": DATA}, {"/a.warc.gz": ["ok", "ok", "503", "reset", "429"]})
    with server.running():
        url = server.url + "/a.warc.gz"
        assert _read_all(url) == DATA
    gets = [(start, action) for method, _, start, action in server.log if method == "GET"]
    # reads of 40,000 bytes over 64 KiB blocks (fsspec reads ahead): the read at byte 120,000 is throttled,
    # cut part way, throttled again, then done; each retry asks for the rest from byte 120,000, never byte 0
    assert gets[:6] == [(0, "ok"), (105536, "ok"), (120000, "503"), (120000, "reset"), (120000, "429"),
                        (120000, "ok")]
    assert all(start is not None and start >= 120000 for start, _ in gets[2:])
    assert [m for m, *_ in server.log].count("HEAD") == 1  # the size is known after the first open
    stats = take_stats(url)
    assert (stats.retries, stats.resumes, stats.restarts, stats.failed) == (3, 3, 0, False)
    assert take_stats(url) is None  # taken once


def test_a_server_without_ranges_is_read_again_from_the_start_and_the_used_bytes_skipped():
    server = FlakyServer({"/b.jsonl": DATA}, {"/b.jsonl": ["reset"]}, ranges=False)
    with server.running():
        url = server.url + "/b.jsonl"
        with ResilientFile(url, {}, FAST) as f:
            head = b""
            while len(head) < 100_000:  # a raw read may return less than asked
                head += f.read(100_000 - len(head))
            assert head == DATA[:100_000]  # the first GET is cut after 150,000 bytes: not reached yet
            rest = f.read()
    assert head + rest == DATA
    stats = take_stats(url)
    assert stats.retries == 1 and stats.restarts == 1


def test_a_stall_longer_than_the_timeout_is_retried():
    server = FlakyServer({"/c": DATA}, {"/c": ["stall"]}, stall_s=3.5)
    with server.running():
        assert _read_all(server.url + "/c") == DATA
    assert take_stats(server.url + "/c").retries == 1


def test_a_file_that_keeps_failing_is_given_up_with_its_place_and_a_missing_one_is_not_retried():
    server = FlakyServer({"/d": DATA}, {"/d": ["ok"] + ["503"] * 10})
    with server.running():
        with pytest.raises(FetchError, match=r"/d: byte 80000: gave up after 4 attempts: .*503") as err:
            _read_all(server.url + "/d")
        assert err.value.offset == 80000  # two reads of 40,000 bytes were served
        assert take_stats(server.url + "/d").failed
        n = len(server.log)
        with pytest.raises(FileNotFoundError):
            _read_all(server.url + "/missing")
        # fsspec's own lookup (HEAD, then GET for servers without HEAD), and no retry of it
        assert {(m, p) for m, p, *_ in server.log[n:]} <= {("HEAD", "/missing"), ("GET", "/missing")}
        assert len(server.log) - n <= 2


def test_what_counts_as_transient():
    import aiohttp

    assert transient(ConnectionResetError())
    assert transient(TimeoutError())
    assert transient(OSError("An error occurred (SlowDown) when calling the GetObject operation"))
    assert not transient(FileNotFoundError("x"))
    assert not transient(PermissionError("x"))
    info = aiohttp.RequestInfo(url="http://x", method="GET", headers={}, real_url="http://x")
    assert transient(aiohttp.ClientResponseError(info, (), status=503))
    assert not transient(aiohttp.ClientResponseError(info, (), status=403))


def test_a_crawl_read_over_a_flaky_server_equals_the_local_read_and_counts_what_it_took(
        spark, sample_dir, tmp_path):
    """Common Crawl's layout (a paths manifest, files over HTTPS) on a bad day: retried files give exactly
    the local read's documents; a file that keeps failing keeps what was read and is one counted skip."""
    import gzip
    import random
    import shutil

    import pyarrow.parquet as pq
    from tests.conftest import write_config
    from tests.io.test_readers import make_warc

    from tokenmill.pipeline import load_pipeline, run

    warcs = tmp_path / "warc"
    shutil.copytree(sample_dir / "warc", warcs)
    names = sorted(p.name for p in warcs.glob("*.warc.gz"))
    bad = "CC-SAMPLE-2024-10-00099.warc.gz"  # 40 pages, ~2 MB compressed: read in several 1 MiB reads
    rng = random.Random(7)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(5000)]
    make_warc(warcs / bad, [(f"https://big.example/{i}", ("<html><body>" + "".join(
        f"<p>{' '.join(rng.choice(words) for _ in range(60))}.</p>" for _ in range(150)) + "</body></html>").encode(),
        "text/html") for i in range(40)])
    files = {f"/crawl/warc/{n}": (warcs / n).read_bytes() for n in [*names, bad]}
    server = FlakyServer(files, {f"/crawl/warc/{names[0]}": ["503", "reset", "429"],
                                 f"/crawl/warc/{names[1]}": ["stall"],
                                 f"/crawl/warc/{bad}": ["ok"] + ["503"] * 100}, stall_s=5.0)
    manifest = tmp_path / "warc.paths.gz"
    manifest.write_bytes(gzip.compress("".join(f"warc/{n}\n" for n in [*names, bad]).encode()))

    def config(name, source):
        return write_config(tmp_path / f"{name}.yaml", {
            "name": name, "output": str(tmp_path / name),
            "sources": [{"name": "cc", "format": "warc", **source}],
            "stages": [{"stage": "read"}, {"stage": "write", "keep_removed": True}]})

    local = run(spark, load_pipeline(str(config("local", {"paths": str(warcs / "*.warc.gz")}))))
    with server.running():
        remote = run(spark, load_pipeline(str(config("remote", {
            "paths_manifest": str(manifest), "manifest_prefix": server.url + "/crawl/",
            "storage_options": {"block_size": 32768},
            "retry": {"attempts": 4, "backoff_s": 0.01, "max_backoff_s": 0.05, "timeout_s": 2.5}}))))

    def rows(name):
        t = pq.read_table(tmp_path / name / "data", columns=["id", "text", "url"]).to_pylist()
        return {r["id"]: (r["text"], bad if r["url"].startswith("https://big.example/") else "") for r in t}

    want, got = rows("local"), rows("remote")
    assert {i: v for i, v in got.items() if v[1] != bad} == {i: v for i, v in want.items() if v[1] != bad}
    partial = {i: v for i, v in got.items() if v[1] == bad}  # what was read before the server gave up
    whole = {i: v for i, v in want.items() if v[1] == bad}
    assert len(whole) == 40 and 0 < len(partial) < 40 and partial.items() <= whole.items()
    removed = pq.read_table(tmp_path / "remote" / "removed").to_pylist()
    failed = [r for r in removed if r["removed_by"] == "read:fetch_failed"]
    assert len(failed) == 1 and dict(failed[0]["meta"])["file"].endswith(bad)
    assert "gave up after 4 attempts" in dict(failed[0]["meta"])["error"]
    fetch = remote.manifest["stage_reports"]["read"]["fetch"]
    by_name = {p.rsplit("/", 1)[-1]: r for p, r in fetch["files"].items()}
    assert (fetch["files_retried"], fetch["failed"]) == (3, 1)
    assert by_name[names[0]]["retries"] == 3 and by_name[names[0]]["failed"] == 0
    assert by_name[names[1]]["retries"] == 1
    assert by_name[bad]["failed"] == 1 and by_name[bad]["retries"] == 3 and by_name[bad]["resumes"] == 3
    assert remote.manifest["inputs"][0]["unknown_sizes"] == 3  # listed by the manifest, never HEAD-ed
    assert local.manifest["stage_reports"]["read"]["fetch"] == {"files_retried": 0, "retries": 0, "resumes": 0,
                                                                 "restarts": 0, "failed": 0, "files": {}}

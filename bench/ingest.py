"""Benchmark: WARC records per second per core for read + HTML extraction.

Four figures over the same generated crawl, each the best of three runs (this machine is shared and
noisy): a plain warcio loop and a plain fastwarc loop (+ the same decoding and extractor, no damage
handling), tokenmill's reader in one process (gzip member by member, CRC-checked, records delimited by
member ends and header lines), and the tokenmill `read` stage in Spark local mode (records/s / cores).
Run with `make bench`; results go to bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from tokenmill.io.html import decode, extract_text  # noqa: E402
from tokenmill.io.warc import WarcOptions, read_warc_file  # noqa: E402
from tokenmill.sample.generate import write_sample  # noqa: E402


def warcio_loop(files: list[str]) -> tuple[int, float]:
    """The baseline: warcio's iterator, payload read, charset decode and the same extractor."""
    from warcio.archiveiterator import ArchiveIterator

    n, start = 0, time.perf_counter()
    for path in files:
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type != "response":
                    continue
                body = record.content_stream().read()
                ctype = record.http_headers.get_header("Content-Type") or ""
                if ctype.startswith("text/html"):
                    html, _, _ = decode(body, None)
                    extract_text(html)
                n += 1
    return n, time.perf_counter() - start


def fastwarc_loop(files: list[str]) -> tuple[int, float]:
    """fastwarc's iterator (what tokenmill's reader used before it handled damaged files), same extraction."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    n, start = 0, time.perf_counter()
    for path in files:
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh, record_types=WarcRecordType.response, parse_http=True):
                body = record.reader.read()
                if (record.http_content_type or "").startswith("text/html"):
                    html, _, _ = decode(body, record.http_charset)
                    extract_text(html)
                n += 1
    return n, time.perf_counter() - start


def best_of(fn, *args, repeat: int = 3) -> tuple[int, float]:
    runs = [fn(*args) for _ in range(repeat)]
    return runs[0][0], min(s for _, s in runs)


def tokenmill_loop(files: list[str]) -> tuple[int, float]:
    opts = WarcOptions(source="bench")
    n, start = 0, time.perf_counter()
    for path in files:
        for _ in read_warc_file(path, os.path.getsize(path), opts):
            n += 1
    return n, time.perf_counter() - start


def tokenmill_spark(folder: str, cores: int) -> tuple[int, float]:
    from tokenmill.io.sources import WarcSource, read_source
    from tokenmill.spark import build_session

    spark = build_session("local", app_name="bench-ingest", search=[ROOT / "conf" / "spark"])
    try:
        src = WarcSource(name="bench", format="warc", paths=[f"{folder}/warc/*.warc.gz"])
        df = read_source(spark, src, "bench", tempfile.mkdtemp())
        df.write.format("noop").mode("overwrite").save()  # warm-up: JVM, Python workers
        best, n = float("inf"), 0
        for _ in range(3):
            start = time.perf_counter()
            n = read_source(spark, src, "bench", tempfile.mkdtemp()).count()
            best = min(best, time.perf_counter() - start)
        return n, best
    finally:
        spark.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "ingest.json"))
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as folder:
        write_sample(folder, n_pages=args.pages)
        files = sorted(glob.glob(f"{folder}/warc/*.warc.gz"))
        size = sum(os.path.getsize(f) for f in files)
        warcio_n, warcio_s = best_of(warcio_loop, files)
        fast_n, fast_s = best_of(fastwarc_loop, files)
        ours_n, ours_s = best_of(tokenmill_loop, files)
        spark_n, spark_s = tokenmill_spark(folder, cores)
    result = {
        "benchmark": "ingest: WARC read + HTML extraction (resiliparse)",
        "pages": args.pages, "files": len(files), "bytes": size, "cores": cores,
        "machine": platform.platform(), "python": sys.version.split()[0],
        "warcio_loop": {"records": warcio_n, "seconds": round(warcio_s, 3),
                        "records_per_s_per_core": round(warcio_n / warcio_s, 1)},
        "fastwarc_loop": {"records": fast_n, "seconds": round(fast_s, 3),
                          "records_per_s_per_core": round(fast_n / fast_s, 1)},
        "tokenmill_reader_one_process": {"records": ours_n, "seconds": round(ours_s, 3),
                                         "records_per_s_per_core": round(ours_n / ours_s, 1)},
        "tokenmill_spark_local": {"records": spark_n, "seconds": round(spark_s, 3), "cores": cores,
                                  "records_per_s_per_core": round(spark_n / spark_s / cores, 1)},
    }
    result["speedup_per_core_vs_warcio"] = round(
        result["tokenmill_reader_one_process"]["records_per_s_per_core"]
        / result["warcio_loop"]["records_per_s_per_core"], 2)
    result["tokenmill_vs_fastwarc_loop"] = round(
        result["tokenmill_reader_one_process"]["records_per_s_per_core"]
        / result["fastwarc_loop"]["records_per_s_per_core"], 2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

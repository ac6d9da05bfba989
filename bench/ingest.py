"""Benchmark: WARC records per second per core for read + HTML extraction.

Figures over the same generated crawl, each the best of three rounds, the rounds interleaved (this
machine is shared and noisy: a slow minute hits every contender alike): a plain warcio loop and a plain
fastwarc loop (+ the same decoding and extractor, no damage handling) in one process; the warcio loop on
every core (one process per core, the files dealt out: what "per core" means when a job uses the whole
machine, as Spark does); tokenmill's reader in one process (gzip member by member, CRC-checked, records
delimited by member ends and header lines); the tokenmill `read` stage in Spark local mode, warm
(records/s / cores); and, as a user runs it, the whole `tokenmill pipeline` process (read -> write
Parquet), cold. Run with `make bench`; results go to bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "bench"))

from coldrun import cold_pipeline  # noqa: E402
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


def on_every_core(fn, files: list[str], cores: int) -> tuple[int, float]:
    """``fn`` over the files dealt out to one process per core, all at once: (records, wall seconds)."""
    with get_context("fork").Pool(cores) as pool:
        start = time.perf_counter()
        parts = pool.map(fn, [files[i::cores] for i in range(cores)])
        return sum(n for n, _ in parts), time.perf_counter() - start


def tokenmill_loop(files: list[str]) -> tuple[int, float]:
    opts = WarcOptions(source="bench")
    n, start = 0, time.perf_counter()
    for path in files:
        for _ in read_warc_file(path, os.path.getsize(path), opts):
            n += 1
    return n, time.perf_counter() - start


class SparkRead:
    """The `read` stage in Spark local mode: one session, warmed once (JVM, Python workers), then timed."""

    def __init__(self, folder: str):
        from tokenmill.io.sources import WarcSource, read_source
        from tokenmill.spark import build_session

        self.spark = build_session("local", app_name="bench-ingest", search=[ROOT / "conf" / "spark"])
        self.src = WarcSource(name="bench", format="warc", paths=[f"{folder}/warc/*.warc.gz"])
        self.read = read_source
        self.read(self.spark, self.src, "bench", tempfile.mkdtemp()).write.format("noop").mode("overwrite").save()

    def __call__(self) -> tuple[int, float]:
        start = time.perf_counter()
        n = self.read(self.spark, self.src, "bench", tempfile.mkdtemp()).count()
        return n, time.perf_counter() - start


def rate(n: int, seconds: float, cores: int = 1) -> dict:
    return {"records": n, "seconds": round(seconds, 3), "records_per_s_per_core": round(n / seconds / cores, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "ingest.json"))
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as folder:
        write_sample(folder, n_pages=args.pages)
        files = sorted(glob.glob(f"{folder}/warc/*.warc.gz"))
        size = sum(os.path.getsize(f) for f in files)
        spark = SparkRead(folder)
        contenders = {"warcio_loop": lambda: warcio_loop(files),
                      "warcio_loop_every_core": lambda: on_every_core(warcio_loop, files, cores),
                      "fastwarc_loop": lambda: fastwarc_loop(files),
                      "tokenmill_reader_one_process": lambda: tokenmill_loop(files),
                      "tokenmill_spark_local": spark}
        best: dict[str, tuple[int, float]] = {}
        for _ in range(args.rounds):
            for name, fn in contenders.items():
                n, seconds = fn()
                if name not in best or seconds < best[name][1]:
                    best[name] = (n, seconds)
        spark.spark.stop()
        work = tempfile.mkdtemp(prefix="tokenmill-ingest-")
        cold = cold_pipeline({"name": "bench-ingest", "output": os.path.join(work, "out"),
                              "work_dir": os.path.join(work, "work"),
                              "sources": [{"name": "bench", "format": "warc", "paths": f"{folder}/warc/*.warc.gz"}],
                              "stages": ["read", "write"]}, work)
        started = time.perf_counter()  # the warcio loop as a whole process too (one core)
        subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); "
                        f"import ingest; ingest.warcio_loop({files!r})"], check=True)
        warcio_cold = time.perf_counter() - started
    per_core = {"warcio_loop_every_core": cores, "tokenmill_spark_local": cores}
    result = {
        "benchmark": "ingest: WARC read + HTML extraction (resiliparse)",
        "pages": args.pages, "files": len(files), "bytes": size, "cores": cores,
        "machine": platform.platform(), "python": sys.version.split()[0],
        **{name: rate(n, s, per_core.get(name, 1)) for name, (n, s) in best.items()},
        "tokenmill_pipeline_cold": {**cold, "records_per_s_per_core": round(best["tokenmill_spark_local"][0]
                                                                            / cold["seconds"] / cores, 1),
                                    "what": "the whole process, read + write Parquet, cold"},
        "warcio_loop_cold": {**rate(best["warcio_loop"][0], warcio_cold), "what": "the whole process, one core"},
    }

    def ratio(a: str, b: str) -> float:
        return round(result[a]["records_per_s_per_core"] / result[b]["records_per_s_per_core"], 2)

    result["reader_vs_warcio_one_process"] = ratio("tokenmill_reader_one_process", "warcio_loop")
    result["reader_vs_fastwarc_one_process"] = ratio("tokenmill_reader_one_process", "fastwarc_loop")
    result["spark_vs_warcio_one_process"] = ratio("tokenmill_spark_local", "warcio_loop")
    result["spark_vs_warcio_every_core"] = ratio("tokenmill_spark_local", "warcio_loop_every_core")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark: exact dedup, documents per second per core, and what `nfkc: true` costs and finds.

Corpus: generated documents of 100-600 words (Parquet); 10% are copies of an earlier document with the case,
spacing, punctuation and digits changed (found by the Spark-native normalisation), 5% copies written in
fullwidth forms with a NO-BREAK SPACE (found only with NFKC).
Timed (best of --repeat runs), input Parquet -> output written as Parquet, Spark local[*] warmed first:
- `exact_dedup` (Spark-native key: lower case, punctuation/symbols, digits, whitespace; one keyed shuffle);
- `exact_dedup` with `nfkc: true` (NFKC in an Arrow UDF over the text column, then the same key);
- a one-process Python baseline: NFKC + the same normalisation with `re` + blake2b per text, a dict of keys.
Results: bench/results/exact_dedup.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

WORDS = np.array(["".join(chr(97 + (i // 26 ** k) % 26) for k in range(4)) for i in range(20000)], dtype=object)
FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in "abcdefghijklmnopqrstuvwxyz0123456789"}


def _text(rng: np.random.Generator) -> str:
    words = WORDS[rng.integers(0, len(WORDS), int(rng.integers(100, 600)))].tolist()
    return ". ".join(" ".join(words[i:i + 12]).capitalize() for i in range(0, len(words), 12)) + f" {rng.integers(1000)}."


def write_corpus(n: int, path: str, seed: int = 5, chunk: int = 20000) -> dict:
    """n documents in Parquet under `path`; how many copies of each kind were planted."""
    rng = np.random.default_rng(seed)
    originals: list[str] = []
    planted = {"format_copies": 0, "fullwidth_copies": 0}
    os.makedirs(path, exist_ok=True)
    for part, lo in enumerate(range(0, n, chunk)):
        ids, texts = [], []
        for i in range(lo, min(n, lo + chunk)):
            r = rng.random()
            if originals and r < 0.10:
                base = originals[int(rng.integers(len(originals)))]
                text = "  " + re.sub(r"\d", "7", base.upper().replace(".", " !"))  # case, punctuation, digits
                planted["format_copies"] += 1
            elif originals and r < 0.15:
                base = originals[int(rng.integers(len(originals)))]
                text = "".join(FULLWIDTH.get(c, c) for c in base.lower()).replace(" ", "\u00a0")
                planted["fullwidth_copies"] += 1
            else:
                text = _text(rng)
                originals.append(text)
            ids.append(f"d{i:07d}")
            texts.append(text)
        pq.write_table(pa.table({"id": ids, "text": texts, "source": ["gen"] * len(ids)}),
                       os.path.join(path, f"part-{part:03d}.parquet"), row_group_size=2000)
    return planted


def tokenmill_run(spark, path: str, work: str, nfkc: bool, cores: int, n: int) -> dict:
    from pyspark.sql import functions as F

    from tokenmill.dedup.exact_stage import ExactDedupParams, exact_dedup
    from tokenmill.pipeline.stage import StageContext

    df = spark.read.parquet(path).withColumn("removed_by", F.lit(None).cast("string"))
    ctx = StageContext(spark, [], "bench", os.path.join(work, "w"))
    out_path = os.path.join(work, f"out_{nfkc}")
    start = time.perf_counter()
    exact_dedup(ctx, df, ExactDedupParams(stage="exact_dedup", nfkc=nfkc)).write.mode("overwrite").parquet(out_path)
    seconds = time.perf_counter() - start
    t = pq.read_table(out_path, columns=["removed_by"])
    return {"seconds": round(seconds, 2), "docs_per_s_per_core": round(n / seconds / cores, 1),
            "removed": t.num_rows - t.column("removed_by").null_count}


def python_run(path: str, n: int) -> dict:
    punct = re.compile(r"[^\w\s]+|_+")
    digit = re.compile(r"\d")
    space = re.compile(r"\s+")
    seen: set[bytes] = set()
    removed = 0
    start = time.perf_counter()
    for f in sorted(Path(path).glob("*.parquet")):
        for batch in pq.ParquetFile(f).iter_batches(batch_size=2000, columns=["text"]):
            for text in batch.column(0).to_pylist():
                t = space.sub(" ", digit.sub("0", punct.sub(" ", unicodedata.normalize("NFKC", text).lower()))).strip()
                key = hashlib.blake2b(t.encode(), digest_size=8).digest()
                removed += key in seen
                seen.add(key)
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "docs_per_s": round(n / seconds, 1), "removed": removed}


def best(run, repeat: int) -> dict:
    """The fastest of `repeat` runs (the first one after writing the corpus pays for the page cache)."""
    return min((run() for _ in range(repeat)), key=lambda r: r["seconds"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "exact_dedup.json"))
    args = ap.parse_args()
    from tokenmill.spark import build_session

    spark = build_session("local", app_name="bench-exact-dedup", search=[ROOT / "conf" / "spark"])
    cores = spark.sparkContext.defaultParallelism
    work = tempfile.mkdtemp(prefix="tm-exact-")
    try:
        warm = os.path.join(work, "warm")
        write_corpus(2000, warm)
        tokenmill_run(spark, warm, work, True, cores, 2000)
        tokenmill_run(spark, warm, work, False, cores, 2000)
        data = os.path.join(work, "corpus")
        planted = write_corpus(args.docs, data)
        results = {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                               "cpu_count": os.cpu_count(), "spark_cores": cores},
                   "docs": args.docs, "planted": planted,
                   "repeats": args.repeat,
                   "exact_dedup": best(lambda: tokenmill_run(spark, data, work, False, cores, args.docs), args.repeat),
                   "exact_dedup_nfkc": best(lambda: tokenmill_run(spark, data, work, True, cores, args.docs),
                                            args.repeat),
                   "python_one_process_nfkc": python_run(data, args.docs)}
        results["nfkc_cost"] = round(results["exact_dedup_nfkc"]["seconds"] / results["exact_dedup"]["seconds"], 2)
        sys.path.insert(0, str(ROOT / "bench"))
        from coldrun import cold_pipeline

        cold_dir = os.path.join(work, "cold")
        os.makedirs(cold_dir)
        results["tokenmill_pipeline_cold"] = cold_pipeline({
            "name": "bench-exact", "output": os.path.join(cold_dir, "out"), "work_dir": os.path.join(cold_dir, "work"),
            "sources": [{"name": "gen", "format": "parquet", "paths": data, "fields": {"id_field": "id"}}],
            "stages": ["read", {"stage": "exact_dedup", "nfkc": True}, "write"]}, cold_dir)
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
        print(json.dumps(results, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        spark.stop()


if __name__ == "__main__":
    main()

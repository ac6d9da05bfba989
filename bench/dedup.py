"""Benchmark: MinHash near-dedup, documents per second per core, peak memory and precision/recall, side by
side with Spark MLlib's MinHashLSH (the GPT-3 approach), datasketch.MinHashLSH in one Python process and
DataTrove's four-stage MinHash dedup (its default config: word 5-grams, 14 buckets x 8 hashes, 64-bit).

Corpus (per size, written to Parquet in chunks so 1M documents never sit in memory as Python strings):
documents of 200-5,000 words (log-normal, mean about 600) from a 20,000-word letter vocabulary; 20% are
near-duplicates of an earlier original (about 1% of words replaced; known groups).
Timed, input Parquet -> output written:
- tokenmill: `minhash_dedup` (signatures, LSH star edges, verification, connected components, survivors,
  report incl. its sampled precision/recall estimate) through Spark local[*], output written as Parquet.
- Spark MLlib: RegexTokenizer + NGram(5) + HashingTF + MinHashLSH(10 tables) + approxSimilarityJoin at
  distance 0.2, the pairs collected (no clustering: that would only add to its time).
- datasketch: MinHash of the same normalised word 5-grams + MinHashLSH(threshold 0.8, 112 permutations),
  one process, query-then-insert (a document joins the cluster of its first hit).
- DataTrove: signatures, buckets, clusters, filter with LocalPipelineExecutor on every core, kept and
  removed documents written as JSONL (cluster ids kept for scoring).
Precision/recall: document pairs in the same cluster against the known groups.
Peak memory: resident set size sampled every 0.1 s (psutil): Spark's JVM (driver and executor in local
mode) and the sum over its Python workers; the Python process for datasketch; DataTrove's worker processes.
Results: bench/results/dedup.json.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from tokenmill.dedup.minhash import normalised_words  # noqa: E402

VOCAB = np.array(["".join(chr(97 + (i // 26 ** k) % 26) for k in range(4)) for i in range(20000)], dtype=object)


def _original(seed: int, g: int) -> np.ndarray:
    """Word indices of original document g (regenerated from its seed: originals are never stored)."""
    rng = np.random.default_rng([seed, g])
    length = int(min(5000, max(200, rng.lognormal(0, 0.7) * 470)))
    return rng.integers(0, len(VOCAB), length)


def write_corpus(n: int, path: str, files: int, seed: int = 3, chunk: int = 20000) -> tuple[list[str], list[int], int]:
    """Write n generated documents to `files` Parquet files under `path`; (ids, groups, words)."""
    rng = np.random.default_rng(seed)
    ids, groups = [], []
    originals = 0
    words = 0
    per_file = -(-n // files)
    os.makedirs(path, exist_ok=True)
    for f in range(files):
        writer = None
        for lo in range(f * per_file, min(n, (f + 1) * per_file), chunk):
            texts = []
            for i in range(lo, min(n, (f + 1) * per_file, lo + chunk)):
                if originals and rng.random() < 0.2:
                    g = int(rng.integers(originals))
                    idx = _original(seed, g)
                    edits = rng.choice(len(idx), max(1, len(idx) // 100), replace=False)
                    idx[edits] = rng.integers(0, len(VOCAB), len(edits))
                else:
                    g = originals
                    originals += 1
                    idx = _original(seed, g)
                ids.append(f"d{i:07d}")
                groups.append(g)
                words += len(idx)
                texts.append(" ".join(VOCAB[idx].tolist()))
            table = pa.table({"id": ids[lo:lo + len(texts)], "text": texts, "source": ["gen"] * len(texts)})
            writer = writer or pq.ParquetWriter(os.path.join(path, f"part-{f:03d}.parquet"), table.schema)
            writer.write_table(table, row_group_size=2000)
        if writer:
            writer.close()
    return ids, groups, words


def pair_scores(ids: list[str], clusters: dict[str, object], groups: list[int]) -> dict:
    """Pair precision/recall of predicted clusters against the known groups."""

    def pairs(labels) -> set[tuple[str, str]]:
        by: dict[object, list[str]] = defaultdict(list)
        for k, v in labels:
            by[v].append(k)
        out = set()
        for members in by.values():
            if len(members) > 1:
                members.sort()
                out.update((a, b) for i, a in enumerate(members) for b in members[i + 1:])
        return out

    truth = pairs(zip(ids, groups, strict=True))
    found = pairs(clusters.items())
    hit = len(truth & found)
    return {"true_pairs": len(truth), "found_pairs": len(found),
            "precision": round(hit / max(1, len(found)), 4), "recall": round(hit / max(1, len(truth)), 4)}


class PeakRSS:
    """Peak resident memory (MB) of named process groups, sampled every 0.1 s in a thread."""

    def __init__(self, groups: dict[str, object]) -> None:
        self.groups = groups  # name -> callable returning a list of psutil.Process
        self.peak = dict.fromkeys(groups, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, procs in self.groups.items():
                total = 0
                for p in procs():
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak[name] = max(self.peak[name], total / 2 ** 20)
            self._stop.wait(0.1)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def result(self) -> dict[str, float]:
        return {f"peak_{k}_mb": round(v) for k, v in self.peak.items()}


def iter_texts(path: str):
    for f in sorted(glob.glob(os.path.join(path, "*.parquet"))):
        for batch in pq.ParquetFile(f).iter_batches(batch_size=2000, columns=["id", "text"]):
            yield from zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True)


def tokenmill_run(spark, path: str, work: str, ids, groups, cores: int) -> dict:
    from pyspark.sql import functions as F

    from tokenmill.dedup.minhash_stage import MinHashDedupParams, minhash_dedup
    from tokenmill.pipeline.stage import StageContext

    jvm = psutil.Process(spark.sparkContext._gateway.proc.pid)
    df = spark.read.parquet(path).withColumn("removed_by", F.lit(None).cast("string"))
    ctx = StageContext(spark, [], "bench", os.path.join(work, "w"))
    out_path = os.path.join(work, "tokenmill_out")
    with PeakRSS({"jvm": lambda: [jvm], "python_workers": lambda: jvm.children(recursive=True)}) as mem:
        start = time.perf_counter()
        out = minhash_dedup(ctx, df, MinHashDedupParams(stage="minhash_dedup", threshold=0.8))
        out.write.mode("overwrite").parquet(out_path)
        seconds = time.perf_counter() - start
    t = pq.read_table(out_path, columns=["id", "dup_cluster", "removed_by"])
    report = ctx.reported("minhash_dedup")
    n = len(ids)
    return {"seconds": round(seconds, 2), "docs_per_s_per_core": round(n / seconds / cores, 1),
            "removed": t.num_rows - t.column("removed_by").null_count,
            **pair_scores(ids, dict(zip(t.column("id").to_pylist(), t.column("dup_cluster").to_pylist(), strict=True)),
                          groups),
            "candidate_pairs": report["candidate_pairs"], "after_verification": report["pairs_after_verification"],
            "cc_rounds": report["connected_components"]["rounds"], "estimate": report.get("estimate"),
            **mem.result()}


def mllib_run(spark, path: str, ids: list[str], groups: list[int], cores: int) -> dict:
    """Spark MLlib's MinHashLSH.approxSimilarityJoin on hashed word 5-grams (the GPT-3 approach, 10 tables)."""
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import HashingTF, MinHashLSH, NGram, RegexTokenizer
    from pyspark.sql import functions as F

    jvm = psutil.Process(spark.sparkContext._gateway.proc.pid)
    df = spark.read.parquet(path).select("id", "text")
    model_pipe = Pipeline(stages=[
        RegexTokenizer(inputCol="text", outputCol="words", pattern="\\W+", toLowercase=True),
        NGram(n=5, inputCol="words", outputCol="grams"),
        HashingTF(inputCol="grams", outputCol="features", numFeatures=1 << 20, binary=True),
        MinHashLSH(inputCol="features", outputCol="hashes", numHashTables=10, seed=1)])
    with PeakRSS({"jvm": lambda: [jvm]}) as mem:
        start = time.perf_counter()
        model = model_pipe.fit(df)
        feats = model.transform(df).where(F.size("grams") > 0).cache()
        pairs = (model.stages[-1].approxSimilarityJoin(feats, feats, 0.2, distCol="d")
                 .where(F.col("datasetA.id") < F.col("datasetB.id"))
                 .select(F.col("datasetA.id").alias("a"), F.col("datasetB.id").alias("b")).collect())  # the pairs
        seconds = time.perf_counter() - start
    feats.unpersist()
    group = dict(zip(ids, groups, strict=True))
    truth = pair_scores(ids, {}, groups)["true_pairs"]
    found = {(r["a"], r["b"]) for r in pairs}
    hit = sum(1 for a, b in found if group[a] == group[b])
    return {"seconds": round(seconds, 2), "docs_per_s_per_core": round(len(ids) / seconds / cores, 1),
            "found_pairs": len(found), "precision": round(hit / max(1, len(found)), 4),
            "recall_of_pairs": round(hit / max(1, truth), 4), "note": "pairs only (no clustering); 10 hash tables",
            **mem.result()}


def datasketch_clusters(path: str) -> dict[str, str]:
    """datasketch's MinHash of the same normalised word 5-grams + MinHashLSH(0.8, 112 permutations), one
    process, query-then-insert: each document's cluster (the cluster of its first hit, else itself)."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=0.8, num_perm=112)
    clusters: dict[str, str] = {}
    for i, t in iter_texts(path):
        w = normalised_words(t)
        m = MinHash(num_perm=112)
        m.update_batch([" ".join(w[k:k + 5]).encode("utf-8") for k in range(len(w) - 4)])
        hits = lsh.query(m)
        clusters[i] = clusters[min(hits)] if hits else i
        lsh.insert(i, m)
    return clusters


def datasketch_run(path: str, ids: list[str], groups: list[int]) -> dict:
    me = psutil.Process()
    base = me.memory_info().rss / 2 ** 20
    with PeakRSS({"process": lambda: [me]}) as mem:
        start = time.perf_counter()
        clusters = datasketch_clusters(path)
        seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "docs_per_s_per_core": round(len(ids) / seconds, 1),
            **pair_scores(ids, clusters, groups), "peak_process_growth_mb": round(mem.peak["process"] - base)}


def datatrove_run(path: str, work: str, ids: list[str], groups: list[int], cores: int, files: int, jvm_pid: int) -> dict:
    """DataTrove's MinHash dedup, its four stages with the default MinhashConfig, on every core."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import JsonlWriter
    from loguru import logger

    logger.remove()  # its per-task logging would flood the bench output (logs still go to logging_dir)
    base = os.path.join(work, "datatrove")
    cfg = MinhashConfig()
    me = psutil.Process()

    def run(name: str, pipeline: list, tasks: int) -> None:
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=min(cores, tasks),
                              logging_dir=os.path.join(base, "logs", name)).run()

    def workers() -> list:  # its worker processes: the bench's children other than Spark's JVM and its workers
        try:
            spark_side = {jvm_pid, *(p.pid for p in psutil.Process(jvm_pid).children(recursive=True))}
        except psutil.Error:
            spark_side = {jvm_pid}
        return [p for p in me.children(recursive=True) if p.pid not in spark_side]

    with PeakRSS({"workers": workers}) as mem:
        start = time.perf_counter()
        run("signatures", [ParquetReader(path, id_key="id"), MinhashDedupSignature(f"{base}/sigs", config=cfg)], files)
        run("buckets", [MinhashDedupBuckets(f"{base}/sigs", f"{base}/buckets", config=cfg)], cfg.num_buckets)
        run("clusters", [MinhashDedupCluster(f"{base}/buckets", f"{base}/remove", config=cfg, save_cluster_id=True)], 1)
        run("filter", [ParquetReader(path, id_key="id"),
                       MinhashDedupFilter(f"{base}/remove", load_cluster_ids=True,
                                          exclusion_writer=JsonlWriter(f"{base}/removed", compression=None)),
                       JsonlWriter(f"{base}/kept", compression=None)], files)
        seconds = time.perf_counter() - start
    clusters: dict[str, object] = {}
    removed = 0
    for folder in ("kept", "removed"):
        for f in glob.glob(f"{base}/{folder}/*.jsonl"):
            with open(f) as fh:
                for line in fh:
                    d = json.loads(line)
                    c = d["metadata"].get("minhash_cluster_id", -1)
                    clusters[d["id"]] = d["id"] if c == -1 else c
                    removed += folder == "removed"
    return {"seconds": round(seconds, 2), "docs_per_s_per_core": round(len(ids) / seconds / cores, 1),
            "removed": removed, **pair_scores(ids, clusters, groups), **mem.result()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="20000,100000,1000000")
    ap.add_argument("--datasketch-max", type=int, default=100000, help="run datasketch up to this size")
    ap.add_argument("--datatrove-max", type=int, default=100000, help="run DataTrove up to this size")
    ap.add_argument("--mllib-max", type=int, default=100000, help="run Spark MLlib up to this size")
    ap.add_argument("--out", default="bench/results/dedup.json")
    args = ap.parse_args()

    from tokenmill.spark import build_session

    spark = build_session("local", app_name="bench-dedup")
    cores = spark.sparkContext.defaultParallelism
    results: dict = {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                                 "cpu_count": os.cpu_count(), "spark_cores": cores}, "runs": []}
    # Warm-up, untimed: the JVM's JIT and the Python workers, as in a long-running job.
    warm = tempfile.mkdtemp(prefix="bench-dedup-warm-")
    warm_ids, warm_groups, _ = write_corpus(2000, os.path.join(warm, "docs"), 2 * cores)
    tokenmill_run(spark, os.path.join(warm, "docs"), warm, warm_ids, warm_groups, cores)
    shutil.rmtree(warm, ignore_errors=True)
    for n in [int(x) for x in args.sizes.split(",")]:
        work = tempfile.mkdtemp(prefix="bench-dedup-")
        path = os.path.join(work, "docs")
        files = max(2 * cores, n // 25000)
        t0 = time.perf_counter()
        ids, groups, words = write_corpus(n, path, files)
        print(f"{n} documents generated in {time.perf_counter() - t0:.0f} s", flush=True)
        size = sum(os.path.getsize(f) for f in glob.glob(os.path.join(path, "*.parquet")))
        spark.conf.set("spark.sql.files.maxPartitionBytes", str(max(1 << 20, min(128 << 20, size // (4 * cores)))))
        run = {"docs": n, "words": words, "tokenmill_spark": tokenmill_run(spark, path, work, ids, groups, cores)}
        print(json.dumps(run), flush=True)
        if n <= args.mllib_max:
            run["spark_mllib"] = mllib_run(spark, path, ids, groups, cores)
            print(json.dumps(run["spark_mllib"]), flush=True)
        if n <= args.datatrove_max:
            run["datatrove"] = datatrove_run(path, work, ids, groups, cores, files,
                                            spark.sparkContext._gateway.proc.pid)
            print(json.dumps(run["datatrove"]), flush=True)
        if n <= args.datasketch_max:
            run["datasketch_one_process"] = datasketch_run(path, ids, groups)
            print(json.dumps(run["datasketch_one_process"]), flush=True)
        tm = run["tokenmill_spark"]["seconds"]
        run["speedup"] = {k: round(run[k]["seconds"] / tm, 2) for k in ("spark_mllib", "datatrove") if k in run}
        if "datasketch_one_process" in run:  # per core: one process against the Spark run's cores
            run["speedup"]["datasketch_per_core"] = round(
                run["tokenmill_spark"]["docs_per_s_per_core"] / run["datasketch_one_process"]["docs_per_s_per_core"], 2)
        results["runs"].append(run)
        shutil.rmtree(work, ignore_errors=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    spark.stop()


if __name__ == "__main__":
    main()

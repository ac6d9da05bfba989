"""Benchmark: MinHash near-dedup, documents per second per core, with precision/recall, side by side with
datasketch.MinHashLSH in one Python process and Spark MLlib's MinHashLSH (DataTrove to come).

Corpus: `--docs` generated documents of 200-5,000 words (log-normal, mean about 600) from a 20,000-word
letter vocabulary; 20% are near-duplicates of another document (about 1% of words edited; known groups).
Timed: tokenmill's `minhash_dedup` stage through Spark local[2] (signatures, LSH, verification,
connected components, survivors; output counted) and datasketch (MinHash of the same normalised word
5-grams + MinHashLSH at threshold 0.8, 112 permutations, one process) on the same documents.
Precision/recall: pairs in the same cluster vs the known groups.
Results: bench/results/dedup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from tokenmill.dedup.minhash import normalised_words  # noqa: E402


def make_corpus(n: int, seed: int = 3) -> tuple[list[str], list[str], list[int]]:
    rng = random.Random(seed)
    vocab = ["".join(chr(97 + (i // 26 ** k) % 26) for k in range(4)) for i in range(20000)]
    ids, texts, groups = [], [], []
    originals: list[list[str]] = []
    for i in range(n):
        if originals and rng.random() < 0.2:
            g = rng.randrange(len(originals))
            words = list(originals[g])
            for j in rng.sample(range(len(words)), max(1, len(words) // 100)):
                words[j] = rng.choice(vocab)
        else:
            length = int(min(5000, max(200, rng.lognormvariate(0, 0.7) * 470)))
            words = [rng.choice(vocab) for _ in range(length)]
            originals.append(words)
            g = len(originals) - 1
        ids.append(f"d{i:07d}")
        texts.append(" ".join(words))
        groups.append(g)
    return ids, texts, groups


def pair_scores(ids: list[str], clusters: dict[str, str], groups: list[int]) -> dict:
    """Pair precision/recall of predicted clusters against the known groups."""
    from collections import defaultdict

    def pairs(labels: dict[str, object]) -> set[tuple[str, str]]:
        by: dict[object, list[str]] = defaultdict(list)
        for k, v in labels.items():
            by[v].append(k)
        out = set()
        for members in by.values():
            members.sort()
            out.update((a, b) for i, a in enumerate(members) for b in members[i + 1:])
        return out

    truth = pairs(dict(zip(ids, groups, strict=True)))
    found = pairs(clusters)
    hit = len(truth & found)
    return {"true_pairs": len(truth), "found_pairs": len(found),
            "precision": round(hit / max(1, len(found)), 4), "recall": round(hit / max(1, len(truth)), 4)}


def datasketch_run(ids: list[str], texts: list[str]) -> tuple[float, dict[str, str]]:
    from datasketch import MinHash, MinHashLSH

    start = time.perf_counter()
    lsh = MinHashLSH(threshold=0.8, num_perm=112)
    clusters: dict[str, str] = {}
    for i, t in zip(ids, texts, strict=True):
        w = normalised_words(t)
        m = MinHash(num_perm=112)
        m.update_batch([" ".join(w[k:k + 5]).encode("utf-8") for k in range(len(w) - 4)])
        hits = lsh.query(m)
        clusters[i] = clusters[min(hits)] if hits else i
        lsh.insert(i, m)
    return time.perf_counter() - start, clusters


def mllib_run(spark, path: str, ids: list[str], groups: list[int]) -> dict:
    """Spark MLlib's MinHashLSH.approxSimilarityJoin on hashed word 5-grams (the GPT-3 approach, 10 tables)."""
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import HashingTF, MinHashLSH, NGram, RegexTokenizer
    from pyspark.sql import functions as F

    df = spark.read.parquet(path).select("id", "text")
    model_pipe = Pipeline(stages=[
        RegexTokenizer(inputCol="text", outputCol="words", pattern="\\W+", toLowercase=True),
        NGram(n=5, inputCol="words", outputCol="grams"),
        HashingTF(inputCol="grams", outputCol="features", numFeatures=1 << 20, binary=True),
        MinHashLSH(inputCol="features", outputCol="hashes", numHashTables=10, seed=1)])
    start = time.perf_counter()
    model = model_pipe.fit(df)
    feats = model.transform(df).where(F.size("grams") > 0).cache()
    pairs = (model.stages[-1].approxSimilarityJoin(feats, feats, 0.2, distCol="d")
             .where(F.col("datasetA.id") < F.col("datasetB.id"))
             .select(F.col("datasetA.id").alias("a"), F.col("datasetB.id").alias("b")).collect())  # the pairs
    seconds = time.perf_counter() - start
    feats.unpersist()
    group = dict(zip(ids, groups, strict=True))
    truth = pair_scores(ids, dict(zip(ids, map(str, groups), strict=True)), groups)["true_pairs"]
    found = {(r["a"], r["b"]) for r in pairs}
    hit = sum(1 for a, b in found if group[a] == group[b])
    return {"seconds": round(seconds, 2), "docs_per_s_per_core": round(len(ids) / seconds / spark.sparkContext.defaultParallelism, 1),
            "found_pairs": len(found), "precision": round(hit / max(1, len(found)), 4),
            "recall_of_pairs": round(hit / max(1, truth), 4), "note": "pairs only (no clustering); 10 hash tables"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="20000,100000")
    ap.add_argument("--datasketch-max", type=int, default=20000, help="run datasketch up to this size")
    ap.add_argument("--mllib-max", type=int, default=20000, help="run Spark MLlib up to this size")
    ap.add_argument("--out", default="bench/results/dedup.json")
    args = ap.parse_args()

    from pyspark.sql import functions as F

    from tokenmill.dedup.minhash_stage import MinHashDedupParams, minhash_dedup
    from tokenmill.spark import build_session
    from tokenmill.stage import StageContext

    spark = build_session("local", app_name="bench-dedup")
    cores = spark.sparkContext.defaultParallelism
    results: dict = {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                                 "cpu_count": os.cpu_count(), "spark_cores": cores}, "runs": []}
    for n in [int(x) for x in args.sizes.split(",")]:
        ids, texts, groups = make_corpus(n)
        work = tempfile.mkdtemp(prefix="bench-dedup-")
        path = os.path.join(work, "docs.parquet")
        pq.write_table(pa.table({"id": ids, "text": texts, "source": ["gen"] * n}), path, row_group_size=2000)
        spark.conf.set("spark.sql.files.maxPartitionBytes", str(max(1 << 20, os.path.getsize(path) // (4 * cores))))
        df = spark.read.parquet(path).withColumn("removed_by", F.lit(None).cast("string"))
        ctx = StageContext(spark, SimpleNamespace(sources=[]), "bench", os.path.join(work, "w"))
        start = time.perf_counter()
        out = minhash_dedup(ctx, df, MinHashDedupParams(stage="minhash_dedup", threshold=0.8))
        rows = out.select("id", "dup_cluster", "removed_by").collect()  # the bench's own check, not a job's
        seconds = time.perf_counter() - start
        run = {"docs": n, "words": sum(len(t.split()) for t in texts),
               "tokenmill_spark": {"seconds": round(seconds, 2), "docs_per_s_per_core": round(n / seconds / cores, 1),
                                   "removed": sum(1 for r in rows if r["removed_by"]),
                                   **pair_scores(ids, {r["id"]: r["dup_cluster"] for r in rows}, groups),
                                   "candidate_pairs": ctx.reports["minhash_dedup"]["candidate_pairs"],
                                   "after_verification": ctx.reports["minhash_dedup"]["pairs_after_verification"]}}
        if n <= args.mllib_max:
            run["spark_mllib"] = mllib_run(spark, path, ids, groups)
        if n <= args.datasketch_max:
            ds_s, ds_clusters = datasketch_run(ids, texts)
            run["datasketch_one_process"] = {"seconds": round(ds_s, 2), "docs_per_s_per_core": round(n / ds_s, 1),
                                             **pair_scores(ids, ds_clusters, groups)}
        print(json.dumps(run), flush=True)
        results["runs"].append(run)
    spark.stop()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Benchmark: decontamination, documents per second per core against a 10,000-item benchmark index.

10,000 generated GSM8K-style items (question + worked answer, distinct names and numbers) and 100,000
generated documents of 200-500 words from the sample's English sentences; 1% of the documents quote an
item verbatim inside their text and 0.5% rephrase one with the same numbers. Timed: the matcher in one
process (= one core) on 20,000 documents, and the `decontaminate` stage (flag, with the common-n-gram pass)
through Spark local[2] on all 100,000, output counted. Recall of the planted quotes is reported.
Results: bench/results/decontam.json.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from tokenmill.decontam.benchmarks import BenchmarkSpec, Item  # noqa: E402
from tokenmill.decontam.index import build_index, decide  # noqa: E402
from tokenmill.sample.texts import SENTENCES  # noqa: E402

NAMES = ["Mara", "Tomas", "Aiko", "Lena", "Ravi", "Olu", "Ines", "Piotr", "Sven", "Noor", "Kofi", "Yara"]
GOODS = ["pears", "apples", "pencils", "stamps", "marbles", "books", "tiles", "bricks", "shells", "cards"]
BOXES = ["crates", "boxes", "bags", "baskets", "trays", "shelves"]


def make_items(n: int, rng: random.Random) -> list[dict]:
    items = []
    for i in range(n):
        name, good, box = rng.choice(NAMES), rng.choice(GOODS), rng.choice(BOXES)
        a, b, c = rng.randint(11, 99), rng.randint(11, 99), rng.randint(10, 500)
        q = (f"{name} has {a} {box} of {good} with {b} {good} in each of the {box}. {name} gives away {c} "
             f"{good} on day {i}. How many {good} does {name} have left at the end of day {i}?")
        ans = f"{name} has {a} * {b} = {a * b} {good}. Then {a * b} - {c} = {a * b - c}.\n#### {a * b - c}"
        items.append({"question": q, "answer": ans, "a": a, "b": b, "c": c, "name": name, "good": good, "i": i})
    return items


def make_docs(n: int, items: list[dict], rng: random.Random) -> tuple[list[str], dict[int, tuple[str, int]]]:
    pool = SENTENCES["en"]
    docs, planted = [], {}
    for d in range(n):
        words = rng.randint(200, 500)
        parts, count = [], 0
        while count < words:
            s = rng.choice(pool)
            parts.append(s)
            count += len(s.split())
        r = rng.random()
        if r < 0.01:
            k = rng.randrange(len(items))
            parts.insert(rng.randrange(len(parts) + 1), items[k]["question"] + " " + items[k]["answer"])
            planted[d] = ("verbatim", k)
        elif r < 0.015:
            k = rng.randrange(len(items))
            it = items[k]
            parts.insert(0, f"Homework: {it['name']} got {it['a']} {rng.choice(BOXES)} holding {it['b']} "
                            f"{it['good']} each and handed {it['c']} {it['good']} to friends on day {it['i']}. "
                            f"How many {it['good']} does {it['name']} have left?")
            planted[d] = ("rephrased", k)
        docs.append(" ".join(parts))
    return docs, planted


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--one-process-docs", type=int, default=20_000)
    ap.add_argument("--out", default="bench/results/decontam.json")
    args = ap.parse_args()
    rng = random.Random(5)
    items = make_items(args.items, rng)
    docs, planted = make_docs(args.docs, items, rng)
    work = tempfile.mkdtemp(prefix="tokenmill-bench-decontam-")
    bench_path = os.path.join(work, "items.jsonl")
    with open(bench_path, "w") as handle:
        for it in items:
            handle.write(json.dumps({"question": it["question"], "answer": it["answer"]}) + "\n")
    spec = BenchmarkSpec(name="gen", path=bench_path, fields=["question", "answer"],
                         math={"fields": ["question"], "n": 3, "min_overlap": 0.2, "min_numbers": 2})
    objs = [Item("gen", str(i), it["question"] + "\n" + it["answer"], it["question"]) for i, it in enumerate(items)]
    start = time.perf_counter()
    index = build_index([spec], {"gen": objs}, 13, 8)
    build_s = time.perf_counter() - start
    results: dict = {"docs": len(docs), "items": len(items), "mean_words": round(sum(len(d.split()) for d in docs) / len(docs)),
                     "planted_verbatim": sum(v[0] == "verbatim" for v in planted.values()),
                     "planted_rephrased": sum(v[0] == "rephrased" for v in planted.values()),
                     "index_build_seconds": round(build_s, 3), "index_ngrams": int(len(index.table.keys)),
                     "python": platform.python_version(), "cpu_count": os.cpu_count()}

    n1 = min(args.one_process_docs, len(docs))
    start = time.perf_counter()
    found: dict[int, set[str]] = {}
    for i in range(0, n1, 2000):
        for j, d in enumerate(decide(docs[i:i + 2000], index, "flag", 200, 200, 10)):
            if d:
                found[i + j] = {f"{e['item']}:{e['kind']}" for e in d.entries}
    one_s = time.perf_counter() - start
    sub = {d: v for d, v in planted.items() if d < n1}
    hit = sum(f"{k}:{'ngram' if kind == 'verbatim' else 'numbers'}" in found.get(d, set()) for d, (kind, k) in sub.items())
    false = sum(1 for d in found if d not in planted)
    results["one_process"] = {"docs": n1, "seconds": round(one_s, 3), "docs_per_s_per_core": round(n1 / one_s),
                              "recall_planted": hit / max(len(sub), 1), "flagged_unplanted": false}
    print(json.dumps(results["one_process"]), flush=True)

    from pyspark.sql import functions as F

    from tokenmill.decontam.stage import DecontamParams, decontaminate
    from tokenmill.pipeline.stage import StageContext
    from tokenmill.spark import build_session

    pq.write_table(pa.table({"id": [f"d{i:07d}" for i in range(len(docs))], "text": docs,
                             "source": ["gen"] * len(docs)}), os.path.join(work, "docs.parquet"),
                   row_group_size=5000)
    spark = build_session("local", app_name="bench-decontam")
    cores = spark.sparkContext.defaultParallelism
    df = (spark.read.parquet(os.path.join(work, "docs.parquet"))
          .withColumn("removed_by", F.lit(None).cast("string")))
    ctx = StageContext(spark, [], "bench", os.path.join(work, "w"))
    params = DecontamParams(stage="decontaminate", benchmarks=[{"name": "gen", "path": bench_path,
                            "fields": ["question", "answer"],
                            "math": {"fields": ["question"], "n": 3, "min_overlap": 0.2, "min_numbers": 2}}],
                            action="flag", max_docs_per_ngram=10)
    start = time.perf_counter()
    out = decontaminate(ctx, df, params)
    flagged = out.where(F.size("contaminated_by") > 0).select("id").collect()  # small: the flagged ids
    spark_s = time.perf_counter() - start
    spark.stop()
    ids = {int(r["id"][1:]) for r in flagged}
    results["spark_local"] = {"cores": cores, "seconds": round(spark_s, 3),
                              "docs_per_s": round(len(docs) / spark_s),
                              "docs_per_s_per_core": round(len(docs) / spark_s / cores),
                              "flagged": len(ids), "recall_planted": len(ids & set(planted)) / len(planted),
                              "flagged_unplanted": len(ids - set(planted)),
                              "note": "includes index build, the common-n-gram pass and the flag pass"}
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from coldrun import cold_pipeline

    cold = os.path.join(work, "cold")
    os.makedirs(cold, exist_ok=True)
    results["tokenmill_pipeline_cold"] = cold_pipeline({
        "name": "bench-decontam", "output": os.path.join(cold, "out"), "work_dir": os.path.join(cold, "work"),
        "sources": [{"name": "gen", "format": "parquet", "paths": os.path.join(work, "docs.parquet"),
                     "fields": {"id_field": "id"}}],
        "stages": ["read", {"stage": "decontaminate", **params.model_dump(mode="json", exclude={"stage"},
                                                                          exclude_defaults=True)}, "write"]}, cold)
    print(json.dumps(results, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()

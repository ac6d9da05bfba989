"""Benchmark: heuristic quality signals, documents per second per core, side by side with DataTrove.

20,000 generated web documents (tokenmill.sample.webdocs: 200-5,000 words, mean about 586; prose, lists,
forums, shops, spam, repeated blocks, code). Timed:
- tokenmill, one process (= one core): every signal of every rule set (`compute_signals`, Arrow batches of
  1,000), then the four rule sets' decisions;
- DataTrove, one process: GopherRepetitionFilter, GopherQualityFilter, C4QualityFilter and
  FineWebQualityFilter run one after another on each document (its default configs), on the first
  `--dt-docs` documents (it runs ~35 documents/s, so all 20,000 would take ten minutes; the rate is per
  document either way);
- tokenmill in Spark local[2]: `quality_signals` + the four `quality_filter` stages (with C4's line filter),
  output counted; about four input partitions per core, Python workers warmed by a 1,000-document run:
  stage by stage (each stage's Spark form, a Python node each) and as one fused Python pass (the engine's
  default), side by side, with the same counts.
Results: bench/results/quality.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from tokenmill.quality.signals import SignalSpec, compute_signals  # noqa: E402
from tokenmill.sample.webdocs import generate_docs  # noqa: E402


def one_process(texts: list[str], batch: int = 1000) -> float:
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        compute_signals(texts[i:i + batch], None, SignalSpec())
    return time.perf_counter() - start


def datatrove_one_process(texts: list[str], early_exit: bool) -> tuple[float, int]:
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    filters = [GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter(), FineWebQualityFilter()]
    for f in filters:  # load spaCy's tokenizer outside the timing
        f.filter(Document(text="Warm up. " * 60, id="w"))
    start = time.perf_counter()
    kept = 0
    for i, t in enumerate(texts):
        doc = Document(text=t, id=str(i))
        ok = True
        for f in filters:
            if f.filter(doc) is not True:
                ok = False
                if early_exit:
                    break
        kept += ok
    return time.perf_counter() - start, kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--dt-docs", type=int, default=2000)
    ap.add_argument("--out", default="bench/results/quality.json")
    args = ap.parse_args()

    docs = generate_docs(args.docs, seed=2024)
    texts = [d["text"] for d in docs]
    words = [len(t.split()) for t in texts]
    results: dict = {"docs": len(texts), "mean_words": round(sum(words) / len(words), 1),
                     "min_words": min(words), "max_words": max(words),
                     "machine": {"platform": platform.platform(), "python": platform.python_version(),
                                 "cpu_count": os.cpu_count()}}
    one_process(texts[:200])  # warm up regex caches
    s = one_process(texts)
    results["tokenmill_one_process"] = {"seconds": round(s, 3), "docs_per_s_per_core": round(len(texts) / s, 1),
                                        "what": "all 35 signals (Gopher quality + repetition, FineWeb, C4 flags, NeMo)"}
    print(json.dumps(results["tokenmill_one_process"]), flush=True)
    try:
        n = min(args.dt_docs, len(texts))
        dt_s, dt_kept = datatrove_one_process(texts[:n], early_exit=False)
        results["datatrove_one_process"] = {"docs": n, "seconds": round(dt_s, 3),
                                            "docs_per_s_per_core": round(n / dt_s, 1), "kept": dt_kept,
                                            "what": "GopherRepetition, GopherQuality, C4Quality, FineWebQuality "
                                                    "on every document (all signals, as tokenmill computes)"}
        ee_s, _ = datatrove_one_process(texts[:n], early_exit=True)
        results["datatrove_one_process_early_exit"] = {
            "docs": n, "seconds": round(ee_s, 3), "docs_per_s_per_core": round(n / ee_s, 1),
            "what": "the same filters chained: a document stops at the first filter that drops it"}
        results["speedup_one_process"] = round(results["tokenmill_one_process"]["docs_per_s_per_core"]
                                               / results["datatrove_one_process"]["docs_per_s_per_core"], 1)
        print(json.dumps(results["datatrove_one_process"]), flush=True)
    except ImportError:
        results["datatrove_one_process"] = "datatrove not installed (pip install -e '.[dev]')"

    from pyspark.sql import functions as F

    from tokenmill.pipeline.stage import StageContext
    from tokenmill.quality.config import QualityFilterParams, QualitySignalsParams
    from tokenmill.quality.stage import quality_filter, quality_signals
    from tokenmill.spark import build_session

    work = tempfile.mkdtemp(prefix="bench-quality-")
    pq.write_table(pa.table({"id": [d["id"] for d in docs], "text": texts, "url": [d["url"] for d in docs],
                             "source": ["gen"] * len(docs)}), os.path.join(work, "docs.parquet"),
                   row_group_size=2000)
    pq.write_table(pa.table({"id": [d["id"] for d in docs[:1000]], "text": texts[:1000],
                             "url": [d["url"] for d in docs[:1000]], "source": ["gen"] * 1000}),
                   os.path.join(work, "warmup.parquet"))
    spark = build_session("local", app_name="bench-quality")
    cores = spark.sparkContext.defaultParallelism
    # About four partitions per core, as a crawl read one WARC file per task gives: tasks stay balanced.
    size = os.path.getsize(os.path.join(work, "docs.parquet"))
    spark.conf.set("spark.sql.files.maxPartitionBytes", str(max(1 << 20, size // (4 * cores))))
    ctx = StageContext(spark, [], "bench", os.path.join(work, "w"))

    def pipeline(path: str) -> dict:
        df = spark.read.parquet(path).withColumn("removed_by", F.lit(None).cast("string"))
        out = quality_signals(ctx, df, QualitySignalsParams(stage="quality_signals"))
        for rules in ("gopher_repetition", "gopher_quality", "c4", "fineweb"):
            out = quality_filter(ctx, out, QualityFilterParams(stage="quality_filter", id=rules, rules=rules))
        return {r["removed_by"]: r["count"] for r in out.groupBy("removed_by").count().collect()}  # small

    def fused(path: str) -> dict:
        """The same stages as one Python pass (pipeline/passes.py), as the engine runs them by default."""
        from tokenmill.pipeline.passes import LabeledStep, run_pass
        from tokenmill.pipeline.stage import REGISTRY

        df = spark.read.parquet(path).withColumn("removed_by", F.lit(None).cast("string"))
        entries = [("quality_signals", QualitySignalsParams(stage="quality_signals"))]
        entries += [("quality_filter", QualityFilterParams(stage="quality_filter", id=r, rules=r))
                    for r in ("gopher_repetition", "gopher_quality", "c4", "fineweb")]
        cols, steps = list(df.columns), []
        for name, params in entries:
            label = params.id or name
            step = REGISTRY[name].arrow(ctx.for_stage(label), params, cols)
            steps.append(LabeledStep(label, step))
            cols += [f.name for f in step.fields if f.name not in cols]
        out = run_pass(df, steps)
        return {r["removed_by"]: r["count"] for r in out.groupBy("removed_by").count().collect()}  # small

    pipeline(os.path.join(work, "warmup.parquet"))  # Python workers started and warm, as in a long job
    fused(os.path.join(work, "warmup.parquet"))
    start = time.perf_counter()
    counts = pipeline(os.path.join(work, "docs.parquet"))
    spark_s = time.perf_counter() - start
    start = time.perf_counter()
    fused_counts = fused(os.path.join(work, "docs.parquet"))
    fused_s = time.perf_counter() - start
    assert fused_counts == counts, (fused_counts, counts)
    partitions = spark.read.parquet(os.path.join(work, "docs.parquet")).rdd.getNumPartitions()
    spark.stop()
    results["tokenmill_spark_local"] = {
        "cores": cores, "partitions": partitions, "seconds": round(spark_s, 3), "docs_per_s": round(len(texts) / spark_s),
        "docs_per_s_per_core": round(len(texts) / spark_s / cores, 1), "kept": counts.get(None, 0),
        "what": "quality_signals + gopher_repetition, gopher_quality, c4 (line filter), fineweb quality_filter "
                "stages, read from Parquet, counted; workers warmed by a 1,000-document run first"}
    results["tokenmill_spark_fused"] = {
        "cores": cores, "partitions": partitions, "seconds": round(fused_s, 3), "docs_per_s": round(len(texts) / fused_s),
        "docs_per_s_per_core": round(len(texts) / fused_s / cores, 1), "kept": fused_counts.get(None, 0),
        "what": "the same five stages as one Python pass (one mapInArrow per task: the engine's default), "
                "same counts"}
    sys.path.insert(0, str(ROOT / "bench"))
    from coldrun import cold_pipeline

    cold = os.path.join(work, "cold")
    os.makedirs(cold)
    results["tokenmill_pipeline_cold"] = cold_pipeline({
        "name": "bench-quality", "output": os.path.join(cold, "out"), "work_dir": os.path.join(cold, "work"),
        "sources": [{"name": "gen", "format": "parquet", "paths": os.path.join(work, "docs.parquet"),
                     "fields": {"id_field": "id", "url_field": "url"}}],
        "stages": ["read", "quality_signals"] + [{"stage": "quality_filter", "id": r, "rules": r} for r in
                                                 ("gopher_repetition", "gopher_quality", "c4", "fineweb")]
        + [{"stage": "write", "keep_removed": True}]}, cold)
    if isinstance(results["datatrove_one_process"], dict):
        results["speedup_spark_per_core"] = round(results["tokenmill_spark_local"]["docs_per_s_per_core"]
                                                  / results["datatrove_one_process"]["docs_per_s_per_core"], 1)
        results["speedup_spark_fused_per_core"] = round(results["tokenmill_spark_fused"]["docs_per_s_per_core"]
                                                        / results["datatrove_one_process"]["docs_per_s_per_core"], 1)
    print(json.dumps(results, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()

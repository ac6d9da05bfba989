"""Benchmark: tokens per second per core for counting — real tokenizer vs the calibrated estimate.

One process: `transformers` tokenizer __call__ (the usual way) vs tokenmill's path (the Rust backend's
`encode_batch_fast`, no offsets, no special tokens), and the `bytes / rho` estimate over Arrow. Spark
local mode: the `tokens` stage with each method (tokens/s divided by cores). The tokenizer is a byte-level
BPE trained here (vocab 8k). Run with `make bench`; results go to bench/results/tokens.json.
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
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from tokenmill.sample.texts import SENTENCES  # noqa: E402
from tokenmill.tokens.tokenizer import TokenizerSpec, count_tokens  # noqa: E402
from tokenmill.tokens.train import train_bpe  # noqa: E402


def make_docs(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    pool = [s for lang in sorted(SENTENCES) for s in SENTENCES[lang]]
    return [" ".join(rng.choice(pool) for _ in range(rng.randint(4, 16))) for _ in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--out", default="bench/results/tokens.json")
    args = ap.parse_args()
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    work = tempfile.mkdtemp(prefix="tokenmill-bench-tokens-")
    docs = make_docs(args.docs)
    tok_dir = train_bpe([s for lang in sorted(SENTENCES) for s in SENTENCES[lang]] * 20, f"{work}/tok", 8000)
    spec = TokenizerSpec(tok_dir)
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(tok_dir)
    total_bytes = sum(len(d.encode()) for d in docs)
    results: dict = {"docs": len(docs), "bytes": total_bytes, "python": platform.python_version(),
                     "cpu_count": os.cpu_count()}

    start = time.perf_counter()
    n_hf = sum(len(ids) for i in range(0, len(docs), 1000)
               for ids in hf(docs[i:i + 1000], add_special_tokens=False)["input_ids"])
    t_hf = time.perf_counter() - start
    start = time.perf_counter()
    n_tm = sum(sum(count_tokens(docs[i:i + 1000], spec)) for i in range(0, len(docs), 1000))
    t_tm = time.perf_counter() - start
    assert n_hf == n_tm, (n_hf, n_tm)
    rho = total_bytes / n_tm
    arr = pa.array(docs)
    start = time.perf_counter()
    est = pc.sum(pc.round(pc.divide(pc.cast(pc.binary_length(pc.cast(arr, pa.binary())), pa.float64()), rho))).as_py()
    t_est = time.perf_counter() - start
    results["one_process"] = {
        "tokens": n_tm, "rho_bytes_per_token": rho,
        "transformers_call_tokens_per_s": n_hf / t_hf,
        "tokenmill_encode_batch_fast_tokens_per_s": n_tm / t_tm,
        "speedup_vs_transformers_call": t_hf / t_tm,
        "estimate_tokens_per_s": est / t_est, "estimate_error": abs(est - n_tm) / n_tm,
    }

    from pyspark.sql import functions as F

    from tokenmill.pipeline.stage import StageContext
    from tokenmill.spark import build_session
    from tokenmill.tokens.stage import TokensParams, tokens

    pq.write_table(pa.table({"id": [str(i) for i in range(len(docs))], "text": docs, "source": ["bench"] * len(docs)}),
                   f"{work}/docs.parquet")
    spark = build_session("local", app_name="bench-tokens")
    cores = spark.sparkContext.defaultParallelism
    df = (spark.read.parquet(f"{work}/docs.parquet").repartition(cores * 2)
          .withColumn("removed_by", F.lit(None).cast("string")).cache())
    df.count()
    ctx = StageContext(spark, [SimpleNamespace(name="bench")], "bench", work)
    spark_res = {"cores": cores}
    for method, params in (("tokenizer", TokensParams(stage="tokens", tokenizer=tok_dir)),
                           ("estimate", TokensParams(stage="tokens", method="estimate", rho={"bench": rho}))):
        out = tokens(ctx, df, params)
        out.agg(F.sum("n_tokens")).collect()  # warm-up: workers start, the tokenizer loads
        start = time.perf_counter()
        n = out.agg(F.sum("n_tokens")).collect()[0][0]
        wall = time.perf_counter() - start
        spark_res[method] = {"tokens": n, "seconds": wall, "tokens_per_s_per_core": n / wall / cores}
    spark.stop()
    results["spark_local"] = spark_res
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
    from coldrun import cold_pipeline

    os.makedirs(f"{work}/cold", exist_ok=True)
    results["tokenmill_pipeline_cold"] = cold_pipeline({
        "name": "bench-tokens", "output": f"{work}/cold/out", "work_dir": f"{work}/cold/work",
        "sources": [{"name": "bench", "format": "parquet", "paths": f"{work}/docs.parquet",
                     "fields": {"id_field": "id"}}],
        "stages": ["read", {"stage": "tokens", "tokenizer": tok_dir}, "write"]}, f"{work}/cold")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(results, handle, indent=2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark: mixture build throughput (input documents per second per core) at 20k, 100k and 1M documents.

Three generated sources (60/30/10% of the documents, 50..2,000 tokens each, short texts so the figure is
about selection, shuffling and writing rather than text volume), a temperature-2 plan at 1.5x the unique
tokens, shards of about 1/8 of the budget. The whole `build_mixture` is timed: measuring, planning,
selecting, the global shuffle, writing, reading back and validating. Results: bench/results/mixture.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from tokenmill.config import validate  # noqa: E402
from tokenmill.mixing.build import build_mixture  # noqa: E402
from tokenmill.mixing.config import MixtureConfig  # noqa: E402


def generate(root: str, n: int, seed: int = 3) -> tuple[str, int]:
    rng = np.random.default_rng(seed)
    sizes = {"web": int(n * 0.6), "books": int(n * 0.3), "code": n - int(n * 0.6) - int(n * 0.3)}
    total = 0
    for name, m in sizes.items():
        tokens = rng.integers(50, 2000, m)
        total += int(tokens.sum())
        files = max(1, m // 100_000)
        for f, chunk in enumerate(np.array_split(np.arange(m), files)):
            pq.write_table(pa.table({
                "id": pa.array([f"{name}-{i}" for i in chunk]),
                "text": pa.array([f"{name} document {i} " * 4 for i in chunk]),
                "source": pa.array([name] * len(chunk)),
                "n_tokens": pa.array(tokens[chunk], pa.int64())}), f"{root}/part-{name}-{f}.parquet")
    return root, total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="20000,100000,1000000")
    ap.add_argument("--out", default="bench/results/mixture.json")
    args = ap.parse_args()
    from tokenmill.spark import build_session

    spark = build_session("local", app_name="bench-mixture")
    cores = spark.sparkContext.defaultParallelism
    runs = []
    sizes = [int(x) for x in args.sizes.split(",")]
    for i, n in enumerate([sizes[0], *sizes]):  # the first run warms the JVM and Python workers up; not kept
        work = tempfile.mkdtemp(prefix="tokenmill-bench-mix-")
        os.makedirs(f"{work}/data")
        data, unique = generate(f"{work}/data", n)
        budget = 1.5 * unique
        raw = {"name": f"bench-{n}", "output": f"{work}/mix",
               "plan": {"target": {"total_tokens": budget}, "mode": "explicit_tokens",
                        "mixture": {"rule": "temperature", "temperature": 2}, "seed": 1},
               "build": {"shard_tokens": budget / 8},
               "sources": [{"name": s, "path": data} for s in ("web", "books", "code")]}
        cfg = validate(MixtureConfig, raw, "bench")
        last = (work, raw, n)
        start = time.perf_counter()
        result = build_mixture(spark, cfg, force=True)
        wall = time.perf_counter() - start
        m = result.manifest
        runs.append({"docs": n, "unique_tokens": unique, "planned_tokens": m["planned_tokens"],
                     "realised_tokens": m["realised_tokens"], "rows_written": m["rows"], "shards": m["n_shards"],
                     "methods": {k: v["method"] for k, v in m["sources"].items()},
                     "max_abs_deviation": max(abs(v["deviation"]) for v in m["sources"].values()),
                     "seconds": wall, "docs_per_s_per_core": n / wall / cores,
                     "rows_written_per_s_per_core": m["rows"] / wall / cores})
        if i == 0:
            runs.pop()
            continue
        print(json.dumps(runs[-1]))
    spark.stop()
    from coldrun import cold_command

    work, raw, n = last  # the largest size once more, as a user runs it: a fresh process, cold
    Path(f"{work}/mix.yaml").write_text(json.dumps(raw))
    cold = cold_command(["build_mixture", "--config", f"{work}/mix.yaml", "--force"], work)
    cold.update(docs=n, docs_per_s_per_core=n / cold["seconds"] / cores)
    print(json.dumps(cold))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump({"cores": cores, "runs": runs, "build_mixture_cold": cold}, handle, indent=2)


if __name__ == "__main__":
    main()

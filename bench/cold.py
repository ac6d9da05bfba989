"""Benchmark: a run as users run it, cold: the whole `python -m tokenmill pipeline` process (interpreter,
imports, Spark start, planning, the work, the manifest and report, Spark stop) with only `minhash_dedup`
over generated documents, beside the same work timed warm inside one session, and beside datasketch's
whole process (read Parquet, MinHash + LSH query-then-insert, write the clusters as Parquet).

The cold run's log gives its phases: start (interpreter, imports, CLI: until the job logs its config),
Spark and planning (until the segment starts), the segment (its own "done in" line), and the tail
(manifest, report.html, Spark stop, JVM exit). Corpus: bench/dedup.py's (20% near duplicates).
Each contender runs ``--rounds`` times, interleaved, and keeps its best. Results: bench/results/cold.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "bench"))

from coldrun import cold_pipeline  # noqa: E402

# datasketch's whole process: bench/dedup.py's datasketch loop, then its clusters written as Parquet
DATASKETCH = r"""
import sys
sys.path.insert(0, {bench!r})
import pyarrow as pa, pyarrow.parquet as pq
from dedup import datasketch_clusters
clusters = datasketch_clusters({corpus!r})
pq.write_table(pa.table({{"id": list(clusters), "dup_cluster": list(clusters.values())}}), {out!r})
"""


def cold_tokenmill(config: str, work: str) -> dict:
    """The whole process, timed from outside; its phases from its log (bench/coldrun.py)."""
    return cold_pipeline(config, work)


def warm_tokenmill(config: str) -> dict:
    """The same pipeline twice in one session: the second run's wall time (Spark and the workers warm)."""
    from tokenmill.pipeline import load_pipeline, run
    from tokenmill.spark import build_session

    spark = build_session("local", app_name="bench-cold")
    try:
        run(spark, load_pipeline(config), force=True)
        start = time.time()
        result = run(spark, load_pipeline(config), force=True)
        seconds = time.time() - start
    finally:
        spark.stop()
    return {"seconds": round(seconds, 2), "rows": result.manifest["output"]["rows"]}


def cold_datasketch(corpus: str, work: str) -> dict:
    script = DATASKETCH.format(bench=str(ROOT / "bench"), corpus=corpus, out=os.path.join(work, "datasketch.parquet"))
    started = time.time()
    subprocess.run([sys.executable, "-c", script], check=True)
    return {"seconds": round(time.time() - started, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "tokenmill-bench"))
    ap.add_argument("--skip-datasketch", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="bench/results/cold.json")
    args = ap.parse_args()
    from dedup import write_corpus

    corpus = os.path.join(args.cache, f"dedup-{args.docs}")
    if not os.path.exists(os.path.join(corpus, "_DONE")):
        write_corpus(args.docs, corpus, args.files)
        Path(corpus, "_DONE").write_text("")
    work = tempfile.mkdtemp(prefix="tokenmill-cold-")
    config = os.path.join(work, "dedup.yaml")
    Path(config).write_text(json.dumps({
        "name": "bench-cold", "output": os.path.join(work, "out"), "work_dir": os.path.join(work, "work"),
        "sources": [{"name": "gen", "format": "parquet", "paths": corpus, "fields": {"id_field": "id"}}],
        "stages": ["read", {"stage": "minhash_dedup", "threshold": 0.8}, "write"]}))
    result = {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                          "cpu_count": os.cpu_count()},
              "docs": args.docs, "command": "python -m tokenmill pipeline --config dedup.yaml --force --quiet"}
    # Rounds interleaved, the best of each kept: this machine is shared and its speed drifts by a third
    # within minutes; a slow minute then hits both contenders alike.
    colds, sketches = [], []
    for _ in range(args.rounds):
        colds.append(cold_tokenmill(config, work))
        print("cold", colds[-1], flush=True)
        if not args.skip_datasketch:
            sketches.append(cold_datasketch(corpus, work))
            print("datasketch", sketches[-1], flush=True)
    result["rounds"] = args.rounds
    result["tokenmill_cold"] = {**min(colds, key=lambda r: r["seconds"]), "all": [r["seconds"] for r in colds]}
    result["tokenmill_warm"] = warm_tokenmill(config)
    print("warm", result["tokenmill_warm"], flush=True)
    if sketches:
        result["datasketch_whole_process"] = {"seconds": min(r["seconds"] for r in sketches),
                                              "all": [r["seconds"] for r in sketches]}
        result["cold_vs_datasketch"] = round(result["tokenmill_cold"]["seconds"]
                                             / result["datasketch_whole_process"]["seconds"], 3)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

"""Benchmark: image–caption rows per second per core through the text-only stages, in Spark local[2].

Data: generated rows in LAION-2B-en's published schema (SAMPLE_ID, URL, TEXT, HEIGHT, WIDTH, LICENSE, NSFW,
similarity) plus the joined punsafe / pwatermark scores; captions are 3-20 words drawn from the sample
corpus's vocabulary, a share with HTML entities, URLs, stock-photo boilerplate, all caps or file names, sizes and scores
drawn so that every filter removes some rows, and 3% repeated URLs and captions.
Pipeline: read -> caption_clean -> image_text_filter -> exact_dedup (url) -> exact_dedup (caption) -> write,
after a warm-up run on 2,000 rows (the JVM's start and JIT). Reported: rows/s/core (wall x 2 cores), rows
removed per reason. Results: bench/results/image_text.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "bench"))

from tokenmill.sample.texts import SENTENCES  # noqa: E402

DECOR = [
    lambda c, r: c,
    lambda c, r: c.replace(" and ", " &amp; "),
    lambda c, r: f"{c} https://shop.example.com/p/{r.randint(1, 10**6)}",
    lambda c, r: f"Image of {c[0].lower()}{c[1:]}",
    lambda c, r: f"{c} - Stock Photo",
    lambda c, r: f"{c} | Shutterstock",
    lambda c, r: c.upper(),
    lambda c, r: f"IMG_{r.randint(1000, 9999)}.JPG",
]
WEIGHTS = [60, 6, 6, 6, 6, 4, 6, 6]


def make_rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    vocab = sorted({w.strip(".,;:!?\"'()").lower() for s in SENTENCES["en"] for w in s.split()} - {""})
    rows = []
    for i in range(n):
        if i and rng.random() < 0.03:  # a repeated URL or caption
            prev = dict(rows[rng.randrange(len(rows))])
            prev["SAMPLE_ID"] = i
            if rng.random() < 0.5:
                prev["TEXT"] = prev["TEXT"] + " ."
            else:
                prev["URL"] = f"https://img.example.com/{i}.jpg"
            rows.append(prev)
            continue
        caption = " ".join(rng.choice(vocab) for _ in range(rng.randint(3, 20))).capitalize()
        caption = rng.choices(DECOR, WEIGHTS)[0](caption, rng)
        width, height = rng.choice([(640, 480), (1024, 768), (300, 300), (120, 90), (1500, 300), (800, 1200)])
        rows.append({"SAMPLE_ID": i, "URL": f"https://img.example.com/{i}.jpg", "TEXT": caption,
                     "HEIGHT": height, "WIDTH": width, "LICENSE": "?", "NSFW": "UNLIKELY",
                     "similarity": round(rng.uniform(0.2, 0.42), 4), "punsafe": round(rng.betavariate(1, 12), 4),
                     "pwatermark": round(rng.betavariate(1, 6), 4)})
    return rows


def run_once(spark, rows: list[dict], work: Path, name: str) -> tuple[float, dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import yaml

    from tokenmill.pipeline import load_pipeline, run

    data = work / f"{name}-data"
    data.mkdir(parents=True)
    per = 100_000
    for k in range(0, len(rows), per):
        pq.write_table(pa.Table.from_pylist(rows[k:k + per]), data / f"part-{k // per:05d}.parquet")
    config = {"name": f"bench-image-text-{name}", "output": str(work / f"{name}-out"), "work_dir": str(work / "work"),
              "sources": [{"preset": "laion2b_en", "paths": [str(data)]}],
              "stages": ["read", "caption_clean", "image_text_filter",
                         {"stage": "exact_dedup", "id": "dedup_url", "column": "url", "normalise": False},
                         {"stage": "exact_dedup", "id": "dedup_caption"}, {"stage": "write", "keep_removed": True}]}
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    t = time.perf_counter()
    result = run(spark, load_pipeline(str(path)))
    wall = time.perf_counter() - t
    removed = {s["stage"]: s["removed"] for s in result.manifest["stages"] if s["removed"]}
    return wall, {"rows_out": result.manifest["output"]["rows"], "removed": removed}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "image_text.json"))
    args = p.parse_args()
    from tokenmill.spark import build_session

    work = Path(tempfile.mkdtemp(prefix="bench-image-text-"))
    spark = build_session("local", app_name="bench-image-text")
    try:
        try:
            run_once(spark, make_rows(2_000, seed=1), work, "warmup")
            wall, info = run_once(spark, make_rows(args.rows), work, "run")
        finally:
            spark.stop()
        from coldrun import cold_pipeline

        (work / "cold").mkdir()
        cold = cold_pipeline(str(work / "run.yaml"), str(work / "cold"))  # the command a user types, cold
        cold["rows_per_s_per_core"] = round(args.rows / cold["seconds"] / 2, 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"bench": "image_text", "rows": args.rows, "cores": 2, "wall_s": round(wall, 2),
              "rows_per_s_per_core": round(args.rows / wall / 2, 1), "pipeline_cold": cold, **info,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    print(json.dumps(result, indent=2))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

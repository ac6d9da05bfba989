"""Benchmark: what report.html costs a run, and how it grows with the output.

The report is rendered from a manifest and the written Parquet (pyarrow, at most SAMPLE_ROWS rows per side
read for the histograms), so its time should stay flat as outputs grow. Measured: the render of each
output `make run` writes (when present), and of synthetic outputs of 100k and 1M documents shaped like the
FineWeb-order quality run (every qs_* signal, quality_failed, removed rows by rule) with that run's manifest.
Reported: seconds per render (best of 3), page size, rows in the output. Results: bench/results/report.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from tokenmill.report.html import render  # noqa: E402


def _timed(manifest: dict, folder: str, repeats: int = 3) -> tuple[float, int]:
    best, size = float("inf"), 0
    for _ in range(repeats):
        started = time.perf_counter()
        page = render(manifest, folder)
        best = min(best, time.perf_counter() - started)
        size = len(page)
    return best, size


def synthetic(folder: Path, template: dict, n: int, seed: int = 1) -> dict:
    """An output of ``n`` documents with the template run's signal columns and its removal reasons in the
    template's proportions; the template's manifest with the counts scaled to ``n``."""
    rng = np.random.default_rng(seed)
    signals = [s for s in template["stage_reports"]["quality_signals"]["signals"]]
    removed_share = 1 - template["output"]["rows"] / template["stages"][0]["rows_in"]
    reasons = [(f"{st['stage']}:{r}", c) for st in template["stages"] for r, c in st["removed"].items()]
    total = sum(c for _, c in reasons)
    n_removed = int(n * removed_share)
    for sub, rows in (("data/source=web", n - n_removed), ("removed", n_removed)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        cols = {"id": pa.array([f"{sub[:1]}{i:09d}" for i in range(rows)]),
                "text": pa.array(["Some words of a page."] * rows)}
        for s in signals:
            cols[s] = pa.array(rng.random(rows) * (1000 if "n_" in s or "count" in s else 1.0))
        cols["quality_failed"] = pa.array([[] for _ in range(rows)], pa.list_(pa.string()))
        if sub == "removed":
            picks = rng.choice(len(reasons), size=rows, p=[c / total for _, c in reasons])
            by = np.array([r for r, _ in reasons], dtype=object)[picks]
            for reason in sorted(set(by)):
                mask = by == reason
                part = pa.table({k: v.filter(pa.array(mask)) for k, v in cols.items()})
                dest = folder / "removed" / f"removed_by={reason.replace(':', '%3A')}"
                dest.mkdir(parents=True, exist_ok=True)
                pq.write_table(part, dest / "part-0.parquet")
        else:
            pq.write_table(pa.table(cols), folder / sub / "part-0.parquet")
    scale = n / template["stages"][0]["rows_in"]
    manifest = json.loads(json.dumps(template))
    for st in manifest["stages"]:
        st["rows_in"], st["rows_out"] = int(st["rows_in"] * scale), int(st["rows_out"] * scale)
        st["removed"] = {k: int(v * scale) for k, v in st["removed"].items()}
    manifest["output"]["rows"] = n - n_removed
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--out", default="bench/results/report.json")
    args = parser.parse_args()
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "make_run": {},
                     "synthetic": {}}
    for name in ("sample", "quality_fineweb", "dedup", "classify_sample"):
        folder = ROOT / "out" / name
        if (folder / "manifest.json").exists():
            manifest = json.loads((folder / "manifest.json").read_text())
            seconds, size = _timed(manifest, str(folder))
            results["make_run"][name] = {"rows": manifest["output"]["rows"], "seconds": round(seconds, 3),
                                         "page_bytes": size}
            print(f"out/{name}: {seconds:.2f} s, {size / 1e6:.2f} MB")
    template_path = ROOT / "out" / "quality_fineweb" / "manifest.json"
    if not template_path.exists():
        sys.exit("run `make run` first: the synthetic outputs take the quality run's manifest as their template")
    template = json.loads(template_path.read_text())
    for n in [int(x) for x in args.sizes.split(",")]:
        folder = Path(tempfile.mkdtemp(prefix="tokenmill-report-bench-"))
        try:
            manifest = synthetic(folder, template, n)
            seconds, size = _timed(manifest, str(folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        results["synthetic"][str(n)] = {"seconds": round(seconds, 3), "page_bytes": size}
        print(f"synthetic {n:,} documents: {seconds:.2f} s, {size / 1e6:.2f} MB")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Project one Common Crawl snapshot's cost from bench/pipeline_1m.py's measured per-core rates (docs/COST.md).

The largest measured run gives: each stage's documents in per input page (the crawl mix's survival), each
stage's documents per second per core, the whole fused run's core-seconds per page, bytes written, shuffled
and peak memory. Scaled to `--pages` (CC-MAIN-2024-10: 3.16 billion pages in about 90,000 WARC files), these
give core-hours per stage and for the whole run, the cores for a run of `--hours`, and the storage written.
Printed as the Markdown tables of docs/COST.md; results also in bench/results/cost.json.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def project(measured: dict, pages: float, hours: float, node_cores: int) -> dict:
    """Per-stage figures from the largest run with a staged measurement, the whole run's from the largest
    with a fused one (a size may have only one of them)."""
    runs = measured["runs"].values()
    staged_run = max((r for r in runs if r.get("per_stage")), key=lambda r: r["pages"])
    run = max((r for r in runs if r.get("fused")), key=lambda r: r["pages"])
    n = run["pages"]
    stages = []
    for st in staged_run["per_stage"]:
        docs = pages * st["docs_in"] / staged_run["pages"]
        core_h = docs / st["docs_per_s_per_core"] / 3600 if st["docs_per_s_per_core"] else 0.0
        stages.append({"stage": st["stage"], "docs_in": docs, "docs_per_s_per_core": st["docs_per_s_per_core"],
                       "core_hours": core_h})
    fused = run["fused"]
    whole_core_h = pages * run["fused_core_seconds_per_1k_docs"] / 1000 / 3600
    cores = whole_core_h / hours
    per_page = {k: v / n for k, v in fused["bytes_written"].items()}
    flat = {str(r["pages"]): r["fused_core_seconds_per_1k_docs"] for r in sorted(runs, key=lambda r: r["pages"])
            if r.get("fused")}
    by_size = {str(r["pages"]): {st["stage"]: st["docs_per_s_per_core"] for st in r["per_stage"]}
               for r in sorted(runs, key=lambda r: r["pages"]) if r.get("per_stage")}
    return {"measured_pages": n, "stages_measured_pages": staged_run["pages"], "pages": pages, "hours": hours,
            "stage_rates_by_size": by_size,
            "stages": stages, "fused_core_seconds_per_1k_pages_by_size": flat,
            "staged_core_hours": sum(s["core_hours"] for s in stages), "whole_run_core_hours": whole_core_h,
            "cores_for_run": cores, "nodes_for_run": math.ceil(cores / node_cores), "node_cores": node_cores,
            "kept_docs": pages * fused["rows"] / n,
            "bytes": {"output": per_page["output"] * pages,
                      "shuffle_written": fused["shuffle_bytes"]["written"] / n * pages,
                      "work_after_run": per_page["work"] * pages},
            "peak_memory_bytes": fused["peak_memory_bytes"]}


def _si(x: float) -> str:
    for unit, div in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.2f} {unit}"
    return f"{x:.0f}"


def markdown(p: dict) -> str:
    lines = ["| stage | documents in | docs/s/core (measured) | core-hours |", "|---|---:|---:|---:|"]
    for s in p["stages"]:
        lines.append(f"| {s['stage']} | {_si(s['docs_in'])} | {s['docs_per_s_per_core']:,} | {s['core_hours']:,.0f} |")
    lines.append(f"| **stages one by one** | | | **{p['staged_core_hours']:,.0f}** |")
    lines.append(f"| **whole run (fused)** | {_si(p['pages'])} pages | | **{p['whole_run_core_hours']:,.0f}** |")
    lines += ["", f"- per-stage rates measured at {_si(p['stages_measured_pages'])} pages, the whole run at "
              f"{_si(p['measured_pages'])}; core-seconds per 1,000 pages of the whole run by size measured: "
              + ", ".join(f"{_si(float(k))} pages {v}" for k, v in p["fused_core_seconds_per_1k_pages_by_size"].items()),
              f"- cores for a {p['hours']:.0f}-hour run: {p['cores_for_run']:,.0f} "
              f"({p['nodes_for_run']:,} nodes of {p['node_cores']} cores)",
              f"- documents kept: {_si(p['kept_docs'])}",
              f"- output Parquet written: {_si(p['bytes']['output'])}B; shuffle written: "
              f"{_si(p['bytes']['shuffle_written'])}B; work folder left after the run: {_si(p['bytes']['work_after_run'])}B",
              f"- peak memory per executor slot measured: JVM {_si(p['peak_memory_bytes']['jvm'])}B for 2 cores, "
              f"a Python worker {_si(p['peak_memory_bytes']['python_worker_max'])}B"]
    sizes = list(p.get("stage_rates_by_size", {}))
    if len(sizes) > 1:  # the per-document cost of each stage at every measured size: flat or not
        first, last = sizes[0], sizes[-1]
        lines += ["", "| stage | " + " | ".join(f"docs/s/core at {_si(float(k))} pages" for k in sizes)
                  + f" | {_si(float(last))} / {_si(float(first))} |",
                  "|---|" + "---:|" * (len(sizes) + 1)]
        rates = p["stage_rates_by_size"]
        for stage in rates[last]:
            row = [rates[k].get(stage) for k in sizes]
            ratio = f"{row[-1] / row[0]:.2f}" if row[0] and row[-1] else "-"
            lines.append(f"| {stage} | " + " | ".join(f"{v:,}" if v else "-" for v in row) + f" | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--measured", default=str(ROOT / "bench" / "results" / "pipeline_1m.json"))
    ap.add_argument("--pages", type=float, default=3.16e9)
    ap.add_argument("--hours", type=float, default=24)
    ap.add_argument("--node-cores", type=int, default=32)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "cost.json"))
    args = ap.parse_args()
    p = project(json.loads(Path(args.measured).read_text()), args.pages, args.hours, args.node_cores)
    Path(args.out).write_text(json.dumps(p, indent=1) + "\n")
    print(markdown(p))


if __name__ == "__main__":
    main()

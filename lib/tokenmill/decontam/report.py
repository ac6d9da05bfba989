"""The decontamination report: per benchmark, which test items were found, in how many documents, from
which sources, with matched spans for a sample; written to the manifest and as `decontamination.csv`."""

from __future__ import annotations

import csv
import io

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ..io.hadoopfs import HadoopFS
from ..schema import CONTAMINATION, ID, SOURCE, URL

SAMPLE_SPANS = 5


def contamination_report(kept: DataFrame, removed: DataFrame | None) -> dict:
    """Aggregates over the contaminated rows only (kept and removed)."""
    cols = [ID, SOURCE, URL, "contamination"]
    frames = [kept.select(*cols)]
    if removed is not None and "contamination" in removed.columns:
        frames.append(removed.select(*cols))
    rows = frames[0] if len(frames) == 1 else frames[0].unionByName(frames[1])
    # The contaminated rows only, kept in memory for the two aggregations (one scan of the output, not two).
    hits = rows.where(F.size("contamination") > 0).select(ID, SOURCE, URL, F.explode("contamination").alias("e")).cache()
    per_item = (hits.groupBy(F.col("e.benchmark").alias("benchmark"), F.col("e.item").alias("item"), SOURCE)
                .agg(F.countDistinct(ID).alias("docs"), F.sort_array(F.collect_set("e.kind")).alias("kinds"),
                     F.min(F.struct(URL, "e.excerpt")).alias("example"))
                .orderBy("benchmark", "item", SOURCE).collect())  # small: one row per found item and source
    per_bench = (hits.groupBy(F.col("e.benchmark").alias("benchmark"))
                 .agg(F.countDistinct("e.item").alias("items"), F.countDistinct(ID).alias("docs"),
                      F.sort_array(F.collect_set(SOURCE)).alias("sources"))
                 .collect())  # small: one row per benchmark
    hits.unpersist()
    benchmarks = {r["benchmark"]: {"items_found": r["items"], "documents": r["docs"], "sources": list(r["sources"]),
                                   "items": [], "sample_spans": []} for r in per_bench}
    table = []
    for r in per_item:
        entry = benchmarks[r["benchmark"]]
        entry["items"].append({"item": r["item"], "source": r[SOURCE], "docs": r["docs"], "kinds": list(r["kinds"])})
        if len(entry["sample_spans"]) < SAMPLE_SPANS:
            entry["sample_spans"].append({"item": r["item"], "source": r[SOURCE], "url": r["example"][URL],
                                          "span": r["example"]["excerpt"]})
        table.append({"benchmark": r["benchmark"], "item": r["item"], "source": r[SOURCE], "docs": r["docs"],
                      "kinds": "+".join(r["kinds"]), "example_url": r["example"][URL] or "",
                      "example_span": r["example"]["excerpt"] or ""})
    return {"benchmarks": dict(sorted(benchmarks.items())), "table": table}


def write_csv(spark: SparkSession, folder: str, report: dict) -> dict:
    """Write `decontamination.csv` into the output folder; the manifest keeps the per-benchmark summary."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, ["benchmark", "item", "source", "docs", "kinds", "example_url", "example_span"])
    writer.writeheader()
    writer.writerows(report["table"])
    HadoopFS(spark, folder).write_text(f"{folder}/decontamination.csv", buf.getvalue())
    return {"benchmarks": report["benchmarks"], "csv": "decontamination.csv"}


def summarize_contamination(out) -> dict:
    """The manifest's `output.decontamination`; the per-item table goes to `decontamination.csv`."""
    if CONTAMINATION not in out.kept.columns:
        return {}
    return {"decontamination": write_csv(out.spark, out.folder, contamination_report(out.kept, out.removed))}


def describe_contamination(manifest: dict, label: str) -> list[str]:
    """The console table: items found per benchmark, in how many documents, from which sources."""
    report = manifest["output"].get("decontamination", {"benchmarks": {}})
    lines = ["", f"{'benchmark':<16}{'items found':>12}{'documents':>11}  sources"]
    for name, b in report["benchmarks"].items():
        lines.append(f"{name:<16}{b['items_found']:>12,}{b['documents']:>11,}  {', '.join(b['sources'])}")
    if not report["benchmarks"]:
        lines.append("no benchmark item found")
    stage = manifest.get("stage_reports", {}).get(label, {})
    limit = stage.get("max_docs_per_ngram")
    for name, c in sorted(stage.get("common", {}).items()):
        if c["viral_items"]:
            lines.append(f"{name}: {len(c['viral_items'])} viral item(s), most of their n-grams in more than "
                         f"{limit} documents: flagged ({', '.join(v['item'] for v in c['viral_items'][:5])})")
        if c["ignored_common_ngrams"]:
            lines.append(f"{name}: {c['ignored_common_ngrams']} stock-phrase n-gram(s) of {c['items_partly_common']} "
                         f"item(s) ignored (in more than {limit} documents, a small part of each item)")
    lines.append(f"report   {manifest['output']['path']}/decontamination.csv")
    return lines

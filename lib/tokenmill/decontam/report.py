"""The decontamination report: per benchmark, which test items were found, in how many documents, from
which sources, with matched spans for a sample; written to the manifest and as `decontamination.csv`."""

from __future__ import annotations

import csv
import io
import json

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
    return _assemble([(r["benchmark"], r["item"], r[SOURCE], r["docs"], list(r["kinds"]), r["example"][URL],
                       r["example"]["excerpt"]) for r in per_item],
                     {r["benchmark"]: (r["items"], r["docs"], list(r["sources"])) for r in per_bench})


def _assemble(per_item: list[tuple], per_bench: dict[str, tuple]) -> dict:
    """The report from (benchmark, item, source, docs, kinds, example url, example excerpt) per found item and
    source, in that order, and (items found, documents, sources) per benchmark."""
    benchmarks = {name: {"items_found": items, "documents": docs, "sources": sources, "items": [], "sample_spans": []}
                  for name, (items, docs, sources) in per_bench.items()}
    table = []
    for bench, item, source, docs, kinds, url, excerpt in per_item:
        entry = benchmarks[bench]
        entry["items"].append({"item": item, "source": source, "docs": docs, "kinds": kinds})
        if len(entry["sample_spans"]) < SAMPLE_SPANS:
            entry["sample_spans"].append({"item": item, "source": source, "url": url, "span": excerpt})
        table.append({"benchmark": bench, "item": item, "source": source, "docs": docs, "kinds": "+".join(kinds),
                      "example_url": url or "", "example_span": excerpt or ""})
    return {"benchmarks": dict(sorted(benchmarks.items())), "table": table}


def _spark_order(value):
    """A sort key ordering strings and nulls as Spark does in ascending order (nulls first)."""
    return (value is not None, value or "")


def add_to_report(acc: dict | None, table, kept: bool) -> dict | None:
    """The contamination report's aggregates over one written table: per found (benchmark, item, source) the
    documents, kinds and least (url, excerpt); per benchmark the documents, items and sources."""
    import pyarrow.compute as pc

    if CONTAMINATION not in table.column_names or table.num_rows == 0:
        return acc
    hit = pc.fill_null(pc.greater(pc.list_value_length(table.column(CONTAMINATION)), 0), False)
    if not pc.any(hit).as_py():
        return acc
    acc = acc if acc is not None else {"items": {}, "benchmarks": {}}
    rows = table.select([SOURCE, URL, CONTAMINATION]).filter(hit).to_pylist()
    for row in rows:
        src, url = row[SOURCE], row[URL]
        seen_items, seen_bench = set(), set()
        for e in row[CONTAMINATION]:
            key = json.dumps([e["benchmark"], e["item"], src])
            got = acc["items"].setdefault(key, [0, [], None])
            if key not in seen_items:  # documents, not entries: a document may match one item twice
                seen_items.add(key)
                got[0] += 1
            if e["kind"] not in got[1]:
                got[1].append(e["kind"])
            example = [url, e["excerpt"]]
            if got[2] is None or [_spark_order(v) for v in example] < [_spark_order(v) for v in got[2]]:
                got[2] = example
            bench = acc["benchmarks"].setdefault(e["benchmark"], [0, [], []])
            if e["benchmark"] not in seen_bench:
                seen_bench.add(e["benchmark"])
                bench[0] += 1
            if e["item"] not in bench[1]:
                bench[1].append(e["item"])
            if src not in bench[2]:
                bench[2].append(src)
    return acc


def merge_reports(accs: list, spark: SparkSession, folder: str) -> dict:
    """`summarize_contamination` from the write tasks' `add_to_report` accumulators."""
    items: dict = {}
    benches: dict = {}
    for acc in accs:
        if not acc:
            continue
        for key, (docs, kinds, example) in acc["items"].items():
            got = items.setdefault(key, [0, set(), None])
            got[0] += docs
            got[1].update(kinds)
            if got[2] is None or [_spark_order(v) for v in example] < [_spark_order(v) for v in got[2]]:
                got[2] = example
        for name, (docs, found, sources) in acc["benchmarks"].items():
            got = benches.setdefault(name, [0, set(), set()])
            got[0] += docs
            got[1].update(found)
            got[2].update(sources)
    per_item = sorted(((*json.loads(key), docs, sorted(kinds - {None}), *example)
                       for key, (docs, kinds, example) in items.items()),
                      key=lambda r: [_spark_order(v) for v in r[:3]])
    # like Spark's countDistinct and collect_set, nulls are not counted
    report = _assemble(per_item, {name: (len(found - {None}), docs, sorted(sources - {None}))
                                  for name, (docs, found, sources) in benches.items()})
    return {"decontamination": write_csv(spark, folder, report)}


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

"""Write a tagged DataFrame once: kept rows to `data/`, removed rows to `removed/`, atomically.

The frame is written a single time partitioned by `removed_by` (so kept files never store that column),
into a temporary folder that is renamed into place only on success, with `_SUCCESS` and `manifest.json`.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import unquote

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ..errors import InputError, OutputError
from ..schema import ID, LANG, LANG_SCORE, REMOVED_BY, SOURCE, URL
from .hadoopfs import HadoopFS, qualify
from .outputs import is_tokenmill_output

NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
# meta keys a reader sets on a kept document it had to repair (see io/warc.py): counted per source.
READ_NOTES = ("length_mismatch", "id_disambiguated", "decode_errors")


def write_split(df: DataFrame, dest: str, partition_by: list[str], keep_removed: bool,
                max_rows_per_file: int = 0, compression: str = "zstd") -> dict:
    """Write ``df`` under ``dest`` (a temporary folder) and return the counts read back from it."""
    spark = df.sparkSession
    dest = qualify(dest)
    missing = [c for c in partition_by if c not in df.columns]
    if missing:
        raise ValueError(f"write: partition_by column(s) {', '.join(missing)} not in the data "
                         f"(columns: {', '.join(df.columns)})")
    if not keep_removed:
        # Removed rows keep their identity and reason (the audit trail) but not their payload.
        light = {ID, SOURCE, URL, REMOVED_BY, LANG, LANG_SCORE, "contaminated_by", "contamination",
                 "quality_failed", "blocked_by", "dup_of", "dup_cluster", *partition_by}
        df = df.select(*[
            c if c in light else F.when(F.col(REMOVED_BY).isNull(), F.col(c)).alias(c) for c in df.columns
        ])
    writer = df.write.mode("overwrite").option("compression", compression)
    if max_rows_per_file:
        writer = writer.option("maxRecordsPerFile", max_rows_per_file)
    staging = f"{dest}/_all"
    writer.partitionBy(REMOVED_BY, *partition_by).parquet(staging)

    fs = HadoopFS(spark, dest)
    fs.mkdirs(f"{dest}/removed")
    for name in fs.list_dirs(staging):
        value = unquote(name.split("=", 1)[1])
        if value == NULL_PARTITION:
            fs.rename(f"{staging}/{name}", f"{dest}/data")
        else:
            fs.rename(f"{staging}/{name}", f"{dest}/removed/{name}")
    fs.delete(staging)
    if not fs.exists(f"{dest}/data"):  # nothing kept: still a readable, empty dataset
        kept_schema = df.drop(REMOVED_BY).schema  # partition columns stay, as plain columns
        spark.createDataFrame([], kept_schema).write.parquet(f"{dest}/data")
    return count_written(spark, dest)


def count_written(spark: SparkSession, dest: str) -> dict:
    """Rows kept per source and removed per (reason, source), read back from the written Parquet."""
    kept = spark.read.parquet(f"{dest}/data")
    notes = [F.sum(F.col("meta").getItem(k).isNotNull().cast("long")).alias(k) for k in READ_NOTES
             if "meta" in kept.columns]
    rows = kept.groupBy(SOURCE).agg(F.count("*").alias("n"), *notes).collect()  # small: one row per source
    by_source = {r[SOURCE]: r["n"] for r in rows}
    read_notes = {k: {r[SOURCE]: r[k] for r in rows if r[k]} for k in READ_NOTES if notes}
    removed: dict[str, dict[str, int]] = {}
    if HadoopFS(spark, dest).list_dirs(f"{dest}/removed"):
        rows = (spark.read.parquet(f"{dest}/removed").groupBy(REMOVED_BY, SOURCE)
                .agg(F.count("*").alias("n")).collect())  # small: one row per reason and source
        for r in rows:
            removed.setdefault(r[REMOVED_BY], {})[r[SOURCE]] = r["n"]
    counts = {"kept": sum(by_source.values()), "kept_by_source": dict(sorted(by_source.items())),
              "removed": {k: dict(sorted(v.items())) for k, v in sorted(removed.items())}}
    if any(read_notes.values()):  # kept documents a reader repaired: counted, never silent
        counts["read_notes"] = {k: v for k, v in read_notes.items() if v}
    if "n_tokens" in kept.columns:
        from ..tokens.count import token_totals

        counts["tokens_by_source"] = token_totals(kept)
    if LANG in kept.columns:
        from ..langid.report import language_totals

        counts["languages"] = {"kept": language_totals(kept)}
        if removed:
            removed_rows = spark.read.parquet(f"{dest}/removed")
            if LANG in removed_rows.columns:
                counts["languages"]["removed"] = language_totals(removed_rows)
    if "quality_failed" in kept.columns or any(c in kept.columns for c in ("c4_lines_removed", "rw_lines_removed")):
        from ..quality.report import quality_report

        counts["quality"] = quality_report(kept, spark.read.parquet(f"{dest}/removed") if removed else None)
    if "contamination" in kept.columns:
        from ..dedup.report import contamination_report

        removed_rows = spark.read.parquet(f"{dest}/removed") if removed else None
        counts["decontamination"] = contamination_report(kept, removed_rows)
    return counts


def check_unique_ids(spark: SparkSession, dest: str, shown_as: str, examples: int = 3) -> None:
    """Fail if an id appears twice among the written rows (kept and removed): ids are unique in every
    output. Reads only the id column back, one aggregation; the error names ids and where they come from."""
    fs = HadoopFS(spark, dest)
    paths = [f"{dest}/data"] + ([f"{dest}/removed"] if fs.list_dirs(f"{dest}/removed") else [])
    meta = F.col("meta")
    frames = [df.select(ID, SOURCE, meta.getItem("file").alias("file"),
                        F.coalesce(meta.getItem("where"), meta.getItem("line"), meta.getItem("warc_offset")).alias("at"))
              for df in (spark.read.parquet(p) for p in paths) if "meta" in df.columns]
    if not frames:
        return
    ids = frames[0]
    for other in frames[1:]:
        ids = ids.unionByName(other)
    dups = ids.groupBy(ID).agg(F.count("*").alias("n"), F.first(SOURCE).alias("source"),
                               F.collect_list(F.concat_ws(" ", F.regexp_replace("file", "^file://", ""), "at")).alias("where")).where(F.col("n") > 1)
    found = dups.limit(examples).collect()  # small: a few examples
    if not found:
        return
    total = dups.count()
    shown = "; ".join(f"{r[ID]} ({r['source']}) x{r['n']}: {' | '.join(r['where'][:2])}" for r in found)
    raise InputError(shown_as, "ids", f"{total} id(s) appear more than once (e.g. {shown}). Ids must be unique: give "
                     "the source an `id_field` whose values are unique, or none (ids then come from file and line)")


def new_temp(dest: str) -> str:
    """A fresh temporary sibling of ``dest``; renamed onto ``dest`` only when complete."""
    dest = qualify(dest).rstrip("/")
    parent, _, name = dest.rpartition("/")
    return f"{parent}/.{name}.tmp-{uuid.uuid4().hex[:12]}"


def commit(spark: SparkSession, temp: str, dest: str, manifest: dict) -> None:
    """Write the manifest and `_SUCCESS` into ``temp``, then swap it into place of ``dest``."""
    fs = HadoopFS(spark, dest)
    fs.write_text(f"{temp}/manifest.json", json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n")
    fs.write_text(f"{temp}/_SUCCESS", "")
    dest = qualify(dest)
    old = None
    if fs.exists(dest) and fs.list_names(dest) and not is_tokenmill_output(spark, dest):
        fs.delete(temp)  # last line of defence: only a tokenmill output is ever moved aside and deleted
        raise OutputError(f"{dest}: the folder exists and is not a tokenmill output; refusing to replace it")
    if fs.exists(dest):
        old = f"{new_temp(dest)}-old"
        fs.rename(dest, old)
    fs.rename(temp, dest)
    if old:
        fs.delete(old)


def read_manifest(spark: SparkSession, dest: str) -> dict | None:
    """The manifest of a completed output (None if absent or incomplete)."""
    fs = HadoopFS(spark, dest)
    if not (fs.exists(f"{dest}/_SUCCESS") and fs.exists(f"{dest}/manifest.json")):
        return None
    try:
        return json.loads(fs.read_text(f"{dest}/manifest.json"))
    except ValueError:
        return None

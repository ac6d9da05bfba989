"""Write a tagged DataFrame once: kept rows to `data/`, removed rows to `removed/`.

The frame is written a single time partitioned by `removed_by` (so kept files never store that column),
into a folder the caller then commits (pipeline/commit.py). Removed rows keep their identity, reason and
the audit columns the stages declare; nothing here knows any stage.
"""

from __future__ import annotations

from urllib.parse import unquote

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ..errors import InputError
from ..schema import ID, META, REMOVED_BY, SOURCE, TEXT, URL
from .hadoopfs import HadoopFS, qualify

NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
# What identifies a removed row and why it went: always kept, whatever the stages declare.
IDENTITY = (ID, SOURCE, URL, REMOVED_BY)


def write_split(df: DataFrame, dest: str, partition_by: list[str], keep_removed: bool,
                max_rows_per_file: int = 0, compression: str = "zstd", audit: set[str] | frozenset = frozenset()
                ) -> dict:
    """Write ``df`` under ``dest`` (a temporary folder) and return the counts read back from it.

    Without ``keep_removed``, removed rows keep only their identity, the ``audit`` columns and the
    partition columns; their other columns are written as nulls."""
    spark = df.sparkSession
    dest = qualify(dest)
    missing = [c for c in partition_by if c not in df.columns]
    if missing:
        raise ValueError(f"write: partition_by column(s) {', '.join(missing)} not in the data "
                         f"(columns: {', '.join(df.columns)})")
    if not keep_removed:
        # Removed rows keep their identity and reason (the audit trail) but not their payload.
        light = {*IDENTITY, *audit, *partition_by}
        df = df.select(*[
            c if c in light else F.when(F.col(REMOVED_BY).isNull(), F.col(c)).alias(c) for c in df.columns
        ])
    writer = df.write.mode("overwrite").option("compression", compression)
    for path in plain_columns(df.schema):
        writer = writer.option(f"parquet.enable.dictionary#{path}", "false")
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


# Columns of free text and unique keys: a dictionary page never pays off for them (Parquet fills one, finds
# it too large and falls back to plain pages); measured, skipping it saves a fifth of the write time.
_FREE_TEXT = {ID, TEXT, URL, "content", "prompt_text", "completion_text", "chosen_text", "rejected_text"}


def plain_columns(schema: T.StructType, prefix: str = "") -> list[str]:
    """Parquet paths of the free-text string and the binary columns (nested ones too), written without a
    dictionary."""
    out = []
    for f in schema.fields:
        path, dtype = f"{prefix}{f.name}", f.dataType
        if isinstance(dtype, T.ArrayType):
            path, dtype = f"{path}.list.element", dtype.elementType
        if isinstance(dtype, T.StructType):
            out += plain_columns(dtype, f"{path}.")
        elif (isinstance(dtype, T.StringType) and f.name in _FREE_TEXT) or isinstance(dtype, T.BinaryType):
            out.append(path)  # free text, unique keys, media bytes and spectrograms
    return out


def count_written(spark: SparkSession, dest: str) -> dict:
    """Rows kept per source and removed per (reason, source), read back from the written Parquet."""
    kept = spark.read.parquet(f"{dest}/data")
    rows = kept.groupBy(SOURCE).agg(F.count("*").alias("n")).collect()  # small: one row per source
    by_source = {r[SOURCE]: r["n"] for r in rows}
    removed: dict[str, dict[str, int]] = {}
    if HadoopFS(spark, dest).list_dirs(f"{dest}/removed"):
        rows = (spark.read.option("mergeSchema", "true").parquet(f"{dest}/removed").groupBy(REMOVED_BY, SOURCE)
                .agg(F.count("*").alias("n")).collect())  # small: one row per reason and source
        for r in rows:
            removed.setdefault(r[REMOVED_BY], {})[r[SOURCE]] = r["n"]
    return {"kept": sum(by_source.values()), "kept_by_source": dict(sorted(by_source.items())),
            "removed": {k: dict(sorted(v.items())) for k, v in sorted(removed.items())}}


def read_written(spark: SparkSession, dest: str) -> tuple[DataFrame, DataFrame | None]:
    """The kept and removed rows of a written folder (removed: None when nothing was removed)."""
    kept = spark.read.parquet(f"{dest}/data")
    has_removed = bool(HadoopFS(spark, dest).list_dirs(f"{dest}/removed"))
    removed = spark.read.option("mergeSchema", "true").parquet(f"{dest}/removed") if has_removed else None
    return kept, removed


def check_unique_ids(spark: SparkSession, dest: str, shown_as: str, examples: int = 3) -> None:
    """Fail if an id appears twice among the written rows (kept and removed): ids are unique in every
    output. Reads only the id column back, one aggregation; the error names ids and where they come from."""
    fs = HadoopFS(spark, dest)
    paths = [f"{dest}/data"] + ([f"{dest}/removed"] if fs.list_dirs(f"{dest}/removed") else [])
    frames = [spark.read.parquet(p) for p in paths]
    if not all(META in df.columns for df in frames):
        return
    # Ids alone first (one narrow column); where they come from is read only for ids that repeat.
    ids = frames[0].select(ID)
    for other in frames[1:]:
        ids = ids.unionByName(other.select(ID))
    repeated = ids.groupBy(ID).count().where(F.col("count") > 1)
    if repeated.limit(1).count() == 0:
        return
    meta = F.col(META)
    located = [df.join(repeated.select(ID), ID, "left_semi")
               .select(ID, SOURCE, meta.getItem("file").alias("file"),
                       F.coalesce(meta.getItem("where"), meta.getItem("line"), meta.getItem("warc_offset")).alias("at"))
               for df in frames]
    rows = located[0]
    for other in located[1:]:
        rows = rows.unionByName(other)
    dups = rows.groupBy(ID).agg(F.count("*").alias("n"), F.first(SOURCE).alias("source"),
                                F.collect_list(F.concat_ws(" ", F.regexp_replace("file", "^file://", ""), "at")).alias("where"))
    found = dups.limit(examples).collect()  # small: a few examples
    if not found:
        return
    total = dups.count()
    shown = "; ".join(f"{r[ID]} ({r['source']}) x{r['n']}: {' | '.join(r['where'][:2])}" for r in found)
    raise InputError(shown_as, "ids", f"{total} id(s) appear more than once (e.g. {shown}). Ids must be unique: give "
                     "the source an `id_field` whose values are unique, or none (ids then come from file and line)")

"""Write a tagged DataFrame once: kept rows to `data/`, removed rows to `removed/`.

The frame is written a single time partitioned by `removed_by` (so kept files never store that column),
into a folder the caller then commits (pipeline/commit.py). Removed rows keep their identity, reason and
the audit columns the stages declare; nothing here knows any stage.

Where the folder is already the files' final place (pointer commits on object stores, where a move is a
copy) nothing is moved: kept rows stay in `rows/removed_by=__HIVE_DEFAULT_PARTITION__/`, removed rows in
the other `rows/removed_by=<reason>/` folders, and the manifest's `output.data` / `output.removed` (with
`removed_mixed`: the removed folder also holds the kept partition) say where. `OutputPaths` reads both.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class OutputPaths:
    """Where a written folder's kept and removed rows are."""

    data: str
    removed: str
    removed_mixed: bool = False  # `removed` also holds the kept partition (removed_by null): filter it out

    @classmethod
    def of(cls, dest: str, in_place: bool = False) -> OutputPaths:
        dest = qualify(dest).rstrip("/")
        if in_place:
            return cls(f"{dest}/rows/{REMOVED_BY}={NULL_PARTITION}", f"{dest}/rows", True)
        return cls(f"{dest}/data", f"{dest}/removed")

    @classmethod
    def from_manifest(cls, manifest: dict, dest: str) -> OutputPaths:
        out = manifest.get("output") or {}
        if out.get("data") and out.get("removed"):
            return cls(out["data"], out["removed"], bool(out.get("removed_mixed")))
        return cls.of(dest)

    def as_manifest(self) -> dict:
        return {"data": self.data, "removed": self.removed, **({"removed_mixed": True} if self.removed_mixed else {})}

    def has_removed(self, spark: SparkSession) -> bool:
        names = HadoopFS(spark, self.removed).list_dirs(self.removed)
        return any(n != f"{REMOVED_BY}={NULL_PARTITION}" for n in names) if self.removed_mixed else bool(names)

    def read_removed(self, spark: SparkSession) -> DataFrame | None:
        """The removed rows (None when there are none), `removed_by` from the folder names."""
        if not self.has_removed(spark):
            return None
        df = spark.read.option("mergeSchema", "true").parquet(self.removed)
        return df.where(F.col(REMOVED_BY).isNotNull()) if self.removed_mixed else df


def write_split(df: DataFrame, dest: str, partition_by: list[str], keep_removed: bool,
                max_rows_per_file: int = 0, compression: str = "zstd", audit: set[str] | frozenset = frozenset(),
                in_place: bool = False) -> dict:
    """Write ``df`` under ``dest`` (a temporary folder, or with ``in_place`` its final one: nothing is
    moved) and return the counts read back from it.

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
    paths = OutputPaths.of(dest, in_place)
    if in_place:
        writer.partitionBy(REMOVED_BY, *partition_by).parquet(paths.removed)
        if not HadoopFS(spark, dest).exists(paths.data):  # nothing kept: still a readable, empty dataset
            spark.createDataFrame([], df.drop(REMOVED_BY).schema).write.parquet(paths.data)
        return count_written(spark, paths)
    staging = f"{dest}/_all"
    writer.partitionBy(REMOVED_BY, *partition_by).parquet(staging)
    publish(spark, dest, staging, df.drop(REMOVED_BY).schema)  # partition columns stay, as plain columns
    return count_written(spark, paths)


def publish(spark, dest: str, staging: str, kept_schema: T.StructType) -> None:
    """Move a written `removed_by=` partition folder into `data/` (kept) and `removed/` (the rest)."""
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
        spark.createDataFrame([], kept_schema).write.parquet(f"{dest}/data")


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


def count_written(spark: SparkSession, paths: OutputPaths | str) -> dict:
    """Rows kept per source and removed per (reason, source), read back from the written Parquet."""
    paths = paths if isinstance(paths, OutputPaths) else OutputPaths.of(paths)
    kept = spark.read.parquet(paths.data)
    rows = kept.groupBy(SOURCE).agg(F.count("*").alias("n")).collect()  # small: one row per source
    by_source = {r[SOURCE]: r["n"] for r in rows}
    removed: dict[str, dict[str, int]] = {}
    gone = paths.read_removed(spark)
    if gone is not None:
        rows = gone.groupBy(REMOVED_BY, SOURCE).agg(F.count("*").alias("n")).collect()  # small: reasons x sources
        for r in rows:
            removed.setdefault(r[REMOVED_BY], {})[r[SOURCE]] = r["n"]
    return {"kept": sum(by_source.values()), "kept_by_source": dict(sorted(by_source.items())),
            "removed": {k: dict(sorted(v.items())) for k, v in sorted(removed.items())}}


def read_written(spark: SparkSession, paths: OutputPaths | str) -> tuple[DataFrame, DataFrame | None]:
    """The kept and removed rows of a written folder (removed: None when nothing was removed)."""
    paths = paths if isinstance(paths, OutputPaths) else OutputPaths.of(paths)
    return spark.read.parquet(paths.data), paths.read_removed(spark)


def check_unique_ids(spark: SparkSession, paths: OutputPaths | str, shown_as: str, examples: int = 3) -> None:
    """Fail if an id appears twice among the written rows (kept and removed): ids are unique in every
    output. Reads only the id column back, one aggregation; the error names ids and where they come from."""
    kept, removed = read_written(spark, paths)
    frames = [kept] + ([removed] if removed is not None else [])
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

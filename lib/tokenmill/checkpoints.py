"""Materialising a DataFrame inside a stage (computed once, lineage cut) so that a lost executor does not
lose it: on a cluster a *reliable* checkpoint (files under the run's work folder, which must be shared
storage: HDFS, S3, GCS or a shared mount), in local mode a local checkpoint (no executor to lose, and no
write). `spark.tokenmill.checkpoints` = auto (default) | reliable | local overrides the choice.

Local checkpoints keep their blocks in the executors: an executor lost after one is taken fails the job
("Checkpoint block ... not found"), which at crawl scale (spot instances, hours of work) is a matter of
when. GraphFrames takes the same approach for its connected components (a reliable checkpoint every few
iterations, the rounds in between persisted).
"""

from __future__ import annotations

import logging

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("tokenmill.checkpoints")

MODE_KEY = "spark.tokenmill.checkpoints"
MODES = ("auto", "reliable", "local")
DEFAULT_WORK = "/tmp/tokenmill-work"


def reliable(spark: SparkSession) -> bool:
    """Whether mid-stage checkpoints are written as files (see the module docstring)."""
    mode = (spark.conf.get(MODE_KEY, "auto") or "auto").lower()
    if mode not in MODES:
        from .errors import ConfigError

        raise ConfigError(f"{MODE_KEY}={mode!r}: expected one of {', '.join(MODES)}")
    if mode == "auto":
        return not spark.sparkContext.master.startswith("local")
    return mode == "reliable"


def checkpoint_root(spark: SparkSession, work_dir: str) -> str:
    """This application's checkpoint folder under ``work_dir`` (qualified, so every executor resolves it)."""
    from .io.hadoopfs import qualify

    return f"{qualify(work_dir).rstrip('/')}/checkpoints/{spark.sparkContext.applicationId}"


def use_work_dir(spark: SparkSession, work_dir: str) -> None:
    """Reliable checkpoints of this run go under ``work_dir`` (set by the pipeline runner)."""
    if reliable(spark):
        spark.sparkContext.setCheckpointDir(checkpoint_root(spark, work_dir))


def materialize(df: DataFrame) -> DataFrame:
    """``df`` computed once and cut from its lineage: a reliable checkpoint on a cluster (persisted while
    it is written, so computed once), else a local checkpoint."""
    spark = df.sparkSession
    if not reliable(spark):
        return df.localCheckpoint()
    sc = spark.sparkContext
    if sc.getCheckpointDir() is None:  # a stage used outside a pipeline run
        use_work_dir(spark, DEFAULT_WORK)
    held = df.persist(StorageLevel.MEMORY_AND_DISK)
    out = held.checkpoint(eager=True)
    held.unpersist()
    return out


def remove_checkpoints(spark: SparkSession, work_dir: str) -> None:
    """Delete this application's checkpoint files under ``work_dir`` (after a run nothing reads them)."""
    if not reliable(spark):
        return
    from .io.hadoopfs import HadoopFS

    root = checkpoint_root(spark, work_dir)
    fs = HadoopFS(spark, root)
    if fs.exists(root):
        fs.delete(root)
        log.info("removed checkpoints %s", root)


def fits_broadcast(df: DataFrame) -> bool:
    """Whether a materialised ``df`` is small enough to broadcast in a join: its rows (one count of the
    materialised frame) at Spark's estimated width per column, under `spark.sql.autoBroadcastJoinThreshold`.

    A checkpoint's plan carries no measured size, so the planner shuffles both sides of a join with it and
    adaptive execution turns the join into a broadcast only after the big side has been shuffled: the
    near-dedup output join moved 100k documents with their texts (237 MB) through a shuffle for nothing."""
    # Spark's own reading of the setting (any size suffix, -1 for off), not a parser of ours.
    threshold = df.sparkSession._jsparkSession.sessionState().conf().autoBroadcastJoinThreshold()
    if threshold <= 0:
        return False
    width = 8 + df._jdf.schema().defaultSize()  # Spark's own width estimate per row (DataType.defaultSize)
    return df.count() * width <= threshold

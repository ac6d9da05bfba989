"""The stage contract and registry.

A stage is a pure function `(ctx, DataFrame, params) -> DataFrame` found by name from a config.
An *annotate* stage adds columns; a *filter* stage never drops rows itself: it tags the rows it removes
in `removed_by` ("<stage>:<reason>") with `mark_removed`, and the writer splits kept from removed rows
in one pass. So every stage's rows in = rows kept + rows removed per reason, counted from the output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from .config import Strict
from .errors import ConfigError
from .schema import REMOVED_BY

Kind = Literal["read", "annotate", "filter", "write"]


@dataclass
class StageContext:
    """What a stage may use besides its input: the session, the whole pipeline config, a scratch folder."""

    spark: SparkSession
    pipeline: Any  # the validated PipelineConfig
    config_path: str
    work_dir: str
    reports: dict[str, Any] = field(default_factory=dict)  # per stage label: facts for the manifest (e.g. rho)
    # Side effects outside the output (a dedup index) are staged by the stage and published only once the
    # output that reflects them is committed; a failed segment discards them.
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    on_abort: list[Callable[[], None]] = field(default_factory=list)

    def committed(self) -> None:
        """The segment's output is in place: publish what its stages staged."""
        hooks, self.after_commit, self.on_abort = self.after_commit, [], []
        for hook in hooks:
            hook()

    def aborted(self) -> None:
        """The segment failed: discard what its stages staged (best effort, the original error wins)."""
        hooks, self.after_commit, self.on_abort = self.on_abort, [], []
        for hook in hooks:
            try:
                hook()
            except Exception:  # noqa: BLE001 - never mask the failure being handled
                import logging

                logging.getLogger("tokenmill.stage").exception("discarding staged work failed")


class StageParams(Strict):
    """Keys every stage entry accepts, whatever the stage."""

    stage: str
    id: str | None = None  # a label, when one stage runs twice in a pipeline
    checkpoint: bool = False  # write this stage's output to work_dir, so a rerun can resume after it


@dataclass(frozen=True)
class StageSpec:
    name: str
    kind: Kind
    params: type[StageParams]
    run: Callable[[StageContext, DataFrame | None, Any], DataFrame]
    version: str  # bump when a stage's output changes for the same config: reruns then recompute
    doc: str


REGISTRY: dict[str, StageSpec] = {}


def register(name: str, kind: Kind, params: type[StageParams] = StageParams, version: str = "1"):
    """Decorator: make a stage function available to configs under ``name``."""

    def wrap(fn):
        if name in REGISTRY:
            raise ValueError(f"stage {name!r} registered twice")
        REGISTRY[name] = StageSpec(name, kind, params, fn, version, (fn.__doc__ or "").strip().split("\n")[0])
        return fn

    return wrap


def get(name: str, where: str) -> StageSpec:
    _load_builtin_stages()
    if name not in REGISTRY:
        raise ConfigError(f"{where}: unknown stage {name!r}; known stages: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def _load_builtin_stages() -> None:
    from . import stages  # noqa: F401  (registers the built-in stages on import)


def mark_removed(df: DataFrame, condition: Column, stage: str, reason: str | Column) -> DataFrame:
    """Tag rows matching ``condition`` (and not removed earlier) as removed by ``stage`` for ``reason``."""
    reason_col = reason if isinstance(reason, Column) else F.lit(reason)
    tag = F.concat(F.lit(f"{stage}:"), reason_col)
    # One reference to the previous `removed_by`: Catalyst inlines projections, so an expression that named
    # it twice would double in size with every filter stage of a long pipeline.
    return df.withColumn(REMOVED_BY, F.coalesce(F.col(REMOVED_BY), F.when(condition, tag)))


class Deferred:
    """A report value known only once the stage's output has been computed (e.g. an accumulator): the
    pipeline resolves it after the write."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn

    def __call__(self) -> Any:
        return self.fn()


def resolve_deferred(value: Any) -> Any:
    """``value`` with every Deferred inside it (dicts, lists) replaced by its value."""
    if isinstance(value, Deferred):
        return value()
    if isinstance(value, dict):
        return {k: resolve_deferred(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_deferred(v) for v in value]
    return value


def live(df: DataFrame) -> Column:
    """True for rows no earlier stage removed: expensive annotators compute only for these."""
    return F.col(REMOVED_BY).isNull()


class WriteParams(StageParams):
    """The output: Parquet (zstd), optionally partitioned, with removed rows kept for audit on request."""

    partition_by: list[str] = Field(default_factory=list)
    keep_removed: bool = False  # True: removed rows are written whole; False: only their id, source, url, reason
    max_rows_per_file: int = Field(default=0, ge=0)
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"


def map_batches(df: DataFrame, fn: Callable[[Any], dict[str, Any]], new_fields: list[Any]) -> DataFrame:
    """Add or replace columns with ``fn(record_batch) -> {name: pyarrow array}``, through `mapInArrow`.

    A plan node of its own: Catalyst does not inline what comes out of it into later expressions, so a
    long pipeline of many-column stages plans in milliseconds (struct-returning UDFs referenced field by
    field get copied into every later reference, and plans then grow exponentially).
    """
    from pyspark.sql.types import StructType

    new = {f.name: f for f in new_fields}
    kept = [new.get(f.name, f) for f in df.schema.fields]  # a replaced column keeps its place
    schema = StructType(kept + [f for f in new_fields if f.name not in set(df.columns)])
    order = [f.name for f in schema.fields]

    def run(batches):
        import pyarrow as pa

        for batch in batches:
            new = fn(batch)
            cols = [new[n] if n in new else batch.column(n) for n in order]
            yield pa.RecordBatch.from_arrays(cols, names=order)

    return df.mapInArrow(run, schema)

"""The stage contract: what a stage declares, what it receives, and the helpers every stage uses.

A stage is a pure function `(ctx, DataFrame, params) -> DataFrame`, registered under a name with what it
needs and gives: the columns it `requires` (checked by the planner before any Spark work), the columns it
`adds`, the `audit` columns the writer keeps on removed rows, a `summarize` that reads the written output
for the manifest and a `describe` that turns the manifest into console lines. An *annotate* stage adds
columns; a *filter* stage never drops rows: it tags those it removes in `removed_by` ("<label>:<reason>")
with `mark_removed`, and the writer splits kept from removed rows in one pass, so every stage's
rows in = rows kept + rows removed per reason, counted from the output.

This module is a leaf: it imports no stage. The built-in stages are loaded by `tokenmill.catalog`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import Field
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from ..config import Strict, did_you_mean
from ..errors import ConfigError
from ..schema import REMOVED_BY

Kind = Literal["read", "annotate", "filter", "write"]
log = logging.getLogger("tokenmill.stage")


@dataclass
class StageContext:
    """What a stage may use besides its input: the session, its own label, the typed sources, a scratch
    folder, and `report(key, value)` for facts the manifest keeps under the stage's label."""

    spark: SparkSession
    sources: Sequence[Any] = ()  # the pipeline's validated source configs (io.sources.Source)
    config_path: str = ""  # for messages: where the stage's config came from
    work_dir: str = "/tmp/tokenmill-work"
    label: str | None = None  # the stage's `id`, else its name; set by the engine (or by `register`)
    _reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Side effects outside the output (a dedup index) are staged by the stage and published only once the
    # output that reflects them is committed; a failed segment discards them.
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    on_abort: list[Callable[[], None]] = field(default_factory=list)

    def for_stage(self, label: str) -> StageContext:
        """The same context seen by the stage ``label`` (reports and hooks are shared)."""
        return replace(self, label=label)

    def report(self, key: str, value: Any) -> None:
        """Record one fact of this stage for the manifest (`stage_reports.<label>.<key>`); a `Deferred`
        value is resolved once the output is written."""
        if self.label is None:
            raise RuntimeError("StageContext.report: the context has no stage label (use ctx.for_stage)")
        self._reports.setdefault(self.label, {})[key] = value

    def report_all(self, values: dict[str, Any]) -> None:
        """`report` each key and value of ``values``."""
        for key, value in values.items():
            self.report(key, value)

    def reported(self, label: str | None = None) -> dict[str, Any]:
        """What a stage reported (all stages' reports by label when ``label`` is None)."""
        if label is None:
            return dict(self._reports)
        return self._reports.get(label, {})

    def take_reports(self) -> dict[str, dict[str, Any]]:
        """The reports so far, emptied for the next segment."""
        out = dict(self._reports)
        self._reports.clear()  # in place: every stage's view of the context shares this dict
        return out

    def committed(self) -> None:
        """The segment's output is in place: publish what its stages staged."""
        hooks, self.after_commit[:], self.on_abort[:] = list(self.after_commit), [], []
        for hook in hooks:
            hook()

    def aborted(self) -> None:
        """The segment failed: discard what its stages staged (best effort, the original error wins)."""
        hooks, self.after_commit[:], self.on_abort[:] = list(self.on_abort), [], []
        for hook in hooks:
            try:
                hook()
            except Exception:  # noqa: BLE001 - never mask the failure being handled
                log.exception("discarding staged work failed")


class StageParams(Strict):
    """Keys every stage entry accepts, whatever the stage."""

    stage: str
    id: str | None = None  # a label, when one stage runs twice in a pipeline
    checkpoint: bool = False  # write this stage's output to work_dir, so a rerun can resume after it


@dataclass(frozen=True)
class Written:
    """A written output (or checkpoint), as `summarize` functions read it."""

    spark: SparkSession
    folder: str  # the (temporary) output folder: a summary may write a side file into it
    kept: DataFrame
    removed: DataFrame | None  # None when nothing was removed


Columns = Sequence[str] | Callable[[Any], Sequence[str]]


@dataclass(frozen=True)
class StageSpec:
    """A registered stage and what it declares."""

    name: str
    kind: Kind
    params: type[StageParams]
    run: Callable[[StageContext, DataFrame | None, Any], DataFrame]
    version: str  # bump when a stage's output changes for the same config: reruns then recompute
    doc: str
    requires: Columns = ()
    adds: Columns = ()
    audit: Columns = ()  # columns kept on removed rows (besides id, source, url and removed_by)
    summarize: Callable[[Written], dict] | None = None  # -> keys of the manifest's `output`
    describe: Callable[[dict, str], list[str]] | None = None  # (manifest, label) -> console lines
    passes: Literal["one", "many"] = "one"  # "many": reads its input several times (the runner materialises it)
    shuffles: bool = False  # moves whole rows through a shuffle (a window, a join): rows removed before it
    # are better set aside first (the runner ends the segment before it; see `auto_checkpoint`)
    # (ctx, params, columns) -> an ArrowStep doing the stage's work on the write task's Arrow batches, or None
    # when these params need Spark; see `arrow_form`
    arrow: Callable[[StageContext, Any, list[str]], ArrowStep | None] | None = None
    # `summarize` computed by the Arrow writer's tasks on the rows they write; see `arrow_summary`
    summary_arrow: ArrowSummary | None = None
    # (params, columns) -> whether `arrow` gives a step for these params, without building it (cheap: the
    # dry run's plan of passes asks it); None: whenever the stage has an Arrow form
    arrow_supports: Callable[[Any, list[str]], bool] | None = None
    arrow_prepares: Callable[[Any], bool] | None = None  # params -> whether the step has a `prepare`

    def fusable(self, params: Any, columns: list[str]) -> bool:
        """Whether the stage can run inside a fused Python pass with these params (see `arrow_form`)."""
        if self.arrow is None or self.passes == "many" or self.shuffles:
            return False
        return self.arrow_supports is None or bool(self.arrow_supports(params, columns))

    def columns(self, which: Literal["requires", "adds", "audit"], params: Any) -> list[str]:
        value = getattr(self, which)
        return list(value(params) if callable(value) else value)


REGISTRY: dict[str, StageSpec] = {}


def register(name: str, kind: Kind, params: type[StageParams] = StageParams, version: str = "1", *,
             requires: Columns = (), adds: Columns = (), audit: Columns = (),
             summarize: Callable[[Written], dict] | None = None,
             describe: Callable[[dict, str], list[str]] | None = None, passes: Literal["one", "many"] = "one",
             shuffles: bool = False):
    """Decorator: make a stage function available to configs under ``name``, with what it declares.

    ``requires``, ``adds`` and ``audit`` are column names, or a function of the stage's params giving them.
    ``passes="many"``: the stage reads its input more than once, so the runner materialises an input that
    is expensive to recompute (stages before it in the same segment) instead of re-running them per pass.
    ``shuffles=True``: the stage moves whole rows through a shuffle. Before such a stage (or a "many"
    stage) the runner ends the segment when filters earlier in it have tagged rows, so the removed rows
    (often most of a crawl, text and all) go to the checkpoint's `removed/` instead of riding along.
    The decorated function, called without a label in its context (a notebook, a test), gets the label
    `params.id or name`.
    """

    def wrap(fn):
        if name in REGISTRY:
            raise ValueError(f"stage {name!r} registered twice")

        @functools.wraps(fn)
        def run(ctx: StageContext, df: DataFrame | None, p: Any) -> DataFrame:
            if ctx.label is None:
                ctx = ctx.for_stage(getattr(p, "id", None) or name)
            return fn(ctx, df, p)

        REGISTRY[name] = StageSpec(name, kind, params, run, version, (fn.__doc__ or "").strip().split("\n")[0],
                                   requires, adds, audit, summarize, describe, passes, shuffles)
        return run

    return wrap


@dataclass(frozen=True)
class ArrowStep:
    """A stage's work as a function of Arrow columns, run inside a fused Python pass (pipeline/passes.py) or
    the Arrow writer's task (io/arrow_write.py): ``fn(columns)`` updates the dict of column name -> array in
    place (new columns, `removed_by`), giving the rows the stage's Spark form gives. ``fields`` are the
    Spark fields it adds or replaces."""

    fields: list[Any]
    fn: Callable[[dict[str, Any]], None]
    # A job the step needs on the whole frame entering it before any batch runs (decontaminate's count of
    # common n-grams): `prepare(df) -> df` ends the open pass there, and the frame it returns feeds the
    # pass the step starts.
    prepare: Callable[[DataFrame], DataFrame] | None = None


def updating(fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[dict[str, Any]], None]:
    """An `ArrowStep` function from one that returns its new columns (the form `map_batches` takes too)."""

    def step(cols: dict[str, Any]) -> None:
        cols.update(fn(cols))

    return step


def batch_columns(batch: Any) -> dict[str, Any]:
    """A record batch as the dict of column name -> array that Arrow step functions read."""
    return {name: batch.column(i) for i, name in enumerate(batch.schema.names)}


def mark_removed_arrow(cols: dict[str, Any], condition: Any, stage: str, reason: Any) -> None:
    """`mark_removed` on Arrow columns: tag rows where ``condition`` is true (null counts as false) and no
    earlier stage removed them, with ``stage:reason`` (``reason`` a string or a string array)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(reason, str):
        tag: Any = pa.scalar(f"{stage}:{reason}")
    else:
        tag = pc.binary_join_element_wise(pa.scalar(f"{stage}:"), reason, "")
    hit = pc.fill_null(condition, False)
    cols[REMOVED_BY] = pc.coalesce(cols[REMOVED_BY], pc.if_else(hit, tag, pa.scalar(None, pa.string())))


def live_arrow(cols: dict[str, Any], column: str) -> Any:
    """``column`` where no earlier stage removed the row, else null (what `F.when(live(df), col)` gives)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = cols[column]
    return pc.if_else(pc.is_null(cols[REMOVED_BY]), values, pa.scalar(None, values.type))


@dataclass(frozen=True)
class ArrowSummary:
    """A stage's `summarize` from the rows as the Arrow writer's tasks write them, instead of read back:
    ``add(acc, table, kept)`` folds one written pyarrow table (kept rows, or removed ones as written:
    without their payload unless keep_removed) into a JSON-able accumulator (None at first);
    ``merge(accs, spark, folder)`` turns every task's accumulator into what `summarize` gives."""

    add: Callable[[Any, Any, bool], Any]
    merge: Callable[[list, SparkSession, str], dict]


def arrow_summary(name: str, add: Callable[[Any, Any, bool], Any], merge: Callable[[list, SparkSession, str], dict]):
    """Give the registered stage ``name`` an Arrow form of its `summarize` (tests compare the two)."""
    REGISTRY[name] = replace(REGISTRY[name], summary_arrow=ArrowSummary(add, merge))


def arrow_form(name: str, supports: Callable[[Any, list[str]], bool] | None = None,
               prepares: Callable[[Any], bool] | None = None):
    """Decorator: give the registered stage ``name`` an Arrow form, `(ctx, params, columns) -> ArrowStep |
    None`. Consecutive stages of a segment that have one run as one Python pass per task (one `mapInArrow`
    feeding each batch through their steps in order, pipeline/passes.py); a pass that reaches the segment's
    write runs in the write task and writes Parquet from there, so rows never go back into the JVM
    (measured on the instruct bench, the JVM's row conversion and Parquet writer cost ten times what the
    Arrow work does). ``supports(params, columns)`` says cheaply, without building anything, whether the
    form gives a step for these params (the dry run shows the passes from it), ``prepares(params)`` whether
    the step has a `prepare` (it then starts a pass of its own). The form reports what the
    stage reports; it must give the same rows (tests compare the two)."""

    def wrap(fn):
        REGISTRY[name] = replace(REGISTRY[name], arrow=fn, arrow_supports=supports, arrow_prepares=prepares)
        return fn

    return wrap


def lookup(name: str, where: str) -> StageSpec:
    """The registered stage ``name`` (load the catalogue first: `tokenmill.catalog.load_stages`)."""
    if name not in REGISTRY:
        raise ConfigError(f"{where}: unknown stage {name!r}{did_you_mean(name, REGISTRY)}; known stages: "
                          f"{', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def mark_removed(df: DataFrame, condition: Column | None, stage: str, reason: str | Column) -> DataFrame:
    """Tag rows matching ``condition`` (and not removed earlier) as removed by ``stage`` for ``reason``.
    With ``condition`` None, a row is removed where the ``reason`` column is not null (the reason expression
    is then evaluated once per row, not once for the test and once for the tag)."""
    reason_col = reason if isinstance(reason, Column) else F.lit(reason)
    tag = F.concat(F.lit(f"{stage}:"), reason_col)
    if condition is None:
        return df.withColumn(REMOVED_BY, F.coalesce(F.col(REMOVED_BY), tag))
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
    keep_removed: bool = False  # True: removed rows are written whole; False: their id, source, url, reason
    max_rows_per_file: int = Field(default=0, ge=0)
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"


def map_batches(df: DataFrame, fn: Callable[[Any], dict[str, Any]], new_fields: list[Any],
                drop: Sequence[str] = ()) -> DataFrame:
    """Add or replace columns with ``fn(record_batch) -> {name: pyarrow array}``, through `mapInArrow`;
    the ``drop`` columns are the function's input only and are not sent back (large media bytes).

    A plan node of its own: Catalyst does not inline what comes out of it into later expressions, so a
    long pipeline of many-column stages plans in milliseconds (struct-returning UDFs referenced field by
    field get copied into every later reference, and plans then grow exponentially).
    """
    from pyspark.sql.types import StructType

    new = {f.name: f for f in new_fields}
    gone = set(drop) - set(new)
    kept = [new.get(f.name, f) for f in df.schema.fields if f.name not in gone]  # a replaced column keeps its place
    schema = StructType(kept + [f for f in new_fields if f.name not in set(df.columns)])
    order = [f.name for f in schema.fields]

    def run(batches):
        import pyarrow as pa

        for batch in batches:
            new = fn(batch)
            cols = [new[n] if n in new else batch.column(n) for n in order]
            yield pa.RecordBatch.from_arrays(cols, names=order)

    return df.mapInArrow(run, schema)

"""Fused Python passes: consecutive stages of a segment that have an Arrow form run as one `mapInArrow`,
each batch fed through their steps in order, so a task runs one Python worker for all of them and rows
cross the JVM boundary once per pass, not once per stage.

Each Python stage on its own is a plan node of its own, and Spark runs one Python worker per Python node
of a task at the same time (and keeps every worker it started): measured on `quality_fineweb.yaml` and
the 320-document sample at local[2], 29 Python workers and 4.7 GB before passes (bench/memory.py).

A pass that starts right after `read` takes the reader in too, where the source is read by Python
(`io.sources.stream_frame`): the pass's task reads the files itself, and the documents never exist as
JVM rows. Sources of a read are passed one by one (each source's files frame, or its Spark-native
DataFrame), and the passes' outputs unioned, as `read` unions the sources.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import reduce
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from .stage import ArrowStep, StageContext

log = logging.getLogger("tokenmill.pipeline")


@dataclass(frozen=True)
class LabeledStep:
    """A stage's Arrow step and the stage's label (named when it raises)."""

    label: str
    step: ArrowStep


def output_schema(schema: T.StructType, steps: list[LabeledStep]) -> T.StructType:
    """``schema`` once the steps have added or replaced their fields (a replaced one keeps its place)."""
    fields = list(schema.fields)
    for labeled in steps:
        new = {f.name: f for f in labeled.step.fields}
        names = {g.name for g in fields}
        fields = [new.get(f.name, f) for f in fields] + [f for f in labeled.step.fields if f.name not in names]
    return T.StructType(fields)


def stream_parts(df: DataFrame) -> list[tuple[DataFrame, Callable | None]] | None:
    """The read's parts when ``df`` comes straight from `read`: per source, (files frame, the function that
    turns its batches into documents) for a source read by Python, or (its DataFrame, None); else None."""
    parts = getattr(df, "_tokenmill_parts", None)
    if parts is not None:
        return parts
    stream = getattr(df, "_tokenmill_stream", None)
    return [stream] if stream is not None else None


def with_parts(df: DataFrame, frames: list[DataFrame]) -> DataFrame:
    """``df`` (the union of ``frames``) marked with its parts, so a pass can start at the files."""
    if any(getattr(f, "_tokenmill_stream", None) is not None for f in frames):
        df._tokenmill_parts = [getattr(f, "_tokenmill_stream", None) or (f, None) for f in frames]
    return df


def conformer(schema: T.StructType) -> Callable[[Any], dict[str, Any]]:
    """batch -> the dict of its columns as ``schema`` (the union of the read's sources) has them: a column a
    source lacks is null, as `unionByName(allowMissingColumns=True)` gives it."""
    from pyspark.sql.pandas.types import to_arrow_schema

    target = to_arrow_schema(schema)

    def conform(batch) -> dict[str, Any]:
        import pyarrow as pa

        got = {name: batch.column(i) for i, name in enumerate(batch.schema.names)}
        n = batch.num_rows
        return {f.name: got[f.name] if f.name in got else pa.nulls(n, f.type) for f in target}

    return conform


def run_steps(cols: dict[str, Any], steps: list[LabeledStep]) -> None:
    """Feed one batch's columns through the steps in order; an error says which stage raised it."""
    for labeled in steps:
        try:
            labeled.step.fn(cols)
        except Exception as exc:
            exc.add_note(f"tokenmill: raised by stage {labeled.label!r} (in a fused Python pass)")
            raise


def over_parts(df: DataFrame, make: Callable[[Callable | None], Callable[[Iterator], Iterator]],
               schema: T.StructType | str) -> DataFrame:
    """``df.mapInArrow(make(None), schema)``, or, where ``df`` comes straight from `read`, the same over each
    source's part (the reader inside the task: ``make(produce)``), unioned."""
    parts = stream_parts(df)
    if parts is None:
        return df.mapInArrow(make(None), schema)
    frames = [frame.mapInArrow(make(produce), schema) for frame, produce in parts]
    return reduce(lambda a, b: a.union(b), frames)


def run_pass(df: DataFrame, steps: list[LabeledStep]) -> DataFrame:
    """One Python pass: ``df``'s batches through every step, in one `mapInArrow` per task."""
    schema = output_schema(df.schema, steps)
    conform = conformer(df.schema)
    order = [f.name for f in schema.fields]
    from pyspark.sql.pandas.types import to_arrow_schema

    target = to_arrow_schema(schema)

    def make(produce):
        def run(batches):
            import pyarrow as pa

            for batch in (produce(batches) if produce is not None else batches):
                cols = conform(batch)
                run_steps(cols, steps)
                arrays = [cols[n] for n in order]
                yield pa.RecordBatch.from_arrays(
                    [a if a.type == f.type else a.cast(f.type) for a, f in zip(arrays, target, strict=True)],
                    schema=target)

        return run

    log.info("one Python pass: %s", " > ".join(s.label for s in steps))
    return over_parts(df, make, schema)


def build_steps(ctx: StageContext, stages: list, columns: list[str]) -> list[LabeledStep] | None:
    """The Arrow steps of ``stages`` (planned stages, in order) on a frame of ``columns``, or None unless
    every one gives one."""
    steps, cols = [], list(columns)
    for st in stages:
        if not st.spec.fusable(st.params, cols):
            return None
        step = st.spec.arrow(ctx.for_stage(st.label), st.params, cols)
        if step is None:
            return None
        steps.append(LabeledStep(st.label, step))
        cols += [f.name for f in step.fields if f.name not in cols]
    return steps

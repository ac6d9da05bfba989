"""The `quality_signals` (annotate) and `quality_filter` (filter) stages: tag every signal, then decide.

Signals are computed once, in Arrow batches, and stored as `qs_*` columns; a rule set turns them into
decisions in Arrow batches of the signal columns only (the text never crosses to Python unless a line
modifier rewrites it), so thresholds can change and be re-applied on the stored output without recomputing
anything. A document failing several rules lists all of them in `quality_failed`; its
`removed_by` reason is the first.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.functions import arrow_udf

from ..errors import ConfigError
from ..langid.config import forms
from ..pipeline.stage import (
    ArrowStep,
    StageContext,
    arrow_form,
    batch_columns,
    map_batches,
    register,
    updating,
)
from ..schema import LANG, QUALITY_FAILED, REMOVED_BY, TEXT
from . import modifiers
from .config import QualityFilterParams, QualitySignalsParams
from .report import summarize_quality
from .rules import Rule
from .signals import SIGNALS, SignalSpec, compute_signals

_SPARK_TYPES = {pa.int64(): T.LongType(), pa.float64(): T.DoubleType(), pa.bool_(): T.BooleanType(),
                pa.string(): T.StringType()}


def _signals_fn(ctx: StageContext, params: QualitySignalsParams, columns: list[str]):
    """(columns of a batch) -> the signal columns, for both forms of `quality_signals`."""
    spec = SignalSpec(short_line_chars=params.short_line_chars,
                      stop_words=tuple(sorted((k, tuple(v)) for k, v in params.stop_words.items())))
    use_lang = params.use_lang and LANG in columns
    rerun = all(name in columns for name in SIGNALS)

    def fn(cols: dict) -> dict[str, pa.Array]:
        live_rows = pc.is_null(cols[REMOVED_BY])
        texts = pc.if_else(live_rows, cols[TEXT], pa.scalar(None, pa.string())).to_pylist()
        langs = cols[LANG].to_pylist() if use_lang else None
        table = compute_signals(texts, langs, spec)
        out = {name: table.column(name).combine_chunks() for name in SIGNALS}
        if rerun:  # a second pass (after a line modifier) keeps on removed rows the values that removed them
            out = {name: pc.if_else(live_rows, col, cols[name].cast(col.type)) for name, col in out.items()}
        return out

    ctx.report_all({"signals": list(SIGNALS), "short_line_chars": params.short_line_chars, "lang_aware": use_lang})
    return fn


_SIGNAL_FIELDS = [T.StructField(n, _SPARK_TYPES[t]) for n, t in SIGNALS.items()]


@register("quality_signals", "annotate", QualitySignalsParams, requires=[TEXT], adds=list(SIGNALS))
def quality_signals(ctx: StageContext, df: DataFrame, params: QualitySignalsParams) -> DataFrame:
    """Every Gopher / C4 / FineWeb / NeMo signal as a `qs_*` column of each live document, in one pass."""
    fn = _signals_fn(ctx, params, df.columns)
    return map_batches(df, lambda batch: fn(batch_columns(batch)), _SIGNAL_FIELDS)


@arrow_form("quality_signals")
def quality_signals_arrow(ctx: StageContext, params: QualitySignalsParams, columns: list[str]) -> ArrowStep:
    """`quality_signals` inside a fused pass."""
    return ArrowStep(_SIGNAL_FIELDS, updating(_signals_fn(ctx, params, columns)))


def decide(cols: dict[str, pa.Array], rules: list[Rule], modifier, stage: str, allowed: dict[str, frozenset]
           ) -> dict[str, pa.Array]:
    """One batch of `quality_filter` (its columns by name): run the line modifier on live rows, evaluate every
    rule, and return the new removed_by / quality_failed (/ text and modifier columns). Rows removed earlier
    pass unchanged."""
    n = len(cols[REMOVED_BY])
    removed_by = cols[REMOVED_BY].to_pylist()
    live_rows = np.array([r is None for r in removed_by], bool)
    values: dict[str, np.ndarray] = {}
    out_fields: dict[str, pa.Array] = {}
    if modifier is not None:
        texts = cols[TEXT].to_pylist()
        mod = modifiers.apply([t if ok else None for t, ok in zip(texts, live_rows, strict=True)], modifier)
        for name, _ in modifiers.fields(modifier):
            values[name] = _as_numpy(mod.field(name))
    for r in rules:
        if r.signal not in values:
            values[r.signal] = _as_numpy(cols[r.signal])
    langs = cols[LANG].to_pylist() if LANG in cols else None
    fails = _fails(values, rules, langs, allowed, live_rows)
    failed_lists: list[list[str] | None] = [None] * n
    prev = cols[QUALITY_FAILED].to_pylist() if QUALITY_FAILED in cols else None
    any_fail = np.zeros(n, bool)
    for f in fails:
        any_fail |= f
    for i in np.flatnonzero(any_fail).tolist():
        names = [r.name for r, f in zip(rules, fails, strict=True) if f[i]]
        failed_lists[i] = names
        removed_by[i] = f"{stage}:{names[0]}"
    if prev is not None:
        failed_lists = [new if new is not None else old for new, old in zip(failed_lists, prev, strict=True)]
    out_fields[REMOVED_BY] = pa.array(removed_by, pa.string())
    out_fields[QUALITY_FAILED] = pa.array(failed_lists, pa.list_(pa.string()))
    if modifier is not None:
        new_text = mod.field("text").to_pylist()
        final = [nt if (ok and not bad) else t for nt, t, ok, bad
                 in zip(new_text, texts, live_rows.tolist(), any_fail.tolist(), strict=True)]
        out_fields[TEXT] = pa.array(final, pa.string())
        for name, _ in modifiers.fields(modifier):
            out_fields[name] = mod.field(name)
    return out_fields


def _fails(values: dict[str, np.ndarray], rules: list[Rule], langs: list | None, allowed: dict[str, frozenset],
           live_rows: np.ndarray) -> list[np.ndarray]:
    """Per rule, which rows fail it (signals as float arrays, NaN = null = the rule does not apply)."""
    fails = []
    for r in rules:
        v = values[r.signal]
        f = np.zeros(len(live_rows), bool)
        with np.errstate(invalid="ignore"):
            if r.min is not None:
                f |= v < r.min
            if r.max is not None:
                f |= v > r.max
            if r.fail_if is not None:
                f |= v == float(r.fail_if)
        if r.fail_on_null:
            f |= np.isnan(v)
        if r.languages and langs is not None:
            ok = allowed[r.name]
            f &= np.array([lang is None or lang in ok for lang in langs], bool)
        fails.append(f & live_rows)
    return fails


def failed_rules_column(inputs: list[str], rules: list[Rule], allowed: dict[str, frozenset]):
    """For rule sets without a line modifier: the failed rule names per row from the stored signals only
    (the text never crosses to Python)."""

    def run(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
        for b in batches:
            values = {r.signal: _as_numpy(b.field(r.signal)) for r in rules}
            langs = b.field(LANG).to_pylist() if LANG in inputs else None
            fails = _fails(values, rules, langs, allowed, np.ones(len(b), bool))
            names = [r.name for r in rules]
            yield pa.array([[names[k] for k, f in enumerate(fails) if f[i]] for i in range(len(b))],
                           pa.list_(pa.string()))

    return arrow_udf(run, "array<string>")(F.struct(*[F.col(c) for c in inputs]))


def _as_numpy(arr: pa.Array) -> np.ndarray:
    """Signal values as float64 with NaN for null (booleans as 0/1)."""
    if pa.types.is_boolean(arr.type):
        arr = arr.cast(pa.int8())
    return arr.cast(pa.float64()).to_numpy(zero_copy_only=False)


def _modifier_columns(params: QualityFilterParams) -> list[str]:
    mod = params.rule_set.modifier
    return [n for n, _ in modifiers.fields(mod)] if mod is not None else []


def _filter_requires(params: QualityFilterParams) -> list[str]:
    """The signals the active rules read (a line modifier computes its own), and the text to modify."""
    made = set(_modifier_columns(params))
    signals = sorted({r.signal for r in params.rule_set.active()} - made)
    return signals + ([TEXT] if params.rule_set.modifier is not None else [])


def _rule_setup(ctx: StageContext, params: QualityFilterParams, columns: list[str]):
    """(active rules, line modifier, languages each rule applies to) for both forms of `quality_filter`;
    the signals the rules read are checked against ``columns`` and the rule set is reported."""
    rs = params.rule_set
    rules, mod = rs.active(), rs.modifier
    mod_names = [n for n, _ in modifiers.fields(mod)] if mod is not None else []
    missing = sorted({r.signal for r in rules} - set(columns) - set(mod_names))
    if missing:
        raise ConfigError(f"{ctx.label}: rule set {rs.name!r} needs column(s) {', '.join(missing)}; "
                          "run a `quality_signals` stage before it (and again after a stage that rewrites text)")
    allowed = {r.name: frozenset(f for code in r.languages for f in forms(code)) for r in rules if r.languages}
    ctx.report_all({"rule_set": rs.name, "rules": [r.model_dump(exclude_defaults=True) for r in rules],
                    "modifier": mod.model_dump() if mod else None})
    return rules, mod, allowed


@register("quality_filter", "filter", QualityFilterParams, requires=_filter_requires,
          adds=lambda p: [QUALITY_FAILED, *_modifier_columns(p)],
          # the signals that decided stay on removed rows: report.html draws kept vs removed with each threshold
          audit=lambda p: [QUALITY_FAILED, *(c for c in _filter_requires(p) if c != TEXT)], summarize=summarize_quality)
def quality_filter(ctx: StageContext, df: DataFrame, params: QualityFilterParams) -> DataFrame:
    """Remove documents failing any rule of the set; all failed rules go to `quality_failed`."""
    name = ctx.label
    rules, mod, allowed = _rule_setup(ctx, params, df.columns)
    if mod is None:
        # Only the signal columns cross to Python. The UDF's input never contains `removed_by`, so the
        # expressions below grow by a constant per stage, not by doubling.
        inputs = sorted({r.signal for r in rules}) + ([LANG] if LANG in df.columns else [])
        failed = failed_rules_column(inputs, rules, allowed)
        prev_removed = F.col(REMOVED_BY)
        previous = F.col(QUALITY_FAILED) if QUALITY_FAILED in df.columns else F.lit(None).cast("array<string>")
        new_failed = F.when(prev_removed.isNull() & (F.size(failed) > 0), failed).otherwise(previous)
        out = df.withColumn(QUALITY_FAILED, new_failed)
        return out.withColumn(REMOVED_BY, F.coalesce(prev_removed, F.when(
            F.size(failed) > 0, F.concat(F.lit(f"{name}:"), F.element_at(failed, 1)))))
    return map_batches(df, lambda b: decide(batch_columns(b), rules, mod, name, allowed), _decide_fields(mod))


def _decide_fields(mod) -> list[T.StructField]:
    fields = [T.StructField(REMOVED_BY, T.StringType()), T.StructField(QUALITY_FAILED, T.ArrayType(T.StringType()))]
    if mod is not None:
        fields += [T.StructField(TEXT, T.StringType())]
        fields += [T.StructField(n, _SPARK_TYPES[t]) for n, t in modifiers.fields(mod)]
    return fields


@arrow_form("quality_filter")
def quality_filter_arrow(ctx: StageContext, params: QualityFilterParams, columns: list[str]) -> ArrowStep:
    """`quality_filter` inside a fused pass: the rule set decided on the batch's signal columns."""
    name = ctx.label
    rules, mod, allowed = _rule_setup(ctx, params, columns)
    fields = [f for f in _decide_fields(mod) if f.name != REMOVED_BY]  # removed_by: in every frame already
    return ArrowStep(fields, updating(lambda cols: decide(cols, rules, mod, name, allowed)))

"""The `quality_classifier` (annotate) and `quality_select` (filter) stages.

`quality_classifier` adds `quality_<name>`: a Spark PipelineModel runs JVM-side; fastText and transformers
models run in Arrow batches in the Python workers, loaded once per worker process. Documents removed by
an earlier stage, empty ones and (with `only_language`) other languages get a null score.
`quality_select` keeps documents by one score or several combined (max, as Nemotron-CC does): an absolute
threshold, the top share by `approxQuantile` (DCLM's top 10%), GPT-3's Pareto sampling with a draw seeded
per document id, or quality tiers in `quality_bucket` for the mixer (nothing removed).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.functions import arrow_udf

from ..checkpoints import materialize
from ..errors import ConfigError
from ..io.artifacts import ship_dir, ship_file
from ..pipeline.stage import Deferred, StageContext, arrow_form, live, mark_removed, register
from ..schema import ID, LANG, QUALITY_BUCKET, REMOVED_BY, TEXT
from ..text.hashing import unit_hash
from .config import ClassifierParams, SelectParams
from .models import FastTextSpec, TransformersSpec, get_model
from .train import FEATURE_INPUT, PROBABILITY, load_model


def model_spec(ctx: StageContext, params: ClassifierParams) -> FastTextSpec | TransformersSpec:
    """The executor-side spec; the model file or directory is checked and shipped once, here."""
    spark = ctx.spark
    if params.kind == "fasttext":
        return FastTextSpec(ship_file(spark, params.model, "fasttext model"),
                            positive_label=str(params.positive_label or "__label__hq"),
                            max_chars=params.max_chars or 100_000)
    if "://" not in params.model and not os.path.isdir(params.model):
        raise ConfigError(f"quality_classifier {params.name}: transformers model {params.model!r}: no such directory")
    return TransformersSpec(os.path.abspath(params.model) if os.path.isdir(params.model) else params.model,
                            shipped_name=ship_dir(spark, params.model, "qmodel"), batch_size=params.batch_size,
                            max_length=params.max_length, device=params.device, threads=params.threads,
                            trust_remote_code=params.trust_remote_code, positive_label=params.positive_label,
                            max_chars=params.max_chars or 20_000, output=params.output)


def score_column(text: Column, spec: FastTextSpec | TransformersSpec, on_load=None) -> Column:
    """A double column from a Python model, one Arrow batch at a time (null text -> null score)."""

    def run(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
        model = get_model(spec, on_load)
        for arr in batches:
            yield pa.array(model.score(arr.to_pylist()), pa.float64())

    return arrow_udf(run, "double")(text)


def _scored(df: DataFrame, params: ClassifierParams) -> Column:
    """Which rows get a score: live, non-empty text, and the model's language when asked."""
    cond = live(df) & F.col(TEXT).isNotNull() & (F.length(TEXT) > 0)
    if params.only_language:
        cond = cond & (F.col(LANG) == F.lit(params.language))
    return cond


@register("quality_classifier", "annotate", ClassifierParams,
          requires=lambda p: [ID, TEXT] + ([LANG] if p.only_language else []), adds=lambda p: [p.column])
def quality_classifier(ctx: StageContext, df: DataFrame, params: ClassifierParams) -> DataFrame:
    """Add `quality_<name>`: the model's probability of high quality (or its regression score)."""
    cond = _scored(df, params)
    loads = ctx.spark.sparkContext.accumulator(0)
    if params.kind == "spark":
        model = load_model(ctx.spark, params.model)
        scored = model.transform(df.withColumn(FEATURE_INPUT, F.when(cond, F.col(TEXT)).otherwise(F.lit(""))))
        from pyspark.ml.functions import vector_to_array

        added = [c for c in scored.columns if c not in df.columns]
        out = scored.withColumn(params.column, F.when(cond, vector_to_array(F.col(PROBABILITY))[1])).drop(*added)
    else:
        spec = model_spec(ctx, params)
        out = df.withColumn(params.column, score_column(F.when(cond, F.col(TEXT)), spec, lambda: loads.add(1)))
    _report(ctx, params, loads)
    return out


@arrow_form("quality_classifier", supports=lambda p, columns: p.kind != "spark")
def quality_classifier_arrow(ctx: StageContext, params: ClassifierParams, columns: list[str]):
    """fastText and transformers scoring inside a fused pass (a Spark PipelineModel runs JVM-side)."""
    import pyarrow.compute as pc
    from pyspark.sql import types as T

    from ..pipeline.stage import ArrowStep

    if params.kind == "spark":
        return None
    spec = model_spec(ctx, params)
    loads = ctx.spark.sparkContext.accumulator(0)
    column, language, only = params.column, params.language, params.only_language

    def fn(cols: dict) -> None:
        text = cols[TEXT]
        cond = pc.and_kleene(pc.is_null(cols[REMOVED_BY]), pc.greater(pc.utf8_length(text), 0))
        if only:
            cond = pc.and_kleene(cond, pc.equal(cols[LANG], pa.scalar(language)))
        scored = pc.if_else(pc.fill_null(cond, False), text, pa.scalar(None, pa.string()))
        model = get_model(spec, lambda: loads.add(1))
        cols[column] = pa.array(model.score(scored.to_pylist()), pa.float64())

    _report(ctx, params, loads)
    return ArrowStep([T.StructField(column, T.DoubleType(), True)], fn)


def _report(ctx: StageContext, params: ClassifierParams, loads) -> None:
    ctx.report_all({
        "column": params.column, "kind": params.kind, "model": params.model, "language": params.language,
        "only_language": params.only_language,
        "model_loads": Deferred(lambda: loads.value) if params.kind != "spark" else None})


def combined_score(df: DataFrame, params: SelectParams) -> Column:
    missing = [c for c in params.scores if c not in df.columns]
    if missing:
        raise ConfigError(f"quality_select: score column(s) {', '.join(missing)} not in the data "
                          "(run quality_classifier first)")
    cols = [F.col(c).cast("double") for c in params.scores]
    if len(cols) == 1:
        return cols[0]
    if params.combine == "max":
        return F.greatest(*cols)
    if params.combine == "min":
        return F.least(*cols)
    present = sum(F.when(c.isNotNull(), 1).otherwise(0) for c in cols)
    total = sum(F.coalesce(c, F.lit(0.0)) for c in cols)
    return F.when(present > 0, total / present)


def pareto_draw(seed: int, alpha: float) -> Column:
    """numpy.random.pareto(alpha) (a Lomax variate) by inverse transform of a stable uniform per id."""
    u = unit_hash(seed, ID)
    return F.pow(F.lit(1.0) - u, F.lit(-1.0 / alpha)) - F.lit(1.0)


def quantiles(df: DataFrame, score: str, probs: list[float], rel_err: float) -> list[float]:
    """approxQuantile of the live, scored rows (a small result: one number per probability)."""
    return df.where(live(df) & F.col(score).isNotNull()).approxQuantile(score, probs, rel_err)


@register("quality_select", "filter", SelectParams, requires=lambda p: list(p.scores),
          adds=lambda p: [QUALITY_BUCKET] if p.method == "buckets" else [])
def quality_select(ctx: StageContext, df: DataFrame, params: SelectParams) -> DataFrame:
    """Keep by score: threshold, top percentile, Pareto sampling, or `quality_bucket` tiers (keeps all)."""
    name = ctx.label
    score = "__qs_score"
    out = df.withColumn(score, combined_score(df, params))
    report: dict = {"method": params.method, "scores": params.scores, "combine": params.combine}
    if params.method == "buckets":
        if params.bucket_edges is not None:
            edges = list(params.bucket_edges)
        else:
            out = materialize(out)  # the scores are computed once for the quantiles and the output
            edges = quantiles(out, score, [k / params.buckets for k in range(1, params.buckets)], params.relative_error)
        tier = sum(F.when(F.col(score) >= F.lit(e), 1).otherwise(0) for e in edges) + F.lit(1)
        report["edges"] = edges
        out = out.withColumn(QUALITY_BUCKET, F.when(F.col(score).isNotNull() & live(out), tier).cast("int"))
        ctx.report_all(report)
        return out.drop(score)
    if params.method == "threshold":
        keep = F.col(score) >= F.lit(params.threshold)
        report["threshold"] = params.threshold
        reason = "below_threshold"
    elif params.method == "percentile":
        out = materialize(out)
        assert params.keep_top is not None
        cut = quantiles(out, score, [1.0 - params.keep_top], params.relative_error)
        cutoff = cut[0] if cut else None
        report.update({"keep_top": params.keep_top, "cutoff": cutoff, "relative_error": params.relative_error})
        keep = F.col(score) >= F.lit(cutoff) if cutoff is not None else F.lit(True)
        reason = "below_percentile"
    else:
        keep = pareto_draw(params.seed, params.alpha) > F.lit(1.0) - F.col(score)
        report.update({"alpha": params.alpha, "seed": params.seed})
        reason = "pareto_sample"
    unscored = F.col(score).isNull()
    if params.unscored == "remove":
        out = mark_removed(out, unscored, name, "unscored")
    out = mark_removed(out, ~unscored & ~keep, name, reason)
    ctx.report_all(report)
    return out.drop(score)

"""The `langid` (annotate) and `language_filter` (filter) stages."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.functions import arrow_udf

from ..io.artifacts import ship_file
from ..pipeline.stage import (
    ArrowStep,
    StageContext,
    arrow_form,
    live,
    live_arrow,
    mark_removed,
    mark_removed_arrow,
    register,
)
from ..schema import LANG, LANG_BACKEND, LANG_MIXED, LANG_SCORE, TEXT
from .backends import BackendSpec
from .codes import UND, canonical
from .config import LangidParams, LanguageFilterParams, forms
from .identify import CascadeSpec, IdentifySpec, ParagraphSpec, identify
from .report import describe_languages, summarize_languages

_FIELDS = [(LANG, pa.string()), (LANG_SCORE, pa.float64()), (LANG_BACKEND, pa.string()), (LANG_MIXED, pa.bool_())]


def build_spec(spark: SparkSession | None, params: LangidParams) -> IdentifySpec:
    """The executor-side setup for ``params``; a fastText model file is checked and shipped once here."""
    aliases = tuple(sorted(params.aliases.items()))
    languages = tuple(canonical(c, params.aliases) for c in params.lingua.languages)

    def backend(name: str) -> BackendSpec:
        if name == "fasttext":
            assert params.fasttext is not None
            model = (ship_file(spark, params.fasttext.model, "fasttext model") if spark is not None
                     else _unshipped(params.fasttext.model))
            return BackendSpec("fasttext", model=model, aliases=aliases)
        if name == "lingua":
            return BackendSpec("lingua", languages=languages, low_accuracy=params.lingua.low_accuracy,
                               aliases=aliases)
        return BackendSpec("cld2", aliases=aliases)  # type: ignore[arg-type]

    paragraphs = None
    if params.paragraphs is not None:
        p = params.paragraphs
        paragraphs = ParagraphSpec(p.min_chars, p.max_paragraphs, p.min_score, p.mixed_share)
    common = dict(prefix_chars=params.prefix_chars, min_letters=params.min_letters, style=params.codes,
                  paragraphs=paragraphs)
    if params.backend != "cascade":
        return IdentifySpec(primary=backend(params.backend), **common)
    c = params.cascade
    cascade = CascadeSpec(c.min_score, c.min_chars, frozenset(canonical(x, params.aliases) for x in c.recheck))
    return IdentifySpec(primary=backend(c.fast), accurate=backend(c.accurate), cascade=cascade, **common)


def _unshipped(path: str):
    from ..io.artifacts import ShippedFile

    return ShippedFile(path)


def langid_column(text: Column, spec: IdentifySpec) -> Column:
    """A struct column (lang, lang_score, lang_backend, lang_mixed), one Arrow batch at a time."""
    struct = pa.struct([pa.field(n, t) for n, t in _FIELDS])

    def run(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
        for arr in batches:
            r = identify(arr.to_pylist(), spec)
            yield pa.StructArray.from_arrays(
                [pa.array(r.lang, pa.string()), pa.array(r.score, pa.float64()),
                 pa.array(r.backend, pa.string()), pa.array(r.mixed, pa.bool_())], fields=list(struct))

    schema = f"struct<{LANG}:string,{LANG_SCORE}:double,{LANG_BACKEND}:string,{LANG_MIXED}:boolean>"
    return arrow_udf(run, schema)(text)


def _langid_columns(params: LangidParams) -> list[str]:
    return [LANG, LANG_SCORE, LANG_BACKEND] + ([LANG_MIXED] if params.paragraphs is not None else [])


@register("langid", "annotate", LangidParams, requires=[TEXT], adds=_langid_columns, audit=[LANG, LANG_SCORE],
          summarize=summarize_languages, describe=describe_languages)
def langid(ctx: StageContext, df: DataFrame, params: LangidParams) -> DataFrame:
    """Language and score per live document (removed documents get none); `und` when there is no signal."""
    spec = build_spec(ctx.spark, params)
    tmp = "__langid"
    text = F.col(TEXT)
    if params.prefix_chars and params.paragraphs is None:
        # Only a prefix crosses to Python: the normalised prefix comes from (far) less than 4x its length.
        text = F.substring(text, 1, params.prefix_chars * 4 + 1024)
    out = df.withColumn(tmp, langid_column(F.when(live(df), text), spec))
    fields = _langid_columns(params)
    replaced = [c for c in df.columns if c not in fields]
    out = out.select(*replaced, *[F.col(f"{tmp}.{f}").alias(f) for f in fields])
    _report(ctx, params)
    return out


@arrow_form("langid")
def langid_arrow(ctx: StageContext, params: LangidParams, columns: list[str]) -> ArrowStep:
    """The same languages, inside a fused pass: the prefix of each live text through `identify`."""
    import pyarrow.compute as pc
    from pyspark.sql import types as T

    spec = build_spec(ctx.spark, params)
    fields = _langid_columns(params)
    prefix = params.prefix_chars * 4 + 1024 if params.prefix_chars and params.paragraphs is None else None

    def fn(cols: dict) -> None:
        text = live_arrow(cols, TEXT)
        if prefix is not None:  # Spark's substring: code points
            text = pc.utf8_slice_codeunits(text, 0, prefix)
        r = identify(text.to_pylist(), spec)
        got = {LANG: pa.array(r.lang, pa.string()), LANG_SCORE: pa.array(r.score, pa.float64()),
               LANG_BACKEND: pa.array(r.backend, pa.string()), LANG_MIXED: pa.array(r.mixed, pa.bool_())}
        cols.update({f: got[f] for f in fields})

    _report(ctx, params)
    types = {LANG: T.StringType(), LANG_SCORE: T.DoubleType(), LANG_BACKEND: T.StringType(), LANG_MIXED: T.BooleanType()}
    return ArrowStep([T.StructField(f, types[f], True) for f in fields], fn)


def _report(ctx: StageContext, params: LangidParams) -> None:
    ctx.report_all({
        "backend": params.backend, "codes": params.codes, "prefix_chars": params.prefix_chars,
        "min_letters": params.min_letters,
        "fasttext_model": params.fasttext.model if params.fasttext else None,
        "lingua": params.lingua.model_dump() if "lingua" in (params.backend, params.cascade.accurate) else None,
        "cascade": params.cascade.model_dump() if params.backend == "cascade" else None,
    })


@register("language_filter", "filter", LanguageFilterParams,
          requires=lambda p: [LANG, LANG_SCORE] + ([LANG_MIXED] if p.drop_mixed else []))
def language_filter(ctx: StageContext, df: DataFrame, params: LanguageFilterParams) -> DataFrame:
    """Remove `und`, languages not configured, scores under the (per-language) threshold, and mixed texts."""
    name = ctx.label
    lang = F.col(LANG)
    if not params.keep_und:
        df = mark_removed(df, lang.isNull() | (lang == UND), name, "undetermined")
    if params.languages:
        allowed = sorted({f for code in params.languages for f in forms(code)})
        outside = ~lang.isin(allowed) & ((lang != UND) if params.keep_und else F.lit(True))
        df = mark_removed(df, outside, name, "language")
    threshold: Column = F.lit(params.min_score)
    if params.thresholds:
        pairs = {f: v for code, v in params.thresholds.items() for f in forms(code)}
        mapping = F.create_map(*[x for k, v in sorted(pairs.items()) for x in (F.lit(k), F.lit(float(v)))])
        threshold = F.coalesce(mapping[lang], threshold)
    df = mark_removed(df, (lang != UND) & (F.coalesce(F.col(LANG_SCORE), F.lit(0.0)) < threshold), name,
                      "low_score")
    if params.drop_mixed:
        df = mark_removed(df, F.coalesce(F.col(LANG_MIXED), F.lit(False)), name, "mixed")
    return df


@arrow_form("language_filter")
def language_filter_arrow(ctx: StageContext, params: LanguageFilterParams, columns: list[str]) -> ArrowStep:
    """`language_filter` on Arrow columns: the same reasons, in the same order, with SQL's null logic."""
    name = ctx.label
    allowed = pa.array(sorted({f for code in params.languages for f in forms(code)}), pa.string())
    pairs = {f: float(v) for code, v in params.thresholds.items() for f in forms(code)}
    keys, values = pa.array(list(pairs), pa.string()), pa.array(list(pairs.values()), pa.float64())

    def fn(cols: dict) -> None:
        import pyarrow.compute as pc

        lang = cols[LANG]
        not_und = pc.not_equal(lang, pa.scalar(UND))
        if not params.keep_und:
            mark_removed_arrow(cols, pc.or_kleene(pc.is_null(lang), pc.equal(lang, pa.scalar(UND))), name,
                               "undetermined")
        if params.languages:
            # SQL's NOT IN: null for a null lang (never tagged as outside)
            outside = pc.if_else(pc.is_valid(lang), pc.invert(pc.is_in(lang, value_set=allowed)),
                                 pa.scalar(None, pa.bool_()))
            mark_removed_arrow(cols, pc.and_kleene(outside, not_und) if params.keep_und else outside, name, "language")
        threshold = pa.array([params.min_score] * len(lang), pa.float64())
        if pairs:
            at = pc.index_in(lang, value_set=keys)
            threshold = pc.coalesce(pc.take(values, at), threshold)
        score = pc.fill_null(cols[LANG_SCORE], 0.0)
        mark_removed_arrow(cols, pc.and_kleene(not_und, pc.less(score, threshold)), name, "low_score")
        if params.drop_mixed:
            mark_removed_arrow(cols, cols[LANG_MIXED], name, "mixed")

    return ArrowStep([], fn)

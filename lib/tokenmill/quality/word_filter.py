"""The `word_filter` stage: word lists for text (e.g. LDNOOBW's bad-words list per language), matched per
document language; no-space languages (zh, ja, th) by substring, as C4's bad-words filter does."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pyarrow as pa
from pydantic import Field, model_validator
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.functions import arrow_udf

from ..pipeline.stage import (
    ArrowStep,
    StageContext,
    StageParams,
    arrow_form,
    live,
    live_arrow,
    mark_removed,
    mark_removed_arrow,
    register,
)
from ..schema import BAD_WORDS, LANG, TEXT
from ..text.words import no_space_language
from .url_filter import file_stamps, read_list


class WordFilterParams(StageParams):
    """Remove documents containing listed words (e.g. LDNOOBW's bad-words lists), per document language."""

    lists: dict[str, str] = Field(default_factory=dict)  # language -> list file
    words: dict[str, list[str]] = Field(default_factory=dict)  # language -> inline words
    default_lang: str = "en"  # for documents without `lang`
    min_count: int = Field(default=1, ge=1)  # remove at this many occurrences
    max_ratio: float | None = Field(default=None, gt=0)  # or: remove above this share of words
    allow: dict[str, list[str]] = Field(default_factory=dict)  # per language: never counted

    @model_validator(mode="after")
    def _some(self):
        if not self.lists and not self.words:
            raise ValueError("word_filter needs `lists: {lang: file}` or `words: {lang: [...]}`")
        return self

    def fingerprint_extra(self) -> dict:
        return {"files": file_stamps(list(self.lists.values()))}


class WordMatcher:
    """Per language: single words looked up in a set, phrases by their word n-grams; no-space languages
    (zh, ja, th) by substring, as C4's bad-words filter does."""

    def __init__(self, params: WordFilterParams, where: str):
        entries: dict[str, set[str]] = {}
        for lang, path in params.lists.items():
            entries.setdefault(lang, set()).update(w.lower() for w in read_list(path, where))
        for lang, ws in params.words.items():
            entries.setdefault(lang, set()).update(w.lower() for w in ws)
        for lang, ws in params.allow.items():
            entries.get(lang, set()).difference_update(w.lower() for w in ws)
        self.by_lang: dict[str, tuple] = {}
        for lang, ws in entries.items():
            if no_space_language(lang):
                pattern = re.compile("|".join(re.escape(w) for w in sorted(ws, key=len, reverse=True)))
                self.by_lang[lang] = ("substring", pattern)
            else:
                phrases = {tuple(w.split()) for w in ws}
                self.by_lang[lang] = ("words", frozenset(p[0] for p in phrases if len(p) == 1),
                                      frozenset(p for p in phrases if len(p) > 1),
                                      max((len(p) for p in phrases), default=1))
        self.default = params.default_lang
        self.sizes = {lang: len(ws) for lang, ws in sorted(entries.items())}

    def count(self, text: str, lang: str | None) -> tuple[int, int] | None:
        """(matches, words) of ``text``; None when there is no list for the language."""
        entry = self.by_lang.get(lang or self.default)
        if entry is None and lang:
            entry = self.by_lang.get(lang.split("-")[0].split("_")[0])
        if entry is None:
            return None
        low = text.lower()
        if entry[0] == "substring":
            return len(entry[1].findall(low)), len(low)
        _, singles, phrases, longest = entry
        words = _WORDS.findall(low)
        n = sum(1 for w in words if w in singles)
        if phrases:
            for k in range(2, longest + 1):
                n += sum(1 for i in range(len(words) - k + 1) if tuple(words[i:i + k]) in phrases)
        return n, len(words)


def _count(matcher: WordMatcher, texts: pa.Array, langs: pa.Array, min_count: int, max_ratio: float | None):
    """(listed-word counts, whether each row is to be removed) for a batch; null where no list applies."""
    counts, flags = [], []
    for t, lang in zip(texts.to_pylist(), langs.to_pylist(), strict=True):
        r = matcher.count(t, lang) if t is not None else None
        counts.append(None if r is None else r[0])
        flags.append(None if r is None else bool(
            r[0] >= min_count or (max_ratio is not None and r[1] and r[0] / r[1] > max_ratio)))
    return pa.array(counts, pa.int64()), pa.array(flags, pa.bool_())


_WORDS = re.compile(r"\w+(?:['’-]\w+)*")


@register("word_filter", "filter", WordFilterParams, requires=[TEXT], adds=[BAD_WORDS])
def word_filter(ctx: StageContext, df: DataFrame, params: WordFilterParams) -> DataFrame:
    """Count listed words per document (`bad_words`) and remove at `min_count` (or above `max_ratio`)."""
    name = ctx.label
    matcher = WordMatcher(params, name)
    min_count, max_ratio = params.min_count, params.max_ratio

    def run(batches: Iterator[tuple[pa.Array, pa.Array]]) -> Iterator[pa.Array]:
        for texts, langs in batches:
            counts, flags = _count(matcher, texts, langs, min_count, max_ratio)
            yield pa.StructArray.from_arrays([counts, flags], names=["n", "hit"])

    lang = F.col(LANG) if LANG in df.columns else F.lit(None).cast("string")
    res = arrow_udf(run, "struct<n:bigint,hit:boolean>")(F.when(live(df), F.col(TEXT)), lang)
    out = df.withColumn("__wf", res).withColumn(BAD_WORDS, F.col("__wf.n"))
    out = mark_removed(out, F.coalesce(F.col("__wf.hit"), F.lit(False)), name, "listed_words").drop("__wf")
    _report(ctx, params, matcher)
    return out


@arrow_form("word_filter")
def word_filter_arrow(ctx: StageContext, params: WordFilterParams, columns: list[str]) -> ArrowStep:
    """`word_filter` inside a fused pass."""
    from pyspark.sql import types as T

    name = ctx.label
    matcher = WordMatcher(params, name)

    def fn(cols: dict) -> None:
        texts = live_arrow(cols, TEXT)
        langs = cols[LANG] if LANG in cols else pa.nulls(len(texts), pa.string())
        counts, flags = _count(matcher, texts, langs, params.min_count, params.max_ratio)
        cols[BAD_WORDS] = counts
        mark_removed_arrow(cols, flags, name, "listed_words")

    _report(ctx, params, matcher)
    return ArrowStep([T.StructField(BAD_WORDS, T.LongType(), True)], fn)


def _report(ctx: StageContext, params: WordFilterParams, matcher: WordMatcher) -> None:
    ctx.report_all({"lists": matcher.sizes, "min_count": params.min_count, "max_ratio": params.max_ratio,
                    "list_files": {k: os.path.basename(v) for k, v in params.lists.items()}})

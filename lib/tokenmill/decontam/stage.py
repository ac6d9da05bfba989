"""The `decontaminate` stage: flag, remove or cut documents that contain benchmark test items.

The index is broadcast once; documents are matched in Arrow batches where they are (no shuffle of the
training data). With `max_docs_per_ngram`, one extra pass counts in how many documents each matched
n-gram occurs (only matched n-gram ids are shuffled, never documents) and ignores the common ones.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.functions import arrow_udf

from ..pipeline.stage import (
    ArrowStep,
    StageContext,
    StageParams,
    arrow_form,
    arrow_summary,
    live,
    live_arrow,
    mark_removed,
    mark_removed_arrow,
    register,
)
from ..schema import CONTAMINATED_BY, CONTAMINATION, TEXT
from ..text.fast_ngrams import hash_tokens
from ..text.ngrams import ngram_hashes, tokens
from .benchmarks import BenchmarkSpec, load_items, resolve
from .index import Index, build_index, decide, find_hits, split_common, unlabel
from .report import add_to_report, describe_contamination, merge_reports, summarize_contamination

log = logging.getLogger("tokenmill.decontam")

_ENTRY = "struct<benchmark:string,item:string,kind:string,ngrams:int,excerpt:string>"
_ENTRY_PA = pa.struct([("benchmark", pa.string()), ("item", pa.string()), ("kind", pa.string()),
                       ("ngrams", pa.int32()), ("excerpt", pa.string())])


class DecontamParams(StageParams):
    """Benchmarks (preset names, YAML files or mappings) and what to do with matching documents."""

    benchmarks: list[str | dict[str, Any]]
    n: int = Field(default=13, ge=3)  # GPT-3 and NeMo Curator: 13-grams (docs/quality-filters.md §10)
    min_item_tokens: int = Field(default=8, ge=1)  # shorter items are indexed whole down to this length
    action: Literal["flag", "remove", "cut"] = "flag"
    max_docs_per_ngram: int = Field(default=10, ge=0)  # n-grams in more documents are common phrases (0: off)
    # ... unless they are this share of an item's n-grams or more: then the item itself is copied widely
    # (viral), and every document holding it is flagged.
    viral_share: float = Field(default=0.5, gt=0.0, le=1.0)
    cut_margin: int = Field(default=200, ge=0)  # NeMo Curator: 200 characters on each side
    min_fragment_chars: int = Field(default=200, ge=0)
    max_cuts: int = Field(default=10, ge=0)

    def fingerprint_extra(self) -> dict:
        """The resolved benchmark specs (a preset name -> its YAML, its files and dataset folders)."""
        out = []
        for i, b in enumerate(self.benchmarks):
            try:
                out.append(resolve(b, f"benchmarks[{i}]").model_dump(mode="json"))
            except Exception:  # noqa: BLE001 - reported with its place when the stage runs
                out.append(b)
        return {"benchmarks": out}


def load_index(params: DecontamParams, where: str) -> tuple[list[BenchmarkSpec], Index]:
    specs = [resolve(b, f"{where}: benchmarks[{i}]") for i, b in enumerate(params.benchmarks)]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        from ..errors import ConfigError

        raise ConfigError(f"{where}: benchmark names must be unique, got {names}")
    items = {s.name: load_items(s) for s in specs}
    return specs, build_index(specs, items, params.n, params.min_item_tokens)


def _hits_column(text: Column, bc) -> Column:
    """Pass 1: the (distinct) n-gram keys each document matches, common ones included."""

    def run(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
        index: Index = bc.value
        for arr in batches:
            hits = find_hits(arr, index)
            yield pa.array([sorted({h.key for h in hits[i]}) if i in hits else None for i in range(len(arr))],
                           pa.list_(pa.int64()))

    return arrow_udf(run, "array<bigint>")(text)


def _decision_column(text: Column, bc, bc_ignored, params: DecontamParams) -> Column:
    """Pass 2: matches (with excerpts), the cut text and the verdict per document."""
    schema = f"struct<entries:array<{_ENTRY}>,text:string,cuts:int,verdict:string>"

    def run(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
        index: Index = bc.value
        ignored = bc_ignored.value
        for arr in batches:
            out = decide(arr, index, params.action, params.cut_margin, params.min_fragment_chars,
                         params.max_cuts, ignored)
            yield pa.StructArray.from_arrays(
                [pa.array([d.entries if d else None for d in out], pa.list_(_ENTRY_PA)),
                 pa.array([d.text if d else None for d in out], pa.string()),
                 pa.array([d.cuts if d else None for d in out], pa.int32()),
                 pa.array([d.verdict if d else None for d in out], pa.string())],
                names=["entries", "text", "cuts", "verdict"])

    return arrow_udf(run, schema)(text)


def _common(df: DataFrame, text: Column, bc, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Key indices of n-grams found in more than ``limit`` documents, and their document counts (one small
    aggregation)."""
    keys = df.select(F.explode(_hits_column(text, bc)).alias("k"))
    rows = sorted(keys.groupBy("k").count().where(F.col("count") > limit).collect())  # small: common ones only
    return np.array([r["k"] for r in rows], dtype=np.int64), np.array([r["count"] for r in rows], dtype=np.int64)


def _examples(index: Index, ignored: np.ndarray, specs: list[BenchmarkSpec], params: DecontamParams) -> list[str]:
    """The text of up to 10 ignored n-grams (for the report)."""
    wanted = {int(index.table.keys[k]) for k in ignored[:10]}
    found: list[str] = []
    for spec in specs:
        for item in load_items(spec):
            toks = tokens(unlabel(item.text))
            if len(toks) < params.n:
                continue
            hs = ngram_hashes(hash_tokens(toks), params.n)
            for pos in np.nonzero(np.isin(hs, list(wanted)))[0].tolist():
                phrase = " ".join(toks[pos:pos + params.n])
                if phrase not in found:
                    found.append(phrase)
            if len(found) >= len(wanted):
                return found
    return found


def _common_pass(ctx: StageContext, df: DataFrame, params: DecontamParams, specs: list[BenchmarkSpec], index: Index,
                 bc, report: dict) -> tuple[DataFrame, np.ndarray]:
    """The n-grams in more than `max_docs_per_ngram` documents that are stock phrases (ignored), and ``df``
    kept for the flag pass. Both passes read `df`: it is kept (on local disk, spilled from the first pass)
    so the upstream plan (reading, extraction) runs once, not twice."""
    from pyspark import StorageLevel

    df = df.persist(StorageLevel.DISK_ONLY)
    ctx.after_commit.append(df.unpersist)
    ctx.on_abort.append(df.unpersist)
    # Kept by a job of its own first: the count below then reads it, so a task runs the stages before this
    # one (a Python pass) and the n-gram lookup one after the other, never as two Python workers at once.
    df.count()
    common, counts = _common(df, F.when(live(df), F.col(TEXT)), bc, params.max_docs_per_ngram)
    ignored, per_bench = split_common(index, common, counts, params.viral_share)
    report["ignored_common_ngrams"] = int(len(ignored))
    report["common"] = per_bench
    report["ignored_examples"] = _examples(index, ignored, specs, params) if len(ignored) else []
    viral = sum(len(b["viral_items"]) for b in per_bench.values())
    if len(common):
        log.info("decontaminate: %d n-grams are in more than %d documents: %d ignored as stock phrases, "
                 "the rest belong to %d viral item(s), flagged", len(common), params.max_docs_per_ngram,
                 len(ignored), viral)
    return df, ignored


@register("decontaminate", "filter", DecontamParams, requires=[TEXT], adds=[CONTAMINATION, CONTAMINATED_BY],
          audit=[CONTAMINATION, CONTAMINATED_BY], summarize=summarize_contamination, describe=describe_contamination)
def decontaminate(ctx: StageContext, df: DataFrame, params: DecontamParams) -> DataFrame:
    """Find benchmark test items in documents by n-gram overlap (and, for math, numbers); flag, remove or cut."""
    name = ctx.label
    specs, index = load_index(params, f"{ctx.config_path}: stages[{name}]")
    text = F.when(live(df), F.col(TEXT))
    report: dict = {"n": params.n, "action": params.action, "benchmarks": index.stats,
                    "max_docs_per_ngram": params.max_docs_per_ngram,
                    "index_ngrams": int(len(index.table.keys))}
    bc = ctx.spark.sparkContext.broadcast(index)  # once; executors keep it for the whole application
    ignored = np.zeros(0, np.int64)
    if params.max_docs_per_ngram:
        df, ignored = _common_pass(ctx, df, params, specs, index, bc, report)
        text = F.when(live(df), F.col(TEXT))
    bc_ignored = ctx.spark.sparkContext.broadcast(ignored)  # small: the common n-grams' key indices
    ctx.report_all(report)
    tmp = "__decontam"
    out = df.withColumn(tmp, _decision_column(text, bc, bc_ignored, params))
    entries = F.col(f"{tmp}.entries")
    out = (out.withColumn(CONTAMINATION, entries)
           .withColumn(CONTAMINATED_BY, F.transform(entries, lambda e: F.concat_ws(":", e["benchmark"], e["item"]))))
    found = F.coalesce(F.size(entries) > 0, F.lit(False))
    if params.action == "remove":
        out = mark_removed(out, found, name, "contaminated")
    elif params.action == "cut":
        verdict = F.col(f"{tmp}.verdict")
        out = mark_removed(out, verdict.isNotNull(), name, verdict)
        out = out.withColumn(TEXT, F.when(found & verdict.isNull(), F.col(f"{tmp}.text")).otherwise(F.col(TEXT)))
    return out.drop(tmp)


@arrow_form("decontaminate", prepares=lambda p: bool(p.max_docs_per_ngram))
def decontaminate_arrow(ctx: StageContext, params: DecontamParams, columns: list[str]) -> ArrowStep:
    """Flag, remove or cut inside a fused pass. With `max_docs_per_ngram`, the count of common n-grams is a
    job of its own over the frame entering the stage (the step's `prepare`, run before the pass)."""
    from pyspark.sql import types as T

    name = ctx.label
    specs, index = load_index(params, f"{ctx.config_path}: stages[{name}]")
    report: dict = {"n": params.n, "action": params.action, "benchmarks": index.stats,
                    "max_docs_per_ngram": params.max_docs_per_ngram, "index_ngrams": int(len(index.table.keys))}
    bc = ctx.spark.sparkContext.broadcast(index)
    state: dict = {"ignored": ctx.spark.sparkContext.broadcast(np.zeros(0, np.int64))}

    def prepare(df: DataFrame) -> DataFrame:
        df, ignored = _common_pass(ctx, df, params, specs, index, bc, report)
        state["ignored"] = ctx.spark.sparkContext.broadcast(ignored)  # small: the common n-grams' key indices
        ctx.report_all(report)
        return df

    def fn(cols: dict) -> None:
        import pyarrow.compute as pc

        out = decide(live_arrow(cols, TEXT), bc.value, params.action, params.cut_margin, params.min_fragment_chars,
                     params.max_cuts, state["ignored"].value)
        entries = [d.entries if d else None for d in out]
        cols[CONTAMINATION] = pa.array(entries, pa.list_(_ENTRY_PA))
        cols[CONTAMINATED_BY] = pa.array(
            [None if e is None else [":".join(v for v in (x["benchmark"], x["item"]) if v is not None) for x in e]
             for e in entries], pa.list_(pa.string()))
        found = pa.array([bool(e) if e is not None else None for e in entries], pa.bool_())
        if params.action == "remove":
            mark_removed_arrow(cols, found, name, "contaminated")
        elif params.action == "cut":
            verdict = pa.array([d.verdict if d else None for d in out], pa.string())
            mark_removed_arrow(cols, pc.is_valid(verdict), name, verdict)
            cut = pa.array([d.text if d else None for d in out], pa.string())
            keep_cut = pc.fill_null(pc.and_kleene(found, pc.is_null(verdict)), False)
            cols[TEXT] = pc.if_else(keep_cut, cut, cols[TEXT])

    ctx.report_all(report)
    entry = T.StructType([T.StructField(n, T.IntegerType() if n == "ngrams" else T.StringType(), True)
                          for n in (f.name for f in _ENTRY_PA)])
    fields = [T.StructField(CONTAMINATION, T.ArrayType(entry, True), True),
              T.StructField(CONTAMINATED_BY, T.ArrayType(T.StringType(), False), True)]
    # `state` is pickled with the pass's function, after `prepare` has set it
    return ArrowStep(fields, fn, prepare if params.max_docs_per_ngram else None)


arrow_summary("decontaminate", add_to_report, merge_reports)

"""Is this dataset ready for SFT, DPO or GRPO training, and if not, what to change: one Spark pass over the
mapped rows gives the columns found, the mapping and why, counts and example rows per problem, token
lengths with a real tokenizer, duplicate prompts (exact, and near by the MinHash dedup stage), languages
(the langid stage) and a verdict with the command that fixes what can be fixed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from ..errors import ConfigError
from ..pipeline.stage import StageContext
from ..schema import ID, META, REMOVED_BY, SOURCE, TEXT
from .checks import BLOCKING, DESCRIPTIONS, numeric_answer, problems
from .layouts import CANONICAL, LAYOUTS, Detected
from .read import peek, read_instruct, resolve_layout
from .stage import part_text

log = logging.getLogger("tokenmill.instruct")

READY, CLEAN, UNUSABLE = "ready", "ready after mapping/cleaning", "unusable"
MATH_LAYOUTS = {"gsm8k", "math"}


@dataclass(frozen=True)
class ValidateOptions:
    use: str
    tokenizer: str | None = None
    max_length: int = 4096
    near_threshold: float = 0.8
    near_ngram: int = 3  # prompts are short: word 3-grams (5-grams leave most prompts without a shingle)
    langid: bool = True
    examples: int = 3
    math: bool | None = None  # GRPO answers: numbers/expressions (None: decided from the layout and answers)
    usable_min: float = 0.5  # fewer usable rows than this share: unusable


def describe_type(value: Any) -> str:
    """A JSON value's type, Arrow-style: string, int64, double, bool, list<struct<from, value>>, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "struct<" + ", ".join(f"{k}: {describe_type(v)}" for k, v in value.items()) + ">"
    if isinstance(value, list):
        inner = {describe_type(v) for v in value[:5]}
        return f"list<{inner.pop() if len(inner) == 1 else ' | '.join(sorted(inner)) or 'null'}>"
    return type(value).__name__


def columns_found(sample: list[dict]) -> dict[str, str]:
    """Each field of the sampled records with its type (the first non-null value's)."""
    out: dict[str, str] = {}
    for record in sample:
        for k, v in record.items():
            if out.get(k, "null") == "null":
                out[k] = describe_type(v)
    return out


def top_examples(pairs: DataFrame, key: str, k: int) -> dict[str, list[dict]]:
    """The first ``k`` rows (by file and line) per ``key`` value: ranked first within 64 hash buckets per
    key, then across them, so one common key never sorts all its rows in one task."""
    line = F.coalesce(F.regexp_extract(F.col("where"), r"(\d+)", 1).cast("long"), F.lit(0))
    order = [F.col("file"), line, F.col(ID)]
    bucket = F.pmod(F.xxhash64(ID), F.lit(64))
    first = (pairs.withColumn("__b", bucket)
             .withColumn("__r", F.row_number().over(Window.partitionBy(key, "__b").orderBy(*order)))
             .where(F.col("__r") <= k))
    top = first.withColumn("__r2", F.row_number().over(Window.partitionBy(key).orderBy(*order))).where(F.col("__r2") <= k)
    out: dict[str, list[dict]] = {}
    for r in top.orderBy(key, "__r2").collect():  # small: k rows per key
        entry = {"id": r[ID], "where": r["where"]}
        if r["orig_id"]:
            entry["orig_id"] = r["orig_id"]
        out.setdefault(r[key], []).append(entry)
    return out


def _stats(col: Column, name: str) -> list[Column]:
    return [F.min(col).alias(f"{name}_min"), F.percentile_approx(col, [0.5, 0.95], 10000).alias(f"{name}_q"),
            F.max(col).alias(f"{name}_max")]


def _token_stats(rows: DataFrame, use: str, opts: ValidateOptions) -> dict:
    from ..tokens.count import ship, tokens_column

    spec = ship(rows.sparkSession, opts.tokenizer)
    counted = rows.select(tokens_column(part_text(use, "prompt"), spec).alias("p"),
                          tokens_column(part_text(use, "response"), spec).alias("r"))
    counted = counted.withColumn("t", F.col("p") + F.col("r"))
    r = counted.agg(*_stats(F.col("p"), "prompt"), *_stats(F.col("r"), "response"), *_stats(F.col("t"), "total"),
                    F.avg((F.col("t") > opts.max_length).cast("double")).alias("over")).first()
    out = {"tokenizer": opts.tokenizer, "max_length": opts.max_length,
           "share_over_max_length": round(r["over"] or 0.0, 6)}
    for name in ("prompt", "response", "total"):
        q = r[f"{name}_q"] or [None, None]
        out[name] = {"min": r[f"{name}_min"], "median": q[0], "p95": q[1], "max": r[f"{name}_max"]}
    out["note"] = "total = prompt + response tokens, without the chat template's own tokens"
    return out


def _duplicates(spark: SparkSession, rows: DataFrame, use: str, opts: ValidateOptions, work_dir: str, n: int) -> dict:
    prompt = F.lower(F.trim(part_text(use, "prompt")))
    distinct = rows.select(F.sha2(prompt, 256).alias("h")).distinct().count()
    out = {"exact_prompt_rate": round(1 - distinct / n, 6) if n else 0.0}
    from ..dedup.minhash_stage import MinHashDedupParams, minhash_dedup

    frame = rows.select(ID, part_text(use, "prompt").alias(TEXT), SOURCE, F.lit(None).cast("string").alias(REMOVED_BY))
    params = MinHashDedupParams(stage="minhash_dedup", threshold=opts.near_threshold, ngram=opts.near_ngram,
                                estimate_sample=0)
    ctx = StageContext(spark, work_dir=work_dir, label="near_duplicate_prompts")
    deduped = minhash_dedup(ctx, frame, params)
    near = deduped.where(F.col(REMOVED_BY).isNotNull()).count()
    out.update(near_prompt_rate=round(near / n, 6) if n else 0.0, near_threshold=opts.near_threshold,
               near_ngram=opts.near_ngram, near_method="minhash_dedup (exact Jaccard verification)")
    return out


def _languages(rows: DataFrame, n: int) -> dict:
    from ..langid.config import LangidParams
    from ..langid.stage import build_spec, langid_column

    spec = build_spec(rows.sparkSession, LangidParams(stage="langid"))
    found = (rows.select(langid_column(F.substring(TEXT, 1, 4000), spec).getField("lang").alias("lang"))
             .groupBy("lang").count().orderBy(F.desc("count"), "lang").limit(10).collect())  # small: 10 rows
    return {"backend": "cld2", "top": {r["lang"]: round(r["count"] / n, 4) for r in found}}


def validate(spark: SparkSession, src, where: str, work_dir: str, opts: ValidateOptions,
             source_arg: str | None = None) -> dict:
    """The validation report of one source for ``opts.use`` (a dict, written as validation.json);
    ``source_arg`` is how the user named the source (for the commands in the verdict)."""
    m = src.instruct
    sample = peek(src, where, work_dir, m.detect_rows)
    report: dict[str, Any] = {"source": src.name, "source_arg": source_arg, "for": opts.use,
                              "columns": columns_found(sample)}
    try:
        detected = resolve_layout(m, sample, where)
    except ConfigError as exc:
        report["mapping"] = {"layout": None, "why": str(exc)}
        report["verdict"] = {"status": UNUSABLE, "reasons": [f"no mapping for {opts.use}: {exc}"], "commands": []}
        return report
    report["mapping"] = _mapping(detected, opts.use)
    df = read_instruct(spark, src, where, work_dir, None, detected, sample).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        return _measure(spark, df, detected, report, work_dir, opts)
    finally:
        df.unpersist()


def _mapping(detected: Detected, use: str) -> dict:
    out = {"layout": detected.layout, "why": detected.why, "canonical": detected.layout in CANONICAL[use]}
    if detected.ambiguous:
        out["ambiguous"] = detected.candidates
        out["choose_with"] = [f"--set instruct.layout={c}" for c in detected.candidates]
    return out


def _measure(spark: SparkSession, df: DataFrame, detected: Detected, report: dict, work_dir: str,
             opts: ValidateOptions) -> dict:
    use = opts.use
    math = opts.math
    rows = df.where(F.col(REMOVED_BY).isNull())
    if use == "grpo" and math is None:
        if detected.layout in MATH_LAYOUTS:
            math = True
        else:
            share = rows.agg(F.avg(numeric_answer(F.col("answer")).cast("double"))).first()[0] or 0.0
            math = share >= 0.5
    found = df.select(ID, META, F.when(F.col(REMOVED_BY).isNull(), problems(use, math if math is not None else True))
                      .otherwise(F.array(F.col(REMOVED_BY))).alias("__p"))
    pairs = found.select(ID, F.col(META).getItem("file").alias("file"), F.col(META).getItem("where").alias("where"),
                         F.col(META).getItem("orig_id").alias("orig_id"), F.explode("__p").alias("problem"))
    blocking = F.exists("__p", lambda p: p.startswith("read:") | p.isin(*sorted(BLOCKING)))
    totals = found.agg(F.count(F.lit(1)).alias("n"), F.sum(blocking.cast("long")).alias("blocked"),
                       F.sum((F.size("__p") > 0).cast("long")).alias("flagged")).first()
    n = totals["n"]
    counts = {r["problem"]: r["count"] for r in pairs.groupBy("problem").count().collect()}  # small: one row per problem
    examples = top_examples(pairs, "problem", opts.examples) if counts else {}
    read_removed = {k[len("read:"):]: {"count": v, "examples": examples.get(k, [])}
                    for k, v in sorted(counts.items()) if k.startswith("read:")}
    kept = n - sum(v["count"] for v in read_removed.values())
    report["rows"] = {"read": n, "mapped": kept, "removed_at_read": read_removed,
                      "usable": n - (totals["blocked"] or 0), "clean": n - (totals["flagged"] or 0)}
    report["problems"] = {k: {"count": v, "share": round(v / kept, 6) if kept else 0.0,
                              "description": DESCRIPTIONS[k], "blocking": k in BLOCKING,
                              "examples": examples.get(k, [])}
                          for k, v in sorted(counts.items()) if not k.startswith("read:")}
    if use == "grpo":
        report["answers"] = "numbers or expressions (math)" if math else "short strings"
    if kept and opts.tokenizer:
        report["tokens"] = _token_stats(rows, use, opts)
    elif kept:
        report["tokens"] = {"note": "pass --tokenizer <local tokenizer directory> for token lengths"}
    if kept:
        report["duplicates"] = _duplicates(spark, rows, use, opts, f"{work_dir}/validate-dedup", kept)
        if opts.langid:
            report["languages"] = _languages(rows, kept)
    report["verdict"] = verdict(report, opts)
    return report


def verdict(report: dict, opts: ValidateOptions) -> dict:
    """ready / ready after mapping/cleaning (with the commands) / unusable (with the reasons)."""
    rows, mapping = report["rows"], report["mapping"]
    n = rows["read"]
    if n == 0:
        return {"status": UNUSABLE, "reasons": ["the source has no rows"], "commands": []}
    usable = rows["usable"] / n
    if usable < opts.usable_min:
        worst = sorted([(v["count"], f"read:{k}") for k, v in rows["removed_at_read"].items()]
                       + [(v["count"], k) for k, v in report["problems"].items() if v["blocking"]], reverse=True)
        top = ", ".join(f"{name} ({count})" for count, name in worst[:3])
        return {"status": UNUSABLE, "commands": [],
                "reasons": [f"only {usable:.1%} of {n} rows can be used for {opts.use} (needed: "
                            f"{opts.usable_min:.0%}); most rows fail on: {top}"]}
    reasons, commands = [], []
    layout_arg = f"--set instruct.layout={mapping['layout']}"
    src = "--source " + report["source_arg"] if report.get("source_arg") else "--source <source>"
    if mapping.get("ambiguous"):
        reasons.append(f"several layouts match ({', '.join(mapping['ambiguous'])}); {mapping['layout']} is used")
    if not mapping["canonical"] or mapping.get("ambiguous"):
        reasons.append(f"the {mapping['layout']} layout is converted to the canonical {opts.use} format")
        commands.append(f"tokenmill convert_format {src} --for {opts.use} {layout_arg} --output <folder>")
    bad = {k: v["count"] for k, v in report["problems"].items()}
    bad.update({f"read:{k}": v["count"] for k, v in rows["removed_at_read"].items()})
    if bad:
        listed = ", ".join(f"{k} ({v})" for k, v in sorted(bad.items(), key=lambda kv: (-kv[1], kv[0])))
        reasons.append(f"{n - rows['clean']} of {n} rows have problems: {listed}")
        commands.append(f"tokenmill filter_dataset {src} --for {opts.use} {layout_arg} --output <folder>")
    if not reasons:
        return {"status": READY, "reasons": [f"all {n} rows map to the canonical {opts.use} format with no problem"],
                "commands": []}
    return {"status": CLEAN, "reasons": reasons, "commands": commands}


def format_report(report: dict) -> str:
    """The report as the console table."""
    lines = [f"validate  {report['source']} for {report['for']}"]
    lines.append("columns   " + ", ".join(f"{k}: {v}" for k, v in report["columns"].items()))
    mp = report["mapping"]
    lines.append(f"mapping   {mp.get('layout')}: {mp.get('why')}")
    for hint in mp.get("choose_with", []):
        lines.append(f"          or: {hint}")
    if "rows" in report:
        r = report["rows"]
        lines.append(f"rows      {r['read']:,} read, {r['mapped']:,} mapped, {r['clean']:,} clean, {r['usable']:,} usable")
        lines.append(f"\n{'problem':<28}{'rows':>8}{'share':>9}  examples")
        for k, v in r["removed_at_read"].items():
            ex = ", ".join(e["where"] or e["id"] for e in v["examples"])
            lines.append(f"{'read:' + k:<28}{v['count']:>8,}{'':>9}  {ex}")
        for k, v in report["problems"].items():
            ex = ", ".join(e.get("orig_id") or e["where"] or e["id"] for e in v["examples"])
            lines.append(f"{k:<28}{v['count']:>8,}{v['share']:>9.2%}  {ex}")
    tok = report.get("tokens")
    if tok and "prompt" in tok:
        lines.append(f"\n{'tokens':<10}{'min':>8}{'median':>8}{'p95':>8}{'max':>8}")
        for name in ("prompt", "response", "total"):
            s = tok[name]
            lines.append(f"{name:<10}" + "".join(f"{s[k] if s[k] is not None else '-':>8}" for k in ("min", "median", "p95", "max")))
        lines.append(f"over max_length {tok['max_length']}: {tok['share_over_max_length']:.2%}")
    elif tok:
        lines.append(f"tokens    {tok['note']}")
    if "duplicates" in report:
        d = report["duplicates"]
        lines.append(f"duplicates  exact prompts {d['exact_prompt_rate']:.2%}, near (Jaccard >= {d['near_threshold']}) "
                     f"{d['near_prompt_rate']:.2%}")
    if "languages" in report:
        lines.append("languages " + ", ".join(f"{k} {v:.1%}" for k, v in report["languages"]["top"].items()))
    v = report["verdict"]
    lines.append(f"\nverdict   {v['status']}")
    lines += [f"          - {r}" for r in v["reasons"]]
    lines += [f"          $ {c}" for c in v["commands"]]
    return "\n".join(lines)


__all__ = ["LAYOUTS", "ValidateOptions", "format_report", "validate", "verdict"]

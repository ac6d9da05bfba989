"""The langid_eval job: identify a labelled JSONL (`text`, `lang`) in Spark and report accuracy."""

from __future__ import annotations

import argparse
import json

from pyspark.sql import functions as F

from ..cli import Job, spark_args
from ..config import load_yaml, validate
from ..errors import ConfigError
from .codes import canonical, to_style
from .config import LangidParams
from .evaluate import SCORE_BUCKETS, Count, format_report, report
from .stage import LANG_BACKEND, build_spec, langid_column


def eval_params(path: str, overrides: list[str]) -> LangidParams:
    """A `langid` stage entry from ``path``: a bare entry, or the first langid stage of a pipeline config."""
    raw = load_yaml(path, overrides)
    if "stages" in raw:
        entries = [s for s in raw["stages"] if isinstance(s, dict) and s.get("stage") == "langid"]
        if not entries:
            raise ConfigError(f"{path}: no `langid` stage in stages")
        raw = entries[0]
    raw.setdefault("stage", "langid")
    return validate(LangidParams, raw, path, overrides=overrides)


def evaluate_langid(spark, path: str, params: LangidParams, text_field: str = "text", label_field: str = "lang",
                    long_chars: int = 50) -> dict:
    """Identify a labelled JSONL in Spark and report per-language precision/recall/F1, confusions and the
    threshold curve (aggregated in Spark: only one row per language pair and score bucket comes back)."""
    df = spark.read.json(path)
    missing = [c for c in (text_field, label_field) if c not in df.columns]
    if missing:
        raise ConfigError(f"{path}: no field(s) {', '.join(missing)} in the records "
                          f"(fields: {', '.join(df.columns) or 'none'})")
    text, label = F.col(text_field), F.col(label_field)
    bad = df.where(text.isNull() | label.isNull()).select(F.input_file_name().alias("f")).limit(1).collect()  # small: 1 row
    if bad:
        raise ConfigError(f"{bad[0]['f']}: a record has no `{text_field}` or `{label_field}`")
    golds = [r[0] for r in df.select(label.cast("string")).distinct().collect()]  # small: one row per language
    gold_map = {g: to_style(canonical(g, params.aliases), params.codes) for g in golds}
    mapping = F.create_map(*[x for k, v in sorted(gold_map.items()) for x in (F.lit(k), F.lit(v))])
    spec = build_spec(spark, params)
    tagged = (df.select(mapping[label.cast("string")].alias("gold"), text.alias("text"))
              .withColumn("r", langid_column(F.col("text"), spec)))
    rows = (tagged.groupBy(F.col("gold"), F.col("r.lang").alias("pred"),
                           F.floor(F.col("r.lang_score") * SCORE_BUCKETS).cast("int").alias("bucket"),
                           (F.length("text") >= long_chars).alias("long"),
                           F.col(f"r.{LANG_BACKEND}").alias("backend"))
            .count().collect())  # small: languages^2 x score buckets
    rep = report([Count(r["gold"], r["pred"], r["bucket"], r["long"], r["count"]) for r in rows])
    backends: dict[str, int] = {}
    for r in rows:
        backends[r["backend"] or "none"] = backends.get(r["backend"] or "none", 0) + r["count"]
    rep["decided_by"] = dict(sorted(backends.items()))
    rep["config"] = params.model_dump(mode="json")
    rep["long_chars"] = long_chars
    return rep


def langid_eval_job(args: argparse.Namespace) -> int:
    from ..spark import build_session

    overrides = list(args.overrides) + ([f"backend={args.backend}"] if args.backend else [])
    params = eval_params(args.config, overrides)
    spark = build_session(args.spark_profile, app_name="tokenmill-langid-eval")
    try:
        rep = evaluate_langid(spark, args.input, params, args.text_field, args.label_field, args.long_chars)
    finally:
        spark.stop()
    print(f"langid_eval: {args.input}, backend {params.backend}; decided by {rep['decided_by']}\n")
    print(format_report(rep, args.long_chars))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(rep, handle, indent=1)
        print(f"\nreport {args.out}")
    return 0


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="labelled JSONL (any fsspec/Hadoop path): one text and its language per line")
    parser.add_argument("--config", default="conf/pipelines/langid_eval.yaml",
                        help="a langid stage entry, or a pipeline config whose first langid stage is used")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a langid setting, e.g. --set cascade.min_score=0.8")
    parser.add_argument("--backend", default=None, choices=["fasttext", "cld2", "lingua", "cascade"])
    parser.add_argument("--text-field", default="text")
    parser.add_argument("--label-field", default="lang")
    parser.add_argument("--long-chars", type=int, default=50, help="also report texts of at least this many characters")
    parser.add_argument("--out", default=None, help="write the report as JSON")
    spark_args(parser)


JOBS = [Job("langid_eval", "per-language precision/recall/F1, confusions and threshold curve of a langid setup "
            "on a labelled JSONL", add_args, langid_eval_job)]

"""`quality_rules` job: re-apply a rule set with new thresholds to stored signals (no text is read again).

The "tag, then decide" half of the design: a pipeline's output keeps the `qs_*` columns, so trying a
threshold is an aggregation over them — per rule, how many documents fail it (every rule counted, not
only the first) and how many would be kept.
"""

from __future__ import annotations

import argparse
import json

from pyspark.sql import functions as F

from ..cli import Job, output_arg, spark_args
from ..config import apply_override
from ..errors import ConfigError
from ..pipeline.commit import resolve_data
from ..pipeline.stage import StageContext
from ..schema import REMOVED_BY
from .config import QualityFilterParams
from .stage import QUALITY_FAILED, quality_filter


def rules_params(rules: str, assignments: list[str] | None = None) -> QualityFilterParams:
    """A `quality_filter` entry for ``rules`` with `--set` overrides; a line-modifying rule set is refused
    (its decisions need the text, not only the stored signals)."""
    data: dict = {"stage": "quality_filter", "rules": rules}
    for assignment in assignments or []:
        data = apply_override(data, assignment)
    params = QualityFilterParams.model_validate(data)
    if params.rule_set.modifier is not None:
        raise ConfigError(f"rule set {params.rule_set.name!r} rewrites lines: its decisions need the text, "
                          "run it as a `quality_filter` stage in a pipeline instead")
    return params


def apply_rules(spark, path: str, params: QualityFilterParams) -> dict:
    """Re-apply a rule set to the `qs_*` signals stored in a pipeline output: documents, kept, and the
    documents failing each rule (every rule a document fails, not only the first)."""
    path = path.rstrip("/")
    df = spark.read.parquet(resolve_data(spark, f"{path}/data" if not path.endswith("/data") else path))
    df = df.withColumn(REMOVED_BY, F.lit(None).cast("string")).drop(QUALITY_FAILED)
    ctx = StageContext(spark, config_path="quality_rules", label="quality_filter")
    out = quality_filter(ctx, df, params)
    rows = (out.select(F.explode_outer(QUALITY_FAILED).alias("rule"))
            .groupBy("rule").count().collect())  # small: one row per rule
    return {"documents": df.count(), "kept": out.where(F.col(REMOVED_BY).isNull()).count(),
            "failed_by_rule": {r["rule"]: r["count"] for r in rows if r["rule"] is not None}}


def quality_rules_job(args: argparse.Namespace) -> int:
    from ..spark import build_session

    params = rules_params(args.rules, args.set)
    spark = build_session(args.spark_profile, app_name="tokenmill-quality-rules")
    result = apply_rules(spark, args.input, params)
    total, kept, failed = result["documents"], result["kept"], result["failed_by_rule"]
    print(f"{'rule':<32}{'threshold':>22}{'documents failing':>20}")
    for r in params.rule_set.active():
        bound = " ".join(x for x in (f"min {r.min:g}" if r.min is not None else "",
                                     f"max {r.max:g}" if r.max is not None else "",
                                     f"== {r.fail_if}" if r.fail_if is not None else "") if x)
        print(f"{r.name:<32}{bound:>22}{failed.get(r.name, 0):>20,}")
    print(f"\ndocuments {total:,}   kept {kept:,}   removed {total - kept:,}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"input": args.input, "rules": params.rule_set.model_dump(mode="json"), **result}, fh,
                      indent=1)
    return 0


def add_args(parser: argparse.ArgumentParser) -> None:
    output_arg(parser, "its data/ with the qs_* signal columns")
    parser.add_argument("--rules", required=True, help="rule set name (conf/presets/quality/) or YAML path")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="e.g. overrides.gopher_short_doc.min=100 or disable=[gopher_long_doc]")
    parser.add_argument("--out", default=None, help="write the counts as JSON")
    spark_args(parser)


JOBS = [Job("quality_rules", "re-apply a quality rule set with new thresholds to stored qs_* signals "
            "(per-rule counts, nothing recomputed)", add_args, quality_rules_job)]

"""The quality part of the manifest: documents per failed rule (every rule a document fails, not only the
first) and what the line modifiers removed, aggregated from the written output."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..schema import REMOVED_BY

_MODIFIERS = {"c4": ("c4_lines_removed", "c4_chars_removed"), "refinedweb": ("rw_lines_removed", "rw_chars_removed")}


def quality_report(kept: DataFrame, removed: DataFrame | None) -> dict:
    """{failed_by_rule: {stage: {rule: docs}}, line_modifiers: {kind: {docs_changed, lines_removed, chars_removed}}}."""
    out: dict = {}
    if removed is not None and "quality_failed" in removed.columns:
        rows = (removed.where(F.col("quality_failed").isNotNull())
                .select(F.split(F.col(REMOVED_BY), ":").getItem(0).alias("stage"),
                        F.explode("quality_failed").alias("rule"))
                .groupBy("stage", "rule").count().collect())  # small: one row per stage and rule
        by: dict[str, dict[str, int]] = {}
        for r in rows:
            by.setdefault(r["stage"], {})[r["rule"]] = r["count"]
        out["failed_by_rule"] = {k: dict(sorted(v.items())) for k, v in sorted(by.items())}
    mods = {}
    for kind, (lines, chars) in _MODIFIERS.items():
        if lines in kept.columns:
            r = kept.agg(F.sum(F.when(F.col(lines) > 0, 1).otherwise(0)).alias("docs"),
                         F.sum(lines).alias("lines"), F.sum(chars).alias("chars")).first()
            mods[kind] = {"kept_docs_changed": int(r["docs"] or 0), "lines_removed": int(r["lines"] or 0),
                          "chars_removed": int(r["chars"] or 0)}
    if mods:
        out["line_modifiers"] = mods
    return out


def summarize_quality(out) -> dict:
    """The manifest's `output.quality`, when a quality filter ran."""
    return {"quality": quality_report(out.kept, out.removed)}

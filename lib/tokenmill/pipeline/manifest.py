"""The run manifest: config, inputs, per-stage counts in/out per reason, what each stage summarised of the
output, versions and wall time; and the console lines the CLI prints from it."""

from __future__ import annotations

import importlib.metadata
import platform
import sys

from pyspark.sql import SparkSession


def versions(spark: SparkSession | None = None) -> dict[str, str]:
    """Versions of Python, Spark and the libraries whose behaviour shapes the output."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in ("tokenmill", "pyspark", "pyarrow", "pandas", "numpy", "isal", "resiliparse", "trafilatura",
                "datasets", "fsspec"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    if spark is not None:
        out["spark"] = spark.version
    return out


def stage_table(stages: list[dict], counts: dict, rows_in_first: int | None) -> list[dict]:
    """Per stage: rows in, removed per reason, rows out; each stage's input is the previous output.

    ``counts['removed']`` maps "<stage>:<reason>" -> {source: n}; a read stage's input is everything it saw.
    """
    removed_total: dict[str, dict[str, int]] = {}
    for tag, per_source in counts["removed"].items():
        stage, _, reason = tag.partition(":")
        removed_total.setdefault(stage, {})[reason] = sum(per_source.values())
    all_removed = sum(sum(r.values()) for r in removed_total.values())
    rows_in = rows_in_first if rows_in_first is not None else counts["kept"] + all_removed
    table = []
    for entry in stages:
        removed = dict(sorted(removed_total.get(entry["label"], {}).items()))
        rows_out = rows_in - sum(removed.values())
        table.append({"stage": entry["label"], "name": entry["name"], "kind": entry["kind"],
                      "rows_in": rows_in, "removed": removed, "rows_out": rows_out})
        rows_in = rows_out
    return table


def add_volume(table: list[dict], volume: dict) -> None:
    """Characters (and tokens, where the run counted them) into, removed by and out of each stage, from the
    sums the final write observed: what is kept, plus what each later stage removed. Characters are those
    written (after a modifier such as C4's line filter); a stage whose removed rows carry no text (written
    without keep_removed) gets none."""
    for key in ("chars", "tokens"):
        kept = volume.get(f"kept_{key}")
        if kept is None:
            continue
        out = kept
        for row in reversed(table):
            removed = volume.get(f"removed_{key}", {}).get(row["stage"]) or 0
            row[f"{key}_out"], row[f"{key}_in"] = out, out + removed
            out += removed
        if key == "tokens":  # tokens exist from the tokens stage on: earlier rows would undercount
            first = next((i for i, r in enumerate(table) if r["name"] == "tokens"), None)
            for row in table[:first] if first is not None else table:
                row.pop("tokens_in", None)
                row.pop("tokens_out", None)


def format_stage_table(table: list[dict]) -> str:
    """The stage counts as an aligned text table for the console."""
    lines = [f"{'stage':<16}{'rows in':>12}{'removed':>12}{'rows out':>12}  reasons"]
    for row in table:
        reasons = ", ".join(f"{k}={v}" for k, v in row["removed"].items()) or "-"
        lines.append(f"{row['stage']:<16}{row['rows_in']:>12,}{sum(row['removed'].values()):>12,}"
                     f"{row['rows_out']:>12,}  {reasons}")
    return "\n".join(lines)


def check_balance(rows: list[dict], kept: int) -> None:
    """rows in = rows kept + rows removed, for every stage: a failure here is a bug, never data."""
    for row in rows:
        if row["rows_in"] != row["rows_out"] + sum(row["removed"].values()):
            raise AssertionError(f"stage {row['stage']} does not balance: {row}")
    if rows and rows[-1]["rows_out"] != kept:
        raise AssertionError(f"output has {kept} rows, stage counts say {rows[-1]['rows_out']}")

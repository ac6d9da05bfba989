"""The two stages every pipeline has, `read` (all configured sources) and `write` (the output), and
`filter_rows`, a rule of the user's own as a Spark SQL condition."""

from __future__ import annotations

from functools import reduce

from pydantic import Field
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..io.sources import fetch_report, read_source, read_stats
from ..schema import CANONICAL_COLUMNS, META, REMOVED_BY, SOURCE
from .passes import with_parts
from .stage import (
    Deferred,
    StageContext,
    StageParams,
    WriteParams,
    Written,
    arrow_summary,
    live,
    mark_removed,
    register,
)

# meta keys a reader sets on a kept document it had to repair (see io/warc.py): counted per source.
READ_NOTES = ("length_mismatch", "id_disambiguated", "decode_errors")


def read_notes(out: Written) -> dict:
    """Kept documents a reader repaired, per note and source: counted, never silent."""
    if META not in out.kept.columns:
        return {}
    notes = [F.sum(F.col(META).getItem(k).isNotNull().cast("long")).alias(k) for k in READ_NOTES]
    rows = out.kept.groupBy(SOURCE).agg(*notes).collect()  # small: one row per source
    found = {k: {r[SOURCE]: r[k] for r in rows if r[k]} for k in READ_NOTES}
    found = {k: v for k, v in found.items() if v}
    return {"read_notes": found} if found else {}


def _read_notes_add(acc: dict | None, table, kept: bool) -> dict | None:
    """`read_notes` of one written table: {note: {source: rows}} (kept rows only)."""
    import pyarrow.compute as pc

    if not kept or META not in table.column_names or table.num_rows == 0:
        return acc
    meta, sources = table.column(META), table.column(SOURCE)
    for key in READ_NOTES:
        has = pc.is_valid(pc.map_lookup(meta, key, "first"))
        if not pc.any(has).as_py():
            continue
        acc = acc if acc is not None else {}
        into = acc.setdefault(key, {})
        for pair in pc.value_counts(pc.filter(sources, has)).to_pylist():
            into[pair["values"]] = into.get(pair["values"], 0) + pair["counts"]
    return acc


def _read_notes_merge(accs: list, spark, folder: str) -> dict:
    found: dict = {}
    for acc in accs:
        for key, by_source in (acc or {}).items():
            into = found.setdefault(key, {})
            for src, n in by_source.items():
                into[src] = into.get(src, 0) + n
    found = {k: dict(sorted(found[k].items())) for k in READ_NOTES if found.get(k)}
    return {"read_notes": found} if found else {}


@register("read", "read", adds=(*CANONICAL_COLUMNS, REMOVED_BY), summarize=read_notes)
def read(ctx: StageContext, df: DataFrame | None, params: StageParams) -> DataFrame:
    """Read every configured source into the canonical schema; bad records become counted skips."""
    frames = []
    # Counts every file a task opens: equal to the number of files unless something reads the input twice.
    opens = read_stats(ctx.spark)
    for i, src in enumerate(ctx.sources):
        frames.append(read_source(ctx.spark, src, f"{ctx.config_path}: sources[{i}]", ctx.work_dir, opens))
    ctx.report("files_opened", Deferred(lambda: opens.value["files_opened"]))
    # remote files that needed retries (throttling, resets), resumed reads, and files given up
    ctx.report("fetch", Deferred(lambda: fetch_report(opens.value)["fetch"]))
    # Sources may carry different extra columns (an `audio` struct, instruction columns): missing ones are null.
    # Marked with its parts: a fused pass right after the read reads each source's files in its own tasks.
    return with_parts(reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames), frames)


arrow_summary("read", _read_notes_add, _read_notes_merge)


@register("write", "write", WriteParams, requires=lambda p: p.partition_by)
def write(ctx: StageContext, df: DataFrame | None, params: WriteParams) -> DataFrame:
    """Pass-through: the engine writes the result with these params (io/writer.py)."""
    return df


class FilterRowsParams(StageParams):
    """Remove the rows where a Spark SQL condition holds, e.g. Common Voice's own validation rule
    `cast(meta['up_votes'] as int) < 2 or cast(meta['down_votes'] as int) >= cast(meta['up_votes'] as int)`."""

    when: str = Field(min_length=1)  # a boolean Spark SQL expression over the row's columns
    reason: str = Field(default="condition", pattern=r"^[a-z0-9_]+$")  # the removal reason (filter_rows:<reason>)
    keep_null: bool = True  # a row where the condition is null (a missing field) is kept; False removes it


@register("filter_rows", "filter", FilterRowsParams)
def filter_rows(ctx: StageContext, df: DataFrame, params: FilterRowsParams) -> DataFrame:
    """Remove rows where the `when` condition (Spark SQL) is true, with the given reason."""
    condition = F.expr(params.when)
    if not params.keep_null:
        condition = F.coalesce(condition, F.lit(True))
    ctx.report_all({"when": params.when, "reason": params.reason})
    return mark_removed(df, live(df) & condition, ctx.label, params.reason)

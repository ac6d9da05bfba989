"""Run a planned pipeline: stages in order, checkpoints and the output committed atomically, reruns resumed.

Stages between checkpoints run as one Spark plan (a *segment*). Each checkpoint (and the final output) is
written once, with a fingerprint of its config and inputs: a rerun with the same fingerprint reads it
instead of recomputing; a changed config or input recomputes it and everything after it.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .. import __version__
from ..checkpoints import materialize, remove_checkpoints, use_work_dir
from ..errors import OutputError
from ..io import arrow_write
from ..io.hadoopfs import qualify
from ..io.outputs import OutputLock, check_destination, protected_reason, remove_stale_temps
from ..io.sources import one_listing
from ..io.writer import OutputPaths, check_unique_ids, read_written, write_split
from ..schema import N_TOKENS, REMOVED_BY, TEXT
from ..warmup import wait_warm, warm_workers
from .commit import StagedOutput, read_manifest
from .manifest import add_volume, check_balance, stage_table, versions
from .passes import LabeledStep, run_pass
from .plan import Plan, PlannedStage, digest
from .stage import StageContext, WriteParams, Written, resolve_deferred

log = logging.getLogger("tokenmill.pipeline")


@dataclass
class RunResult:
    output: str
    manifest: dict
    skipped: bool


@dataclass
class _Progress:
    """What the segments so far have produced: the frame to continue from, counts, reports."""

    df: DataFrame | None = None
    stage_rows: list[dict] = field(default_factory=list)
    rows_in: int | None = None
    reports: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    skipped_all: bool = True
    checkpoints: list = field(default_factory=list)  # OutputPaths of the written checkpoints, in order


def run(spark: SparkSession, plan: Plan, force: bool = False) -> RunResult:
    """Run the plan holding the output's lock; refuses an output that is not a tokenmill output."""
    cfg = plan.config
    check_destination(spark, cfg.output, "output", plan.input_paths())
    reason = protected_reason(cfg.work, plan.input_paths())
    if reason:
        raise OutputError(f"work_dir {cfg.work}: refusing to write there: {reason}")
    # the Python workers start (and import the stages' modules) while the driver plans
    warm_workers(spark, [st.spec.run.__module__ for st in plan.stages] + ["tokenmill.io.arrow_write"])
    with OutputLock(spark, cfg.output), one_listing(plan.listings):  # the read spreads the plan's listing
        remove_stale_temps(spark, cfg.work)
        use_work_dir(spark, cfg.work)  # reliable mid-stage checkpoints (on a cluster) go to the work folder
        try:
            return _run_segments(spark, plan, force)
        finally:
            remove_checkpoints(spark, cfg.work)


def _run_segments(spark: SparkSession, plan: Plan, force: bool) -> RunResult:
    """Segments end at checkpoints and at `write`; a finished segment with the same fingerprint is reused."""
    cfg = plan.config
    started = time.time()
    ctx = StageContext(spark, sources=tuple(cfg.sources), config_path=plan.config_path, work_dir=cfg.work)
    fingerprint = digest({"version": __version__, "sources": [s.model_dump(mode="json") for s in cfg.sources],
                          "inputs": plan.inputs()})
    done = _Progress()
    segment: list[PlannedStage] = []
    for index, st in enumerate(plan.stages):
        segment.append(st)
        fingerprint = digest({"prev": fingerprint, "stage": st.fingerprint_part()})
        if not (st.kind == "write" or st.params.checkpoint or _sets_aside(plan, index, segment)):
            continue
        if st.kind != "write":  # what a checkpoint keeps of removed rows follows the final write
            fingerprint = digest({"prev": fingerprint, "keep_removed": _keeps_removed(plan)})
        dest = qualify(cfg.output) if st.kind == "write" else f"{cfg.work}/{index:02d}-{st.label}"
        previous = read_manifest(spark, dest)
        if not force and previous and previous.get("fingerprint") == fingerprint:
            # Up to date: the segment's stage functions are not even called (no calibration, no planning jobs).
            log.info("up to date, skipping: %s", dest)
            done.manifest = previous
            seg_rows = previous["segment_stages"]
            done.reports.update(previous.get("stage_reports", {}))
        else:
            if st.kind == "write" and previous and not (cfg.overwrite or force):
                raise OutputError(f"output {dest}: a tokenmill output with another config or inputs is there and "
                                  "overwrite is off; pass --force (or set overwrite: true) to replace it")
            done.skipped_all = False
            seg_rows = _compute_segment(ctx, plan, index, segment, dest, fingerprint, done)
        done.stage_rows += seg_rows
        done.rows_in = seg_rows[-1]["rows_out"]
        segment = []
        if st.kind != "write":
            written = OutputPaths.from_manifest(done.manifest, dest)
            done.checkpoints.append(written)
            # Continue from what was written: later stages never recompute earlier ones.
            done.df = spark.read.parquet(written.data).withColumn(REMOVED_BY, F.lit(None).cast("string"))
    done.manifest["stages"] = done.stage_rows
    done.manifest["run_wall_seconds"] = round(time.time() - started, 3)
    return RunResult(qualify(cfg.output), done.manifest, done.skipped_all)


def _compute_segment(ctx: StageContext, plan: Plan, index: int, segment: list[PlannedStage], dest: str,
                     fingerprint: str, done: _Progress) -> list[dict]:
    """Run the segment's stages, write and check the result, summarise it and commit it to ``dest``."""
    spark = ctx.spark
    end = segment[-1]
    # A checkpoint keeps removed rows as the final write will (their text too with keep_removed): the output's
    # removed/ gathers them from every checkpoint, so a lighter checkpoint would blank them in the audit trail.
    params = end.params if isinstance(end.params, WriteParams) else WriteParams(stage="write",
                                                                                 keep_removed=_keeps_removed(plan))
    seg_started = time.time()
    ctx.take_reports()
    # Spark names the stages of the jobs below after this (the UI and the progress lines), not a call site
    spark.sparkContext.setLocalProperty("callSite.short", " > ".join(s.label for s in segment))
    try:
        wait_warm(spark)  # the warm workers are the ones the segment's tasks get
        with StagedOutput(spark, dest) as out:
            df = done.df
            # a pass that reaches the segment's end runs in the write task (the output's or a checkpoint's)
            arrow = arrow_write.supported(out.path, params.partition_by, params.max_rows_per_file, params.compression)
            steps: list[LabeledStep] = []  # the open pass: consecutive stages with an Arrow form
            for i, part in enumerate(segment):
                if part.kind == "write":
                    break
                if plan.config.fuse and df is not None and part.spec.fusable(part.params, df.columns + _added(steps)):
                    step = part.spec.arrow(ctx.for_stage(part.label), part.params, df.columns + _added(steps))
                    if step is not None and step.prepare is not None:  # a job over the frame first
                        if steps:
                            df, steps = run_pass(df, steps), []
                        df = step.prepare(df).select("*")  # a frame of its own: no longer the read's parts
                        step = replace(step, prepare=None)  # the driver-side job is done; tasks get `fn` only
                    if step is not None:
                        steps.append(LabeledStep(part.label, step))
                        continue
                if steps:  # a stage that needs Spark ends the pass
                    df, steps = run_pass(df, steps), []
                if part.spec.passes == "many" and not _cheap_to_reread(segment[:i], plan):
                    log.info("%s reads its input several times: materialised first, so the stages before it run "
                             "once (`checkpoint: true` on the stage before keeps it across reruns)", part.label)
                    df = materialize(df)
                df = part.spec.run(ctx.for_stage(part.label), df, part.params)
            if steps and not arrow:
                df, steps = run_pass(df, steps), []
            if steps:
                log.info("%s run in the write task, on Arrow batches", ", ".join(s.label for s in steps))
            done.reports.update(ctx.take_reports())
            volume: dict | None = None
            labels = [st.label for st in plan.stages]
            summed: dict = {}  # stage name -> what the Arrow writer's tasks folded for its summary
            paths = OutputPaths.of(out.path, out.in_place)
            if end.kind == "write":
                df = _with_earlier_removals(spark, df, done.checkpoints)
            if steps:
                forms = {st.name: st.spec.summary_arrow for st in plan.stages[: index + 1]
                         if st.spec.summarize is not None and st.spec.summary_arrow is not None}
                written = arrow_write.write_arrow(df, steps, out.path, params.keep_removed, params.compression,
                                                  audit=plan.audit_columns(index), in_place=out.in_place,
                                                  summaries=forms)
                counts, volume, summed = written.counts, _arrow_volume(written.volume, labels), written.summaries
                if written.repeated_ids:  # or two ids with one hash: the exact check tells
                    check_unique_ids(spark, paths, dest)
            else:
                observation = None
                if end.kind == "write":
                    df, observation = _observed(df, labels)
                counts = write_split(df, out.path, params.partition_by, params.keep_removed, params.max_rows_per_file,
                                     params.compression, audit=plan.audit_columns(index), in_place=out.in_place)
                volume = observation.get if observation is not None else None
                check_unique_ids(spark, paths, dest)
            done.reports = resolve_deferred(done.reports)
            seg_rows = stage_table([{"label": s.label, "name": s.name, "kind": s.kind} for s in segment],
                                   counts, done.rows_in)
            check_balance(seg_rows, counts["kept"])
            if end.kind == "write":
                check_every_row_once(done.stage_rows + seg_rows, counts)
                add_volume(done.stage_rows + seg_rows, _volume(volume, labels))
            final = paths if out.in_place else OutputPaths.of(dest)  # where readers find the rows once committed
            manifest = _manifest(spark, plan, dest, fingerprint, params, counts, done, seg_rows, seg_started, final)
            manifest["output"].update(summaries(plan.stages[: index + 1], spark, out.path, paths, summed))
            if end.kind == "write":
                from ..report.html import report_beside

                report_beside(manifest, out.path, out.path if out.in_place else dest)
            out.commit(manifest)
    except BaseException:
        ctx.aborted()  # the temporary folder is gone; discard what the stages staged outside it
        raise
    finally:
        spark.sparkContext.setLocalProperty("callSite.short", None)
    ctx.committed()
    # one line per finished segment (the stages Spark ran as one plan): each stage's counts, the time
    log.info("done in %.1f s: %s", time.time() - seg_started,
             ", ".join(f"{r['stage']} {r['rows_in']:,} -> {r['rows_out']:,}" for r in seg_rows))
    done.manifest = manifest
    return seg_rows


def _observed(df: DataFrame, labels: list[str]):
    """``df`` with Spark's `observe`: characters (and tokens) kept and removed per stage, summed by the write
    itself (no extra pass over the data)."""
    from pyspark.sql import Observation

    gone = F.col(REMOVED_BY)
    exprs = [F.sum(F.when(gone.isNull(), F.length(TEXT))).alias("kept_chars")]
    exprs += [F.sum(F.when(gone.startswith(f"{label}:"), F.length(TEXT))).alias(f"c{i}")
              for i, label in enumerate(labels)]
    if N_TOKENS in df.columns:
        exprs.append(F.sum(F.when(gone.isNull(), F.col(N_TOKENS))).alias("kept_tokens"))
        exprs += [F.sum(F.when(gone.startswith(f"{label}:"), F.col(N_TOKENS))).alias(f"t{i}")
                  for i, label in enumerate(labels)]
    if TEXT not in df.columns:
        return df, None
    observation = Observation("tokenmill_volume")
    return df.observe(observation, *exprs), observation


def _added(steps: list[LabeledStep]) -> list[str]:
    """The columns the open pass's steps add (what the next stage's Arrow form sees besides the frame's)."""
    return [f.name for s in steps for f in s.step.fields]


def _arrow_volume(written: dict, labels: list[str]) -> dict:
    """What `arrow_write` counted per `removed_by` value, as `_observed` sums it."""
    got: dict = {"kept_chars": (written.get(None) or [0, None, None])[1]}
    tokens = any(v[2] is not None for v in written.values())
    if tokens:
        got["kept_tokens"] = (written.get(None) or [0, None, None])[2]
    for i, label in enumerate(labels):
        mine = [v for k, v in written.items() if k is not None and k.startswith(f"{label}:")]
        got[f"c{i}"] = sum(v[1] or 0 for v in mine) if mine else None
        if tokens:
            got[f"t{i}"] = sum(v[2] or 0 for v in mine) if mine else None
    return got


def _volume(got: dict | None, labels: list[str]) -> dict:
    """The observed sums as {kept_chars, removed_chars: {stage: n}, kept_tokens, removed_tokens}."""
    if got is None:
        return {}
    out: dict = {"kept_chars": got.get("kept_chars") or 0,
                 "removed_chars": {label: got.get(f"c{i}") for i, label in enumerate(labels)}}
    if "kept_tokens" in got:
        out["kept_tokens"] = got.get("kept_tokens") or 0
        out["removed_tokens"] = {label: got.get(f"t{i}") for i, label in enumerate(labels)}
    return out


# Source formats read by Python tasks (io.sources.stream_frame): a pass right after `read` reads their files
_PYTHON_READ = ("warc", "wet", "jsonl", "audio")


def plan_passes(plan: Plan) -> list[str]:
    """The segments and their Python passes as the run will form them (for --dry-run): consecutive stages
    with an Arrow form for their params make one pass; a stage that needs Spark ends it."""
    from .plan import source_columns

    cfg = plan.config
    columns = list(source_columns(cfg, plan.config_path))
    python_read = [s.name for s in cfg.sources if getattr(s, "format", "") in _PYTHON_READ]
    head = "fused" if cfg.fuse else "off (fuse: false): every stage on its own"
    lines = [f"passes ({head}; a pass is one mapInArrow, one Python worker per running task)"]
    segment: list[PlannedStage] = []
    n = 0
    for index, st in enumerate(plan.stages):
        segment.append(st)
        if not (st.kind == "write" or st.params.checkpoint or _sets_aside(plan, index, segment, quiet=True)):
            continue
        n += 1
        end = st
        dest = cfg.output if end.kind == "write" else f"{cfg.work}/{index:02d}-{end.label}"
        groups: list[tuple[list[str], bool]] = []  # (labels, one fused pass)
        for part in segment:
            fusable = cfg.fuse and part.kind not in ("read", "write") and part.spec.fusable(part.params, columns)
            columns += [c for c in part.spec.columns("adds", part.params) if c not in columns]
            starts = fusable and part.spec.arrow_prepares is not None and part.spec.arrow_prepares(part.params)
            if fusable and groups and groups[-1][1] and not starts:
                groups[-1][0].append(part.label)
            else:
                groups.append(([part.label], fusable))
        params = end.params if isinstance(end.params, WriteParams) else None
        arrow_tail = (end.kind == "write" and params is not None and cfg.fuse
                      and arrow_write.supported(cfg.output, params.partition_by, params.max_rows_per_file,
                                                params.compression))
        shown = []
        for i, (labels, fused) in enumerate(groups):
            text = " > ".join(labels)
            if fused:
                extra = []
                if i == 1 and labels and groups[0][0] == ["read"] and python_read:
                    extra.append(f"reads {', '.join(python_read)} in its tasks")
                if arrow_tail and i + 2 == len(groups):
                    extra.append("writes Parquet in its tasks")
                text = f"[{text}]" + (f" ({', '.join(extra)})" if extra else "")
            shown.append(text)
        lines.append(f"  segment {n} -> {dest}: " + " -> ".join(shown))
        segment = []
    lines.append("  [a > b]: one Python pass; a stage alone runs as Spark runs it")
    return lines


def _sets_aside(plan: Plan, index: int, segment: list[PlannedStage], quiet: bool = False) -> bool:
    """Whether the segment ends after stage ``index`` although no checkpoint was asked for: the next stage
    moves whole rows (a shuffle, or several reads) and filters in this segment have tagged rows, which
    would ride along, text and all (two thirds of a crawl after the quality filters). A checkpoint writes
    them to its `removed/` once and the next segment reads only the kept rows."""
    if not plan.config.auto_checkpoint or index + 1 >= len(plan.stages):
        return False
    following = plan.stages[index + 1]
    if following.kind == "write" or not (following.spec.shuffles or following.spec.passes == "many"):
        return False
    if not any(s.kind == "filter" for s in segment):
        return False
    if not quiet:
        log.info("checkpoint after %s: %s moves whole rows, so the rows removed so far are set aside first "
                 "(`auto_checkpoint: false` to keep one plan)", segment[-1].label, following.label)
    return True


def _cheap_to_reread(before: list[PlannedStage], plan: Plan) -> bool:
    """Whether the frame after ``before`` (the segment's stages so far) is a plain scan: nothing yet (the
    segment starts from a checkpoint's Parquet), or only the read of Parquet / staged Hugging Face sources.
    Anything else (WARC extraction, language id, quality signals) costs more to recompute than to keep."""
    if not before:
        return True
    return ([s.name for s in before] == ["read"]
            and all(getattr(src, "format", None) in ("parquet", "hf") for src in plan.config.sources))


def _keeps_removed(plan: Plan) -> bool:
    final = plan.stages[-1].params
    return isinstance(final, WriteParams) and final.keep_removed


def _with_earlier_removals(spark: SparkSession, df: DataFrame, checkpoints: list[OutputPaths]) -> DataFrame:
    """``df`` and the rows removed before each checkpoint (they stay in the checkpoint's `removed/`, and the
    next segment reads only its `data/`): the output's `removed/` is the whole audit trail."""
    for paths in checkpoints:
        earlier = paths.read_removed(spark)
        if earlier is not None:
            df = df.unionByName(earlier.select(*[c for c in earlier.columns if c in df.columns]),
                                allowMissingColumns=True)
    return df


def check_every_row_once(stages: list[dict], counts: dict) -> None:
    """The output holds every row `read` produced exactly once, in `data/` or `removed/` (ids are unique,
    checked separately): a failure here is a bug, never data."""
    seen = stages[0]["rows_in"]
    written = counts["kept"] + sum(sum(v.values()) for v in counts["removed"].values())
    if written != seen:
        raise AssertionError(f"the output holds {written} rows (kept and removed), the read stage gave {seen}")


def summaries(stages: list[PlannedStage], spark: SparkSession, folder: str, paths: OutputPaths,
              summed: dict | None = None) -> dict:
    """What each kind of stage of the plan summarises of the written output (once per stage kind): merged
    from what the Arrow writer's tasks folded (``summed``: stage name -> their accumulators) where they did,
    else read back from the output."""
    out: dict = {}
    seen: set[str] = set()
    written = None
    for st in stages:
        if st.spec.summarize is None or st.name in seen:
            continue
        seen.add(st.name)
        if summed and st.name in summed:
            out.update(st.spec.summary_arrow.merge(summed[st.name], spark, folder))
            continue
        if written is None:
            written = Written(spark, folder, *read_written(spark, paths))
        out.update(st.spec.summarize(written))
    return out


def _manifest(spark: SparkSession, plan: Plan, dest: str, fingerprint: str, params: WriteParams, counts: dict, done: _Progress,
              seg_rows: list[dict], seg_started: float, paths: OutputPaths) -> dict:
    cfg = plan.config
    return {
        "tokenmill_version": __version__,
        "name": cfg.name,
        "fingerprint": fingerprint,
        "config_file": os.path.abspath(plan.config_path),
        "config": cfg.model_dump(mode="json"),
        "inputs": plan.inputs(),
        "segment_stages": seg_rows,
        "output": {"path": dest, **paths.as_manifest(),
                   "partition_by": params.partition_by, "keep_removed": params.keep_removed,
                   "rows": counts["kept"], "rows_by_source": counts["kept_by_source"],
                   "removed_by_reason_and_source": counts["removed"]},
        "stage_reports": dict(done.reports),
        "versions": versions(spark),
        "spark": {"master": spark.sparkContext.master, "app_id": spark.sparkContext.applicationId},
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(time.time() - seg_started, 3),
        "stages": done.stage_rows + seg_rows,
    }

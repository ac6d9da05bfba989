"""Run the stages a config lists, in order; write checkpoints and the output atomically; resume.

Stages between checkpoints run as one Spark plan. Each checkpoint (and the final output) is written once,
with a fingerprint of its config and inputs: a rerun with the same fingerprint reads it instead of
recomputing; a changed config or input recomputes it and everything after it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, field_validator
from pyspark.sql import DataFrame, SparkSession

from . import __version__
from .config import Strict, load_yaml, validate
from .errors import ConfigError, OutputError
from .io.hadoopfs import HadoopFS, qualify
from .io.outputs import OutputLock, check_destination, protected_reason, remove_stale_temps
from .io.sources import Source, list_files
from .io.stamps import referenced_stamps
from .io.writer import check_unique_ids, commit, new_temp, read_manifest, write_split
from .report.manifest import stage_table, versions
from .schema import REMOVED_BY
from .stage import StageContext, StageParams, WriteParams, get, resolve_deferred

log = logging.getLogger("tokenmill.pipeline")


class PipelineConfig(Strict):
    """A pipeline: its sources, its stages in order, and where the output goes."""

    name: str = "tokenmill"
    output: str
    # Replace an earlier tokenmill output at `output` when the config or inputs changed (False: only with
    # --force). Anything that is not a tokenmill output is never replaced.
    overwrite: bool = True
    work_dir: str | None = None  # checkpoints and staging; default: <output>.work
    sources: list[Source] = Field(default_factory=list)
    stages: list[dict[str, Any]] = Field(default_factory=lambda: [{"stage": "read"}, {"stage": "write"}])

    @field_validator("stages", mode="before")
    @classmethod
    def _names_to_entries(cls, value):
        if isinstance(value, list):
            return [{"stage": v} if isinstance(v, str) else v for v in value]
        return value

    @property
    def work(self) -> str:
        return qualify(self.work_dir or f"{self.output.rstrip('/')}.work")


@dataclass
class PlannedStage:
    label: str
    name: str
    kind: str
    params: StageParams
    spec: Any

    def fingerprint_part(self) -> dict:
        part = {"stage": self.name, "version": self.spec.version, "params": self.params.model_dump(mode="json")}
        extra = getattr(self.params, "fingerprint_extra", None)
        if extra is not None:  # what the params point to (a rule set file, word lists) changes the output too
            part["extra"] = extra()
        # Every file or folder the params (or what they resolve to) name: models, tokenizers, benchmarks,
        # lists. Editing one reruns the stage.
        unstamped = getattr(self.params, "unstamped", None)
        part["files"] = referenced_stamps([part["params"], part.get("extra")], set(unstamped() if unstamped else []))
        return part


@dataclass
class Plan:
    config: PipelineConfig
    config_path: str
    raw: dict
    stages: list[PlannedStage] = field(default_factory=list)
    _inputs: list[dict] | None = None

    def inputs(self) -> list[dict]:
        """Every source's files with sizes and times (listed once; a missing path is a ConfigError)."""
        if self._inputs is None:
            self._inputs = _list_inputs(self)
        return self._inputs

    def input_paths(self) -> list[str]:
        paths = [f["path"] for i in self.inputs() for f in i.get("files", [])]
        return paths + [i["dataset"] for i in self.inputs() if i.get("format") == "hf"]


def load_pipeline(path: str, overrides: list[str] | tuple[str, ...] = ()) -> Plan:
    """Load, validate and plan a pipeline config; every error names the file and key path."""
    raw = load_yaml(path, overrides)
    cfg = validate(PipelineConfig, raw, str(path))
    if not cfg.sources:
        raise ConfigError(f"{path}: sources: at least one source is needed")
    names = [s.name for s in cfg.sources]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: sources: names must be unique, got {names}")
    plan = Plan(cfg, str(path), raw)
    labels = set()
    for i, entry in enumerate(cfg.stages):
        where = f"{path}: stages[{i}]"
        if "stage" not in entry:
            raise ConfigError(f"{where}: missing key 'stage'")
        spec = get(str(entry["stage"]), where)
        params = validate(spec.params, entry, str(path), prefix=f"stages[{i}]")
        label = params.id or spec.name
        if label in labels:
            raise ConfigError(f"{where}: stage {label!r} appears twice; give one an `id`")
        labels.add(label)
        plan.stages.append(PlannedStage(label, spec.name, spec.kind, params, spec))
    kinds = [s.kind for s in plan.stages]
    if not kinds or kinds[0] != "read":
        raise ConfigError(f"{path}: stages: the first stage must be `read`")
    if kinds.count("read") != 1:
        raise ConfigError(f"{path}: stages: `read` may appear only once")
    if kinds[-1] != "write" or kinds.count("write") != 1:
        raise ConfigError(f"{path}: stages: the last stage must be `write`, and only the last")
    return plan


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class RunResult:
    output: str
    manifest: dict
    skipped: bool


def _list_inputs(plan: Plan) -> list[dict]:
    inputs = []
    for i, src in enumerate(plan.config.sources):
        if src.format == "hf":
            inputs.append({"source": src.name, "format": "hf", "dataset": src.dataset, "split": src.split})
            continue
        files = list_files(src, f"{plan.config_path}: sources[{i}]")
        inputs.append({"source": src.name, "format": src.format, "n_files": len(files),
                       "bytes": sum(f.size for f in files),
                       "files": [{"path": f.path, "size": f.size, "mtime": f.mtime} for f in files]})
    return inputs


def run(spark: SparkSession, plan: Plan, force: bool = False) -> RunResult:
    """Run the plan holding the output's lock; refuses an output that is not a tokenmill output."""
    cfg = plan.config
    check_destination(spark, cfg.output, "output", plan.input_paths())
    reason = protected_reason(cfg.work, plan.input_paths())
    if reason:
        raise OutputError(f"work_dir {cfg.work}: refusing to write there: {reason}")
    with OutputLock(spark, cfg.output):
        remove_stale_temps(spark, cfg.work)
        return _run(spark, plan, force)


def _run(spark: SparkSession, plan: Plan, force: bool) -> RunResult:
    """Run the plan: segments end at checkpoints and at `write`; finished segments are reused."""
    cfg = plan.config
    started = time.time()
    ctx = StageContext(spark, cfg, plan.config_path, cfg.work)
    inputs = plan.inputs()
    fingerprint = _digest({"version": __version__, "sources": [s.model_dump(mode="json") for s in cfg.sources],
                           "inputs": [{k: v for k, v in i.items()} for i in inputs]})
    df: DataFrame | None = None
    segment: list[PlannedStage] = []
    stage_rows: list[dict] = []
    rows_in: int | None = None
    manifest: dict = {}
    reports: dict = {}
    skipped_all = True
    for index, st in enumerate(plan.stages):
        segment.append(st)
        fingerprint = _digest({"prev": fingerprint, "stage": st.fingerprint_part()})
        is_end = st.kind == "write" or st.params.checkpoint
        if not is_end:
            continue
        dest = qualify(cfg.output) if st.kind == "write" else f"{cfg.work}/{index:02d}-{st.label}"
        write_params = st.params if isinstance(st.params, WriteParams) else WriteParams(stage="write")
        previous = read_manifest(spark, dest)
        if not force and previous and previous.get("fingerprint") == fingerprint:
            # Up to date: the segment's stage functions are not even called (no calibration, no planning jobs).
            log.info("up to date, skipping: %s", dest)
            manifest = previous
            seg_rows = previous["segment_stages"]
            reports.update(previous.get("stage_reports", {}))
        else:
            if st.kind == "write" and previous and not (cfg.overwrite or force):
                raise OutputError(f"output {dest}: a tokenmill output with another config or inputs is there and "
                                  "overwrite is off; pass --force (or set overwrite: true) to replace it")
            skipped_all = False
            seg_started = time.time()
            ctx.reports = {}
            temp = new_temp(dest)
            try:
                for part in segment:
                    df = part.spec.run(ctx, df, part.params)
                reports.update(ctx.reports)
                counts = write_split(df, temp, write_params.partition_by, write_params.keep_removed,
                                     write_params.max_rows_per_file, write_params.compression)
                check_unique_ids(spark, temp, dest)
                reports = resolve_deferred(reports)
                seg_rows = stage_table([{"label": s.label, "name": s.name, "kind": s.kind} for s in segment],
                                       counts, rows_in)
                manifest = {
                    "tokenmill_version": __version__,
                    "name": cfg.name,
                    "fingerprint": fingerprint,
                    "config_file": os.path.abspath(plan.config_path),
                    "config": cfg.model_dump(mode="json"),
                    "inputs": inputs,
                    "segment_stages": seg_rows,
                    "output": {"path": dest, "data": f"{dest}/data", "removed": f"{dest}/removed",
                               "partition_by": write_params.partition_by, "keep_removed": write_params.keep_removed,
                               "rows": counts["kept"], "rows_by_source": counts["kept_by_source"],
                               "removed_by_reason_and_source": counts["removed"]},
                    "stage_reports": dict(reports),
                    "versions": versions(spark),
                    "spark": {"master": spark.sparkContext.master, "app_id": spark.sparkContext.applicationId},
                    "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "wall_seconds": round(time.time() - seg_started, 3),
                }
                if "tokens_by_source" in counts:
                    manifest["output"]["tokens_by_source"] = counts["tokens_by_source"]
                    manifest["output"]["tokens"] = sum(v["tokens"] for v in counts["tokens_by_source"].values())
                if "decontamination" in counts:
                    from .dedup.report import write_csv

                    manifest["output"]["decontamination"] = write_csv(spark, temp, counts["decontamination"])
                if "read_notes" in counts:
                    manifest["output"]["read_notes"] = counts["read_notes"]
                if "languages" in counts:
                    manifest["output"]["languages"] = counts["languages"]
                if "quality" in counts:
                    manifest["output"]["quality"] = counts["quality"]
                manifest["stages"] = stage_rows + seg_rows
                _check_balance(seg_rows, counts)
                commit(spark, temp, dest, manifest)
            except BaseException:
                HadoopFS(spark, temp).delete(temp)  # a failed run leaves nothing half-written behind
                ctx.aborted()
                raise
            ctx.committed()
        stage_rows += seg_rows
        rows_in = seg_rows[-1]["rows_out"]
        segment = []
        if st.kind != "write":
            # Continue from what was written: later stages never recompute earlier ones.
            df = spark.read.parquet(f"{dest}/data").withColumn(REMOVED_BY, _null_string())
    manifest["stages"] = stage_rows
    manifest["run_wall_seconds"] = round(time.time() - started, 3)
    return RunResult(qualify(cfg.output), manifest, skipped_all)


def _null_string():
    from pyspark.sql import functions as F

    return F.lit(None).cast("string")


def _check_balance(rows: list[dict], counts: dict) -> None:
    """rows in = rows kept + rows removed, for every stage: a failure here is a bug, never data."""
    for row in rows:
        if row["rows_in"] != row["rows_out"] + sum(row["removed"].values()):
            raise AssertionError(f"stage {row['stage']} does not balance: {row}")
    if rows and rows[-1]["rows_out"] != counts["kept"]:
        raise AssertionError(f"output has {counts['kept']} rows, stage counts say {rows[-1]['rows_out']}")

"""The `pipeline` job: plan a config, run it in Spark, print the stage table and what the stages describe."""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ..cli import DRY_RUN, DryRunDone, Job, config_args
from ..errors import ConfigError, OutputError
from ..io.outputs import protected_reason
from .manifest import format_stage_table
from .plan import load_pipeline
from .run import RunResult, plan_passes, run

log = logging.getLogger("tokenmill.pipeline")

# `--set` keys of a quick job (one source and stages built from its options) that change the pipeline; any
# other key changes the source.
PIPELINE_KEYS = ("stages", "output", "work_dir", "name", "overwrite")


def quick_config(job: str, source: dict, stages: list[dict], output: str | None = None,
                 overrides: list[str] = ()) -> dict:
    """The pipeline config of a quick job: one ``source``, ``stages``, --set applied (to the pipeline for keys
    under PIPELINE_KEYS, else to the source)."""
    from ..config import apply_override

    label = source.get("name") or source.get("preset") or "source"
    pipeline: dict[str, Any] = {"name": f"{job}-{label}", "output": output or f"out/{job}/{label}",
                                "sources": [source], "stages": stages}
    for assignment in overrides:
        key = assignment.split("=", 1)[0].strip()
        if key.split(".")[0].split("[")[0] in PIPELINE_KEYS:
            pipeline = apply_override(pipeline, assignment)
        else:
            pipeline["sources"][0] = apply_override(pipeline["sources"][0], assignment)
    return pipeline


def write_quick_config(pipeline: dict) -> str:
    """``pipeline`` written as YAML to a fresh temporary folder (printed by the jobs: rerun it with --config)."""
    folder = tempfile.mkdtemp(prefix="tokenmill-")
    path = os.path.join(folder, f"{pipeline['name']}.yaml")
    Path(path).write_text(yaml.safe_dump(pipeline, sort_keys=False), encoding="utf-8")
    return path


def run_pipeline(config: str, overrides: list[str], spark_profile: str | None = None, force: bool = False,
                 required_stage: str | None = None, spark=None, quiet: bool = False) -> RunResult:
    """Load, check, run and print a pipeline config; returns the run result. With ``spark`` (a notebook's
    session) the run uses it and leaves it running; otherwise it starts and stops its own."""
    from ..spark import build_session

    plan = load_pipeline(config, overrides)
    log.info("config %s, output %s", config, plan.config.output)  # in the job's log: a failed run is found by it
    if required_stage and not any(s.name == required_stage for s in plan.stages):
        raise ConfigError(f"{config}: stages: no `{required_stage}` stage")
    plan.inputs()  # a missing input path, or an output that may never be written, is reported before Spark starts
    reason = protected_reason(plan.config.output, plan.input_paths())
    if reason:
        raise OutputError(f"output {plan.config.output}: refusing to write there: {reason}")
    if DRY_RUN.get():
        print(format_plan(plan, overrides))
        raise DryRunDone
    own = spark is None
    spark = spark or build_session(spark_profile, app_name=f"tokenmill-{plan.config.name}")
    from .progress import progress

    try:
        with progress(spark, plan.config.name, quiet=quiet):
            result = run(spark, plan, force=force)
    finally:
        if own:
            spark.stop()
    state = "up to date (skipped, same config and inputs)" if result.skipped else "written"
    print(format_stage_table(result.manifest["stages"]))
    print(f"\noutput   {result.output}/data   ({result.manifest['output']['rows']:,} rows, {state})")
    described: set[str] = set()
    for st in plan.stages:  # what each stage has to say about the run, from the manifest alone
        if st.spec.describe is not None and (st.name, st.label) not in described:
            described.add((st.name, st.label))
            for line in st.spec.describe(result.manifest, st.label):
                print(line)
    print(f"removed  {result.output}/removed")
    print(f"manifest {result.output}/manifest.json")
    if result.manifest.get("output", {}).get("report"):
        print(f"report   {result.manifest['output']['report']}")
    return result


def format_plan(plan, overrides=()) -> str:
    """A --dry-run: the resolved config (presets and --set applied), the input files, and each stage with
    the columns it needs and adds."""
    sets = f" with --set {' --set '.join(overrides)}" if overrides else ""
    lines = [f"dry run: nothing read, nothing written\n\nconfig {plan.config_path}{sets}",
             yaml.safe_dump(plan.config.model_dump(mode="json", exclude_defaults=True), sort_keys=False).rstrip()]
    files = plan.input_paths()
    lines.append(f"\ninputs  {len(files):,} files" + (f" (first: {files[0]})" if files else ""))
    lines.append(f"output  {plan.config.output}\n")
    rows = [(st.label, st.name, st.kind, ", ".join(st.spec.columns("requires", st.params)) or "-",
             ", ".join(st.spec.columns("adds", st.params)) or "-") for st in plan.stages]
    widths = [max(len(r[i]) for r in [("stage", "type", "kind", "", "")] + rows) for i in range(3)]
    lines.append(f"{'stage':<{widths[0]}}  {'type':<{widths[1]}}  {'kind':<{widths[2]}}  needs -> adds")
    for label, name, kind, needs, adds in rows:
        lines.append(f"{label:<{widths[0]}}  {name:<{widths[1]}}  {kind:<{widths[2]}}  {needs} -> {adds}")
    lines += ["", *plan_passes(plan)]
    return "\n".join(lines)


def pipeline_job(required_stage: str | None = None):
    """A job's `run`: the pipeline of ``--config`` (which must have ``required_stage``, if given)."""

    def run_job(args: argparse.Namespace) -> int:
        run_pipeline(args.config, args.overrides, args.spark_profile, args.force, required_stage,
                     quiet=getattr(args, "quiet", False))
        return 0

    return run_job


JOBS = [Job("pipeline", "run the stages of a pipeline config (read ... write) in Spark", config_args, pipeline_job(),
            own_dry_run=True)]

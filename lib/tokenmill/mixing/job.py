"""The plan_mixture and build_mixture jobs: thin wrappers that load the config, plan or build, and print."""

from __future__ import annotations

import argparse
import json
import os

from ..cli import DRY_RUN, Job, config_args
from ..errors import ConfigError
from .config import load_mixture
from .plan import format_plan, plan_mixture


def plan_job(args: argparse.Namespace) -> int:
    """Plan from unique tokens given, read from manifests, or (only if needed) measured with Spark."""
    from .build import unique_tokens

    cfg = load_mixture(args.config, args.overrides)
    needs_spark = any(s.unique_tokens is None and not s.manifest for s in cfg.sources)
    if needs_spark and DRY_RUN.get():
        raise ConfigError(f"{args.config}: --dry-run plans from `unique_tokens` or `manifest:` of every source; "
                          f"{', '.join(s.name for s in cfg.sources if s.unique_tokens is None and not s.manifest)} "
                          "would be measured from its data")
    spark = None
    if needs_spark:
        from ..spark import build_session

        spark = build_session(args.spark_profile, app_name=f"tokenmill-plan-{cfg.name}")
    try:
        sources = unique_tokens(spark, cfg, args.config)
    finally:
        if spark is not None:
            spark.stop()
    plan = plan_mixture(cfg.plan, sources)
    if DRY_RUN.get():
        print(format_plan(plan))
        print("\ndry run: plan.json not written")
        return 0
    out = args.out or f"{cfg.output.rstrip('/')}.plan.json"
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(plan.to_dict(), handle, indent=2)
        handle.write("\n")
    print(format_plan(plan))
    print(f"\nplan     {os.path.abspath(out)}")
    return 0


def build_job(args: argparse.Namespace) -> int:
    from ..spark import build_session
    from .build import build_mixture, format_build

    cfg = load_mixture(args.config, args.overrides)
    spark = build_session(args.spark_profile, app_name=f"tokenmill-mixture-{cfg.name}")
    try:
        result = build_mixture(spark, cfg, args.config, plan_file=args.plan, force=args.force)
    finally:
        spark.stop()
    print(format_build(result.manifest))
    state = "up to date (skipped, same config and inputs)" if result.skipped else "written"
    print(f"\nshards   {result.output}/data   ({state})")
    print(f"plan     {result.output}/plan.json")
    print(f"manifest {result.output}/manifest.json")
    if result.manifest.get("report"):
        print(f"report   {result.manifest['report']}")
    return 0


MIXTURE_CONFIG = "mixture config (YAML: output, plan, sources, build), e.g. conf/pipelines/mixture_sample.yaml"


def plan_args(parser: argparse.ArgumentParser) -> None:
    config_args(parser, MIXTURE_CONFIG)
    parser.add_argument("--out", default=None, help="where to write plan.json (default: <output>.plan.json)")


def build_args(parser: argparse.ArgumentParser) -> None:
    config_args(parser, MIXTURE_CONFIG)
    parser.add_argument("--plan", default=None, help="use this plan.json instead of planning from the data")


JOBS = [
    Job("plan_mixture", "plan a token budget (Chinchilla laws) and per-source targets; writes plan.json",
        plan_args, plan_job,
        own_dry_run=True),
    Job("build_mixture", "build the token-budgeted mixture: Parquet shards + manifest", build_args, build_job),
]

"""The `decontaminate` job: a pipeline with a `decontaminate` stage; its per-benchmark table is printed by
the stage's `describe`."""

from __future__ import annotations

from ..cli import Job, config_args
from ..pipeline.job import pipeline_job

JOBS = [Job("decontaminate", "find benchmark test items in the data (n-gram index), flag/remove/cut, report per "
            "benchmark", config_args, pipeline_job(required_stage="decontaminate"),
            own_dry_run=True)]

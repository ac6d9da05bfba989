"""The engine: the stage contract (stage.py), planning (plan.py), running (run.py), committing (commit.py)
and the manifest (manifest.py). It imports no feature package: stages plug in through `tokenmill.catalog`."""

from .plan import PipelineConfig, Plan, load_pipeline
from .run import RunResult, run

__all__ = ["Plan", "PipelineConfig", "RunResult", "load_pipeline", "run"]

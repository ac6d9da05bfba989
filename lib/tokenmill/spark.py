"""SparkSession from a profile in conf/spark/: jobs never hard-code Spark settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from pydantic import Field
from pyspark.sql import SparkSession

from .config import Strict, load
from .errors import ConfigError


class SparkProfile(Strict):
    """A Spark profile: master (None leaves it to spark-submit) and `spark.*` settings."""

    master: str | None = None
    conf: dict[str, Any] = Field(default_factory=dict)
    log_level: str = "WARN"


def under_spark_submit() -> bool:
    """True when spark-submit launched this driver (the JVM hands the driver a gateway port)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def default_profile_name() -> str:
    """`cluster` under spark-submit, `local` otherwise; TOKENMILL_SPARK_PROFILE overrides."""
    return os.environ.get("TOKENMILL_SPARK_PROFILE") or ("cluster" if under_spark_submit() else "local")


def find_profile(name: str, search: list[Path] | None = None) -> Path:
    """A profile name (`local`) or a path to a YAML file -> the file."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") and candidate.exists():
        return candidate
    dirs = list(search or []) + [Path.cwd() / "conf" / "spark", Path(__file__).resolve().parents[2] / "conf" / "spark"]
    for folder in dirs:
        path = folder / f"{name}.yaml"
        if path.exists():
            return path
    raise ConfigError(f"spark profile '{name}' not found in {', '.join(str(d) for d in dirs)}")


def _conf_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build_session(profile: str | Path | None = None, app_name: str = "tokenmill",
                  search: list[Path] | None = None) -> SparkSession:
    """Create (or get) the SparkSession described by a profile."""
    path = find_profile(str(profile or default_profile_name()), search)
    spec = load(SparkProfile, path)
    # Executors of a local (or same-machine) Spark must run the driver's interpreter, which has our deps.
    if not under_spark_submit():
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if spec.master and not under_spark_submit():
        builder = builder.master(spec.master)
    for key, value in spec.conf.items():
        builder = builder.config(key, _conf_value(value))
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(spec.log_level)
    return session

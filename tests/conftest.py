"""One session-scoped local SparkSession and the generated sample crawl, shared by every test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))


@pytest.fixture(scope="session")
def spark():
    from tokenmill.spark import build_session

    session = build_session("test", app_name="tokenmill-tests", search=[ROOT / "conf" / "spark"])
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    from tokenmill.sample.generate import write_sample

    out = tmp_path_factory.mktemp("sample")
    write_sample(str(out))
    return out


def sample_config(sample: Path, output: Path, conf: str = "sample.yaml", **extra) -> dict:
    """A shipped pipeline config (conf/sample.yaml by default) pointed at a test's folders."""
    data = yaml.safe_load((ROOT / "conf" / conf).read_text())
    for src in data["sources"]:
        src["paths"] = src["paths"].replace("data/sample", str(sample))
    def point(node):  # every "data/sample/..." in the stages -> the test's sample folder
        if isinstance(node, dict):
            return {k: point(v) for k, v in node.items()}
        if isinstance(node, list):
            return [point(v) for v in node]
        return node.replace("data/sample", str(sample)) if isinstance(node, str) else node

    data["stages"] = point(data["stages"])
    data["output"] = str(output)
    data.update(extra)
    return data


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def sample_run(spark, sample_dir, tmp_path_factory):
    """The sample pipeline run once in local mode: (output folder, run result)."""
    from tokenmill.pipeline import load_pipeline, run

    out = tmp_path_factory.mktemp("run") / "sample"
    cfg = write_config(out.parent / "sample.yaml", sample_config(sample_dir, out))
    result = run(spark, load_pipeline(str(cfg)))
    return out, result


os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")

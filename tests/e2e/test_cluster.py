"""A real Spark standalone cluster on 127.0.0.1: spark-submit the sample pipeline, compare with local mode."""

from __future__ import annotations

import subprocess

import pyarrow.dataset as ds
import pytest

from conftest import ROOT, sample_config, write_config

pytestmark = pytest.mark.cluster


def _make(*targets, extra=()):
    return subprocess.run(["make", *targets, *extra], cwd=ROOT, capture_output=True, text=True, timeout=900)


def _rows(folder):
    table = ds.dataset(str(folder / "data"), format="parquet", partitioning="hive").to_table()
    rows = table.to_pylist()
    for row in rows:
        row["meta"] = dict(row["meta"]) if row["meta"] is not None else None
    return sorted(rows, key=lambda r: r["id"])


def test_spark_submit_to_standalone_cluster_matches_local(sample_run, sample_dir, tmp_path):
    local_out, _ = sample_run
    cluster_out = tmp_path / "cluster"
    conf = write_config(tmp_path / "cluster.yaml", sample_config(sample_dir, cluster_out))
    built = _make("dist")
    assert built.returncode == 0, built.stderr[-3000:]
    up = _make("cluster-up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        submitted = _make("submit", extra=[f"CONF={conf}"])
        assert submitted.returncode == 0, submitted.stdout[-3000:] + submitted.stderr[-5000:]
        assert "320 rows, written" in submitted.stdout
    finally:
        _make("cluster-down")
    manifest = (cluster_out / "manifest.json").read_text()
    assert '"master": "spark://127.0.0.1:7077"' in manifest
    assert _rows(cluster_out) == _rows(local_out)

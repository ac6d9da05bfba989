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


def _instruct_config(path, output):
    """Instruction data on the cluster: a ShareGPT file in byte ranges (Arrow fast path and the per-record
    fallback), native checks, a chat template and deterministic splits."""
    return write_config(path, {
        "name": "instruct-cluster", "output": str(output),
        "sources": [{"name": "sharegpt", "format": "jsonl", "on_error": "skip", "split_bytes": 300,
                     "paths": str(ROOT / "tests" / "instruct" / "fixtures" / "sharegpt.jsonl"),
                     "instruct": {"for": "sft", "layout": "sharegpt"}}],
        "stages": ["read", {"stage": "instruct_filter", "problems": ["assistant_first", "no_assistant"]},
                   {"stage": "instruct_format", "template": "chatml"},
                   {"stage": "instruct_split", "fractions": {"train": 0.5, "test": 0.5}},
                   {"stage": "write", "partition_by": ["split"]}]})


def test_spark_submit_to_standalone_cluster_matches_local(sample_run, sample_dir, spark, tmp_path):
    from tokenmill.pipeline import load_pipeline, run

    local_out, _ = sample_run
    cluster_out = tmp_path / "cluster"
    conf = write_config(tmp_path / "cluster.yaml", sample_config(sample_dir, cluster_out))
    instruct_local = tmp_path / "instruct-local"
    run(spark, load_pipeline(str(_instruct_config(tmp_path / "instruct-local.yaml", instruct_local))))
    instruct_cluster = tmp_path / "instruct-cluster"
    instruct_conf = _instruct_config(tmp_path / "instruct-cluster.yaml", instruct_cluster)
    built = _make("dist")
    assert built.returncode == 0, built.stderr[-3000:]
    up = _make("cluster-up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        submitted = _make("submit", extra=[f"CONF={conf}"])
        assert submitted.returncode == 0, submitted.stdout[-3000:] + submitted.stderr[-5000:]
        assert "320 rows, written" in submitted.stdout
        submitted = _make("submit", extra=[f"CONF={instruct_conf}"])
        assert submitted.returncode == 0, submitted.stdout[-3000:] + submitted.stderr[-5000:]
        assert "5 rows, written" in submitted.stdout
    finally:
        _make("cluster-down")
    manifest = (cluster_out / "manifest.json").read_text()
    assert '"master": "spark://127.0.0.1:7077"' in manifest
    assert _rows(cluster_out) == _rows(local_out)
    assert _rows(instruct_cluster) == _rows(instruct_local)

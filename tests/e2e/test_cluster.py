"""A real Spark standalone cluster on 127.0.0.1 (two workers of one core): spark-submit the sample pipeline
with a worker killed while it reads and scores, the instruction pipeline, and the dedup pipeline with a
worker killed while connected components run; each output equals local mode's, row for row."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading

import pyarrow.dataset as ds
import pytest

from conftest import ROOT, sample_config, write_config

pytestmark = pytest.mark.cluster


def _make(*targets, extra=()):
    return subprocess.run(["make", *targets, *extra], cwd=ROOT, capture_output=True, text=True, timeout=900)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (an executor JVM and its Python workers), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _kill_worker(n: int) -> None:
    """Worker ``n`` lost as a machine is lost: the worker JVM, its executor and Python workers, SIGKILL."""
    pid = int((ROOT / ".cluster" / f"worker{n}.pid").read_text())
    for p in [pid, *_descendants(pid)]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _submit(conf, kill_on: str | None = None, worker: int = 2):
    """spark-submit a pipeline config (as `make submit` does, with few shuffle partitions: the data is
    small); with ``kill_on``, worker ``worker`` is killed when a driver log line matches it. Returns
    (exit code, log, whether the worker was killed)."""
    import pyspark

    cmd = [os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-submit"), "--master", "spark://127.0.0.1:7077",
           "--py-files", str(ROOT / "dist" / "tokenmill.zip"), "--conf", f"spark.pyspark.python={sys.executable}",
           "--conf", "spark.executor.memory=1g", "--conf", "spark.driver.host=127.0.0.1",
           "--conf", "spark.driver.bindAddress=127.0.0.1", "--conf", "spark.sql.shuffle.partitions=4",
           str(ROOT / "jobs" / "pipeline.py"), "--config", str(conf)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, killed = [], threading.Event()
    timer = threading.Timer(900, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            lines.append(line)
            if kill_on and not killed.is_set() and re.search(kill_on, line):
                _kill_worker(worker)
                killed.set()
        proc.wait()
    finally:
        timer.cancel()
    return proc.returncode, "".join(lines), killed.is_set()


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
    _make("cluster-down")
    up = _make("cluster-up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        # a worker lost while the documents are read, identified and tokenised (its tasks running)
        code, out, killed = _submit(conf, kill_on=r"\[sample\] stage \d+ \(.*\): \d+/\d+ tasks.*[1-9]\d* running")
        assert code == 0 and killed, out[-6000:]
        assert "320 rows, written" in out
        assert re.search(r"Lost executor|Removed executor|executor .* lost", out, re.I), out[-4000:]
        submitted = _make("submit", extra=[f"CONF={instruct_conf}"])  # on the worker left
        assert submitted.returncode == 0, submitted.stdout[-3000:] + submitted.stderr[-5000:]
        assert "5 rows, written" in submitted.stdout
    finally:
        _make("cluster-down")
    manifest = (cluster_out / "manifest.json").read_text()
    assert '"master": "spark://127.0.0.1:7077"' in manifest
    assert _rows(cluster_out) == _rows(local_out)
    assert _rows(instruct_cluster) == _rows(instruct_local)


def test_dedup_on_a_cluster_survives_a_worker_lost_during_connected_components(dedup_run, sample_dir, tmp_path):
    """Near-dedup materialises its tables and every components round as reliable checkpoints (files in the
    work folder): a worker killed after the first round loses nothing the job needs; the output equals
    local mode's. (With `spark.tokenmill.checkpoints=local` the same kill fails the job: the checkpoint
    blocks lived in the lost executor.)"""
    local_out, _ = dedup_run
    data = sample_config(sample_dir, tmp_path / "out", conf="dedup_sample.yaml")
    data["stages"][2]["index"] = str(tmp_path / "index")
    data["stages"][2]["driver_components_max_edges"] = 0  # the distributed rounds, whatever the edge count
    data["work_dir"] = str(tmp_path / "work")
    conf = write_config(tmp_path / "dedup.yaml", data)
    assert _make("dist").returncode == 0
    _make("cluster-down")
    up = _make("cluster-up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        code, out, killed = _submit(conf, kill_on=r"connected components: round 1,", worker=1)
    finally:
        _make("cluster-down")
    assert killed and code == 0, out[-6000:]
    assert re.search(r"connected components: round 2,", out)  # the rounds went on without the worker
    assert re.search(r"Lost executor|Removed executor|executor .* lost", out, re.I), out[-4000:]
    assert _rows(tmp_path / "out") == _rows(local_out)
    assert not list((tmp_path / "work").glob("checkpoints/*"))  # removed after the run

"""Never destroy: an output replaces only an earlier tokenmill output; one run per output at a time."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import write_config
from tokenmill.errors import OutputError
from tokenmill.io.outputs import OutputLock, protected_reason
from tokenmill.pipeline import load_pipeline, run


def small_pipeline(tmp_path, output, **extra):
    src = tmp_path / "in"
    src.mkdir(exist_ok=True)
    if not (src / "a.jsonl").exists():  # rewriting it would change the inputs' fingerprint
        (src / "a.jsonl").write_text("".join(json.dumps({"text": f"document {i}"}) + "\n" for i in range(5)))
    data = {"name": "safety", "output": str(output),
            "sources": [{"name": "s", "format": "jsonl", "paths": str(src / "*.jsonl")}],
            "stages": [{"stage": "read"}, {"stage": "write"}], **extra}
    return write_config(tmp_path / "c.yaml", data)


def run_file(spark, path, overrides=(), force=False):
    return run(spark, load_pipeline(str(path), list(overrides)), force=force)


def test_existing_ordinary_folder_is_never_replaced(spark, tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputError, match=rf"{precious}: the folder exists and is not a tokenmill output"):
        run_file(spark, small_pipeline(tmp_path, precious))
    assert (precious / "thesis.tex").read_text() == "years of work"
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    with pytest.raises(OutputError, match="a file is in the way"):
        run_file(spark, small_pipeline(tmp_path, a_file))
    assert a_file.read_text() == "x"


def test_empty_folder_and_tokenmill_output_are_written(spark, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    first = run_file(spark, small_pipeline(tmp_path, empty))
    assert first.manifest["output"]["rows"] == 5 and (empty / "_SUCCESS").exists()
    changed = run_file(spark, small_pipeline(tmp_path, empty), ["stages[1].compression=snappy"])
    assert changed.skipped is False  # an earlier tokenmill output is replaced (overwrite defaults to true)


def test_overwrite_off_needs_force(spark, tmp_path):
    out = tmp_path / "out"
    run_file(spark, small_pipeline(tmp_path, out, overwrite=False))
    assert run_file(spark, small_pipeline(tmp_path, out, overwrite=False)).skipped is True  # unchanged: fine
    with pytest.raises(OutputError, match="overwrite is off; pass --force"):
        run_file(spark, small_pipeline(tmp_path, out, overwrite=False), ["stages[1].compression=snappy"])
    forced = run_file(spark, small_pipeline(tmp_path, out, overwrite=False), ["stages[1].compression=snappy"],
                      force=True)
    assert forced.skipped is False


def test_parent_of_working_folder_and_of_inputs_refused(spark, tmp_path, monkeypatch):
    sub = tmp_path / "project" / "sub"
    sub.mkdir(parents=True)
    (tmp_path / "project" / "keep.txt").write_text("keep")
    config = small_pipeline(tmp_path, tmp_path / "unused")
    monkeypatch.chdir(sub)
    with pytest.raises(OutputError, match="it is the working folder or one of its parents"):
        run_file(spark, config, ["output=.."])
    with pytest.raises(OutputError, match="it is the working folder or one of its parents"):
        run_file(spark, config, ["output=."])
    assert (tmp_path / "project" / "keep.txt").exists() and sub.is_dir()
    with pytest.raises(OutputError, match=r"it holds the input .*a\.jsonl"):
        run_file(spark, config, [f"output={tmp_path / 'in'}"])
    assert (tmp_path / "in" / "a.jsonl").exists()


def test_protected_places():
    assert protected_reason("/") == "it is the filesystem root"
    assert protected_reason(os.path.expanduser("~")) == "it is the home folder"
    assert protected_reason("s3://bucket/") == "it is the root of a bucket or filesystem"
    assert protected_reason("s3://bucket/crawl", ["s3://bucket/crawl/part-0.warc.gz"]).startswith("it holds the input")
    assert protected_reason("s3://bucket/out", ["s3://bucket/crawl/part-0.warc.gz"]) is None


def test_second_run_fails_fast_and_dead_run_lock_is_taken_over(spark, tmp_path):
    out = tmp_path / "out"
    config = small_pipeline(tmp_path, out)
    lock = tmp_path / ".out.lock"
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(json.dumps({"host": socket.gethostname(), "pid": alive.pid, "started": time.time(),
                                    "heartbeat": time.time()}))
        with pytest.raises(OutputError, match=rf"another run is writing this output \(host .*pid {alive.pid}"):
            run_file(spark, config)
        assert not out.exists()
    finally:
        alive.kill()
        alive.wait()
    # The owner is gone now: its lock and its half-written temporary folder are cleaned up by the next run.
    leftover = tmp_path / ".out.tmp-0123456789ab"
    (leftover / "data").mkdir(parents=True)
    result = run_file(spark, config)
    assert result.manifest["output"]["rows"] == 5
    assert not lock.exists() and not leftover.exists()


def test_lock_of_another_host_is_stale_only_without_heartbeat(spark, tmp_path):
    dest = tmp_path / "out"
    lock = tmp_path / ".out.lock"
    lock.write_text(json.dumps({"host": "other-host", "pid": 1, "started": time.time(), "heartbeat": time.time()}))
    with pytest.raises(OutputError, match="host other-host"):
        OutputLock(spark, str(dest)).acquire()
    lock.write_text(json.dumps({"host": "other-host", "pid": 1, "started": 0, "heartbeat": time.time() - 3600}))
    with OutputLock(spark, str(dest)):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()


def test_train_quality_model_out_and_mixture_output_refuse_foreign_folders(spark, tmp_path):
    from tokenmill.classify.config import TrainParams
    from tokenmill.classify.train import train
    from tokenmill.mixing.build import build_mixture
    from tokenmill.mixing.config import load_mixture

    precious = tmp_path / "models"
    precious.mkdir()
    (precious / "other-model.bin").write_text("weights")
    src = {"name": "p", "format": "jsonl", "paths": str(tmp_path / "*.jsonl")}
    (tmp_path / "x.jsonl").write_text('{"text": "a"}\n')
    params = TrainParams(positives=[src], negatives=[{**src, "name": "n"}], model_out=str(precious))
    with pytest.raises(OutputError, match="model_out .*not a tokenmill output"):
        train(spark, params)
    mix = write_config(tmp_path / "m.yaml", {
        "output": str(precious), "plan": {"target": {"n_params": 15000}},
        "sources": [{"name": "a", "path": str(tmp_path / "data"), "unique_tokens": 1000}]})
    with pytest.raises(OutputError, match="not a tokenmill output"):
        build_mixture(spark, load_mixture(str(mix)), str(mix))
    assert (precious / "other-model.bin").read_text() == "weights"


def test_a_quality_model_saved_before_models_had_a_manifest_may_be_replaced(spark, tmp_path):
    from tokenmill.io.outputs import check_destination

    legacy = tmp_path / "models" / "quality"
    (legacy / "metadata").mkdir(parents=True)
    (legacy / "stages").mkdir()
    (legacy / "metrics.json").write_text("{}")
    check_destination(spark, str(legacy), "model_out")  # an earlier train_quality's folder: replaceable
    (legacy / "metrics.json").unlink()
    with pytest.raises(OutputError, match="not a tokenmill output"):
        check_destination(spark, str(legacy), "model_out")

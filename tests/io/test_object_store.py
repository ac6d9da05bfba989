"""A real S3 API (moto's server on 127.0.0.1, started here) through s3fs: crawl sources read from s3://,
and what tokenmill writes from Python there (a Hugging Face staging's shards, manifests, the pointer)
committed by manifest, resolved, and garbage-collected. Spark's own Parquet writes to s3a:// need the
hadoop-aws jars a cluster ships (EMR, Dataproc): README "Object stores"."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pyarrow.dataset as ds
import pytest

from conftest import write_config

KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3():
    """(endpoint, storage_options): a moto S3 server with a bucket `crawl`; the driver's s3fs finds it
    through AWS_ENDPOINT_URL_S3."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in [*KEYS, "AWS_ENDPOINT_URL_S3"]}
    os.environ.update(KEYS, AWS_ENDPOINT_URL_S3=endpoint)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})
        fs.mkdir("crawl")
        options = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": endpoint,
                                                                             "region_name": "us-east-1"}}
        yield fs, options
    finally:
        server.terminate()
        server.wait(timeout=10)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_crawl_sources_read_from_s3_equal_a_local_read(spark, sample_dir, tmp_path, s3):
    from tokenmill.pipeline import load_pipeline, run

    fs, options = s3
    for sub in ("warc", "jsonl"):
        for path in sorted((sample_dir / sub).iterdir()):
            fs.put(str(path), f"crawl/sample/{sub}/{path.name}")

    def config(name, root, extra):
        return write_config(tmp_path / f"{name}.yaml", {
            "name": name, "output": str(tmp_path / name),
            "sources": [{"name": "cc", "format": "warc", "paths": f"{root}/warc/*.warc.gz", **extra},
                        {"name": "books", "format": "jsonl", "paths": f"{root}/jsonl/*.jsonl.gz",
                         "fields": {"layout": "dolma"}, **extra}],
            "stages": [{"stage": "read"}, {"stage": "write", "keep_removed": True}]})

    local = run(spark, load_pipeline(str(config("local", str(sample_dir), {}))))
    remote = run(spark, load_pipeline(str(config("remote", "s3://crawl/sample", {"storage_options": options}))))

    def rows(name, folder="data"):
        t = ds.dataset(str(tmp_path / name / folder), format="parquet", partitioning="hive").to_table(
            columns=["id", "text", "source"])
        return sorted((r["id"], r["text"] or "", r["source"]) for r in t.to_pylist())

    assert rows("remote") == rows("local") and len(rows("local")) > 100
    assert rows("remote", "removed") == rows("local", "removed")
    inputs = remote.manifest["inputs"]
    assert [i["n_files"] for i in inputs] == [i["n_files"] for i in local.manifest["inputs"]]
    assert inputs[0]["files"][0]["path"].startswith("s3://crawl/sample/warc/")
    assert remote.manifest["stage_reports"]["read"]["fetch"]["retries"] == 0


def test_a_staging_written_to_s3_is_committed_by_its_pointer_and_old_runs_are_collected(spark, tmp_path, s3):
    import datasets

    from tokenmill.io.hf import stage_hf_dataset
    from tokenmill.io.sources import HFSource
    from tokenmill.pipeline.commit import committed_folder, read_manifest
    from tokenmill.pipeline.gc import collect_garbage

    fs, _ = s3
    local = tmp_path / "saved"
    datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": [f"train text {i}" for i in range(30)]}),
        "test": datasets.Dataset.from_dict({"text": [f"test text {i}" for i in range(7)]}),
    }).save_to_disk(str(local))
    staging = "s3://crawl/staging/qa"
    first = stage_hf_dataset(spark, HFSource(name="qa", format="hf", dataset=str(local), split="train", shard_rows=8),
                             staging)
    pointer = json.loads(fs.cat(f"{staging}/manifest.json"))
    run1 = pointer["run_folder"]
    assert first == f"{staging}/{run1}/data"
    assert sorted(os.path.basename(p) for p in fs.ls(f"{staging}/{run1}/data")) == [
        f"part-0000{i}.parquet" for i in range(4)]
    assert fs.exists(f"{staging}/{run1}/_SUCCESS") and fs.exists(f"{staging}/_SUCCESS")
    assert read_manifest(spark, staging)["shards"] == 4 and committed_folder(spark, staging) == f"{staging}/{run1}"
    # the same dataset again: reused, nothing written
    again = stage_hf_dataset(spark, HFSource(name="qa", format="hf", dataset=str(local), split="train",
                                             shard_rows=8), staging)
    assert again == first and len(fs.ls(f"{staging}/runs")) == 1
    # another split: a new run, the pointer moves in one write, the old run is still readable until gc
    second = stage_hf_dataset(spark, HFSource(name="qa", format="hf", dataset=str(local), split="test"), staging)
    run2 = json.loads(fs.cat(f"{staging}/manifest.json"))["run_folder"]
    assert run2 != run1 and second == f"{staging}/{run2}/data"
    texts = ds.dataset(second.removeprefix("s3://"), filesystem=fs, format="parquet").to_table().column("text")
    assert sorted(texts.to_pylist()) == sorted(f"test text {i}" for i in range(7))
    assert fs.exists(f"{staging}/{run1}/data")
    plan = collect_garbage(staging, dry_run=True)
    assert [(r["state"], r["remove"]) for r in plan["runs"]] == [("current", False), ("committed", True)]
    assert plan["removed"] == [] and fs.exists(f"{staging}/{run1}/data")
    done = collect_garbage(staging)
    assert done["removed"] == [f"{staging}/{run1}"]
    fs.invalidate_cache()  # this client's listing cache predates the removal
    assert not fs.exists(f"{staging}/{run1}") and fs.exists(f"{staging}/{run2}/_SUCCESS")

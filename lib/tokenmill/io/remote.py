"""Remote Parquet (the hub's `hf://`, `http(s)://`) for Spark's native reader: each file is copied by one
Spark task through fsspec into the run's work folder, under its path relative to the source's glob, so ids
(relative path + row) are the ones a local copy gives; a file already copied whole is not fetched again."""

from __future__ import annotations

import hashlib
from urllib.parse import urlparse

from pyspark.sql import SparkSession

from .fetch import RetryPolicy, open_input
from .paths import InputFile

REMOTE_SCHEMES = ("hf", "http", "https")


def is_remote(path: str) -> bool:
    return urlparse(path).scheme in REMOTE_SCHEMES


def stage_remote(spark: SparkSession, files: list[InputFile], work_dir: str, storage_options: dict,
                 policy: RetryPolicy | None = None) -> list[InputFile]:
    """``files`` with the remote ones replaced by copies under ``work_dir`` (one Spark task per file), each
    fetched with retries (io/fetch.py); a file that still fails stops the job with its name."""
    remote = [f for f in files if is_remote(f.path)]
    if not remote:
        return files
    key = hashlib.sha256("\n".join(sorted(f.path for f in remote)).encode()).hexdigest()[:16]
    root = f"{work_dir.rstrip('/')}/remote/{key}"
    target = {f.path: f"{root}/{f.relpath}" for f in remote}
    jobs = [(f.path, target[f.path], f.size) for f in remote]
    options = dict(storage_options)

    def copy(rows):
        import shutil

        import fsspec

        for src, dst, size in rows:
            fs, path = fsspec.core.url_to_fs(dst)
            if fs.exists(path) and fs.size(path) == size:
                continue  # copied whole by an earlier run
            fs.makedirs(fs._parent(path), exist_ok=True)
            with open_input(src, options, policy) as reader, fs.open(path + ".part", "wb") as writer:
                shutil.copyfileobj(reader, writer, 8 << 20)
            fs.mv(path + ".part", path)
            yield dst

    spark.sparkContext.parallelize(jobs, len(jobs)).mapPartitions(copy).count()
    return [InputFile(target.get(f.path, f.path), f.size, f.mtime, f.relpath) for f in files]

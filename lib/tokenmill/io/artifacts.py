"""Model files for executors: shipped once per application, made local once per executor process.

A local file on a cluster is added with `SparkContext.addFile` (executors fetch it once); an fsspec URL
(`s3://…`, `gs://…`, `hdfs://…`) is copied to a local temporary file once per Python worker process; in
local mode the path is used as it is. Nothing is downloaded from a model hub.
"""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass

from pyspark.sql import SparkSession

from ..errors import ConfigError

_LOCK = threading.Lock()
_LOCAL: dict[str, str] = {}
_BUILD_LOCK = threading.RLock()
_BUILT: dict[object, object] = {}


@dataclass(frozen=True)
class ShippedFile:
    """Where a model file is: its configured path, and its SparkFiles name when the driver shipped it."""

    path: str
    shipped_name: str | None = None


def ship_file(spark: SparkSession, path: str, what: str = "model") -> ShippedFile:
    """Check that ``path`` exists (from the driver) and ship it to a cluster's executors if it is local."""
    if "://" in path and not path.startswith("file://"):
        import fsspec

        try:
            fs, root = fsspec.core.url_to_fs(path)
            found = fs.isfile(root)
        except Exception as exc:
            raise ConfigError(f"{what} {path!r}: cannot open ({type(exc).__name__}: {exc})") from None
        if not found:
            raise ConfigError(f"{what} {path!r}: no such file")
        return ShippedFile(path)
    local = os.path.abspath(path.removeprefix("file://"))
    if not os.path.isfile(local):
        raise ConfigError(f"{what} {path!r}: no such file")
    if spark.sparkContext.master.startswith("local"):
        return ShippedFile(local)
    try:
        spark.sparkContext.addFile(local)
    except Exception as exc:  # the same file added earlier in this application is reused
        if "already" not in str(exc).lower():
            raise
    return ShippedFile(local, os.path.basename(local))


def spark_files_path(name: str | None, directory: bool = False) -> str | None:
    """Where the driver's `addFile`/`addArchive` of ``name`` landed in this process, if it did."""
    if not name:
        return None
    try:
        from pyspark import SparkFiles

        candidate = SparkFiles.get(name)
    except Exception:  # not inside Spark, or nothing shipped: the caller falls back to the path itself
        return None
    found = os.path.isdir(candidate) if directory else os.path.isfile(candidate)
    return candidate if found else None


def local_path(spec: ShippedFile) -> str:
    """A local file for ``spec`` in this process (fetched at most once per process)."""
    shipped = spark_files_path(spec.shipped_name)
    if shipped:
        return shipped
    if "://" not in spec.path or spec.path.startswith("file://"):
        return spec.path.removeprefix("file://")
    with _LOCK:
        if spec.path in _LOCAL and os.path.isfile(_LOCAL[spec.path]):
            return _LOCAL[spec.path]
        import fsspec

        suffix = os.path.splitext(spec.path)[1]
        fd, target = tempfile.mkstemp(prefix="tokenmill-model-", suffix=suffix)
        os.close(fd)
        with fsspec.open(spec.path, "rb") as src, open(target, "wb") as dst:
            while chunk := src.read(1 << 22):
                dst.write(chunk)
        _LOCAL[spec.path] = target
        return target


def ship_dir(spark: SparkSession, path: str, prefix: str) -> str | None:
    """Ship a local model/tokenizer directory to a cluster's executors once (zipped, `addArchive`: Spark
    refuses `addFile` of a local directory outside local mode); the SparkFiles name, or None when nothing
    needs shipping (local mode, a remote URL, not a directory)."""
    import hashlib
    import json
    import zipfile

    if not os.path.isdir(path) or spark.sparkContext.master.startswith("local"):
        return None
    local = os.path.abspath(path)
    files = sorted(os.path.relpath(os.path.join(d, f), local) for d, _, fs in os.walk(local) for f in fs)
    stamp = hashlib.sha256(json.dumps([(f, os.path.getsize(os.path.join(local, f)),
                                        os.path.getmtime(os.path.join(local, f))) for f in files]).encode()
                           + local.encode()).hexdigest()[:16]
    shipped = f"{prefix}-{stamp}.zip"
    archive = os.path.join(tempfile.gettempdir(), shipped)
    if not os.path.exists(archive):
        with zipfile.ZipFile(archive + ".tmp", "w", zipfile.ZIP_DEFLATED) as zf:
            for name in files:
                zf.write(os.path.join(local, name), name)
        os.replace(archive + ".tmp", archive)
    try:
        spark.sparkContext.addArchive(archive)
    except Exception as exc:  # already added in this application: the shipped copy is reused
        if "already" not in str(exc).lower():
            raise
    return shipped


def local_dir(path: str, shipped_name: str | None, what: str) -> str:
    """A local directory for ``path`` in this process: the shipped copy, the path itself, or an fsspec
    URL copied to a temporary directory once per process. Anything else is returned as given."""
    shipped = spark_files_path(shipped_name, directory=True)
    if shipped:
        return shipped
    if os.path.isdir(path):
        return path
    if "://" in path and not path.startswith("file://"):
        with _LOCK:
            if path in _LOCAL and os.path.isdir(_LOCAL[path]):
                return _LOCAL[path]
            import fsspec

            fs, root = fsspec.core.url_to_fs(path)
            if not fs.isdir(root):
                raise ConfigError(f"{what} {path!r}: not a directory")
            target = tempfile.mkdtemp(prefix="tokenmill-model-")
            fs.get(root.rstrip("/") + "/", target, recursive=True)
            _LOCAL[path] = target
            return target
    return path.removeprefix("file://")


def once_per_process(key: object, build, on_load=None):
    """``build()`` the first time ``key`` is asked for in this process (thread-safe), the same object after:
    a model is read once per Spark Python worker, never per batch or task. ``on_load`` runs on a build."""
    found = _BUILT.get(key)
    if found is not None:
        return found
    with _BUILD_LOCK:
        found = _BUILT.get(key)
        if found is None:
            found = _BUILT[key] = build()
            if on_load is not None:
                on_load()
        return found

"""File operations on the filesystem Spark writes to (local, HDFS, S3A, GCS...) via Hadoop's FileSystem API,
from the driver: commits, markers, manifests, pointers. A scheme the JVM has no FileSystem for (`s3://`
through s3fs where the cluster has no hadoop-aws, `memory://`) is served by fsspec with the same methods.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from pyspark.sql import SparkSession


def qualify(path: str) -> str:
    """A local relative path -> absolute; URLs with a scheme are left alone."""
    return path if urlparse(path).scheme and len(urlparse(path).scheme) > 1 else os.path.abspath(path)


_JVM_SCHEMES: dict[str, bool] = {}


def _jvm_has(spark: SparkSession, path: str) -> bool:
    """Whether the JVM has a Hadoop FileSystem for ``path``'s scheme (cached per scheme)."""
    scheme = urlparse(qualify(path)).scheme or "file"
    if scheme not in _JVM_SCHEMES:
        try:
            spark._jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass(scheme, spark._jsc.hadoopConfiguration())
            _JVM_SCHEMES[scheme] = True
        except Exception:  # noqa: BLE001 - UnsupportedFileSystemException from the JVM
            _JVM_SCHEMES[scheme] = False
    return _JVM_SCHEMES[scheme]


class HadoopFS:
    def __new__(cls, spark: SparkSession, path: str):
        if cls is HadoopFS and not _jvm_has(spark, path):
            return FsspecFS(path)
        return super().__new__(cls)

    def __init__(self, spark: SparkSession, path: str):
        jvm = spark._jvm
        self._jvm = jvm
        self._path_cls = jvm.org.apache.hadoop.fs.Path
        self.fs = self._path_cls(qualify(path)).getFileSystem(spark._jsc.hadoopConfiguration())

    def _p(self, path: str):
        return self._path_cls(qualify(path))

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(self._p(path)))

    def delete(self, path: str) -> None:
        if self.exists(path):
            self.fs.delete(self._p(path), True)

    def mkdirs(self, path: str) -> None:
        self.fs.mkdirs(self._p(path))

    def rename(self, src: str, dst: str) -> None:
        if not self.fs.rename(self._p(src), self._p(dst)):
            raise OSError(f"could not rename {src} to {dst}")

    def is_dir(self, path: str) -> bool:
        return bool(self.fs.getFileStatus(self._p(path)).isDirectory())

    def list_names(self, path: str) -> list[str]:
        """Names of everything directly inside ``path``."""
        if not self.exists(path):
            return []
        return sorted(s.getPath().getName() for s in self.fs.listStatus(self._p(path)))

    def glob(self, pattern: str) -> list[str]:
        """Full paths matching a Hadoop glob (``*`` within one path component)."""
        found = self.fs.globStatus(self._p(pattern))
        return sorted(s.getPath().toString() for s in found) if found else []

    def create_new(self, path: str, text: str) -> bool:
        """Create ``path`` with ``text`` only if it does not exist (atomic locally); False if it exists."""
        local = qualify(path)
        if "://" not in local:
            try:
                fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            return True
        if self.exists(path):
            return False
        try:
            out = self.fs.create(self._p(path), False)
        except Exception as exc:  # FileAlreadyExistsException from the JVM: someone else was first
            if "AlreadyExists" in str(exc) or "already exists" in str(exc):
                return False
            raise
        try:
            out.write(bytearray(text.encode("utf-8")))
        finally:
            out.close()
        return True

    def list_dirs(self, path: str) -> list[str]:
        if not self.exists(path):
            return []
        return sorted(s.getPath().getName() for s in self.fs.listStatus(self._p(path)) if s.isDirectory())

    def list_files(self, path: str, recursive: bool = True) -> list[tuple[str, int, int]]:
        """(path, size, mtime in ms) of every file under ``path``, sorted by path."""
        if not self.exists(path):
            return []
        out = []
        it = self.fs.listFiles(self._p(path), recursive)
        while it.hasNext():
            st = it.next()
            out.append((st.getPath().toString(), int(st.getLen()), int(st.getModificationTime())))
        return sorted(out)

    def copy_to_local(self, path: str, local: str) -> None:
        """Copy a file or folder to the driver's local disk."""
        self.fs.copyToLocalFile(False, self._p(path), self._p(f"file://{os.path.abspath(local)}"), True)

    def copy_from_local(self, local: str, path: str) -> None:
        """Copy a local file to ``path`` (any Hadoop file system)."""
        self.fs.copyFromLocalFile(False, True, self._p(f"file://{os.path.abspath(local)}"), self._p(path))

    def write_text(self, path: str, text: str) -> None:
        out = self.fs.create(self._p(path), True)
        try:
            out.write(bytearray(text.encode("utf-8")))
        finally:
            out.close()

    def read_text(self, path: str) -> str:
        stream = self.fs.open(self._p(path))
        try:
            data = self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream)
        finally:
            stream.close()
        return bytes(data).decode("utf-8")


class FsspecFS:
    """HadoopFS's methods through fsspec, for schemes the JVM cannot open (see the module docstring)."""

    def __init__(self, path: str, storage_options: dict | None = None):
        import fsspec

        self.fs, _ = fsspec.core.url_to_fs(path, **(storage_options or {}))

    def _k(self, path: str) -> str:
        return self.fs._strip_protocol(path)

    def _url(self, key: str) -> str:
        return self.fs.unstrip_protocol(key)

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(self._k(path)))

    def delete(self, path: str) -> None:
        if self.exists(path):
            self.fs.rm(self._k(path), recursive=True)

    def mkdirs(self, path: str) -> None:
        self.fs.makedirs(self._k(path), exist_ok=True)

    def rename(self, src: str, dst: str) -> None:
        self.fs.mv(self._k(src), self._k(dst), recursive=True)

    def is_dir(self, path: str) -> bool:
        return bool(self.fs.isdir(self._k(path)))

    def _entries(self, path: str) -> list[dict]:
        if not self.exists(path):
            return []
        return self.fs.ls(self._k(path), detail=True)

    def list_names(self, path: str) -> list[str]:
        return sorted(os.path.basename(e["name"].rstrip("/")) for e in self._entries(path))

    def list_dirs(self, path: str) -> list[str]:
        return sorted(os.path.basename(e["name"].rstrip("/")) for e in self._entries(path) if e["type"] == "directory")

    def glob(self, pattern: str) -> list[str]:
        return sorted(self._url(k) for k in self.fs.glob(self._k(pattern)))

    def create_new(self, path: str, text: str) -> bool:
        if self.exists(path):
            return False
        self.write_text(path, text)
        return True

    def list_files(self, path: str, recursive: bool = True) -> list[tuple[str, int, int]]:
        if not self.exists(path):
            return []
        found = self.fs.find(self._k(path), detail=True, maxdepth=None if recursive else 1)
        return sorted((self._url(k), int(v.get("size") or 0), 0) for k, v in found.items())

    def write_text(self, path: str, text: str) -> None:
        with self.fs.open(self._k(path), "wb") as out:  # one PUT on an object store: atomic for readers
            out.write(text.encode("utf-8"))

    def read_text(self, path: str) -> str:
        with self.fs.open(self._k(path), "rb") as handle:
            return handle.read().decode("utf-8")

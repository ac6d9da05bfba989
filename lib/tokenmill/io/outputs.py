"""Output safety: what a run may replace, one writer per output at a time, and leftovers of killed runs.

A run replaces only a tokenmill output (a folder with `_SUCCESS` and `manifest.json`), never `/`, the home
folder, the project folder, the working folder or one of its parents, nor a folder holding an input.
A lock file beside the output (`.<name>.lock`: host, pid, start time, heartbeat) makes a second run of
the same output fail fast; a lock left by a killed run is recognised (its process is gone, or its
heartbeat stopped) and taken over, and the killed run's `.tmp-*` folders are removed.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from pyspark.sql import SparkSession

from ..errors import OutputError
from .hadoopfs import HadoopFS, qualify

log = logging.getLogger("tokenmill.output")

# A lock whose heartbeat is older than this belongs to a run that died on another machine.
STALE_AFTER_SECONDS = 600.0
HEARTBEAT_SECONDS = 30.0


def _local(path: str) -> str | None:
    """The local filesystem path of ``path``, or None for a remote URL."""
    parsed = urlparse(path)
    if parsed.scheme in ("", "file") or len(parsed.scheme) == 1:
        return os.path.realpath(parsed.path if parsed.scheme == "file" else path)
    return None


def _project_root() -> str | None:
    """The source checkout tokenmill runs from (lib/tokenmill/io -> the folder with pyproject.toml)."""
    root = Path(__file__).resolve().parents[3]
    return str(root) if (root / "pyproject.toml").exists() else None


def _is_ancestor_or_self(parent: str, child: str) -> bool:
    parent, child = parent.rstrip("/") or "/", child.rstrip("/") or "/"
    return child == parent or child.startswith(parent if parent.endswith("/") else parent + "/")


def protected_reason(dest: str, inputs: list[str] = ()) -> str | None:
    """Why ``dest`` may never be written as an output (None if it may)."""
    local = _local(dest)
    if local is None:
        parsed = urlparse(dest)
        if parsed.path.strip("/") == "":
            return "it is the root of a bucket or filesystem"
        for path in inputs:
            if _local(path) is None and _is_ancestor_or_self(dest.rstrip("/"), path):
                return f"it holds the input {path}"
        return None
    if local == "/":
        return "it is the filesystem root"
    if local == os.path.realpath(os.path.expanduser("~")):
        return "it is the home folder"
    root = _project_root()
    if root and local == root:
        return "it is the tokenmill project folder"
    if _is_ancestor_or_self(local, os.path.realpath(os.getcwd())):
        return "it is the working folder or one of its parents"
    for path in inputs:
        input_local = _local(path)
        if input_local and _is_ancestor_or_self(local, input_local):
            return f"it holds the input {path}"
    return None


def is_tokenmill_output(spark: SparkSession, dest: str) -> bool:
    fs = HadoopFS(spark, dest)
    if fs.exists(f"{dest}/_SUCCESS") and fs.exists(f"{dest}/manifest.json"):
        return True
    # A quality model saved by train_quality before models had a manifest: a Spark ML model folder with
    # the metrics.json tokenmill wrote beside it.
    if all(fs.exists(f"{dest}/{name}") for name in ("metrics.json", "metadata", "stages")):
        return True
    # A Hugging Face dataset staged as Parquet before staging folders had a manifest.
    return fs.exists(f"{dest}/_STAGED")


def check_destination(spark: SparkSession, dest: str, what: str, inputs: list[str] = (),
                      replace: bool = True) -> None:
    """Raise OutputError unless writing ``dest`` can only replace an earlier tokenmill output.

    ``replace`` False: even a tokenmill output there is an error (the user passes --force to replace it).
    """
    dest = qualify(dest).rstrip("/")
    reason = protected_reason(dest, list(inputs))
    if reason:
        raise OutputError(f"{what} {dest}: refusing to write there: {reason}")
    fs = HadoopFS(spark, dest)
    if not fs.exists(dest):
        return
    if not fs.is_dir(dest):
        raise OutputError(f"{what} {dest}: a file is in the way; choose another path or remove it yourself")
    if not fs.list_names(dest):
        return  # an empty folder: nothing to lose
    if not is_tokenmill_output(spark, dest):
        raise OutputError(f"{what} {dest}: the folder exists and is not a tokenmill output (no _SUCCESS and "
                          "manifest.json); refusing to replace it. Choose another path, or remove it yourself")
    if not replace:
        raise OutputError(f"{what} {dest}: a tokenmill output is already there and overwrite is off; "
                          "pass --force (or set overwrite: true) to replace it")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutputLock:
    """``with OutputLock(spark, dest):`` holds `.<name>.lock` beside ``dest`` for the run's duration."""

    def __init__(self, spark: SparkSession, dest: str, stale_after: float = STALE_AFTER_SECONDS,
                 heartbeat: float = HEARTBEAT_SECONDS):
        self.dest = qualify(dest).rstrip("/")
        parent, _, name = self.dest.rpartition("/")
        self.path = f"{parent}/.{name}.lock"
        self.fs = HadoopFS(spark, self.dest)
        self.stale_after, self.heartbeat = stale_after, heartbeat
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(),
                      "started": time.time(), "heartbeat": time.time()}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _stale(self, owner: dict) -> str | None:
        """Why the lock of ``owner`` is left over from a dead run (None if its run may be alive)."""
        if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
            if not _pid_alive(owner["pid"]):
                return f"process {owner['pid']} on this host is gone"
            return None
        age = time.time() - float(owner.get("heartbeat") or 0)
        if age > self.stale_after:
            return f"no heartbeat for {age:.0f} s"
        return None

    def acquire(self) -> None:
        parent = self.path.rpartition("/")[0]
        self.fs.mkdirs(parent)
        for _ in range(3):
            if self.fs.create_new(self.path, json.dumps(self.owner)):
                break
            try:
                owner = json.loads(self.fs.read_text(self.path))
            except Exception:  # noqa: BLE001 - a half-written or vanished lock: treated as stale below
                owner = {}
            why = self._stale(owner) if owner else "the lock file is unreadable"
            if why is None:
                started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(owner.get("started", 0))))
                raise OutputError(f"{self.dest}: another run is writing this output (host {owner.get('host')}, "
                                  f"pid {owner.get('pid')}, started {started}; lock {self.path}). Wait for it, "
                                  "or write elsewhere")
            log.warning("taking over the lock of a dead run (%s): %s", why, self.path)
            self.fs.delete(self.path)
        else:
            raise OutputError(f"{self.dest}: could not take the lock {self.path}")
        self._remove_stale_temps()
        self._thread = threading.Thread(target=self._beat, name="tokenmill-lock", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            self.owner["heartbeat"] = time.time()
            try:
                self.fs.write_text(self.path, json.dumps(self.owner))
            except Exception:  # noqa: BLE001 - a missed heartbeat is not worth failing a run for
                log.warning("could not refresh %s", self.path)

    def _remove_stale_temps(self) -> None:
        """Temporary folders of killed runs of this output (ours is the only live run now)."""
        parent, _, name = self.dest.rpartition("/")
        _remove_matching(self.fs, f"{parent}/.{name}.tmp-*")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.fs.delete(self.path)

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def remove_stale_temps(spark: SparkSession, folder: str) -> None:
    """`.*.tmp-*` leftovers inside ``folder`` (checkpoints of killed runs; call while holding the lock)."""
    _remove_matching(HadoopFS(spark, folder), f"{qualify(folder).rstrip('/')}/.*.tmp-*")


def _remove_matching(fs: HadoopFS, pattern: str) -> None:
    for stale in fs.glob(pattern):
        log.warning("removing the leftover of a killed run: %s", stale)
        fs.delete(stale)

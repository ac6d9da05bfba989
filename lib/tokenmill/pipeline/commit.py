"""The one way tokenmill publishes a folder, in one of two commit modes.

- `rename` (local disks, HDFS: a folder rename is atomic there): built in a temporary sibling
  `.<name>.tmp-<random>`, then renamed into place.
- `pointer` (object stores: S3, GCS, Azure, where a "rename" copies every object and the destination is
  missing between the two renames): every run writes under its own immutable folder
  `<dest>/runs/<run-id>/`, and the commit is one single-object write, `<dest>/manifest.json`, naming that
  run (`"run_folder": "runs/<run-id>"`). Readers resolve through it (`committed_folder`, `io.writer.OutputPaths`);
  `tokenmill gc` removes the runs nothing points to.

`spark.tokenmill.commit` = auto (pointer for object-store schemes, else rename) | rename | pointer.
Used by the pipeline (output and checkpoints), the mixture builder, the quality-model trainer, the Hugging
Face staging and the MinHash index (whose runs are unique folders: committed in place by their manifest).
A committed folder holds `manifest.json` and `_SUCCESS`; only such a folder (a tokenmill output) is ever
replaced, and a run that fails leaves nothing readers can see.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from urllib.parse import urlparse

from pyspark.sql import SparkSession

from ..errors import OutputError
from ..io.hadoopfs import HadoopFS, qualify
from ..io.outputs import is_tokenmill_output

MANIFEST = "manifest.json"
SUCCESS = "_SUCCESS"
RUNS = "runs"
MODE_KEY = "spark.tokenmill.commit"
# fsspec and Hadoop names of object stores (no atomic folder rename); `memory` is fsspec's, for tests
OBJECT_STORES = frozenset({"s3", "s3a", "s3n", "gs", "gcs", "abfs", "abfss", "wasb", "wasbs", "oss", "cos",
                           "r2", "memory"})


def commit_mode(spark: SparkSession, dest: str) -> str:
    """`rename` or `pointer` for ``dest`` (see the module docstring)."""
    mode = (spark.conf.get(MODE_KEY, "auto") or "auto").lower()
    if mode not in ("auto", "rename", "pointer"):
        raise OutputError(f"{MODE_KEY}={mode!r}: expected auto, rename or pointer")
    if mode == "auto":
        return "pointer" if urlparse(qualify(dest)).scheme in OBJECT_STORES else "rename"
    return mode


def new_run_id() -> str:
    return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:6]}"  # sorts by time


def new_temp(dest: str) -> str:
    """A fresh temporary sibling of ``dest`` (`.<name>.tmp-<random>`), removed as stale by later runs."""
    dest = qualify(dest).rstrip("/")
    parent, _, name = dest.rpartition("/")
    return f"{parent}/.{name}.tmp-{uuid.uuid4().hex[:12]}"


class StagedOutput:
    """A folder being built for ``dest``: write into `.path`, then `commit(manifest)`. Leaving the `with`
    block without committing (an error, an interrupt) deletes what was written.

        with StagedOutput(spark, dest) as out:
            df.write.parquet(f"{out.path}/data")
            out.commit({"rows": n})

    ``unique``: ``dest`` is a fresh name nobody else writes (a MinHash index run): in pointer mode it is
    written in place and committed by its own manifest and `_SUCCESS`. `.in_place` says whether `.path` is
    already the final place of the files (pointer mode), so the files inside must not be moved either.
    """

    def __init__(self, spark: SparkSession, dest: str, unique: bool = False):
        self.spark = spark
        self.dest = qualify(dest).rstrip("/")
        self.mode = commit_mode(spark, self.dest)
        self.unique = unique
        self.fs = HadoopFS(spark, self.dest)
        self.in_place = self.mode == "pointer"
        self.run = None
        if not self.in_place:
            self.path = new_temp(self.dest)
        elif unique:
            self.path = self.dest
        else:
            self.run = f"{RUNS}/{new_run_id()}"
            self.path = f"{self.dest}/{self.run}"
        self.committed = False

    def __enter__(self) -> StagedOutput:
        return self

    def __exit__(self, *exc) -> None:
        if not self.committed:
            self.fs.delete(self.path)

    def commit(self, manifest: dict) -> None:
        """Write the manifest and `_SUCCESS`, then publish: rename the folder in place of ``dest`` (an
        earlier tokenmill output there is replaced; anything else is refused), or write the pointer."""
        fs, temp, dest = self.fs, self.path, self.dest
        body = json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n"
        if self.in_place and not self.unique:
            self._check_replaceable()
            previous = read_manifest(self.spark, dest)
            fs.write_text(f"{temp}/{MANIFEST}", body)
            fs.write_text(f"{temp}/{SUCCESS}", "")
            if not fs.exists(f"{dest}/{SUCCESS}"):
                fs.write_text(f"{dest}/{SUCCESS}", "")
            pointer = {**manifest, "run_folder": self.run, "committed_at": datetime.now(UTC).isoformat(timespec="seconds")}
            fs.write_text(f"{dest}/{MANIFEST}", json.dumps(pointer, indent=2, default=str) + "\n")  # the commit
            self.committed = True
            if previous is not None and "run_folder" not in previous:  # an output of the rename layout: its files go
                for name in fs.list_names(dest):
                    if name not in (RUNS, MANIFEST, SUCCESS, "_lock"):
                        fs.delete(f"{dest}/{name}")
            return
        fs.write_text(f"{temp}/{MANIFEST}", body)
        fs.write_text(f"{temp}/{SUCCESS}", "")
        if self.in_place:  # a unique folder: its manifest and _SUCCESS were the commit
            self.committed = True
            return
        self._check_replaceable()
        old = None
        if fs.exists(dest):
            old = f"{new_temp(dest)}-old"
            fs.rename(dest, old)
        else:
            fs.mkdirs(dest.rpartition("/")[0])
        fs.rename(temp, dest)
        self.committed = True
        if old:
            fs.delete(old)

    def _check_replaceable(self) -> None:
        fs, dest = self.fs, self.dest
        names = [n for n in fs.list_names(dest) if n != RUNS] if fs.exists(dest) else []
        if names and not is_tokenmill_output(self.spark, dest):
            # last line of defence: only a tokenmill output is ever replaced
            raise OutputError(f"{dest}: the folder exists and is not a tokenmill output; refusing to replace it")


def committed_folder(spark: SparkSession, dest: str) -> str:
    """The folder holding the committed files of ``dest``: ``dest`` itself, or the run its pointer names."""
    dest = qualify(dest).rstrip("/")
    manifest = read_manifest(spark, dest)
    return f"{dest}/{manifest['run_folder']}" if manifest and manifest.get("run_folder") else dest


def resolve_data(spark: SparkSession, path: str) -> str:
    """Where the kept rows of a tokenmill output are, given `<output>/data` or `<output>` as users name them:
    for a pointer-committed output, inside the run its manifest names; anything else as given."""
    p = qualify(path).rstrip("/")
    for folder in ([p.rsplit("/", 1)[0]] if p.endswith("/data") else []) + [p]:
        manifest = read_manifest(spark, folder) if "/" in folder else None
        if manifest and manifest.get("run_folder"):
            out = manifest.get("output") if isinstance(manifest.get("output"), dict) else {}
            return out.get("data") or f"{folder}/{manifest['run_folder']}/data"
    return p


def read_manifest(spark: SparkSession, dest: str) -> dict | None:
    """The manifest of a committed folder (None if absent or incomplete); for a pointer, the manifest of
    the run it names (with `run_folder`), once that run's own `_SUCCESS` is there."""
    fs = HadoopFS(spark, dest)
    if not (fs.exists(f"{dest}/{SUCCESS}") and fs.exists(f"{dest}/{MANIFEST}")):
        return None
    try:
        manifest = json.loads(fs.read_text(f"{dest}/{MANIFEST}"))
    except ValueError:
        return None
    if isinstance(manifest, dict) and manifest.get("run_folder") and not fs.exists(f"{dest}/{manifest['run_folder']}/{SUCCESS}"):
        return None  # a pointer to a run that is not there (removed by hand): not an output
    return manifest


def committed_children(spark: SparkSession, folder: str) -> list[str]:
    """The committed subfolders of ``folder`` (those with a manifest and `_SUCCESS`), sorted by name."""
    fs = HadoopFS(spark, folder)
    return [f"{folder}/{name}" for name in fs.list_dirs(folder)
            if not name.startswith((".", "_")) and read_manifest(spark, f"{folder}/{name}") is not None]

"""The one way tokenmill publishes a folder: build it in a temporary sibling, then commit it in one step.

Used by the pipeline (output and checkpoints), the mixture builder, the quality-model trainer, the Hugging
Face staging and the MinHash index. A committed folder holds `manifest.json` and `_SUCCESS`; only such a
folder (a tokenmill output) is ever replaced, and a run that fails leaves nothing half-written behind.
"""

from __future__ import annotations

import json
import uuid

from pyspark.sql import SparkSession

from ..errors import OutputError
from ..io.hadoopfs import HadoopFS, qualify
from ..io.outputs import is_tokenmill_output

MANIFEST = "manifest.json"
SUCCESS = "_SUCCESS"


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
    """

    def __init__(self, spark: SparkSession, dest: str):
        self.spark = spark
        self.dest = qualify(dest).rstrip("/")
        self.path = new_temp(self.dest)
        self.fs = HadoopFS(spark, self.dest)
        self.committed = False

    def __enter__(self) -> StagedOutput:
        return self

    def __exit__(self, *exc) -> None:
        if not self.committed:
            self.fs.delete(self.path)

    def commit(self, manifest: dict) -> None:
        """Write the manifest and `_SUCCESS`, then put the folder in place of ``dest`` (an earlier tokenmill
        output there is replaced; anything else is refused)."""
        fs, temp, dest = self.fs, self.path, self.dest
        fs.write_text(f"{temp}/{MANIFEST}", json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n")
        fs.write_text(f"{temp}/{SUCCESS}", "")
        if fs.exists(dest) and fs.list_names(dest) and not is_tokenmill_output(self.spark, dest):
            # last line of defence: only a tokenmill output is ever moved aside and deleted
            raise OutputError(f"{dest}: the folder exists and is not a tokenmill output; refusing to replace it")
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


def read_manifest(spark: SparkSession, dest: str) -> dict | None:
    """The manifest of a committed folder (None if absent or incomplete)."""
    fs = HadoopFS(spark, dest)
    if not (fs.exists(f"{dest}/{SUCCESS}") and fs.exists(f"{dest}/{MANIFEST}")):
        return None
    try:
        return json.loads(fs.read_text(f"{dest}/{MANIFEST}"))
    except ValueError:
        return None


def committed_children(spark: SparkSession, folder: str) -> list[str]:
    """The committed subfolders of ``folder`` (those with a manifest and `_SUCCESS`), sorted by name."""
    fs = HadoopFS(spark, folder)
    return [f"{folder}/{name}" for name in fs.list_dirs(folder)
            if not name.startswith((".", "_")) and read_manifest(spark, f"{folder}/{name}") is not None]

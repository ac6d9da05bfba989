"""Per-source exports of a built mixture, in the layout SmolLM-style trainers expect: one folder per source
with its documents as Parquet shards (`data/`) and as one plain-text `input.txt` (documents in the shards'
order, joined by a separator)."""

from __future__ import annotations

import re

import fsspec
import pyarrow.parquet as pq
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from ..io.hadoopfs import HadoopFS, qualify
from ..pipeline.commit import resolve_data
from ..schema import SOURCE, TEXT


def folder_name(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "source"


def write_input_txt(data: str, dest: str, separator: str) -> dict:
    """``dest`` = the `text` of every Parquet file under ``data`` (file names in order, rows in order) joined
    by ``separator``; streamed in Arrow batches (no Python per document beyond the write)."""
    fs, root = fsspec.core.url_to_fs(data)
    files = sorted(p for p in fs.find(root) if p.endswith(".parquet"))
    docs, sep = 0, separator.encode("utf-8")
    with fsspec.open(dest, "wb") as out:
        for path in files:
            with fs.open(path, "rb") as handle:
                for batch in pq.ParquetFile(handle).iter_batches(columns=[TEXT], batch_size=8192):
                    for text in batch.column(0).to_pylist():
                        if docs:
                            out.write(sep)
                        out.write((text or "").encode("utf-8"))
                        docs += 1
    return {"documents": docs, "files": len(files)}


def export_sources(spark: SparkSession, mixture_output: str, output: str, names: list[str], export) -> dict:
    """For every source of the mixture: `<output>/export/<source>/data` (Parquet) and `input.txt`."""
    if not (export.parquet or export.input_txt):
        return {}
    shards = spark.read.parquet(resolve_data(spark, f"{mixture_output}/data"))
    result = {}
    for name in names:
        folder = qualify(f"{output.rstrip('/')}/export/{folder_name(name)}")
        data = f"{folder}/data"
        shards.where(F.col(SOURCE) == name).write.mode("overwrite").parquet(data)
        info: dict = {"folder": folder}
        if export.parquet:
            info["parquet"] = data
        if export.input_txt:
            info["input_txt"] = f"{folder}/input.txt"
            info.update(write_input_txt(data, info["input_txt"], export.separator))
        if not export.parquet:
            HadoopFS(spark, folder).delete(data)
        result[name] = info
    return result

"""Export a tokenmill output (kept rows) as JSONL or Parquet shards, a `datasets` `save_to_disk` folder, and
to the Hugging Face hub: whichever `datasets.load_dataset` / `load_from_disk` reads, one split per value
of the `split` column when there is one. The export is a committed folder like every output."""

from __future__ import annotations

import os

from pyspark.sql import SparkSession

from ..errors import ConfigError
from ..io.hadoopfs import HadoopFS, qualify
from ..io.outputs import check_destination
from ..pipeline.commit import StagedOutput, read_manifest
from ..schema import ID, SOURCE, SPLIT, TEXT
from .formats import USE_COLUMNS, use_of


def export_columns(columns: list[str], manifest: dict) -> list[str]:
    """What a training set needs: id, source, the method's columns (and `text` once rendered by a template,
    or for text documents), and `split`."""
    use = use_of(columns)
    rendered = any(st.get("name") == "instruct_format" for st in manifest.get("stages", []))
    cols = [ID, SOURCE] + (list(USE_COLUMNS[use]) if use else [])
    if (use is None or rendered) and TEXT in columns:
        cols.append(TEXT)
    cols += [c for c in ("prompt_text", "completion_text", "chosen_text", "rejected_text") if c in columns]
    return cols + ([SPLIT] if SPLIT in columns else [])


def _splits(spark: SparkSession, df) -> list[str]:
    if SPLIT not in df.columns:
        return []
    return sorted(r[SPLIT] for r in df.select(SPLIT).distinct().collect() if r[SPLIT] is not None)  # small: the split names


def export_output(folder: str, fmt: str, output: str, push_to_hub: str | None = None,
                  spark_profile: str | None = None, spark: SparkSession | None = None) -> dict:
    """Write ``folder``'s kept rows to ``output`` as ``fmt`` (jsonl, parquet, hf); returns rows, output and
    the line that loads it."""
    from ..spark import build_session

    own = spark is None
    spark = spark or build_session(spark_profile, app_name="tokenmill-export")
    try:
        src = qualify(folder).rstrip("/")
        manifest = read_manifest(spark, src)
        if manifest is None:
            raise ConfigError(f"export --input {folder}: not a committed tokenmill output (no manifest.json / _SUCCESS)")
        check_destination(spark, output, "export output", [folder])
        df = spark.read.parquet(f"{src}/data")
        cols = export_columns(df.columns, manifest)
        df = df.select(*cols)
        splits = _splits(spark, df)
        dest = qualify(output).rstrip("/")
        local_dest = dest.removeprefix("file:")
        with StagedOutput(spark, dest) as out:
            part = [SPLIT] if splits else []
            if fmt == "jsonl":
                df.write.option("compression", "gzip").partitionBy(*part).json(f"{out.path}/data")
                pattern = "*.json.gz"
            elif fmt == "parquet":
                df.write.option("compression", "zstd").partitionBy(*part).parquet(f"{out.path}/data")
                pattern = "*.parquet"
            elif fmt == "hf":
                _save_to_disk(spark, df, out.path, splits)
                pattern = ""
            else:
                raise ConfigError(f"export: unknown format {fmt!r} (jsonl, parquet, hf)")
            rows = df.count()
            out.commit({"kind": "export", "format": fmt, "input": src, "input_fingerprint": manifest.get("fingerprint"),
                        "rows": rows, "columns": cols, "splits": splits})
        load = _load_line(fmt, local_dest, splits, pattern)
        if push_to_hub:
            push(local_dest, fmt, splits, pattern, push_to_hub)
        return {"rows": rows, "output": local_dest, "load": load, "columns": cols, "splits": splits}
    finally:
        if own:
            spark.stop()


def _data_files(dest: str, splits: list[str], pattern: str) -> dict[str, str] | str:
    if splits:
        return {s: f"{dest}/data/{SPLIT}={s}/{pattern}" for s in splits}
    return f"{dest}/data/{pattern}"


def _load_line(fmt: str, dest: str, splits: list[str], pattern: str) -> str:
    if fmt == "hf":
        return f"datasets.load_from_disk({dest!r})"
    builder = "json" if fmt == "jsonl" else "parquet"
    return f"datasets.load_dataset({builder!r}, data_files={_data_files(dest, splits, pattern)!r})"


def _save_to_disk(spark: SparkSession, df, folder: str, splits: list[str]) -> None:
    """A `save_to_disk` folder, built from Parquet shards Spark writes (datasets memory-maps them: the driver
    streams the shards into Arrow files, it does not hold the dataset in memory)."""
    import datasets

    staging = f"{folder}/_parquet"
    df.write.option("compression", "zstd").partitionBy(*([SPLIT] if splits else [])).parquet(staging)
    local = folder.removeprefix("file:")
    shards = local + "/_parquet"
    cache = local + "/_cache"
    if splits:
        parts = {s: datasets.Dataset.from_parquet(f"{shards}/{SPLIT}={s}/*.parquet", cache_dir=cache) for s in splits}
        ds: datasets.Dataset | datasets.DatasetDict = datasets.DatasetDict(parts)
    else:
        ds = datasets.Dataset.from_parquet(f"{shards}/*.parquet", cache_dir=cache)
    ds.save_to_disk(local)
    HadoopFS(spark, folder).delete(staging)
    HadoopFS(spark, folder).delete(f"{folder}/_cache")


def push(dest: str, fmt: str, splits: list[str], pattern: str, repo_id: str) -> None:
    """Push the export to the hub as ``repo_id`` (a private dataset), with the token in HF_TOKEN."""
    import datasets

    token = os.environ.get("HF_TOKEN")
    if not token:
        raise ConfigError("--push-to-hub: set HF_TOKEN in the environment (a token with write access)")
    if fmt == "hf":
        ds = datasets.load_from_disk(dest)
    else:
        ds = datasets.load_dataset("json" if fmt == "jsonl" else "parquet", data_files=_data_files(dest, splits, pattern))
    ds.push_to_hub(repo_id, token=token, private=True)

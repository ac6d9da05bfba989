"""Export a tokenmill output (kept rows) as JSONL or Parquet shards, a `datasets` `save_to_disk` folder, and
to the Hugging Face hub: whichever `datasets.load_dataset` / `load_from_disk` reads, one split per value
of the `split` column when there is one. The export is a committed folder like every output."""

from __future__ import annotations

import os

from pyspark.sql import SparkSession

from ..errors import ConfigError
from ..io.hadoopfs import HadoopFS, qualify
from ..io.outputs import check_destination
from ..pipeline.commit import StagedOutput, read_manifest, resolve_data
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
                  spark_profile: str | None = None, spark: SparkSession | None = None, compression: str = "gzip",
                  separator: str = "\n\n") -> dict:
    """Write ``folder``'s kept rows to ``output`` as ``fmt`` (jsonl with ``compression``, parquet, hf, or txt:
    one folder per source with `input.txt` and Parquet); returns rows, output and the line that loads it."""
    from ..spark import build_session

    own = spark is None
    spark = spark or build_session(spark_profile, app_name="tokenmill-export")
    try:
        src = qualify(folder).rstrip("/")
        manifest = read_manifest(spark, src)
        if manifest is None:
            raise ConfigError(f"export --input {folder}: not a committed tokenmill output (no manifest.json / _SUCCESS)")
        check_destination(spark, output, "export output", [folder])
        df = spark.read.parquet(resolve_data(spark, f"{src}/data"))
        cols = export_columns(df.columns, manifest)
        df = df.select(*cols)
        splits = _splits(spark, df)
        dest = qualify(output).rstrip("/")
        local_dest = dest.removeprefix("file:")
        with StagedOutput(spark, dest) as out:
            part = [SPLIT] if splits else []
            if fmt == "jsonl":
                codec = "none" if compression == "zstd" else compression
                df.write.option("compression", codec).partitionBy(*part).json(f"{out.path}/data")
                if compression == "zstd":  # Spark's JSON writer has no zstd: each part file is compressed by a task
                    _zstd_files(spark, f"{out.path}/data")
                pattern = "*.json" + {"gzip": ".gz", "zstd": ".zst", "none": ""}[compression]
            elif fmt == "txt":
                pattern = _input_txt(spark, df, out.path, separator)
            elif fmt == "parquet":
                df.write.option("compression", "zstd").partitionBy(*part).parquet(f"{out.path}/data")
                pattern = "*.parquet"
            elif fmt == "hf":
                _save_to_disk(spark, df, out.path, splits)
                pattern = ""
            else:
                raise ConfigError(f"export: unknown format {fmt!r} (jsonl, parquet, hf, txt)")
            rows = df.count()
            out.commit({"kind": "export", "format": fmt, "input": src, "input_fingerprint": manifest.get("fingerprint"),
                        "rows": rows, "columns": cols, "splits": splits})
        load = _load_line(fmt, local_dest, splits, pattern)
        pushed = push(local_dest, fmt, splits, pattern, push_to_hub) if push_to_hub else None
        return {"rows": rows, "output": local_dest, "load": load, "columns": cols, "splits": splits, "pushed": pushed}
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
    if fmt == "txt":
        return f"open({dest + '/<source>/input.txt'!r}), or datasets.load_dataset('parquet', data_files={dest + '/<source>/data/*.parquet'!r})"
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


def push(dest: str, fmt: str, splits: list[str], pattern: str, repo_id: str) -> str:
    """Push the export to the hub as ``repo_id`` (a private dataset), with the token in HF_TOKEN; without a
    token the push is skipped (the export stands) and the returned line says so."""
    import datasets

    token = os.environ.get("HF_TOKEN")
    if not token:
        return (f"not pushed to {repo_id}: set HF_TOKEN (a token with write access) and rerun with --push-to-hub; "
                "the export is complete without it")
    if fmt == "txt":
        return f"not pushed to {repo_id}: push the Parquet of each source folder, or export --format parquet"
    if fmt == "hf":
        ds = datasets.load_from_disk(dest)
    else:
        ds = datasets.load_dataset("json" if fmt == "jsonl" else "parquet", data_files=_data_files(dest, splits, pattern))
    ds.push_to_hub(repo_id, token=token, private=True)
    return f"pushed to https://huggingface.co/datasets/{repo_id} (private)"


def _zstd_files(spark: SparkSession, folder: str) -> None:
    """Compress every part file under ``folder`` with zstd (`<name>.zst`), one Spark task per file."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(folder)
    parts = sorted(p for p in fs.find(root) if p.rsplit("/", 1)[-1].startswith("part-"))
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]

    def compress(paths):
        import zstandard

        for path in paths:
            f, _ = fsspec.core.url_to_fs(f"{protocol}://{path}")
            with f.open(path, "rb") as src, f.open(path + ".zst", "wb") as dst:
                zstandard.ZstdCompressor(level=3).copy_stream(src, dst)
            f.rm(path)
            yield path

    if parts:
        spark.sparkContext.parallelize(parts, len(parts)).mapPartitions(compress).count()


def _input_txt(spark: SparkSession, df, folder: str, separator: str) -> str:
    """The SmolLM layout: per source `<folder>/<source>/data` (Parquet) and `input.txt` (their text in order)."""
    from pyspark.sql import functions as F

    from ..mixing.export import folder_name, write_input_txt

    sources = [r[SOURCE] for r in df.select(SOURCE).distinct().collect()]  # small: one row per source
    for name in sorted(s for s in sources if s is not None):
        sub = f"{folder}/{folder_name(name)}"
        df.where(F.col(SOURCE) == name).write.option("compression", "zstd").parquet(f"{sub}/data")
        write_input_txt(f"{sub}/data", f"{sub}/input.txt", separator)
    return "input.txt"

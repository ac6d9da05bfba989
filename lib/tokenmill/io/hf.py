"""Hugging Face datasets -> Parquet shards that Spark reads natively (Arrow batches, never row by row).

`load_from_disk` for a `save_to_disk` folder; `load_dataset` for a local path, a builder ("json", "parquet")
with data files, or a hub id (hub cache, or streaming when the machine is online).
"""

from __future__ import annotations

import json
import os

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ConfigError


def is_saved_dataset(path: str) -> bool:
    """True for a folder written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk`."""
    return os.path.isdir(path) and any(
        os.path.exists(os.path.join(path, name)) for name in ("dataset_info.json", "state.json", "dataset_dict.json")
    )


def load_saved(path: str, split: str):
    """One split of a `save_to_disk` folder (a single saved Dataset is its own split)."""
    import datasets

    ds = datasets.load_from_disk(path)
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise ConfigError(f"{path}: split '{split}' not found; splits are {', '.join(ds)}")
        ds = ds[split]
    return ds


def _load(src):
    import datasets

    if is_saved_dataset(src.dataset):
        return load_saved(src.dataset, src.split)
    try:
        return datasets.load_dataset(src.dataset, src.config_name, split=src.split, data_files=src.data_files,
                                     revision=src.revision, streaming=src.streaming)
    except FileNotFoundError as exc:
        raise ConfigError(f"hf source '{src.name}': cannot load {src.dataset!r}: {exc}") from None


def _fingerprint(src) -> str:
    return json.dumps(src.model_dump(include={"dataset", "config_name", "split", "data_files", "revision"}),
                      sort_keys=True)


def stage_hf_dataset(spark, src, staging_dir: str) -> str:
    """Write the dataset split as Parquet shards under ``<staging_dir>/data`` (a committed folder, reused
    while the dataset's id, config, split, files and revision stay the same); returns the data folder."""
    from ..pipeline.commit import StagedOutput, read_manifest, resolve_data

    fingerprint = _fingerprint(src)
    previous = read_manifest(spark, staging_dir)
    if previous is not None and previous.get("fingerprint") == fingerprint:
        return resolve_data(spark, f"{staging_dir.rstrip('/')}/data")
    ds = _load(src)
    with StagedOutput(spark, staging_dir) as staged:
        shards = _write_shards(ds, src, f"{staged.path}/data")
        if shards == 0:
            raise ConfigError(f"hf source '{src.name}': split '{src.split}' of {src.dataset!r} is empty")
        staged.commit({"kind": "hf_staging", "fingerprint": fingerprint, "dataset": src.dataset,
                       "split": src.split, "shards": shards})
    return resolve_data(spark, f"{staging_dir.rstrip('/')}/data")  # in a run folder when committed by pointer


def _write_shards(ds, src, folder: str) -> int:
    """The dataset as zstd Parquet files of `shard_rows` rows, Arrow batch by batch; the number written."""
    fs, root = fsspec.core.url_to_fs(folder)
    fs.makedirs(root, exist_ok=True)
    shard = 0

    def flush(tables) -> None:
        nonlocal shard
        if not tables:
            return
        table = pa.concat_tables(tables, promote_options="default")
        with fs.open(f"{root}/part-{shard:05d}.parquet", "wb") as out:
            pq.write_table(table, out, compression="zstd")
        shard += 1

    if hasattr(ds, "with_format") and hasattr(ds, "data"):  # a map-style Dataset backed by Arrow
        for start in range(0, len(ds), src.shard_rows):
            flush([ds.with_format("arrow")[start: start + src.shard_rows]])
        return shard
    rows: list = []  # an IterableDataset (streaming): Arrow batches as they arrive
    for batch in ds.iter(batch_size=min(src.shard_rows, 10_000)):
        rows.append(pa.Table.from_pydict(batch))
        if sum(t.num_rows for t in rows) >= src.shard_rows:
            flush(rows)
            rows = []
    flush(rows)
    return shard

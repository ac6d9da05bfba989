"""Write a tagged DataFrame from Python tasks with pyarrow, after running the Arrow forms of the segment's
last stages on the batches Spark hands the task: the folders, files and counts of `writer.write_split`
(kept rows in `data/`, removed ones in `removed/removed_by=<reason>/`), without the rows going back into
the JVM. Measured on the instruct bench, the JVM's row conversion and Parquet writer cost about ten times
the Arrow work itself.

The same tasks fold the rows they write into the stages' summaries (`pipeline.stage.ArrowSummary`) and
hash every id: the job shuffles the hashes to find repeats, so nothing is read back after the write.

The commit protocol is Spark's in small: every task attempt writes files named after its attempt; the
job returns, from the attempts Spark counted as successful, the files they wrote; every other file
(a failed or speculative attempt's) is deleted before the partitions are moved into place.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from urllib.parse import urlparse

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from ..schema import ID, META, N_TOKENS, REMOVED_BY, SOURCE, TEXT
from .hadoopfs import HadoopFS, qualify
from .writer import IDENTITY, NULL_PARTITION, OutputPaths, count_written, plain_columns, publish

# Spark's escaping of partition values in folder names (ExternalCatalogUtils.escapePathName).
_ESCAPED = {chr(c) for c in range(1, 32)} | set("\"#%'*/:=?\\\x7f{[]^")
# lz4 is left to Spark: its Parquet codec (Hadoop LZ4) is not what pyarrow writes under that name
_CODECS = {"none": None, "uncompressed": None, "snappy": "snappy", "gzip": "gzip", "zstd": "zstd"}
_BUFFER_BYTES = 64 << 20  # rows of one partition value gathered per row group
_RESULT = ["h", "r"]  # a task's rows: an id's hash, or (h null) one JSON result per removed_by value written


def escape_partition(value: str | None) -> str:
    """The folder name Spark gives a partition value (null and "" -> the Hive default partition)."""
    if not value:
        return NULL_PARTITION
    return "".join(f"%{ord(c):02X}" if c in _ESCAPED else c for c in value)


def supported(dest: str, partition_by: list[str], max_rows_per_file: int, compression: str) -> bool:
    """Whether this writer can take the output: a local folder, no partitioning, no file size limit."""
    scheme = urlparse(qualify(dest)).scheme
    return scheme in ("", "file") and not partition_by and not max_rows_per_file and compression in _CODECS


def _local(path: str) -> str:
    """A local path from a file: URI (Hadoop lists names as they are: a `%3A` in a name stays as it is)."""
    parsed = urlparse(path)
    return os.path.normpath(parsed.path if parsed.scheme == "file" else path)


@dataclass
class ArrowWritten:
    """What `write_arrow` counted while writing."""

    counts: dict  # as `writer.count_written` reads them back
    volume: dict  # per `removed_by` value (None: kept) [rows, characters, tokens]
    summaries: dict  # stage name -> every task's accumulator of its `ArrowSummary`
    repeated_ids: bool  # some id hash came twice: `writer.check_unique_ids` must look (or a hash collision)


def write_arrow(df: DataFrame, steps: list, dest: str, keep_removed: bool, compression: str = "zstd",
                audit: set[str] | frozenset = frozenset(), in_place: bool = False,
                summaries: dict | None = None, earlier: list[DataFrame] = ()) -> ArrowWritten:
    """Run ``steps`` (pipeline.passes.LabeledStep) on ``df``'s batches and write the result under ``dest``,
    with the ``earlier`` frames (rows removed before a checkpoint: no step runs on them); the tasks also
    fold the rows they write into ``summaries`` (stage name -> pipeline.stage.ArrowSummary) and hash every
    id, which one shuffle of the hashes checks for repeats in the same job."""
    from pyspark.sql.pandas.types import to_arrow_schema

    from ..pipeline.passes import conformer, output_schema, over_parts, run_steps

    spark = df.sparkSession
    dest = qualify(dest)
    schema = output_schema(df.schema, steps)
    for frame in earlier:  # nullable where an earlier frame's column is, or missing (as unionByName makes it)
        theirs = {f.name: f.nullable for f in frame.schema.fields}
        schema = T.StructType([T.StructField(f.name, f.dataType, f.nullable or theirs.get(f.name, True), f.metadata)
                               for f in schema.fields])
    light = {*IDENTITY, *audit}
    if not keep_removed:  # removed rows' payload is written null, as `writer.write_split`'s select makes it
        schema = T.StructType([f if f.name in light else T.StructField(f.name, f.dataType, True, f.metadata)
                               for f in schema.fields])
    target = to_arrow_schema(schema)
    names = [f.name for f in schema.fields]
    plain = {p.split(".")[0] for p in plain_columns(schema)}
    dictionary = [n for n in names if n not in plain and n != REMOVED_BY]
    codec = _CODECS[compression]
    paths = OutputPaths.of(dest, in_place)
    root = _local(paths.removed if in_place else f"{dest}/_all")
    has_text, has_tokens, has_source = TEXT in names, N_TOKENS in names, SOURCE in names
    forms = list((summaries or {}).items())
    check_ids = ID in names and META in names  # what `check_unique_ids` checks

    def make(produce, conform, steps, piece: int):
        def run(batches):
            import numpy as np
            import pyarrow as pa
            import pyarrow.compute as pc
            import pyarrow.parquet as pq
            from pyspark import TaskContext

            from ..text.fast_ngrams import string_hashes

            tc = TaskContext.get()
            # the part too: Spark may run partitions of several parts of a union in one task
            stem = f"part-{tc.partitionId():05d}-{piece}-{tc.taskAttemptId()}"
            file_schema = pa.schema([f for f in target if f.name != REMOVED_BY])
            open_: dict = {}  # value -> [writer, path, buffered tables, buffered bytes]
            stats: dict = {}  # value -> [rows, chars, tokens]
            per_source: dict = {}  # value -> {source: rows}
            accs: list = [None] * len(forms)

            def flush(value, force=False):
                entry = open_[value]
                if entry[2] and (force or entry[3] >= _BUFFER_BYTES):
                    if entry[0] is None:
                        os.makedirs(os.path.dirname(entry[1]), exist_ok=True)
                        entry[0] = pq.ParquetWriter(entry[1], file_schema, compression=codec, use_dictionary=dictionary)
                    entry[0].write_table(pa.concat_tables(entry[2]))
                    entry[2], entry[3] = [], 0

            for batch in (produce(batches) if produce is not None else batches):
                cols = conform(batch)
                run_steps(cols, steps)
                arrays = [cols[n] for n in names]
                table = pa.Table.from_arrays([a if a.type == f.type else a.cast(f.type) for a, f in zip(arrays, target, strict=True)],
                                             schema=target)
                if check_ids and table.num_rows:
                    hashes = string_hashes(table.column(ID)).view(np.int64)
                    yield pa.RecordBatch.from_arrays([pa.array(hashes), pa.nulls(len(hashes), pa.string())], _RESULT)
                removed = table.column(REMOVED_BY).combine_chunks()
                values = [None] if removed.null_count == len(removed) else pc.unique(removed).to_pylist()
                for value in values:
                    part = table if len(values) == 1 else table.filter(
                        pc.is_null(removed) if value is None else pc.equal(removed, value))
                    rows = part.num_rows
                    chars = pc.sum(pc.utf8_length(part.column(TEXT))).as_py() if has_text else None
                    tokens = pc.sum(part.column(N_TOKENS)).as_py() if has_tokens else None
                    mine = per_source.setdefault(value, {})
                    if has_source:
                        for pair in pc.value_counts(part.column(SOURCE)).to_pylist():
                            mine[pair["values"]] = mine.get(pair["values"], 0) + pair["counts"]
                    got = stats.setdefault(value, [0, None, None])
                    got[0] += rows
                    if chars is not None:
                        got[1] = (got[1] or 0) + chars
                    if tokens is not None:
                        got[2] = (got[2] or 0) + tokens
                    part = part.drop_columns([REMOVED_BY])
                    if value is not None and not keep_removed:  # removed rows keep who they are and why, no payload
                        part = pa.Table.from_arrays(
                            [c if n in light else pa.nulls(rows, c.type) for n, c in zip(part.column_names, part.columns,
                                                                                       strict=True)], schema=file_schema)
                    for j, (_, form) in enumerate(forms):  # the summaries see the rows as written
                        accs[j] = form.add(accs[j], part, value is None)
                    if value not in open_:
                        open_[value] = [None, f"{root}/{REMOVED_BY}={escape_partition(value)}/{stem}.parquet", [], 0]
                    entry = open_[value]
                    entry[2].append(part)
                    entry[3] += part.nbytes
                    flush(value)
            out = []
            for value, entry in open_.items():
                flush(value, force=True)
                entry[0].close()
                rows, chars, tokens = stats[value]
                result = {"value": value, "rows": rows, "chars": chars, "tokens": tokens, "file": entry[1],
                          "sources": per_source[value]}
                if not out:  # the task's summaries, once
                    result["summaries"] = accs
                out.append(json.dumps(result))
            if out:
                yield pa.RecordBatch.from_arrays([pa.nulls(len(out), pa.int64()), pa.array(out, pa.string())], _RESULT)

        return run

    # A frame straight from the read (io.sources.stream_frame): the tasks read the files themselves.
    seg_conform = conformer(df.schema)
    parts = iter(range(1 << 30))
    written = over_parts(df, lambda produce: make(produce, seg_conform, steps, next(parts)), "h long, r string")
    for frame in earlier:  # conformed to the output's schema: columns added after the checkpoint are null
        written = written.union(frame.mapInArrow(make(None, conformer(_nullable(schema, frame)), [], next(parts)),
                                                 "h long, r string"))
    repeated = False
    if check_ids:
        # One row per distinct id hash and per task result; the repeats counted by an observation of the
        # same job, the results collected.
        from pyspark.sql import Observation
        from pyspark.sql import functions as F

        seen = Observation("tokenmill_ids")
        grouped = written.groupBy("h", "r").count().observe(
            seen, F.sum(F.when(F.col("r").isNull() & (F.col("count") > 1), 1)).alias("repeated"))
        rows = grouped.where(F.col("r").isNotNull()).select("r").collect()  # small: one row per task and value
        repeated = bool(seen.get.get("repeated"))
    else:
        rows = written.collect()  # small: no id rows without ids
    results = [json.loads(r["r"]) for r in rows]
    files = {r["file"] for r in results}
    fs = HadoopFS(spark, dest)
    for path, _, _ in fs.list_files(_uri(root)):
        if _local(path) not in files:  # a failed or speculative attempt's file
            fs.delete(path)
    volume: dict = {}
    for r in results:
        got = volume.setdefault(r["value"], [0, None, None])
        got[0] += r["rows"]
        for i, key in ((1, "chars"), (2, "tokens")):
            if r[key] is not None:
                got[i] = (got[i] or 0) + r[key]
    kept_schema = T.StructType([f for f in schema.fields if f.name != REMOVED_BY])
    if not in_place:
        publish(spark, dest, f"{dest}/_all", kept_schema)
    elif not fs.exists(paths.data):
        spark.createDataFrame([], kept_schema).write.parquet(paths.data)
    accs: dict = {name: [] for name, _ in forms}
    for r in results:
        for (name, _), acc in zip(forms, r.get("summaries", ()), strict=False):
            accs[name].append(acc)
    counts = _counts(results) if has_source else count_written(spark, paths)
    return ArrowWritten(counts, volume, accs, repeated)


def _counts(results: list) -> dict:
    """What `count_written` reads back from the output, from what the tasks that wrote it counted."""
    kept: dict[str, int] = {}
    removed: dict[str, dict[str, int]] = {}
    for r in results:
        into = kept if r["value"] is None else removed.setdefault(r["value"], {})
        for src, n in r["sources"].items():
            into[src] = into.get(src, 0) + n
    return {"kept": sum(kept.values()), "kept_by_source": dict(sorted(kept.items())),
            "removed": {k: dict(sorted(v.items())) for k, v in sorted(removed.items())}}


def _nullable(schema: T.StructType, frame: DataFrame) -> T.StructType:
    """``schema`` with the fields ``frame`` has in their place and the rest as in ``schema`` (filled null)."""
    have = {f.name for f in frame.schema.fields}
    return T.StructType([f for f in schema.fields if f.name in have] + [f for f in schema.fields if f.name not in have])


def _uri(path: str) -> str:
    return path if urlparse(path).scheme else f"file://{path}"

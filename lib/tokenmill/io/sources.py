"""Source configs and `read_source`: any configured input -> a DataFrame of the canonical schema.

WARC/WET and JSONL files are spread over tasks (big ones one each, small ones packed) and streamed by Python in Arrow batches (`mapInArrow`);
Parquet and staged Hugging Face datasets go through Spark's native Parquet reader.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pyspark import AccumulatorParam
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ..config import Strict
from ..errors import ConfigError, InputError
from ..schema import DOCUMENT_SCHEMA, spark_stable_id
from .fetch import RetryPolicy
from .fields import FieldMap, InstructMap, MediaMap, meta_key
from .hub import DatasetCard, HubLocation
from .paths import InputFile, common_root, expand, listed, read_paths_manifest, relative_to_root

FILES_SCHEMA = T.StructType([
    T.StructField("path", T.StringType(), False),
    T.StructField("relpath", T.StringType(), False),
    T.StructField("size", T.LongType(), False),
    T.StructField("start", T.LongType(), False),
    T.StructField("end", T.LongType(), False),
])
# Uncompressed JSONL files bigger than this are read by several tasks, one byte range each (a line belongs
# to the range it starts in); one big file would otherwise keep every stage after the read on one core.
SPLIT_BYTES = 32 << 20
_COMPRESSED = (".gz", ".zst", ".zstd", ".bz2", ".xz", ".lz4", ".snappy")


class SourceBase(Strict):
    """Fields every source has: its label (the `source` column), where its files are, limits."""

    name: str = Field(min_length=1)
    paths: list[str] = Field(default_factory=list)
    storage_options: dict = Field(default_factory=dict)
    max_doc_bytes: int = Field(default=10 << 20, gt=0)
    limit_files: int | None = Field(default=None, gt=0)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)  # remote files: retries, backoff, timeout
    # A named dataset (source presets): its files on the hub, or under `path`, a local mirror of the
    # repository; `paths`, when given, wins over both.
    hub: HubLocation | None = None
    path: str | None = None
    about: DatasetCard | None = None
    media: MediaMap | None = None  # where the rows' audio / image is, for the media stages

    @field_validator("paths", mode="before")
    @classmethod
    def _one_path(cls, value):
        return [value] if isinstance(value, str) else value

    def resolved_paths(self) -> list[str]:
        """`paths`; else the hub files under the local mirror `path`; else the hub files themselves."""
        if self.paths:
            return list(self.paths)
        if self.path:
            return [self.hub.under(self.path) if self.hub else self.path]
        return [self.hub.url()] if self.hub and self.hub.repo else []


class WarcSource(SourceBase):
    """WARC (`response` records, HTML extracted) or WET (`conversion` records, text as is)."""

    format: Literal["warc", "wet"]
    paths_manifest: str | None = None  # a Common Crawl warc.paths.gz / wet.paths.gz
    manifest_prefix: str = "https://data.commoncrawl.org/"
    extractor: Literal["resiliparse_clean", "resiliparse", "trafilatura"] = "resiliparse_clean"
    main_content: bool = True
    content_types: list[str] = Field(default_factory=lambda: ["text/html", "application/xhtml+xml"])
    on_error: Literal["skip", "raise"] = "skip"  # at crawl scale one bad record must not stop a job
    # A record whose Content-Length disagrees with its true extent (gzip member end, next WARC header):
    # keep it (read to its true end, `meta.length_mismatch` says so) or skip it (`read:bad_length`).
    length_mismatch: Literal["keep", "skip"] = "keep"


class JsonlSource(SourceBase):
    """JSON records: one per line (JSONL), or a whole-file container as some datasets publish them (a JSON
    array, or the array under `records_key` of a JSON object; CSV/TSV with a header); files spread over
    tasks by `io.tasks`."""

    format: Literal["jsonl"]
    fields: FieldMap = Field(default_factory=FieldMap)
    on_error: Literal["skip", "raise"] = "raise"
    split_bytes: int = Field(default=SPLIT_BYTES, gt=0)  # byte ranges per task for uncompressed files
    instruct: InstructMap | None = None  # instruction data (SFT / DPO / GRPO rows) instead of documents
    container: Literal["lines", "array", "csv", "tsv"] = "lines"
    records_key: str | None = None
    explode: str | None = None  # array: each record's list field whose items are the rows (VG regions)
    column_names: list[str] | None = None  # csv/tsv without a header line: the columns' names

    def task_bytes(self) -> int | None:
        """Byte ranges per task: only line-by-line files split."""
        return self.split_bytes if self.container == "lines" else None


class ParquetSource(SourceBase):
    format: Literal["parquet"]
    fields: FieldMap = Field(default_factory=FieldMap)
    instruct: InstructMap | None = None


class HFSource(SourceBase):
    """A Hugging Face dataset: `load_from_disk` for a saved dataset, else `load_dataset` (local or hub)."""

    format: Literal["hf"]
    dataset: str  # a dataset id, a local dataset folder, or a `save_to_disk` folder
    config_name: str | None = None
    split: str = "train"
    data_files: list[str] | None = None
    revision: str | None = None
    streaming: bool = False
    staging_dir: str | None = None  # where the dataset is written as Parquet for Spark; default work_dir
    shard_rows: int = Field(default=100_000, gt=0)
    fields: FieldMap = Field(default_factory=FieldMap)
    instruct: InstructMap | None = None


AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".oga", ".m4a", ".mp4", ".aac", ".webm", ".weba")


class AudioSource(SourceBase):
    """Audio files (wav, flac, mp3, ogg/opus, m4a, webm): one row per file, the file named in an `audio`
    column ({bytes: null, path}) that the `audio_features` stage decodes; `text` is the transcript or caption
    from a text file of the same stem beside it (`clip.flac` + `clip.txt`), null when there is none."""

    format: Literal["audio"]
    transcripts: Literal["sidecar", "none"] = "sidecar"
    transcript_suffix: str = ".txt"
    extensions: list[str] = Field(default_factory=lambda: list(AUDIO_EXTENSIONS))


Source = Annotated[WarcSource | JsonlSource | ParquetSource | HFSource | AudioSource, Field(discriminator="format")]


# Within `one_listing()` (a pipeline run) each source is listed once: the plan's listing (sizes, times, the
# fingerprint) is the one the read stage spreads over tasks.
_LISTINGS: ContextVar[dict | None] = ContextVar("tokenmill_listings", default=None)


@contextmanager
def one_listing(memo: dict | None = None):
    """Inside, `list_files` lists each distinct source once and returns that listing again (kept in
    ``memo``, e.g. a plan's, so a later scope with the same memo reuses it)."""
    token = _LISTINGS.set({} if memo is None else memo) if _LISTINGS.get() is None else None
    try:
        yield
    finally:
        if token is not None:
            _LISTINGS.reset(token)


def list_files(src: SourceBase, where: str) -> list[InputFile]:
    """The source's files with sizes (used for the tasks and the manifest): one listing per pattern; the
    files of a Common Crawl paths manifest as it lists them."""
    memo = _LISTINGS.get()
    key = src.model_dump_json() if memo is not None else ""
    if memo is not None and key in memo:
        return memo[key]
    patterns = src.resolved_paths()
    published = []
    if isinstance(src, WarcSource) and src.paths_manifest:
        published = read_paths_manifest(src.paths_manifest, src.manifest_prefix, src.storage_options,
                                        src.limit_files)
    if not patterns and not published:
        raise ConfigError(f"{where}: give `paths`" + (" or `paths_manifest`" if isinstance(src, WarcSource) else "")
                          + " (or `path`, a local copy of a preset's dataset)")
    files = expand(patterns, src.storage_options, where=f"{where}.paths") if patterns else []
    if published:
        known = {f.path for f in files}
        files = sorted(files + [f for f in listed(published) if f.path not in known], key=lambda f: f.path)
    files = relative_to_root(files[: src.limit_files] if src.limit_files else files)
    if memo is not None:
        memo[key] = files
    return files


def file_splits(files: list[InputFile], split_bytes: int | None) -> list[tuple[InputFile, int, int]]:
    """(file, start, end) byte ranges: whole files, or ranges of ``split_bytes`` for uncompressed files."""
    out = []
    for f in files:
        if not split_bytes or f.size <= split_bytes or f.path.lower().endswith(_COMPRESSED):
            out.append((f, 0, f.size))
            continue
        starts = list(range(0, f.size, split_bytes))
        out += [(f, a, min(a + split_bytes, f.size)) for a in starts]
    return out


def split_lines(spark: SparkSession, files: list[InputFile], split_bytes: int | None, storage_options: dict,
                retry) -> dict:
    """The line index (jsonl.line_index) of the files `_files_frame` splits into byte ranges."""
    from .jsonl import line_index

    ranges = [(f.path, start, end) for f, start, end in file_splits(files, split_bytes) if (start, end) != (0, f.size)]
    return line_index(spark, ranges, storage_options, retry)


def _files_frame(spark: SparkSession, files: list[InputFile], split_bytes: int | None = None) -> DataFrame:
    """One row per file (or byte range of one); big files one per partition, small ones packed several to a
    partition (`tasks.plan`), so Spark spreads the work evenly over executors without a task per tiny file.

    Built in the JVM: a range with one row per task, joined to the (small) table of files by a broadcast
    join, which keeps the range's partitioning. No Python task makes these rows, so the task that reads
    the files runs one Python worker, not two (a parallelized Python list would add a worker per task)."""
    from .tasks import plan, unit_weight

    rows = [(f.path, f.relpath, f.size, start, end) for f, start, end in file_splits(files, split_bytes)]
    weights = [unit_weight(size, whole=start == 0 and end == size) for _, _, size, start, end in rows]
    groups = plan(rows, weights, spark.sparkContext.defaultParallelism) or [[]]
    import pyarrow as pa

    flat = [(g, *row) for g, group in enumerate(groups) for row in group]
    names = ["task", *FILES_SCHEMA.fieldNames()]
    # From an Arrow table: a local relation in the JVM (a list of tuples would be a Python RDD, and its
    # broadcast a job of Python tasks beside the read's).
    arrow = pa.table({n: pa.array([r[i] for r in flat], pa.int64() if n in ("task", "size", "start", "end")
                                  else pa.string()) for i, n in enumerate(names)})
    table = spark.createDataFrame(arrow, T.StructType([T.StructField("task", T.LongType(), False),
                                                       *FILES_SCHEMA.fields]))
    # At least two slices: a one-slice range is a SinglePartition, and Spark 4 runs a union of children
    # that share a partitioning partition by partition (`spark.sql.unionOutputPartitioning`), so the read
    # of several one-file sources would be one task, not one per source.
    slices = max(len(groups), 2)
    tasks = spark.range(0, slices, 1, slices).withColumnRenamed("id", "task")
    return tasks.join(F.broadcast(table), "task", "inner").select(*FILES_SCHEMA.fieldNames())


def stream_frame(spark: SparkSession, files: list[InputFile], read_one, opens=None, schema: T.StructType = DOCUMENT_SCHEMA,
                 arrow_schema=None, split_bytes: int | None = None) -> DataFrame:
    """Files or byte ranges read in tasks (`_files_frame` packs small files several to a task):
    ``read_one(path, relpath, size, start, end)`` yields row dicts of ``schema`` (documents and skips),
    sent on in Arrow batches. ``opens`` (a `read_stats` accumulator)
    counts the files opened and what fetching each took (retries, resumes, failures)."""
    from .fetch import take_stats
    from .records import logged_skips, to_batches

    def run(batches):
        for batch in batches:
            for path, relpath, size, start, end in zip(*(batch.column(i).to_pylist() for i in range(5)), strict=True):
                rows = read_one(path, relpath, size, start, end)
                yield from to_batches(logged_skips(rows, path), schema=arrow_schema)
                if opens is not None:
                    fetched = take_stats(path)
                    opens.add({"files_opened": int(start == 0),
                               "fetch": {path: fetched.as_dict()} if fetched else {}})

    frame = _files_frame(spark, files, split_bytes)
    out = frame.mapInArrow(run, schema)
    # What arrow_write needs to make these batches in its own task (no trip through the JVM's rows).
    out._tokenmill_stream = (frame, run)
    return out


class ReadStats(AccumulatorParam):
    """Accumulates {"files_opened": n, "fetch": {path: {retries, resumes, restarts, failed}}} over tasks."""

    def zero(self, value):
        return {"files_opened": 0, "fetch": {}}

    def addInPlace(self, a, b):
        fetch = dict(a["fetch"])
        for path, rec in b["fetch"].items():
            old = fetch.get(path)
            fetch[path] = rec if old is None else {k: (old.get(k, 0) + v if isinstance(v, int) else v)
                                                   for k, v in rec.items()}
        return {"files_opened": a["files_opened"] + b["files_opened"], "fetch": fetch}


def read_stats(spark: SparkSession):
    """An accumulator for `stream_frame`'s ``opens``."""
    return spark.sparkContext.accumulator({"files_opened": 0, "fetch": {}}, ReadStats())


def fetch_report(value: dict, listed: int = 100) -> dict:
    """The manifest's view of fetching: totals, and the files that needed retries (the first ``listed``)."""
    fetch = value["fetch"]
    total = {k: sum(int(r.get(k, 0)) for r in fetch.values()) for k in ("retries", "resumes", "restarts", "failed")}
    files = dict(sorted(fetch.items())[:listed])
    return {"fetch": {"files_retried": len(fetch), **total, "files": files}}


def _read_warc(spark: SparkSession, src: WarcSource, where: str, work_dir: str, opens) -> DataFrame:
    from .warc import WarcOptions, read_warc_file

    opts = WarcOptions(source=src.name, kind=src.format, extractor=src.extractor,
                       main_content=src.main_content, content_types=tuple(src.content_types),
                       max_record_bytes=src.max_doc_bytes, on_error=src.on_error,
                       length_mismatch=src.length_mismatch, storage_options=src.storage_options, retry=src.retry)
    return stream_frame(spark, list_files(src, where), lambda p, r, s, a, b: read_warc_file(p, s, opts, r), opens)


def _read_jsonl(spark: SparkSession, src: JsonlSource, where: str, work_dir: str, opens) -> DataFrame:
    from .jsonl import JsonlOptions, read_jsonl_file

    if src.fields.keep_fields:
        raise ConfigError(f"{where}: fields.keep_fields is for Parquet and Hugging Face sources; a JSONL field "
                          "naming a media file stays in meta (audio_features: audio: meta.<key>)")
    files = list_files(src, where)
    lines = split_lines(spark, files, src.task_bytes(), src.storage_options, src.retry) if src.container == "lines" else {}
    opts = JsonlOptions(source=src.name, fields=src.fields, on_error=src.on_error,
                        max_doc_bytes=src.max_doc_bytes, storage_options=src.storage_options,
                        container=src.container, records_key=src.records_key, explode=src.explode,
                        column_names=tuple(src.column_names) if src.column_names else None, retry=src.retry,
                        lines_before=lines)
    return stream_frame(spark, files, lambda p, r, s, a, b: read_jsonl_file(p, r, s, opts, a, b),
                        opens, split_bytes=src.task_bytes())


AUDIO_STRUCT = T.StructType([T.StructField("bytes", T.BinaryType()), T.StructField("path", T.StringType())])


def _read_audio(spark: SparkSession, src: AudioSource, where: str, work_dir: str, opens) -> DataFrame:
    import fsspec
    import pyarrow as pa

    from ..schema import ARROW_DOCUMENT_SCHEMA
    from .records import doc_row

    suffixes = tuple(e.lower() for e in src.extensions)
    files = [f for f in list_files(src, where) if f.path.lower().endswith(suffixes)]
    if not files:
        raise ConfigError(f"{where}: no audio files ({', '.join(suffixes)}) under {src.resolved_paths()}")
    name, sidecar, suffix, options = src.name, src.transcripts == "sidecar", src.transcript_suffix, src.storage_options

    def read_one(path, relpath, size, start, end):
        text = None
        if sidecar:
            try:
                with fsspec.open(os.path.splitext(path)[0] + suffix, "rt", encoding="utf-8", **options) as handle:
                    text = handle.read().strip()
            except FileNotFoundError:
                pass
        row = doc_row(name, relpath, text, None, {"file": relpath, "bytes": str(size)})
        row["audio"] = {"bytes": None, "path": path}
        yield row

    schema = T.StructType(DOCUMENT_SCHEMA.fields + [T.StructField("audio", AUDIO_STRUCT)])
    arrow = ARROW_DOCUMENT_SCHEMA.append(pa.field("audio", pa.struct([("bytes", pa.binary()), ("path", pa.string())])))
    return stream_frame(spark, files, read_one, opens, schema=schema, arrow_schema=arrow)


def parquet_files(spark: SparkSession, src: SourceBase, where: str, work_dir: str) -> list[InputFile]:
    """The source's Parquet files where Spark can read them: remote ones (hf://, http) copied to the work folder."""
    from .remote import stage_remote

    return stage_remote(spark, list_files(src, where), work_dir, src.storage_options, src.retry)


def _read_parquet(spark: SparkSession, src: ParquetSource, where: str, work_dir: str, opens) -> DataFrame:
    return read_parquet(spark, src, parquet_files(spark, src, where, work_dir), where)


def _read_hf(spark: SparkSession, src: HFSource, where: str, work_dir: str, opens) -> DataFrame:
    from .hf import stage_hf_dataset

    staged = stage_hf_dataset(spark, src, src.staging_dir or os.path.join(work_dir, "hf", src.name))
    as_parquet = ParquetSource(name=src.name, format="parquet", paths=[staged],
                               max_doc_bytes=src.max_doc_bytes, fields=src.fields, media=src.media)
    return read_parquet(spark, as_parquet, list_files(as_parquet, where), where)


# Source format -> reader: (spark, source config, where, work_dir, files-opened accumulator) -> canonical
# DataFrame. A new format is one function here and one config class in `Source`.
READERS = {"warc": _read_warc, "wet": _read_warc, "jsonl": _read_jsonl, "parquet": _read_parquet, "hf": _read_hf,
           "audio": _read_audio}


# Readers of sources with an `instruct` mapping, registered by the instruct package when the catalogue loads
# it (io imports no feature): (spark, source, where, work_dir, opens) -> canonical instruction rows.
INSTRUCT_READERS: dict[str, object] = {}


def read_source(spark: SparkSession, src: SourceBase, where: str, work_dir: str, opens=None) -> DataFrame:
    """The canonical DataFrame of one source: kept documents (or instruction rows), and skips tagged in
    `removed_by`."""
    if getattr(src, "instruct", None) is not None:
        reader = INSTRUCT_READERS.get("instruct")
        if reader is None:
            raise ConfigError(f"{where}: instruction sources need the instruct package (tokenmill.catalog.load_stages)")
        return reader(spark, src, where, work_dir, opens)
    reader = READERS.get(getattr(src, "format", ""))
    if reader is None:
        raise ConfigError(f"{where}: unsupported source format {getattr(src, 'format', None)!r}")
    return reader(spark, src, where, work_dir, opens)


def _column(df: DataFrame, dotted: str):
    """A (possibly nested) column by dotted name, or None if the schema lacks it."""
    if dotted in df.columns:
        return F.col(f"`{dotted}`")
    dtype: T.DataType = df.schema
    for part in dotted.split("."):
        if not isinstance(dtype, T.StructType) or part not in dtype.fieldNames():
            return None
        dtype = dtype[part].dataType
    return F.col(dotted)


def _as_string(df: DataFrame, name: str):
    dtype = df.schema[name].dataType
    col = F.col(f"`{name}`")
    if isinstance(dtype, (T.StructType, T.ArrayType, T.MapType)):
        return F.to_json(col)
    return col.cast("string")


def _first_with(spark: SparkSession, paths: list[str], column: str) -> str:
    """The first file whose own schema has ``column`` with a non-string type (for the error message)."""
    import fsspec
    import pyarrow.parquet as pq

    for path in paths[:1000]:
        try:
            with fsspec.open(path, "rb") as handle:
                schema = pq.read_schema(handle)
        except Exception:  # noqa: BLE001 - only for naming the file; fall back to the first path
            continue
        name = column.split(".")[0]
        if name in schema.names and not str(schema.field(name).type).startswith(("string", "large_string")):
            return path
    return paths[0]


def _relative_path(file_path, root: str):
    """Spark's `_metadata.file_path` (a URI, %-encoded) relative to ``root`` (a path without scheme)."""
    decoded = F.url_decode(F.regexp_replace(file_path, r"\+", "%2B"))
    bare = F.regexp_replace(decoded, r"^[A-Za-z][A-Za-z0-9+.-]*:/*", "")
    if not root:
        return bare
    prefix = root.rstrip("/") + "/"
    return F.when(bare.startswith(prefix), F.substring(bare, len(prefix) + 1, 1 << 20)).otherwise(bare)


def read_parquet(spark: SparkSession, src: ParquetSource, files: list[InputFile], where: str) -> DataFrame:
    """Parquet through Spark's native reader, mapped to the canonical schema JVM-side."""
    fm = src.fields
    paths = [f.path for f in files]
    df = spark.read.parquet(*paths)
    text = _column(df, fm.text_field)
    if text is None:
        raise ConfigError(f"{where}: {paths[0]}: column '{fm.text_field}' (text_field) not found; "
                          f"columns are: {', '.join(df.columns)}")
    text_type = df.select(text.alias("t")).schema["t"].dataType
    if not isinstance(text_type, (T.StringType, T.VarcharType, T.CharType)):
        raise InputError(_first_with(spark, paths, fm.text_field), f"column '{fm.text_field}' (text_field)",
                         f"is {text_type.simpleString()}, not a string; map another column with "
                         f"`fields.text_field`, or convert this one")
    file_path = F.col("_metadata.file_path")
    if fm.id_field:
        key = _column(df, fm.id_field)
        if key is None:
            raise ConfigError(f"{where}: {paths[0]}: column '{fm.id_field}' (id_field) not found; "
                              f"columns are: {', '.join(df.columns)}")
        key = key.cast("string")
    else:
        # The file's path under the source's common root plus the row's index in the file: stable across
        # reruns, and unique when files of the same name sit in different folders.
        key = F.concat(_relative_path(file_path, common_root(files)), F.lit(":"),
                       F.col("_metadata.row_index").cast("string"))
    url = _column(df, fm.url_field) if fm.url_field else None
    # media columns ride along as they are: `keep_fields`, and the columns a `media` mapping names
    media = [getattr(src.media, k, None) for k in ("audio", "image")] if getattr(src, "media", None) else []
    keep = list(dict.fromkeys(fm.keep_fields + [m for m in media if m and not m.startswith("meta.") and m in df.columns]))
    used = fm.used_top_level() | set(keep)
    names = fm.meta_fields if fm.meta_fields is not None else [c for c in df.columns if c not in used]
    missing = [n for n in names + keep if n not in df.columns]
    if missing:
        raise ConfigError(f"{where}: {paths[0]}: meta or keep column(s) {', '.join(missing)} not found; "
                          f"columns are: {', '.join(df.columns)}")
    pairs = []
    for name in names:
        pairs += [F.lit(meta_key(name)), _as_string(df, name)]
    if fm.id_field:
        pairs += [F.lit("orig_id"), key]
    pairs += [F.lit("file"), file_path]
    meta = F.map_filter(F.create_map(*pairs), lambda k, v: v.isNotNull())
    text_str = text.cast("string")
    too_large = F.octet_length(text_str) > F.lit(src.max_doc_bytes)
    removed = (F.when(text_str.isNull(), F.lit("read:missing_text"))
               .when(too_large, F.lit("read:too_large")))
    return df.select(
        spark_stable_id(F.lit(src.name), key).alias("id"),
        F.when(too_large, F.lit(None).cast("string")).otherwise(text_str).alias("text"),
        F.lit(src.name).alias("source"),
        (url.cast("string") if url is not None else F.lit(None).cast("string")).alias("url"),
        meta.alias("meta"),
        removed.alias("removed_by"),
        *[F.col(f"`{name}`") for name in keep],
    )

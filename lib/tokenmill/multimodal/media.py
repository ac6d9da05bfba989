"""Where each row's media (audio, image) is: a column in the Hugging Face {bytes, path} layout, raw bytes,
a path, or a path in `meta` built by a format, per source (`media:` in a source preset) or per stage; and
reading the bytes of a path, bounded, with a missing file a reason rather than an error."""

from __future__ import annotations

import os
import re

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ..errors import ConfigError
from ..schema import META, SOURCE


class MediaProblem(Exception):
    """A row's media is not usable: ``reason`` names why (a removal reason), ``detail`` says what was seen."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


def _path_column(value, path_format: str | None, stage: str = "media"):
    """A path built from ``path_format``: `{}` is ``value``, `{name}` the meta field, `{:.N}` its first N characters."""
    import string

    if not path_format:
        return value
    parts = []
    for literal, name, spec, _ in string.Formatter().parse(path_format):
        if literal:
            parts.append(F.lit(literal))
        if name is None:
            continue
        col = value if name == "" else F.col(META)[name]
        if spec:
            if not re.fullmatch(r"\.\d+", spec):
                raise ConfigError(f"{stage}: path_format {path_format!r}: only {{:.N}} (first N characters) is supported")
            col = F.substring(col, 1, int(spec[1:]))
        parts.append(col)
    return F.concat(*parts)


def media_column(df: DataFrame, name: str, path_format: str | None = None, stage: str = "media"):
    """The media of each row as struct<bytes, path>, whatever form it takes in ``df``."""
    none_bytes, none_path = F.lit(None).cast("binary").alias("bytes"), F.lit(None).cast("string")
    if name.startswith("meta."):
        return F.struct(none_bytes, _path_column(F.col(META)[name[5:]], path_format, stage).alias("path"))
    if name not in df.columns:
        raise ConfigError(f"{stage}: no column {name!r} (columns: {', '.join(df.columns)}); give the stage a "
                          "column with the media ({bytes, path}, bytes or a path) or meta.<key> holding a path")
    dtype = df.schema[name].dataType
    col = F.col(f"`{name}`")
    if isinstance(dtype, T.StructType):
        names = dtype.fieldNames()
        if "bytes" not in names and "path" not in names:
            raise ConfigError(f"{stage}: column {name!r} is {dtype.simpleString()}, not {{bytes, path}}")
        return F.struct((col["bytes"] if "bytes" in names else F.lit(None)).cast("binary").alias("bytes"),
                        (col["path"] if "path" in names else none_path).cast("string").alias("path"))
    if isinstance(dtype, T.BinaryType):
        return F.struct(col.alias("bytes"), none_path.alias("path"))
    if isinstance(dtype, T.StringType):
        return F.struct(none_bytes, _path_column(col, path_format, stage).alias("path"))
    raise ConfigError(f"{stage}: column {name!r} is {dtype.simpleString()}: not media bytes or a path")


def _root(media_root: str | None, src) -> str | None:
    """A source's media root: absolute or a URL as is; relative ones under the source's local copy `path`."""
    if media_root is None:
        return getattr(src, "path", None)
    if "://" in media_root or os.path.isabs(media_root) or not getattr(src, "path", None):
        return media_root
    return src.path.rstrip("/") + "/" + media_root


def media_input(df: DataFrame, sources, kind: str, column: str | None, path_format: str | None,
                root: str | None, stage: str):
    """(struct<bytes, path> column, root column) of each row's ``kind`` ("audio" or "image"): the stage's
    ``column``/``path_format``/``root`` when given, else each source's `media` mapping (a pipeline may mix
    LibriSpeech rows, Common Voice clips and a folder of files), else the column named ``kind``."""
    if column is not None or not any(getattr(s, "media", None) for s in sources):
        return media_column(df, column or kind, path_format, stage), F.lit(root).cast("string")
    media_col, roots = None, None
    for src in sources:
        media = getattr(src, "media", None)
        name = getattr(media, kind, None) or kind
        if not name.startswith("meta.") and name not in df.columns:
            continue
        this = F.col(SOURCE) == F.lit(src.name)
        expr = media_column(df, name, media.path_format if media else path_format, stage)
        base = root if root is not None else _root(media.root if media else None, src)
        media_col = F.when(this, expr) if media_col is None else media_col.when(this, expr)
        roots = F.when(this, F.lit(base)) if roots is None else roots.when(this, F.lit(base))
    if media_col is None:
        raise ConfigError(f"{stage}: no source has its {kind} in a column or a `media` mapping")
    return media_col, roots.cast("string")


def media_names(df: DataFrame, sources, kind: str, column: str | None) -> set[str]:
    """The input columns that hold ``kind`` (dropped once the stage has replaced them with its output)."""
    names = {column or kind} | {getattr(s.media, kind) for s in sources if getattr(s, "media", None)
                                and getattr(s.media, kind, None)}
    return {n for n in names if n and not n.startswith("meta.")} & set(df.columns)


def full_path(path: str, root: str | None) -> str:
    if not root or "://" in path or os.path.isabs(path):
        return path
    return root.rstrip("/") + "/" + path


def row_bytes(item: dict, root: str | None, max_bytes: int, storage_options: dict | None, what: str) -> bytes:
    """A media struct's bytes: those in the row, else the file at its ``path`` (under ``root``); MediaProblem
    `missing_file`, `empty_file` or `too_large` (in the row or on disk alike)."""
    data = item.get("bytes")
    if data is None:
        path = item.get("path")
        if not path:
            raise MediaProblem("missing_file", f"the row has neither {what} bytes nor a path")
        return read_bytes(full_path(path, root), max_bytes, storage_options)
    if len(data) > max_bytes:
        raise MediaProblem("too_large", f"{len(data):,} bytes > {max_bytes:,}")
    if not data:
        raise MediaProblem("empty_file")
    return data


def read_bytes(path: str, max_bytes: int, storage_options: dict | None = None) -> bytes:
    """The bytes of ``path``, at most ``max_bytes``; MediaProblem `missing_file` or `too_large` otherwise."""
    import fsspec

    try:
        with fsspec.open(path, "rb", **(storage_options or {})) as handle:
            data = handle.read(max_bytes + 1)
    except (FileNotFoundError, IsADirectoryError, PermissionError, NotADirectoryError) as err:
        raise MediaProblem("missing_file", f"{type(err).__name__}: {err}") from None
    if len(data) > max_bytes:
        raise MediaProblem("too_large", f"more than {max_bytes:,} bytes")
    if not data:
        raise MediaProblem("empty_file")
    return data



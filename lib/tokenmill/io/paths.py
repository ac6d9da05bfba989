"""Expand configured inputs (globs, lists, Common Crawl `*.paths.gz` manifests) into files with sizes."""

from __future__ import annotations

import gzip
import io
import posixpath
from dataclasses import dataclass

import fsspec

from ..errors import ConfigError

GLOB_CHARS = set("*?[")
UNKNOWN_SIZE = -1  # a file taken from a published listing, not stat-ed


@dataclass(frozen=True)
class InputFile:
    """One input file: its full fsspec URL, size in bytes, modification time and path under its glob base."""

    path: str
    size: int
    mtime: str
    relpath: str


def _glob_base(pattern: str) -> str:
    """The directory part of a pattern before its first glob character."""
    cut = min((i for i, ch in enumerate(pattern) if ch in GLOB_CHARS), default=None)
    if cut is None:
        return posixpath.dirname(pattern)
    return posixpath.dirname(pattern[:cut])


def _mtime(info: dict) -> str:
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        if info.get(key) is not None:
            return str(info[key])
    return ""


def expand(patterns: list[str], storage_options: dict | None = None, where: str = "paths") -> list[InputFile]:
    """Every file matching ``patterns`` (sorted, deduplicated); a pattern matching nothing is an error.

    One listing per pattern, sizes and times from it: a glob is one `glob(detail=True)` (on an object store,
    one paginated LIST of its prefix), a folder one `find(detail=True)`, a file one `info`; never a request
    per matched file (a 90k-file crawl snapshot would be 90k serial HEADs)."""
    seen: dict[str, InputFile] = {}
    for pattern in patterns:
        fs, stripped = fsspec.core.url_to_fs(pattern, **(storage_options or {}))
        if any(ch in GLOB_CHARS for ch in stripped):
            base, found = _glob_base(stripped), fs.glob(stripped, detail=True)
        else:
            try:
                info = fs.info(stripped)
            except FileNotFoundError:
                raise ConfigError(f"{where}: {pattern!r}: no such file") from None
            base, found = posixpath.dirname(stripped), {info.get("name", stripped): info}
        if not found:
            raise ConfigError(f"{where}: {pattern!r} matched no files")
        for match, info in sorted(found.items()):
            if info.get("type") == "directory":
                for child, child_info in sorted(fs.find(match, detail=True).items()):
                    if posixpath.basename(child).startswith(("_", ".")):
                        continue
                    full = fs.unstrip_protocol(child)
                    seen.setdefault(full, InputFile(full, int(child_info.get("size") or 0), _mtime(child_info),
                                                    posixpath.relpath(child, match)))
                continue
            full = fs.unstrip_protocol(match)
            rel = posixpath.relpath(match, base) if base else match
            seen.setdefault(full, InputFile(full, int(info.get("size") or 0), _mtime(info), rel))
    return sorted(seen.values(), key=lambda f: f.path)


def listed(paths: list[str]) -> list[InputFile]:
    """Files named by a listing the source publishes (a Common Crawl `*.paths.gz`): taken as listed, with no
    request per file; size unknown (-1) until read (crawl files are immutable: the listing is the stamp)."""
    out = {}
    for path in paths:
        out.setdefault(path, InputFile(path, UNKNOWN_SIZE, "", posixpath.basename(strip_scheme(path))))
    return sorted(out.values(), key=lambda f: f.path)


def common_root(files: list[InputFile]) -> str:
    """The deepest folder holding every file (paths without their scheme), '' when there is none."""
    if not files:
        return ""
    dirs = [posixpath.dirname(strip_scheme(f.path)) for f in files]
    try:
        return posixpath.commonpath(dirs) if len(dirs) > 1 else dirs[0]
    except ValueError:  # mixed absolute and relative paths
        return ""


def strip_scheme(path: str) -> str:
    """``s3://bucket/key`` -> ``bucket/key``; ``file:///tmp/x`` -> ``tmp/x``: comparable across libraries."""
    rest = path.split("://", 1)[1] if "://" in path else path.removeprefix("file:")
    return rest.lstrip("/")


def relative_to_root(files: list[InputFile]) -> list[InputFile]:
    """``files`` with `relpath` relative to their common root, so two files of the same name in different
    folders (`lang=en/part-0.parquet`, `lang=de/part-0.parquet`) never share a key."""
    root = common_root(files)
    out = []
    for f in files:
        stripped = strip_scheme(f.path)
        rel = posixpath.relpath(stripped, root) if root else stripped
        out.append(InputFile(f.path, f.size, f.mtime, rel))
    return out


def read_paths_manifest(manifest: str, prefix: str, storage_options: dict | None = None,
                        limit: int | None = None) -> list[str]:
    """Paths listed in a Common Crawl `warc.paths.gz` / `wet.paths.gz` file, joined onto ``prefix``."""
    with fsspec.open(manifest, "rb", **(storage_options or {})) as handle:
        raw = handle.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    paths = []
    for line in io.StringIO(raw.decode("utf-8")):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        paths.append(line if "://" in line or line.startswith("/") else prefix.rstrip("/") + "/" + line)
        if limit is not None and len(paths) >= limit:
            break
    if not paths:
        raise ConfigError(f"{manifest}: the paths manifest lists no files")
    return paths

"""Stamps of the files a stage's params point to (models, tokenizers, lists, benchmarks, rule sets).

A stage's fingerprint includes them, so editing a referenced file reruns the stage instead of reusing a
stale output. A stamp is (path, size, modification time) per file; a folder (a tokenizer, a transformers
model) is stamped file by file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

MAX_FILES_PER_FOLDER = 10_000
_REMOTE = ("s3://", "s3a://", "gs://", "gcs://", "hdfs://", "abfs://", "abfss://", "az://", "http://", "https://",
           "file://")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def _looks_like_path(text: str) -> bool:
    return text not in ("", ".", "..") and "\n" not in text and len(text) < 4096 and ("/" in text or "." in text)


def _local_stamps(path: str) -> list[list]:
    if os.path.isfile(path):
        st = os.stat(path)
        return [[path, st.st_size, st.st_mtime_ns]]
    out = []
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(folder, name)
            try:
                st = os.stat(full)
            except OSError:
                continue
            out.append([os.path.relpath(full, path), st.st_size, st.st_mtime_ns])
            if len(out) >= MAX_FILES_PER_FOLDER:
                return [[path, "folder"], *out]
    return [[path, "folder"], *out]


def _remote_stamps(url: str) -> list[list]:
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(url)
        info = fs.info(root)
    except Exception:  # noqa: BLE001 - not a reachable file: a plain string, nothing to stamp
        return []
    if info.get("type") != "directory":
        return [[url, info.get("size"), str(info.get("mtime") or info.get("LastModified") or info.get("ETag"))]]
    out = [[url, "folder"]]
    for child in sorted(fs.find(root))[:MAX_FILES_PER_FOLDER]:
        ci = fs.info(child)
        out.append([child, ci.get("size"), str(ci.get("mtime") or ci.get("LastModified") or ci.get("ETag"))])
    return out


def referenced_stamps(params: Any, exclude: set[str] | None = None) -> list[list]:
    """Stamps of every existing file or folder named by a string anywhere in ``params`` (a dict/list tree),
    except those in ``exclude`` (what the stage writes itself, such as an incremental dedup index)."""
    seen: set[str] = set(exclude or ())
    out: list[list] = []
    for text in _strings(params):
        if text in seen or not _looks_like_path(text):
            continue
        seen.add(text)
        if text.startswith(_REMOTE) and not text.startswith("file://"):
            out += _remote_stamps(text)
            continue
        local = text.removeprefix("file://")
        if os.path.exists(local):
            out += _local_stamps(local)
    return out

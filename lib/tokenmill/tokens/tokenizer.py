"""Load a Hugging Face fast tokenizer once per process and count tokens in batches.

The tokenizer comes from a local directory, an fsspec URL (copied once per executor process), a directory
shipped with `SparkContext.addFile`, or a hub id already in the local Hugging Face cache: nothing is
downloaded at run time.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from ..errors import ConfigError

log = logging.getLogger("tokenmill.tokens")

_LOCK = threading.Lock()
_CACHE: dict[tuple, object] = {}
LOADS = {"count": 0}  # how many times this process loaded a tokenizer (tests check it stays at one per spec)


@dataclass(frozen=True)
class TokenizerSpec:
    """Which tokenizer, and how to count: no special tokens unless asked, no truncation, no padding."""

    path: str
    add_special_tokens: bool = False
    shipped_name: str | None = None  # the name under SparkFiles when the driver shipped a local directory
    parallel: bool = False  # let `tokenizers` use several threads per task (Spark already runs one task per core)


def _resolve(spec: TokenizerSpec) -> str:
    """A local directory (or hub id, resolved from the local cache only) for ``spec.path`` in this process."""
    from ..io.artifacts import local_dir

    return local_dir(spec.path, spec.shipped_name, "tokenizer")


def load(spec: TokenizerSpec):
    """The `tokenizers.Tokenizer` behind ``spec``, loaded once per process (thread-safe)."""
    key = (spec.path, spec.shipped_name)
    tok = _CACHE.get(key)
    if tok is not None:
        return tok
    with _LOCK:
        tok = _CACHE.get(key)
        if tok is not None:
            return tok
        if not spec.parallel:
            os.environ["TOKENIZERS_PARALLELISM"] = "false"
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no "PyTorch was not found" per worker
        from transformers import AutoTokenizer

        where = _resolve(spec)
        try:
            hf = AutoTokenizer.from_pretrained(where, use_fast=True, local_files_only=True)
        except Exception as exc:
            raise ConfigError(f"tokenizer {spec.path!r}: cannot load it as a Hugging Face tokenizer from a local "
                              f"directory or the local hub cache ({type(exc).__name__}: {exc})") from None
        backend = getattr(hf, "backend_tokenizer", None)
        if backend is None:
            raise ConfigError(f"tokenizer {spec.path!r}: only fast (Rust `tokenizers`) tokenizers are supported; "
                              f"{type(hf).__name__} is a slow Python tokenizer")
        backend.no_truncation()
        backend.no_padding()
        _CACHE[key] = backend
        LOADS["count"] += 1
        log.info("loaded tokenizer %s (%s) in pid %d", spec.path, type(hf).__name__, os.getpid())
        return backend


def count_tokens(texts: list[str | None], spec: TokenizerSpec) -> list[int | None]:
    """Token counts for a batch of texts (None stays None)."""
    tok = load(spec)
    present = [t for t in texts if t is not None]
    encoded = tok.encode_batch_fast(present, add_special_tokens=spec.add_special_tokens) if present else []
    lengths = iter([len(e.ids) for e in encoded])
    return [None if t is None else next(lengths) for t in texts]

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


# tokenizer_config.json keys with which `transformers` rebuilds or changes the Rust tokenizer it loads
# (a prefix space, BOS/EOS added by the post-processor, a conversion from the slow files): such a
# tokenizer is loaded through `transformers`, every other one straight from its tokenizer.json.
_REBUILT_BY_TRANSFORMERS = ("add_prefix_space", "from_slow")
_SPECIAL_BY_TRANSFORMERS = ("add_bos_token", "add_eos_token")


def direct_file(where: str, add_special_tokens: bool) -> str | None:
    """The tokenizer.json in the folder ``where`` when loading it with `tokenizers` alone gives what
    `AutoTokenizer` gives (see _REBUILT_BY_TRANSFORMERS), else None."""
    import json

    path = os.path.join(where, "tokenizer.json")
    if not os.path.isfile(path):
        return None
    config_path = os.path.join(where, "tokenizer_config.json")
    config: dict = {}
    if os.path.isfile(config_path):
        try:
            with open(config_path, encoding="utf-8") as handle:
                config = json.load(handle)
        except (OSError, ValueError):
            return None
    keys = _REBUILT_BY_TRANSFORMERS + (_SPECIAL_BY_TRANSFORMERS if add_special_tokens else ())
    return None if any(config.get(k) is not None for k in keys) else path


def load(spec: TokenizerSpec):
    """The `tokenizers.Tokenizer` behind ``spec``, loaded once per process (thread-safe): straight from its
    tokenizer.json with the Rust library where that gives the same tokenizer, so a worker that counts
    tokens never imports `transformers` (and, through it, often `torch`: hundreds of MB per worker)."""
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
        where = _resolve(spec)
        direct = direct_file(where, spec.add_special_tokens)
        if direct is not None:
            from tokenizers import Tokenizer

            try:
                backend = Tokenizer.from_file(direct)
            except Exception as exc:
                raise ConfigError(f"tokenizer {spec.path!r}: cannot load {direct} ({type(exc).__name__}: {exc})") from None
            return _keep(key, backend, spec, "tokenizers")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no "PyTorch was not found" per worker
        from transformers import AutoTokenizer

        try:
            hf = AutoTokenizer.from_pretrained(where, use_fast=True, local_files_only=True)
        except Exception as exc:
            raise ConfigError(f"tokenizer {spec.path!r}: cannot load it as a Hugging Face tokenizer from a local "
                              f"directory or the local hub cache ({type(exc).__name__}: {exc})") from None
        backend = getattr(hf, "backend_tokenizer", None)
        if backend is None:
            raise ConfigError(f"tokenizer {spec.path!r}: only fast (Rust `tokenizers`) tokenizers are supported; "
                              f"{type(hf).__name__} is a slow Python tokenizer")
        return _keep(key, backend, spec, type(hf).__name__)


def _keep(key: tuple, backend, spec: TokenizerSpec, how: str):
    """Cache a loaded Rust tokenizer for this process, counting without truncation or padding."""
    backend.no_truncation()
    backend.no_padding()
    _CACHE[key] = backend
    LOADS["count"] += 1
    log.info("loaded tokenizer %s (%s) in pid %d", spec.path, how, os.getpid())
    return backend


def count_tokens(texts: list[str | None], spec: TokenizerSpec) -> list[int | None]:
    """Token counts for a batch of texts (None stays None)."""
    tok = load(spec)
    present = [t for t in texts if t is not None]
    encoded = tok.encode_batch_fast(present, add_special_tokens=spec.add_special_tokens) if present else []
    lengths = iter([len(e.ids) for e in encoded])
    return [None if t is None else next(lengths) for t in texts]

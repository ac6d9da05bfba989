"""Word n-grams for matching: normalised tokens (NFKC, lower case, punctuation dropped), stable 64-bit
hashes, and every n-gram of a whole Arrow batch hashed at once with numpy.

Tokens are runs of Unicode word characters, so punctuation and whitespace changes never break a match.
Hashes are stable across processes and machines (xxh3 of the token, then a polynomial over the n tokens
with wrap-around uint64 arithmetic), so an index built on the driver matches on every executor.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import numpy as np
import xxhash

_WORD = re.compile(r"\w+")
_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (golden ratio) for the polynomial hash


def _norm_token(token: str) -> str:
    return unicodedata.normalize("NFKC", token).lower()


def tokens(text: str) -> list[str]:
    """The normalised word tokens of ``text``."""
    if text.isascii():
        return _WORD.findall(text.lower())
    return [_norm_token(t) for t in _WORD.findall(text)]


def token_spans(text: str) -> tuple[list[str], list[int], list[int]]:
    """Tokens as `tokens` gives them, with each one's start and end character offset in ``text``."""
    toks, starts, ends = [], [], []
    ascii_text = text.isascii()
    for m in _WORD.finditer(text):
        toks.append(m.group().lower() if ascii_text else _norm_token(m.group()))
        starts.append(m.start())
        ends.append(m.end())
    return toks, starts, ends


class TokenHasher:
    """Stable 64-bit token hashes, memoised (a batch repeats most of its words)."""

    def __init__(self) -> None:
        self.cache: dict[str, int] = {}

    def __call__(self, toks: Iterable[str]) -> np.ndarray:
        cache = self.cache
        out = []
        for t in toks:
            h = cache.get(t)
            if h is None:
                h = cache[t] = xxhash.xxh3_64_intdigest(t.encode("utf-8"))
            out.append(h)
        if len(cache) > 1_000_000:
            cache.clear()
        return np.array(out, dtype=np.uint64)


def ngram_hashes(token_hashes: np.ndarray, n: int) -> np.ndarray:
    """The hash of every n-gram of one token sequence (empty when it has fewer than n tokens)."""
    m = len(token_hashes) - n + 1
    if m <= 0:
        return np.zeros(0, dtype=np.uint64)
    acc = np.full(m, np.uint64(n), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(n):
            acc = acc * _MULT + token_hashes[i:i + m]
        return acc ^ (acc >> np.uint64(31))


def batch_ngrams(token_hashes: np.ndarray, offsets: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """All n-grams of a batch of documents laid end to end (document d owns tokens offsets[d]:offsets[d+1]):
    (hashes, start positions) of the n-grams that do not cross a document boundary."""
    total = len(token_hashes)
    m = total - n + 1
    if m <= 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    hashes = ngram_hashes(token_hashes, n)
    # An n-gram starting in the last n - 1 tokens of a document crosses into the next one.
    keep = np.ones(m, dtype=bool)
    starts, ends = offsets[:-1], offsets[1:]
    for back in range(1, n):
        pos = ends - back
        keep[pos[(pos >= starts) & (pos < m)]] = False
    return hashes[keep], np.flatnonzero(keep)

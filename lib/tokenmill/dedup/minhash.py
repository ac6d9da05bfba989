"""MinHash signatures for a whole Arrow batch with numpy, LSH band keys, and the (bands, rows) chooser.

Normalisation before shingling (as DataTrove/FineWeb): NFKC, lower case, punctuation dropped (tokens are
runs of word characters), whitespace collapsed, every digit -> 0. Shingles: word n-grams (n = 5 by
default) or character n-grams of the normalised text, hashed to 64 bits once. Permutations:
h_k(x) = (a_k * x + b_k) mod p, p = 2^61 - 1, with a_k drawn uniformly from [1, p) and b_k from [0, p)
(small coefficients would barely wrap and make every permutation pick the same shingle). The product is
taken in wrap-around uint64 arithmetic, as datasketch does. A `datasketch` mode reproduces
`datasketch.MinHash(num_perm, seed, scheme="legacy")` fed with the same shingles (SHA-1 32-bit hashes of
the space-joined words), so signatures can be checked against the library users know.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import struct
import unicodedata
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import regex

from ..text.ngrams import TokenHasher, batch_ngrams

P61 = np.uint64((1 << 61) - 1)
_MAX32 = np.uint64((1 << 32) - 1)
_S61 = np.uint64(61)
_DIGIT = re.compile(r"\d")
_WORD_RUN = regex.compile(r"[\p{L}\p{M}\p{N}_]+")
_CHUNK = 4096  # shingles per numpy block: 4,096 x 112 uint64 = 3.7 MB, about a cache's worth


def normalised_words(text: str) -> list[str]:
    """NFKC, lower case, digits -> 0, then the runs of letters, marks, numbers and underscores (the words the
    Arrow batch path gives, one by one: used by the datasketch-compatible mode and char shingles)."""
    return _WORD_RUN.findall(_DIGIT.sub("0", unicodedata.normalize("NFKC", text).lower()))


@dataclass(frozen=True)
class MinHashSpec:
    """How documents become signatures."""

    num_perm: int = 112  # FineWeb: 14 bands x 8 rows
    ngram: int = 5
    shingle: str = "word"  # "word" | "char"
    seed: int = 1
    mode: str = "tokenmill"  # "tokenmill" | "datasketch" (legacy scheme, SHA-1 32-bit)

    def permutations(self) -> tuple[np.ndarray, np.ndarray]:
        if self.mode == "datasketch":
            gen = np.random.RandomState(self.seed)
            pairs = [(gen.randint(1, P61, dtype=np.uint64), gen.randint(0, P61, dtype=np.uint64))
                     for _ in range(self.num_perm)]
            a, b = np.array(pairs, dtype=np.uint64).T
            return a, b
        rng = np.random.default_rng(self.seed)
        a = rng.integers(1, int(P61), size=self.num_perm, dtype=np.uint64, endpoint=False)
        b = rng.integers(0, int(P61), size=self.num_perm, dtype=np.uint64, endpoint=False)
        return a, b


def _sha1_32(data: bytes) -> int:
    return struct.unpack("<I", hashlib.sha1(data).digest()[:4])[0]


def shingle_hashes(texts: list[str] | pa.Array, spec: MinHashSpec, hasher: TokenHasher | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(64-bit shingle hashes of the batch laid end to end, per-document offsets). A document shorter than
    one shingle is one shingle of all it has; an empty (or null) one has none (and no signature).
    ``texts`` may be an Arrow string array (a Spark batch's column: no round trip through Python strings)."""
    hasher = hasher or TokenHasher()
    if spec.mode == "datasketch" or spec.shingle == "char":
        texts = [t or "" for t in (texts.to_pylist() if isinstance(texts, pa.Array | pa.ChunkedArray) else texts)]
    if spec.mode == "datasketch":
        out, offsets = [], [0]
        for t in texts:
            words = normalised_words(t)
            grams = ([" ".join(words[i:i + spec.ngram]) for i in range(len(words) - spec.ngram + 1)]
                     if spec.shingle == "word" else _char_grams(" ".join(words), spec.ngram))
            if not grams and words:
                grams = [" ".join(words)]
            out.extend(_sha1_32(g.encode("utf-8")) for g in set(grams))
            offsets.append(len(out))
        return np.array(out, dtype=np.uint64), np.array(offsets, dtype=np.int64)
    if spec.shingle == "char":
        out, offsets = [], [0]
        for t in texts:
            grams = _char_grams(" ".join(normalised_words(t)), spec.ngram)
            out.extend(hasher(grams).tolist())
            offsets.append(len(out))
        return np.array(out, dtype=np.uint64), np.array(offsets, dtype=np.int64)
    flat, tok_off, words_arr = _word_hashes(texts, hasher)
    lengths = np.diff(tok_off)
    hashes, starts = batch_ngrams(flat, tok_off, spec.ngram)
    doc_of = np.searchsorted(tok_off, starts, side="right") - 1
    # Documents with at least one word but fewer than n: their words as one shingle.
    short = np.flatnonzero((lengths > 0) & (lengths < spec.ngram))
    if len(short):
        joined = [" ".join(words_arr[int(tok_off[d]):int(tok_off[d + 1])].to_pylist()) for d in short.tolist()]
        extra = hasher(joined)
        hashes = np.concatenate([hashes, extra])
        doc_of = np.concatenate([doc_of, short])
    order = np.argsort(doc_of, kind="stable")
    counts = np.bincount(doc_of, minlength=len(texts))
    return hashes[order], np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


# One non-word character (not a letter, mark, number or underscore, and not ASCII whitespace) becomes a
# space, then the text is split on whitespace: the same words as splitting on runs of non-word characters,
# 2.5x faster with RE2 than `split_pattern_regex` on the run pattern.
_NON_WORD_CHAR = r"[^\p{L}\p{M}\p{N}_\t\n\f\r ]"


def _word_hashes(texts: list[str] | pa.Array, hasher: TokenHasher) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """Normalised words of the whole batch with Arrow kernels (NFKC, lower case, digits -> 0, split on
    non-word characters), each distinct word hashed once: (hashes, per-document offsets, words)."""
    arr = texts if isinstance(texts, pa.Array | pa.ChunkedArray) else pa.array(texts, pa.string())
    arr = pc.utf8_lower(pc.utf8_normalize(arr.cast(pa.string()).fill_null(""), "NFKC"))
    arr = pc.replace_substring_regex(arr, r"\p{Nd}", "0")
    lists = pc.utf8_split_whitespace(pc.replace_substring_regex(arr, _NON_WORD_CHAR, " "))
    words = lists.flatten()
    doc_of = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    keep = pc.greater(pc.utf8_length(words), 0)
    words = words.filter(keep)
    doc_of = doc_of[keep.to_numpy(zero_copy_only=False)]
    enc = pc.dictionary_encode(words)
    uniq = hasher(enc.dictionary.to_pylist())
    hashes = uniq[enc.indices.to_numpy(zero_copy_only=False)] if len(words) else np.zeros(0, np.uint64)
    counts = np.bincount(doc_of, minlength=len(texts))
    return hashes, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), words


def _char_grams(s: str, n: int) -> list[str]:
    return [s[i:i + n] for i in range(len(s) - n + 1)] or ([s] if s else [])


def signatures(hashes: np.ndarray, offsets: np.ndarray, spec: MinHashSpec,
               perms: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(documents x num_perm) uint64 minimum of every permutation over each document's shingles.
    Documents without shingles get the maximum value in every slot (they match nothing).

    `y mod p` for the Mersenne prime p = 2^61 - 1 is taken as (y & p) + (y >> 61) with one conditional
    subtraction (the same value as numpy's `%`, five times faster: no 64-bit division), in blocks of a few
    thousand shingles so the (shingles x num_perm) block stays in cache."""
    a, b = perms if perms is not None else spec.permutations()
    a, b = a[:, None], b[:, None]
    n_docs = len(offsets) - 1
    top = _MAX32 if spec.mode == "datasketch" else P61
    sig = np.full((spec.num_perm, n_docs), top, dtype=np.uint64)  # permutation-major: reductions run along rows
    doc_of = np.repeat(np.arange(n_docs), np.diff(offsets))
    xs = hashes if spec.mode == "datasketch" else _mod_p(hashes.copy())
    buf = np.empty((spec.num_perm, min(_CHUNK, len(xs))), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for lo in range(0, len(xs), _CHUNK):
            x = xs[lo:lo + _CHUNK]
            d = doc_of[lo:lo + _CHUNK]
            h = buf[:, :len(x)]
            np.multiply(a, x, out=h)
            h += b
            _mod_p(h)
            if spec.mode == "datasketch":
                h &= _MAX32
            # Minimum per document: the block's documents are contiguous runs.
            starts = np.flatnonzero(np.concatenate([[True], d[1:] != d[:-1]]))
            mins = np.minimum.reduceat(h, starts, axis=1)
            docs = d[starts]
            sig[:, docs] = np.minimum(sig[:, docs], mins)
    return np.ascontiguousarray(sig.T)


def _mod_p(y: np.ndarray) -> np.ndarray:
    """y mod (2^61 - 1) in place, for any uint64 y."""
    with np.errstate(over="ignore"):
        high = y >> _S61
        y &= P61
        y += high  # < 2^61 + 8: at most one p too many
        np.minimum(y, y - P61, out=y)  # y - p wraps to a huge value unless y >= p
    return y


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(documents x bands) 64-bit keys: each band's `rows` values hashed together (band index mixed in)."""
    if bands * rows > sig.shape[1]:
        raise ValueError(f"{bands} bands x {rows} rows need {bands * rows} hashes; the signature has {sig.shape[1]}")
    keys = np.zeros((sig.shape[0], bands), dtype=np.uint64)
    mult = np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        for band in range(bands):
            acc = np.full(sig.shape[0], np.uint64(band + 1) * np.uint64(0xD6E8FEB86659FD93), dtype=np.uint64)
            for r in range(rows):
                acc = (acc ^ sig[:, band * rows + r]) * mult
                acc ^= acc >> np.uint64(32)
            keys[:, band] = acc
    return keys


def candidate_probability(s: float, bands: int, rows: int) -> float:
    """P(candidate) for a pair of Jaccard similarity s: 1 - (1 - s^r)^b."""
    return 1.0 - (1.0 - s ** rows) ** bands


def _integrate(f, lo: float, hi: float, steps: int = 200) -> float:
    h = (hi - lo) / steps
    return sum(f(lo + (i + 0.5) * h) for i in range(steps)) * h


def choose_bands(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5
                 ) -> tuple[int, int, float, float]:
    """(bands, rows, false-positive area, false-negative area) minimising the weighted error around
    ``threshold`` over b * r <= num_perm (the area under the S-curve below the threshold is the
    false-positive mass, the area above it the false-negative mass)."""
    best = None
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = _integrate(lambda s, b=b, r=r: candidate_probability(s, b, r), 0.0, threshold)
            fn = _integrate(lambda s, b=b, r=r: 1 - candidate_probability(s, b, r), threshold, 1.0)
            err = fp * fp_weight + fn * fn_weight
            if best is None or err < best[0] - 1e-12:
                best = (err, b, r, fp, fn)
    assert best is not None
    return best[1], best[2], best[3], best[4]


@functools.cache
def bands_for_recall(threshold: float, num_perm: int, recall: float = 0.95) -> tuple[int, int]:
    """(bands, rows) with P(candidate) >= ``recall`` at ``threshold`` and the least false-positive area below
    it (fewest candidates to verify); the highest-recall pair when none reaches ``recall``. For a stage that
    verifies its candidates: a missed pair is lost, a false candidate only costs one comparison."""
    best, fallback = None, None
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            p = candidate_probability(threshold, b, r)
            fp = _integrate(lambda s, b=b, r=r: candidate_probability(s, b, r), 0.0, threshold)
            if p >= recall and (best is None or fp < best[0] - 1e-12):
                best = (fp, b, r)
            if fallback is None or p > fallback[0] + 1e-12:
                fallback = (p, b, r)
    assert fallback is not None
    return (best[1], best[2]) if best else (fallback[1], fallback[2])


@functools.cache
def bands_for(threshold: float, num_perm: int, verified: bool = True) -> tuple[int, int]:
    """The (bands, rows) a stage uses when none are given: for recall at the threshold when its candidates are
    verified, else the balanced choice (equal weight on false-positive and false-negative area)."""
    if verified:
        return bands_for_recall(threshold, num_perm)
    b, r, _, _ = choose_bands(threshold, num_perm)
    return b, r


def bands_warning(bands: int, rows: int, threshold: float, recommended: tuple[int, int]) -> str | None:
    """A message when given bands x rows are far from the threshold: less than half the pairs at the threshold
    become candidates, or the S-curve's steepest point is more than 0.1 away from it."""
    if (bands, rows) == tuple(recommended):
        return None  # the recommended pair itself (tuned for recall at the threshold, so steepest below it)
    p = candidate_probability(threshold, bands, rows)
    steep = threshold_of(bands, rows)
    if p >= 0.5 and abs(steep - threshold) <= 0.1:
        return None
    b, r = recommended
    why = "pairs at the threshold are missed" if p < 0.5 else "many pairs below the threshold become candidates"
    return (f"{bands} bands x {rows} rows: P(candidate) {p:.0%} at threshold {threshold}, S-curve steepest near "
            f"{steep:.2f} ({why}); recommended {b} x {r}: {candidate_probability(threshold, b, r):.0%} at the "
            f"threshold (leave bands and rows out to use it)")


def s_curve(bands: int, rows: int, points: tuple[float, ...] = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
            ) -> dict[float, float]:
    return {s: round(candidate_probability(s, bands, rows), 4) for s in points}


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Share of equal slots, row by row."""
    return (sig_a == sig_b).mean(axis=-1)


def threshold_of(bands: int, rows: int) -> float:
    """The similarity where the S-curve is steepest, about (1/b)^(1/r)."""
    return math.pow(1.0 / bands, 1.0 / rows)

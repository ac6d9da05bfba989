"""MinHash signatures for a whole Arrow batch with numpy, LSH band keys, and the (bands, rows) chooser.

Normalisation before shingling (as DataTrove/FineWeb): NFKC, lower case, punctuation dropped (tokens are
runs of word characters), whitespace collapsed, every digit -> 0. Shingles: word n-grams (n = 5 by
default) or character n-grams of the normalised text, hashed to 64 bits once. Words are hashed straight
from the normalised UTF-8 bytes of the whole batch (8-byte chunks folded with the splitmix64 finaliser),
so no word becomes a Python string. Permutations: h_k(x) = (a_k * x + b_k) mod 2^64 with a_k odd (a
bijection of the 64-bit hashes; its high bits, which decide the minimum, depend on every bit of x) over
the shingle hashes put through splitmix64 first: the multiply-add-shift family of Dietzfelbinger et al.
(1997) without the shift, 2.3x faster than the Mersenne-prime family (a 64-bit modulo takes five more
passes) and, on mixed inputs, as good (docs/quality-filters.md §9). A `datasketch` mode reproduces `datasketch.MinHash(num_perm, seed, scheme="legacy")`
(h = (a x + b) mod (2^61 - 1), 32 bits kept) fed with the same shingles (SHA-1 32-bit hashes of the
space-joined words), so signatures can be checked against the library users know.
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
import xxhash

from ..text.ngrams import TokenHasher, batch_ngrams

P61 = np.uint64((1 << 61) - 1)
_MAX32 = np.uint64((1 << 32) - 1)
_S61 = np.uint64(61)
_DIGIT = re.compile(r"\d")
_WORD_RUN = regex.compile(r"[\p{L}\p{M}\p{N}_]+")
_CHUNK = 4096  # shingles per numpy block: 4,096 x 112 uint64 = 3.7 MB, about a cache's worth
_MAX64 = np.uint64((1 << 64) - 1)
_SPACE = 0x20


def _ascii_table() -> np.ndarray:
    """Byte -> byte for the normalisation of ASCII: upper -> lower case, digit -> '0', any other byte that is
    not a word character (punctuation, controls, whitespace) -> space; bytes >= 0x80 (UTF-8 sequences) kept."""
    table = np.arange(256, dtype=np.uint8)
    for c in range(128):
        ch = chr(c)
        if ch.isdigit():
            table[c] = ord("0")
        elif ch.isascii() and (ch.isalpha() or ch == "_"):
            table[c] = ord(ch.lower())
        else:
            table[c] = _SPACE
    return table


_ASCII = _ascii_table()


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
        a = rng.integers(0, _MAX64, size=self.num_perm, dtype=np.uint64, endpoint=True) | np.uint64(1)  # odd
        b = rng.integers(0, _MAX64, size=self.num_perm, dtype=np.uint64, endpoint=True)
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
    codes, byte_off = _normalised_bytes(texts)
    starts, ends, tok_off = _word_spans(codes, byte_off)
    flat = _span_hashes(codes, starts, ends)
    lengths = np.diff(tok_off)
    counts = np.maximum(lengths - spec.ngram + 1, 0)
    hashes, _ = batch_ngrams(flat, tok_off, spec.ngram)  # in document order, `counts` per document
    # Documents with at least one word but fewer than n: their words as one shingle, in their place.
    short = np.flatnonzero((lengths > 0) & (lengths < spec.ngram))
    if len(short):
        joined = [" ".join(bytes(codes[byte_off[d]:byte_off[d + 1]]).decode("utf-8").split())
                  for d in short.tolist()]
        at = np.concatenate([[0], np.cumsum(counts)])[short]
        hashes = np.insert(hashes, at, hasher(joined))
        counts[short] = 1
    return hashes, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


# Outside ASCII, one non-word character (not a letter, mark, number or underscore) becomes a space (ASCII
# is mapped byte by byte by _ASCII): splitting on spaces then gives the runs of word characters.
_NON_WORD_CHAR = r"[^\p{L}\p{M}\p{N}_\x00-\x7f]"


def _normalised_bytes(texts: list[str] | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The batch normalised (NFKC, lower case, digits -> 0, non-word characters -> space) as one UTF-8 byte
    array with per-document byte offsets. Arrow kernels do the Unicode work on the documents that are not
    pure ASCII; ASCII bytes go through a 256-entry table (most web text is ASCII: no regex over it)."""
    arr = texts if isinstance(texts, pa.Array | pa.ChunkedArray) else pa.array(texts, pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = pc.utf8_normalize(arr.cast(pa.large_string()).fill_null(""), "NFKC")
    wide = pc.invert(pc.string_is_ascii(arr))
    if pc.any(wide).as_py():
        sub = pc.utf8_lower(arr.filter(wide))
        sub = pc.replace_substring_regex(sub, r"\p{Nd}", "0")
        sub = pc.replace_substring_regex(sub, _NON_WORD_CHAR, " ")
        arr = pc.replace_with_mask(arr, wide, sub)
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    codes = _ASCII[data[offsets[0]:offsets[-1]]]
    return codes, offsets - offsets[0]


def _word_spans(codes: np.ndarray, byte_off: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, end) byte positions of every word (a run of non-space bytes inside one document) and the
    per-document word offsets."""
    is_word = codes != _SPACE
    begins = is_word.copy()
    begins[1:] &= ~is_word[:-1]
    finishes = is_word.copy()
    finishes[:-1] &= ~is_word[1:]
    inside = byte_off[:-1][byte_off[:-1] < len(codes)]  # a word cannot run across documents
    begins[inside] = is_word[inside]
    last = byte_off[1:][byte_off[1:] > 0] - 1
    finishes[last] = is_word[last]
    starts = np.flatnonzero(begins)
    ends = np.flatnonzero(finishes) + 1
    return starts, ends, np.searchsorted(starts, byte_off).astype(np.int64)


_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
_LONG_WORD = 64  # bytes: longer words (rare: URLs, base64) are hashed one by one with xxh3


def _span_hashes(codes: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """64-bit hashes of the words: each word read as 8-byte little-endian chunks straight from the batch's
    bytes (one unaligned 8-byte load per chunk, bytes past the word masked off), chunks folded with the
    splitmix64 finaliser and the length mixed in, so every output bit depends on every byte. The same word
    gives the same hash wherever it is."""
    if len(starts) == 0:
        return np.zeros(0, dtype=np.uint64)
    padded = np.zeros(len(codes) + 8, dtype=np.uint8)
    padded[:len(codes)] = codes
    chunks = np.ndarray(shape=(len(codes) + 1,), dtype="<u8", buffer=padded, strides=(1,))  # 8 bytes at each position
    lengths = ends - starts
    with np.errstate(over="ignore"):
        h = lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        h ^= chunks[starts] & _LOW_BYTES[np.minimum(lengths, 8)]
        h = _mix64(h)
        more = np.flatnonzero((lengths > 8) & (lengths <= _LONG_WORD))
        step = 8
        while len(more):
            rest = lengths[more] - step
            h[more] = _mix64(h[more] ^ (chunks[starts[more] + step] & _LOW_BYTES[np.minimum(rest, 8)]))
            step += 8
            more = more[rest > 8]
    raw = None
    for i in np.flatnonzero(lengths > _LONG_WORD).tolist():
        raw = raw if raw is not None else codes.tobytes()
        h[i] = xxhash.xxh3_64_intdigest(raw[starts[i]:ends[i]])
    return h


def _mix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser (Steele et al. 2014), in place."""
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def batch_words(texts: list[str] | pa.Array) -> list[list[str]]:
    """Each document's normalised words as the batch path finds them (for checks against `normalised_words`)."""
    codes, byte_off = _normalised_bytes(texts)
    starts, ends, tok_off = _word_spans(codes, byte_off)
    raw = codes.tobytes()
    words = [raw[a:b].decode("utf-8") for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    return [words[tok_off[i]:tok_off[i + 1]] for i in range(len(tok_off) - 1)]


def _char_grams(s: str, n: int) -> list[str]:
    return [s[i:i + n] for i in range(len(s) - n + 1)] or ([s] if s else [])


def signatures(hashes: np.ndarray, offsets: np.ndarray, spec: MinHashSpec,
               perms: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(documents x num_perm) uint64 minimum of every permutation over each document's shingles.
    Documents without shingles get the maximum value in every slot (they match nothing).

    tokenmill mode: (a x + b) mod 2^64 over the shingle hashes put through the splitmix64 finaliser first
    (the family is only as good as its inputs are uniform: on consecutive integers, unmixed, its estimates
    are biased by 0.03), two passes over a block. datasketch mode: `y mod p` for the
    Mersenne prime p = 2^61 - 1 taken as (y & p) + (y >> 61) with one conditional subtraction (numpy's `%`
    value, five times faster). Blocks of a few thousand shingles keep the (num_perm x block) array in cache."""
    a, b = perms if perms is not None else spec.permutations()
    a, b = a[:, None], b[:, None]
    n_docs = len(offsets) - 1
    legacy = spec.mode == "datasketch"
    sig = np.full((spec.num_perm, n_docs), _MAX32 if legacy else _MAX64, dtype=np.uint64)  # permutation-major
    doc_of = np.repeat(np.arange(n_docs), np.diff(offsets))
    xs = hashes if legacy else _mix64(hashes.astype(np.uint64, copy=True))  # uniform inputs whatever the hashes
    buf = np.empty((spec.num_perm, min(_CHUNK, len(xs))), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for lo in range(0, len(xs), _CHUNK):
            x = xs[lo:lo + _CHUNK]
            d = doc_of[lo:lo + _CHUNK]
            h = buf[:, :len(x)]
            np.multiply(a, x, out=h)
            h += b
            if legacy:
                _mod_p(h)
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

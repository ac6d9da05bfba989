"""Compiled (numba) word tokens, token hashes and n-gram lookups over whole Arrow string arrays: the hot
path of decontamination, with no Python per document or per token.

The tokens are exactly those of `ngrams.tokens` after `unlabel` (multiple-choice labels blanked): for ASCII
documents the compiled scanner produces them (Python's `\\w` on ASCII is `[0-9A-Za-z_]`, `\\s` is
`\\t\\n\\v\\f\\r\\x1c-\\x1f` and space, `lower` maps A-Z); other documents go through the Python tokenizer
(NFKC, Unicode classes) and only their tokens are hashed here. A token's hash is FNV-1a over its UTF-8
bytes with MurmurHash3's 64-bit finaliser (fmix64) for avalanche; n-grams hash those with
`ngrams.ngram_hashes`' polynomial, so an index built from Python tokens matches compiled ones.
"""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa

from .ngrams import _MULT, tokens

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_FMIX1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
_S31 = np.uint64(31)

_WS = np.zeros(256, np.bool_)
for _c in "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f ":
    _WS[ord(_c)] = True
_WORD = np.zeros(256, np.bool_)
for _c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz":
    _WORD[ord(_c)] = True


def _jit(fn):
    # cache=True keeps the machine code next to this file (or in numba's user cache), so each Spark Python
    # worker compiles once per machine, not once per process. Where no cache folder is writable (a read-only
    # install, no home), numba refuses to cache: compile per process instead.
    try:
        return numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError:
        return numba.njit(cache=False, nogil=True)(fn)


@_jit
def _fmix(h):
    h ^= h >> _S33
    h *= _FMIX1
    h ^= h >> _S33
    h *= _FMIX2
    h ^= h >> _S33
    return h


@_jit
def _hash_spans(data, offsets):
    """The hash of each byte string data[offsets[i]:offsets[i+1]]."""
    n = len(offsets) - 1
    out = np.empty(n, np.uint64)
    for i in range(n):
        h = _FNV_OFFSET
        for j in range(offsets[i], offsets[i + 1]):
            h ^= np.uint64(data[j])
            h *= _FNV_PRIME
        out[i] = _fmix(h)
    return out


@_jit
def _is_label(data, a, s, e, ws):
    """Whether the one-letter token at byte s (document bytes a..e) is a standalone choice label: the
    `unlabel` pattern `(?<!\\S)[(\\[]?[A-J][.):\\]](?=\\s|$)`."""
    c = data[s]
    if c < 65 or c > 74:  # A-J
        return False
    if s + 1 >= e:
        return False
    p = data[s + 1]
    if p != 46 and p != 41 and p != 58 and p != 93:  # . ) : ]
        return False
    if s + 2 < e and not ws[data[s + 2]]:
        return False
    if s == a or ws[data[s - 1]]:
        return True
    b = data[s - 1]
    return (b == 40 or b == 91) and (s - 1 == a or ws[data[s - 2]])  # ( [


@_jit
def _scan_ascii(data, starts, ends, ws, word, out, counts, ascii_doc):
    """Token hashes of every ASCII document, end to end in ``out``; per document its token count and
    whether it was ASCII (others are left to Python: count 0). Returns the number of hashes written."""
    m = 0
    for d in range(len(starts)):
        a, e = starts[d], ends[d]
        plain = True
        for j in range(a, e):
            if data[j] >= 128:
                plain = False
                break
        ascii_doc[d] = plain
        if not plain:
            counts[d] = 0
            continue
        first = m
        j = a
        while j < e:
            if not word[data[j]]:
                j += 1
                continue
            s = j
            h = _FNV_OFFSET
            while j < e and word[data[j]]:
                c = data[j]
                if 65 <= c <= 90:
                    c += 32
                h ^= np.uint64(c)
                h *= _FNV_PRIME
                j += 1
            if j - s == 1 and _is_label(data, a, s, e, ws):
                continue
            out[m] = _fmix(h)
            m += 1
        counts[d] = m - first
    return m


@_jit
def _lookup(th, offsets, n, keys, bitmap, shift):
    """(flat start positions, key indices) of the n-grams of each document (tokens offsets[d]..offsets[d+1]
    of ``th``) that are among the sorted ``keys``; ``bitmap`` over the top bits of the keys skips most
    binary searches."""
    cap = 256
    pos = np.empty(cap, np.int64)
    kid = np.empty(cap, np.int64)
    m = 0
    nk = len(keys)
    for d in range(len(offsets) - 1):
        a, b = offsets[d], offsets[d + 1]
        for p in range(a, b - n + 1):
            acc = np.uint64(n)
            for i in range(n):
                acc = acc * _MULT + th[p + i]
            h = acc ^ (acc >> _S31)
            if not bitmap[h >> shift]:
                continue
            lo, hi = 0, nk
            while lo < hi:
                mid = (lo + hi) >> 1
                if keys[mid] < h:
                    lo = mid + 1
                else:
                    hi = mid
            if lo < nk and keys[lo] == h:
                if m == cap:
                    cap *= 2
                    pos2 = np.empty(cap, np.int64)
                    kid2 = np.empty(cap, np.int64)
                    pos2[:m] = pos[:m]
                    kid2[:m] = kid[:m]
                    pos, kid = pos2, kid2
                pos[m] = p
                kid[m] = lo
                m += 1
    return pos[:m], kid[:m]


def _buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(UTF-8 bytes, per-element start offsets with one past the end) of a string array, zero-copy."""
    if pa.types.is_large_string(arr.type):
        off_type = np.int64
    elif pa.types.is_string(arr.type):
        off_type = np.int32
    else:
        raise TypeError(f"expected a string array, got {arr.type}")
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=off_type)[arr.offset:arr.offset + len(arr) + 1].astype(np.int64)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    return data, offsets


@_jit
def _spans_ascii(data, ws, word, starts, ends):
    """Start and end offsets of each token of the ASCII text ``data``, as `_scan_ascii` finds them (choice
    labels skipped). Returns the number of tokens."""
    m = 0
    j = 0
    e = len(data)
    while j < e:
        if not word[data[j]]:
            j += 1
            continue
        s = j
        while j < e and word[data[j]]:
            j += 1
        if j - s == 1 and _is_label(data, 0, s, e, ws):
            continue
        starts[m] = s
        ends[m] = j
        m += 1
    return m


def token_offsets(text: str) -> tuple[list[int], list[int]] | None:
    """The start and end character offsets of the tokens of an ASCII ``text`` (what `ngrams.token_spans`
    gives for `unlabel(text)`), compiled; None for other text. An excerpt of a matched document needs them:
    per document in Python they were a tenth of the decontamination's time."""
    if not text.isascii():
        return None
    data = np.frombuffer(text.encode("ascii"), np.uint8)
    starts = np.empty(len(data) // 2 + 1, np.int64)
    ends = np.empty(len(data) // 2 + 1, np.int64)
    m = _spans_ascii(data, _WS, _WORD, starts, ends)
    return starts[:m].tolist(), ends[:m].tolist()


def string_hashes(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A 64-bit hash of each string (a null as the empty string): many strings compared as numbers."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    data, offsets = _buffers(arr)
    return _hash_spans(data, offsets)


_MEMO: dict[str, int] = {}


def hash_tokens(toks: list[str]) -> np.ndarray:
    """The hash of each token (normalised already, as `ngrams.tokens` gives them). Memoised: building an
    index hashes many short token lists with mostly the same words."""
    if not toks:
        return np.zeros(0, np.uint64)
    if len(_MEMO) > 1_000_000:
        _MEMO.clear()
    new = [t for t in set(toks) if t not in _MEMO]
    if new:
        data, offsets = _buffers(pa.array(new, pa.string()))
        _MEMO.update(zip(new, _hash_spans(data, offsets).tolist(), strict=True))
    return np.fromiter((_MEMO[t] for t in toks), np.uint64, len(toks))


def token_hashes(texts: pa.Array, prepare=None) -> tuple[np.ndarray, np.ndarray]:
    """Every document's token hashes laid end to end, and the document offsets (document d owns
    hashes offsets[d]:offsets[d+1]; null and empty documents own none). ``prepare(text)`` is applied before
    tokenising (e.g. `unlabel`); the compiled scanner applies `unlabel` itself, so pass it exactly that."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    n = len(texts)
    data, off = _buffers(texts)
    starts, ends = off[:-1], off[1:].copy()
    if texts.null_count:
        valid = np.asarray(texts.is_valid())
        ends[~valid] = starts[~valid]
    out = np.empty(max(1, int((ends - starts).sum()) // 2 + 1), np.uint64)
    counts = np.zeros(n, np.int64)
    ascii_doc = np.zeros(n, np.bool_)
    m = _scan_ascii(data, starts, ends, _WS, _WORD, out, counts, ascii_doc)
    flat = out[:m]
    other = np.nonzero(~ascii_doc)[0]
    if not len(other):
        return flat, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    from .arrays import expand_ranges

    pieces = []
    for d in other.tolist():
        toks = tokens(prepare(texts[d].as_py()) if prepare else texts[d].as_py())
        counts[d] = len(toks)
        pieces.append(toks)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    result = np.empty(int(offsets[-1]), np.uint64)
    plain = np.nonzero(ascii_doc)[0]
    result[expand_ranges(offsets[plain], counts[plain])] = flat
    result[expand_ranges(offsets[other], counts[other])] = hash_tokens([t for p in pieces for t in p])
    return result, offsets


def warm_worker() -> None:
    """Load every compiled function from numba's cache (0.4 s a process) before a first batch waits for it
    (see tokenmill.warmup)."""
    th, offsets = token_hashes(pa.array(["warm up the scanner, A. and (B)"]))
    string_hashes(pa.array(["x"]))
    ngram_lookup(th, offsets, 2, KeySet(np.array([1], np.uint64)))
    token_offsets("warm (A) up")


class KeySet:
    """Sorted uint64 keys with a bitmap over their top bits, for `ngram_lookup` (built once per index)."""

    def __init__(self, keys: np.ndarray):
        self.keys = np.ascontiguousarray(keys, dtype=np.uint64)
        bits = int(min(24, max(12, np.ceil(np.log2(max(1, len(self.keys)) * 16)))))
        self.shift = np.uint64(64 - bits)
        self.bitmap = np.zeros(1 << bits, np.bool_)
        self.bitmap[(self.keys >> self.shift).astype(np.int64)] = True


def ngram_lookup(th: np.ndarray, offsets: np.ndarray, n: int, keyset: KeySet) -> tuple[np.ndarray, np.ndarray]:
    """(flat start positions, key indices) of every n-gram (within one document) whose hash is a key."""
    if not len(keyset.keys) or len(th) < n:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return _lookup(th, offsets, n, keyset.keys, keyset.bitmap, keyset.shift)

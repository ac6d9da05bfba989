"""Every heuristic quality signal of the published rule sets, for a batch of documents in one pass.

Definitions follow the papers (Gopher: Rae et al. 2021, table A1; C4: Raffel et al. 2020; FineWeb: Penedo
et al. 2024) as DataTrove computes them, so the same thresholds give the same decisions. Per document the
text is split once (words, lines, paragraphs); per batch the word-level counts run in Arrow kernels and the
n-gram statistics in numpy over the whole batch, so nothing loops per word in Python except the greedy
duplicated-n-gram walk, and only for documents that repeat a 5-gram at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..text.arrays import expand_ranges
from ..text.ngrams import ngram_hashes
from ..text.stopwords import stop_words_for
from ..text.words import SENTENCE_END, no_space_language, tokenize_batch, words_for

# Signal columns and their Arrow types, in output order.
SIGNALS: dict[str, pa.DataType] = {
    "qs_n_chars": pa.int64(),               # characters of the text
    "qs_n_lines": pa.int64(),               # lines (str.splitlines)
    "qs_n_words": pa.int64(),               # words incl. punctuation tokens (the denominator of the ratios)
    "qs_word_count": pa.int64(),            # words with at least one non-punctuation character (Gopher's count)
    "qs_mean_word_length": pa.float64(),    # mean length of those words (null for per-character languages)
    "qs_max_word_length": pa.int64(),       # longest whitespace-delimited word
    "qs_hash_word_ratio": pa.float64(),     # '#' per word
    "qs_ellipsis_word_ratio": pa.float64(),  # '...' or '…' per word
    "qs_bullet_lines_ratio": pa.float64(),  # lines starting with '•' or '-'
    "qs_ellipsis_lines_ratio": pa.float64(),  # lines ending with '...' or '…'
    "qs_alpha_words_ratio": pa.float64(),   # words with an alphabetic character
    "qs_stop_words": pa.int64(),            # distinct stop words of the document's language (null: no list)
    "qs_dup_line_frac": pa.float64(),       # lines (split on newlines) that repeat an earlier line
    "qs_dup_line_char_frac": pa.float64(),  # their characters / characters of the text
    "qs_dup_para_frac": pa.float64(),       # paragraphs (split on blank lines) that repeat an earlier one
    "qs_dup_para_char_frac": pa.float64(),
    "qs_top_2gram_char_frac": pa.float64(),  # characters in the most frequent word 2-gram / text characters
    "qs_top_3gram_char_frac": pa.float64(),
    "qs_top_4gram_char_frac": pa.float64(),
    "qs_dup_5gram_char_frac": pa.float64(),  # characters inside duplicated word 5-grams / text characters
    "qs_dup_6gram_char_frac": pa.float64(),
    "qs_dup_7gram_char_frac": pa.float64(),
    "qs_dup_8gram_char_frac": pa.float64(),
    "qs_dup_9gram_char_frac": pa.float64(),
    "qs_dup_10gram_char_frac": pa.float64(),
    "qs_line_punct_ratio": pa.float64(),    # non-empty lines ending in terminal punctuation (FineWeb)
    "qs_short_line_ratio": pa.float64(),    # non-empty lines of at most `short_line_chars` characters
    "qs_dup_nonempty_line_char_ratio": pa.float64(),  # FineWeb: duplicated-line chars / chars without newlines
    "qs_newline_word_ratio": pa.float64(),  # newlines per word (FineWeb's list ratio)
    "qs_curly_brace": pa.bool_(),
    "qs_lorem_ipsum": pa.bool_(),
    "qs_non_alnum_char_ratio": pa.float64(),  # characters neither letter, digit nor whitespace (NeMo Curator)
    "qs_digit_char_ratio": pa.float64(),
    "qs_upper_char_ratio": pa.float64(),      # upper-case letters / letters
    "qs_whitespace_char_ratio": pa.float64(),
}

TOP_NGRAMS = (2, 3, 4)
DUP_NGRAMS = (5, 6, 7, 8, 9, 10)
_PARAGRAPHS = re.compile(r"\n{2,}")
_LINES = re.compile(r"\n+")
# Tokens made only of punctuation, symbols or control characters do not count as words.
_HAS_WORD_CHAR = r"[^\p{P}\p{S}\x00-\x1f\x7f-\x9f]"


@dataclass(frozen=True)
class SignalSpec:
    """Options of the signals; defaults are the published ones."""

    short_line_chars: int = 30  # FineWeb
    stop_words: tuple[tuple[str, tuple[str, ...]], ...] = field(default_factory=tuple)  # per-language overrides


def _find_duplicates(parts: list[str]) -> tuple[int, int]:
    """Elements that repeat an earlier element, and their characters."""
    seen: set[str] = set()
    n = chars = 0
    for p in parts:
        if p in seen:
            n += 1
            chars += len(p)
        else:
            seen.add(p)
    return n, chars


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _text_signals(text: str, spec: SignalSpec, out: dict[str, list]) -> None:
    """Line and paragraph signals, from plain string operations."""
    n = len(text)
    lines = text.splitlines()
    out["qs_n_chars"].append(n)
    out["qs_n_lines"].append(len(lines))
    bullets = ellipsis_end = 0
    for s in lines:
        ls = s.lstrip()
        if ls.startswith(("•", "-")):
            bullets += 1
        if s.rstrip().endswith(("...", "…")):
            ellipsis_end += 1
    out["qs_bullet_lines_ratio"].append(_ratio(bullets, len(lines)))
    out["qs_ellipsis_lines_ratio"].append(_ratio(ellipsis_end, len(lines)))

    paragraphs = _PARAGRAPHS.split(text.strip())
    dp, dpc = _find_duplicates(paragraphs)
    out["qs_dup_para_frac"].append(_ratio(dp, len(paragraphs)) if n else None)
    out["qs_dup_para_char_frac"].append(_ratio(dpc, n))
    nl_lines = _LINES.split(text)
    dl, dlc = _find_duplicates(nl_lines)
    out["qs_dup_line_frac"].append(_ratio(dl, len(nl_lines)) if n else None)
    out["qs_dup_line_char_frac"].append(_ratio(dlc, n))

    nonempty = [s for s in text.split("\n") if s.strip()]
    punct = short = 0
    for s in nonempty:
        if s and s[-1] in SENTENCE_END:
            punct += 1
        if len(s) <= spec.short_line_chars:
            short += 1
    out["qs_line_punct_ratio"].append(_ratio(punct, len(nonempty)))
    out["qs_short_line_ratio"].append(_ratio(short, len(nonempty)))
    out["qs_dup_nonempty_line_char_ratio"].append(
        _ratio(_find_duplicates(nonempty)[1], n - text.count("\n")) if nonempty else None)
    low = text.lower()
    out["qs_curly_brace"].append("{" in text)
    out["qs_lorem_ipsum"].append("lorem ipsum" in low)


def _segment_sum(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sum of ``values`` per document, documents given by ``offsets`` (length n_docs + 1)."""
    cs = np.concatenate([[0], np.cumsum(values, dtype=np.int64)])
    return cs[offsets[1:]] - cs[offsets[:-1]]


def _ngram_stats(ids: np.ndarray, tok_len: np.ndarray, offsets: np.ndarray, n_chars: np.ndarray
                 ) -> dict[str, np.ndarray]:
    """Top-n-gram and duplicated-n-gram character fractions for every document of the batch."""
    n_docs = len(offsets) - 1
    doc_of = np.repeat(np.arange(n_docs), np.diff(offsets))
    # The same n-gram in two documents must be counted apart: each n-gram's key mixes in its document's
    # number, spread over 64 bits by an odd constant (xxHash's PRIME64_2) so that neighbouring document
    # numbers never make neighbouring keys. One hash grouping then counts every (document, n-gram) at once.
    doc_salt = (doc_of.astype(np.uint64) + np.uint64(1)) * np.uint64(0xC2B2AE3D27D4EB4F)
    cs = np.concatenate([[0], np.cumsum(tok_len, dtype=np.int64)])
    out: dict[str, np.ndarray] = {}
    repeats_docs = np.arange(n_docs)
    for n in TOP_NGRAMS + DUP_NGRAMS:
        h = ngram_hashes(ids, n)  # the one n-gram hash (text/ngrams.py), over word ids
        pos = np.arange(len(h))
        valid = pos + n <= offsets[1:][doc_of[: len(h)]] if len(h) else np.zeros(0, bool)
        pos = pos[valid]
        if n in DUP_NGRAMS:  # only documents that repeated an (n-1)-gram can repeat an n-gram
            pos = pos[np.isin(doc_of[pos], repeats_docs)]
        with np.errstate(over="ignore"):
            key = h[pos] ^ doc_salt[pos]  # one n-gram of one document
        # Hash-based grouping (O(n), no sort): codes are numbered in order of first appearance.
        inverse, uniques = pd.factorize(key)
        counts = np.bincount(inverse, minlength=len(uniques))
        first = np.empty(len(uniques), np.int64)
        first[inverse[::-1]] = np.arange(len(inverse) - 1, -1, -1)  # the last write wins: the first position
        key_doc = doc_of[pos[first]]
        if n in TOP_NGRAMS:
            # Counter.most_common(1), as Gopher's reference code uses: the most frequent n-gram, and among
            # equally frequent ones the first seen.
            maxc = np.zeros(n_docs, np.int64)
            np.maximum.at(maxc, key_doc, counts)
            best = counts == maxc[key_doc]
            start = np.full(n_docs, np.iinfo(np.int64).max)
            np.minimum.at(start, key_doc[best], pos[first][best])
            has = maxc > 0
            s0 = np.where(has, start, 0)
            s1 = np.minimum(s0 + n, len(cs) - 1)  # documents without an n-gram: masked below
            chars = (cs[s1] - cs[s0] + (n - 1)) * maxc
            out[f"qs_top_{n}gram_char_frac"] = np.where(has & (n_chars > 0), chars / np.maximum(n_chars, 1),
                                                        np.nan)
            continue
        repeated = counts[inverse] > 1  # positions whose n-gram occurs again in the same document
        repeats_docs = np.unique(doc_of[pos[repeated]])
        frac = np.where(n_chars > 0, 0.0, np.nan)
        if len(repeats_docs):
            cand = pos[repeated]
            cand_h = h[cand]
            bounds = np.searchsorted(doc_of[cand], np.arange(n_docs + 1))
            for doc in repeats_docs.tolist():
                a, z = bounds[doc], bounds[doc + 1]
                frac[doc] = _greedy_dup_chars(cand[a:z].tolist(), cand_h[a:z].tolist(), cs, n) / n_chars[doc]
        out[f"qs_dup_{n}gram_char_frac"] = frac
    return out


def _greedy_dup_chars(positions: list[int], hashes: list[int], cs: np.ndarray, n: int) -> int:
    """Characters in duplicated n-grams, scanning left to right and jumping past each duplicate (Gopher).

    Only positions whose n-gram occurs more than once are given: the others never match a later n-gram,
    so skipping them changes nothing but the time.
    """
    seen: set[int] = set()
    chars = 0
    free = -1  # positions before this were jumped over
    for p, g in zip(positions, hashes, strict=True):
        if p < free:
            continue
        if g in seen:
            chars += int(cs[p + n] - cs[p])
            free = p + n
        else:
            seen.add(g)
    return chars


def _words(texts: list, langs: list, present: list[int], per_char: list[bool]) -> tuple[pa.Array, np.ndarray]:
    """Words of every present document, flat, with per-document offsets (Arrow-vectorised where possible)."""
    space = [i for i, pc_ in zip(present, per_char, strict=True) if not pc_]
    if len(space) == len(present):
        return tokenize_batch([texts[i] for i in present])
    s_tokens, s_off = tokenize_batch([texts[i] for i in space]) if space else (pa.array([], pa.string()),
                                                                              np.zeros(1, np.int64))
    c_lists = [words_for(texts[i], langs[i]) for i, pc_ in zip(present, per_char, strict=True) if pc_]
    c_tokens = pa.array([w for ws in c_lists for w in ws], pa.string())
    c_off = np.concatenate([[0], np.cumsum([len(w) for w in c_lists])]).astype(np.int64)
    # Interleave the two groups back into document order.
    starts, counts, si, ci = [], [], 0, 0
    for pc_ in per_char:
        if pc_:
            starts.append(len(s_tokens) + c_off[ci])
            counts.append(c_off[ci + 1] - c_off[ci])
            ci += 1
        else:
            starts.append(s_off[si])
            counts.append(s_off[si + 1] - s_off[si])
            si += 1
    counts_np = np.asarray(counts, np.int64)
    take = expand_ranges(np.asarray(starts, np.int64), counts_np)
    pool = pa.concat_arrays([s_tokens, c_tokens])
    return pool.take(pa.array(take, pa.int64())), np.concatenate([[0], np.cumsum(counts_np)]).astype(np.int64)


def _stop_word_counts(flat: pa.Array, offsets: np.ndarray, langs: list, spec: SignalSpec) -> list[int | None]:
    """Distinct stop words of each document's language present in it (None: no list for the language)."""
    n_docs = len(offsets) - 1
    out: list[int | None] = [None] * n_docs
    groups: dict[frozenset, list[int]] = {}
    for d, lang in enumerate(langs):
        stops = stop_words_for(lang, spec.stop_words)
        if stops is not None:
            groups.setdefault(stops, []).append(d)
    token_doc = np.repeat(np.arange(n_docs), np.diff(offsets))
    for stops, docs in groups.items():
        idx = pc.index_in(flat, value_set=pa.array(sorted(stops), pa.string()))
        hit = np.flatnonzero(idx.is_valid().to_numpy(zero_copy_only=False))
        member = np.zeros(n_docs, bool)
        member[docs] = True
        hit = hit[member[token_doc[hit]]]
        which = idx.to_numpy(zero_copy_only=False)[hit].astype(np.int64) if len(hit) else np.zeros(0, np.int64)
        m = len(stops)
        pairs = np.unique(token_doc[hit] * m + which)  # (document, stop word), each once
        per_doc = np.bincount(pairs // m, minlength=n_docs)
        for d in docs:
            out[d] = int(per_doc[d])
    return out


def compute_signals(texts: list[str | None], langs: list[str | None] | None, spec: SignalSpec) -> pa.Table:
    """All signals for a batch; a null text gives a row of nulls."""
    langs = langs if langs is not None else [None] * len(texts)
    present = [i for i, t in enumerate(texts) if t is not None]
    cols: dict[str, list] = {k: [] for k in SIGNALS}
    per_char: list[bool] = []
    for i in present:
        _text_signals(texts[i], spec, cols)
        per_char.append(no_space_language(langs[i]))
    flat, offsets = _words(texts, langs, present, per_char)
    lengths = np.diff(offsets)
    stop_counts = _stop_word_counts(flat, offsets, [langs[i] for i in present], spec)
    tok_len = pc.utf8_length(flat).to_numpy(zero_copy_only=False).astype(np.int64)
    wordlike = pc.match_substring_regex(flat, _HAS_WORD_CHAR).to_numpy(zero_copy_only=False)
    alpha = pc.match_substring_regex(flat, r"\pL").to_numpy(zero_copy_only=False)
    n_words = lengths
    word_count = _segment_sum(wordlike, offsets)
    word_chars = _segment_sum(np.where(wordlike, tok_len, 0), offsets)
    alpha_words = _segment_sum(alpha, offsets)

    tarr = pa.array([texts[i] for i in present], pa.string())
    n_chars = np.asarray(cols["qs_n_chars"], dtype=np.int64)

    def count(pattern: str, literal: bool = True) -> np.ndarray:
        fn = pc.count_substring if literal else pc.count_substring_regex
        return fn(tarr, pattern).to_numpy(zero_copy_only=False).astype(np.int64)

    chunks = pc.utf8_split_whitespace(tarr)
    max_len = np.zeros(len(present), np.int64)
    np.maximum.at(max_len, pc.list_parent_indices(chunks).to_numpy(zero_copy_only=False),
                  pc.utf8_length(chunks.flatten()).to_numpy(zero_copy_only=False).astype(np.int64))
    hashes = count("#")
    ellipses = count("...") + count("…")
    newlines = count("\n")
    other = count(r"[^\pL\pN\s]", False)
    digits = count(r"\pN", False)
    spaces = count(r"\s", False)
    letters = n_chars - other - digits - spaces
    with np.errstate(divide="ignore", invalid="ignore"):
        def div(a, b):
            return np.where(b > 0, a / np.maximum(b, 1), np.nan)

        mean_len = div(word_chars, word_count)
        mean_len[np.asarray(per_char, bool)] = np.nan
        vec = {
            "qs_n_words": n_words, "qs_max_word_length": max_len, "qs_word_count": word_count, "qs_mean_word_length": mean_len,
            "qs_hash_word_ratio": div(hashes, n_words), "qs_ellipsis_word_ratio": div(ellipses, n_words),
            "qs_alpha_words_ratio": div(alpha_words, n_words),
            "qs_newline_word_ratio": div(newlines, n_words),
            "qs_non_alnum_char_ratio": div(other, n_chars),
            "qs_digit_char_ratio": div(digits, n_chars),
            "qs_upper_char_ratio": div(count(r"\p{Lu}", False), letters),
            "qs_whitespace_char_ratio": div(spaces, n_chars),
        }
    ids = pc.dictionary_encode(flat).indices.to_numpy(zero_copy_only=False).astype(np.uint64)
    vec.update(_ngram_stats(ids, tok_len, offsets, n_chars))
    cols["qs_stop_words"] = stop_counts

    arrays = []
    for name, typ in SIGNALS.items():
        values = vec[name] if name in vec else cols[name]
        if isinstance(values, np.ndarray) and values.dtype.kind == "f":
            values = [None if np.isnan(v) else float(v) for v in values.tolist()]
        elif isinstance(values, np.ndarray):
            values = values.tolist()
        full: list = [None] * len(texts)
        for j, i in enumerate(present):
            full[i] = values[j]
        arrays.append(pa.array(full, typ))
    return pa.Table.from_arrays(arrays, names=list(SIGNALS))

"""The compiled tokenizer gives exactly the Python tokenizer's tokens (labels blanked), for ASCII text with
every whitespace and word character Python's `re` knows and for non-ASCII text (the Python path)."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa

from tokenmill.decontam.index import unlabel
from tokenmill.text.fast_ngrams import (
    KeySet,
    hash_tokens,
    ngram_lookup,
    token_hashes,
    token_offsets,
)
from tokenmill.text.ngrams import ngram_hashes, token_spans, tokens

HARD = ["A. one B) two (C) three [D] x E: y", "(A)", "A.", " J]", "K.", "a.", "x(A)", "(A).", "((A)",
        "Ｆｕｌｌ width ÉCOLE", "İstanbul ½ straße", "tab\tsep\x1cfile\x1fsep", "snake_case 3.5 km", "D:\nE)"]


def _expected(text):
    return hash_tokens(tokens(unlabel(text))) if text else np.zeros(0, np.uint64)


def test_compiled_tokens_equal_python_tokens():
    rng = random.Random(0)
    alpha = list("aAbBjJkK_09 \t\n\x0b\x0c\r\x1c\x1f.():[]{}-,;'\"") + ["é", "Ｆ", "ß", "İ", "\u00a0", "½"]
    texts = ["".join(rng.choice(alpha) for _ in range(rng.randint(0, 30))) for _ in range(3000)]
    texts += HARD + [None, ""]
    arr = pa.array(texts, pa.string())
    flat, off = token_hashes(arr, unlabel)
    assert len(off) == len(texts) + 1
    for i, text in enumerate(texts):
        assert np.array_equal(flat[off[i]:off[i + 1]], _expected(text)), repr(text)
    # a slice of the array (Arrow offset) and a large_string array give the same hashes
    part, part_off = token_hashes(arr.slice(100, 50), unlabel)
    assert np.array_equal(part, flat[off[100]:off[150]])
    large, _ = token_hashes(arr.cast(pa.large_string()), unlabel)
    assert np.array_equal(large, flat)


def test_compiled_token_offsets_equal_python_token_spans():
    """The offsets an excerpt is cut by: those of `token_spans(unlabel(text))` for ASCII text, None for other."""
    rng = random.Random(1)
    alpha = list("aAbBjJkK_09 \t\n\x0b\x0c\r\x1c\x1f.():[]{}-,;'\"")
    texts = ["".join(rng.choice(alpha) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    texts += [t for t in HARD if t.isascii()] + [""]
    for text in texts:
        _, starts, ends = token_spans(unlabel(text))
        assert token_offsets(text) == (starts, ends), repr(text)
    assert token_offsets("naïve café") is None


def test_ngram_lookup_finds_exactly_the_indexed_ngrams():
    docs = ["the quick brown fox jumps over the lazy dog", "a lazy dog sleeps", None, "quick brown fox"]
    flat, off = token_hashes(pa.array(docs, pa.string()))
    wanted = ngram_hashes(hash_tokens(["brown", "fox", "jumps"]), 3)
    keys = np.sort(np.concatenate([wanted, ngram_hashes(hash_tokens(["lazy", "dog", "sleeps"]), 3)]))
    pos, kid = ngram_lookup(flat, off, 3, KeySet(keys))
    # "brown fox jumps" at token 2 of doc 0; "lazy dog sleeps" at token 1 of doc 1 (flat 9 + 1)
    assert pos.tolist() == [2, 10]
    assert keys[kid].tolist() == [int(wanted[0]), int(keys[keys != wanted[0]][0])]
    # n-grams never cross documents: "dog a lazy" is not an n-gram
    cross = np.sort(ngram_hashes(hash_tokens(["dog", "a", "lazy"]), 3))
    assert len(ngram_lookup(flat, off, 3, KeySet(cross))[0]) == 0

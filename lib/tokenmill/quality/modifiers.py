"""Line modifiers: C4's and RefinedWeb's line-level filters rewrite the text and record what they removed.

Each returns the new text plus columns a rule set decides on (C4: lorem ipsum, curly bracket, sentences
left; RefinedWeb: share of words removed), and the lines and characters removed, for the manifest.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..text.words import SENTENCE_END, count_sentences, spacy_words, tokenize_batch
from .rules import C4LinesParams, RefinedWebLinesParams

_TERMINALS = pa.array(sorted(SENTENCE_END), pa.string())

# C4 (Raffel et al. 2020) and its reference code: the terminal marks, citation markers and policy phrases.
C4_END_PUNCTUATION = (".", "?", "!", '"', "'")
C4_CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]")
C4_POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")

C4_FIELDS = [("c4_lines_removed", pa.int64()), ("c4_chars_removed", pa.int64()), ("c4_sentences", pa.int64()),
             ("c4_lorem_ipsum", pa.bool_()), ("c4_curly_bracket", pa.bool_())]
RW_FIELDS = [("rw_lines_removed", pa.int64()), ("rw_chars_removed", pa.int64()),
             ("rw_words_removed_frac", pa.float64())]


def c4_lines(text: str, p: C4LinesParams, count: bool = True) -> tuple[str, dict]:
    """C4's line filter: the kept text and the facts its document-level rules use (with ``count=False``
    the kept lines come back in "lines" and the caller counts sentences for a whole batch at once)."""
    kept: list[str] = []
    sentences = 0
    lorem = curly = False
    lines = text.splitlines()
    for raw in lines:
        line = raw.strip()
        words = line.split()
        if p.max_word_length >= 0 and any(len(w) > p.max_word_length for w in words):
            continue
        if p.remove_citations:
            line = C4_CITATION.sub("", line)
        if p.filter_no_terminal_punct and (not line.endswith(C4_END_PUNCTUATION) or line.endswith("...")):
            continue
        if len(words) < p.min_words_per_line:
            continue
        low = line.lower()
        if p.filter_lorem_ipsum and "lorem ipsum" in low:
            lorem = True
            continue
        if p.filter_javascript and "javascript" in low:
            continue
        if p.filter_curly_bracket and "{" in line:
            curly = True
            continue
        if p.filter_policy and any(x in low for x in C4_POLICY):
            continue
        if count:
            sentences += count_sentences(spacy_words(line))
        kept.append(line)
    new = "\n".join(kept).strip()
    if not count:
        return new, {"lines": kept, "c4_lines_removed": len(lines) - len(kept), "c4_chars_removed": len(text) - len(new),
                     "c4_lorem_ipsum": lorem, "c4_curly_bracket": curly}
    return new, {"c4_lines_removed": len(lines) - len(kept), "c4_chars_removed": len(text) - len(new),
                 "c4_sentences": sentences, "c4_lorem_ipsum": lorem, "c4_curly_bracket": curly}


_NUMERIC = re.compile(r"^[\W\d_]+$")
_COUNTER = re.compile(r"^\W*\d[\d,.]*\s*[kKmM]?\s+(likes?|comments?|shares?|views?|replies|reply|retweets?|"
                      r"followers?|votes?|reviews?|points?|reactions?|subscribers?)\W*$", re.IGNORECASE)


def refinedweb_lines(text: str, p: RefinedWebLinesParams) -> tuple[str, dict]:
    """RefinedWeb's line-wise corrections: the kept text, and the share of words removed."""
    kept: list[str] = []
    removed_words = total_words = 0
    lines = text.splitlines()
    for line in lines:
        words = line.split()
        total_words += len(words)
        s = line.strip()
        letters = [c for c in s if c.isalpha()]
        drop = (
            (len(words) < p.min_words_per_line and bool(s))
            or (letters and sum(c.isupper() for c in letters) / len(letters) > p.max_upper_ratio)
            or (p.remove_numeric_lines and s and _NUMERIC.match(s) is not None)
            or (p.remove_counters and _COUNTER.match(s) is not None)
            or (len(words) <= p.max_phrase_line_words and any(ph in s.lower() for ph in p.navigation_phrases))
        )
        if drop:
            removed_words += len(words)
        else:
            kept.append(line)
    new = "\n".join(kept)
    return new, {"rw_lines_removed": len(lines) - len(kept), "rw_chars_removed": len(text) - len(new),
                 "rw_words_removed_frac": removed_words / total_words if total_words else None}


def _apply_c4(texts: list[str | None], p: C4LinesParams) -> pa.StructArray:
    names = [n for n, _ in C4_FIELDS]
    results = [c4_lines(t, p, count=False) if t is not None else None for t in texts]
    lines = [line for r in results if r is not None for line in r[1]["lines"]]
    per_line = sentences_per_line(lines)
    cols: dict[str, list] = {n: [] for n in names}
    k = 0
    for r in results:
        if r is None:
            for n in names:
                cols[n].append(None)
            continue
        facts = r[1]
        m = len(facts["lines"])
        facts["c4_sentences"] = int(per_line[k:k + m].sum())
        k += m
        for n in names:
            cols[n].append(facts[n])
    arrays = [pa.array([r[0] if r is not None else None for r in results], pa.string())]
    arrays += [pa.array(cols[n], t) for n, t in C4_FIELDS]
    return pa.StructArray.from_arrays(arrays, names=["text", *names])


def fields(p: C4LinesParams | RefinedWebLinesParams) -> list[tuple[str, pa.DataType]]:
    return C4_FIELDS if p.kind == "c4" else RW_FIELDS


def sentences_per_line(lines: list[str]) -> np.ndarray:
    """count_sentences(spacy_words(line)) for many lines at once: one Arrow tokenisation, numpy counting."""
    if not lines:
        return np.zeros(0, np.int64)
    tokens, offsets = tokenize_batch(lines)
    n = len(tokens)
    line_of = np.repeat(np.arange(len(lines)), np.diff(offsets))
    terminal = pc.is_in(tokens, value_set=_TERMINALS).to_numpy(zero_copy_only=False)
    punct = pc.match_substring_regex(tokens, r"^\pP+$").to_numpy(zero_copy_only=False)
    word = ~terminal & ~punct
    # A word starts a sentence when a terminal mark came after the previous word of its line.
    cum_t = np.cumsum(terminal)
    idx = np.arange(n)
    last_word = np.maximum.accumulate(np.where(word, idx, -1))
    prev_word = np.concatenate([[-1], last_word[:-1]])
    line_start = offsets[:-1][line_of]
    prev_word = np.where(prev_word >= line_start, prev_word, line_start - 1)
    t_before = cum_t - terminal - np.where(prev_word >= 0, cum_t[np.maximum(prev_word, 0)], 0)
    starts = word & (t_before > 0)
    return 1 + np.bincount(line_of[starts], minlength=len(lines))


def apply(texts: list[str | None], p: C4LinesParams | RefinedWebLinesParams) -> pa.StructArray:
    """The modifier over a batch: a struct of the new text and the modifier's columns (null text: nulls)."""
    if p.kind == "c4":
        return _apply_c4(texts, p)
    fn = refinedweb_lines
    names = [n for n, _ in fields(p)]
    new_text: list[str | None] = []
    cols: dict[str, list] = {n: [] for n in names}
    for t in texts:
        if t is None:
            new_text.append(None)
            for n in names:
                cols[n].append(None)
            continue
        out, facts = fn(t, p)
        new_text.append(out)
        for n in names:
            cols[n].append(facts[n])
    arrays = [pa.array(new_text, pa.string())] + [pa.array(cols[n], t) for n, t in fields(p)]
    return pa.StructArray.from_arrays(arrays, names=["text", *names])

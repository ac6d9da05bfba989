"""Benchmark decontamination: an n-gram index of test items, matched against whole Arrow batches.

The index (sorted uint64 n-gram hashes -> items, CSR) is built on the driver and broadcast once. Items
shorter than n tokens are indexed whole (if at least `min_item_tokens` long). Math items are also indexed
by their short n-grams and distinctive numbers, to catch rephrased copies (same numbers, high overlap).
Cutting follows NeMo Curator's published rule: remove each match plus a margin on both sides, drop
fragments shorter than a minimum, drop the document after too many cuts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..text.arrays import expand_ranges
from ..text.fast_ngrams import KeySet, hash_tokens, ngram_lookup, token_hashes, token_offsets
from ..text.ngrams import ngram_hashes, token_spans, tokens
from .benchmarks import BenchmarkSpec, Item

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# A multiple-choice label ("A.", "(B)", "C)", "D:") standing alone: MMLU and ARC copies carry them, the
# datasets' choice lists do not. Blanked to spaces of the same length, so character offsets stay valid.
_LABEL = re.compile(r"(?<!\S)[(\[]?[A-J][.):\]](?=\s|$)")


def unlabel(text: str) -> str:
    """``text`` with standalone choice labels blanked (same length)."""
    return _LABEL.sub(lambda m: " " * len(m.group()), text) if text else text


def _wordy(toks: list[str], n: int) -> np.ndarray:
    """Per n-gram start of ``toks``: whether the n-gram has a token that is not a number (n-grams of
    numbers only, "1 2 3 4 ...", say nothing about an item)."""
    m = len(toks) - n + 1
    if m <= 0:
        return np.zeros(0, bool)
    numeric = np.array([t.isdigit() for t in toks], dtype=np.int64)
    run = np.convolve(numeric, np.ones(n, dtype=np.int64), mode="valid")
    return run < n


def numbers(text: str) -> set[str]:
    """Numbers in ``text`` as digit strings (thousands separators dropped: 1,200 -> 1200)."""
    out = set()
    for m in _NUMBER.finditer(text):
        value = m.group()
        if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", value):
            value = value.replace(",", "")
        out.add(value)
    return out


def distinctive(nums: set[str]) -> frozenset[str]:
    """Numbers that identify an item: two digits or more, or with a decimal part (not 1, 2, 5...)."""
    return frozenset(n for n in nums if len(re.sub(r"\D", "", n)) >= 2 or "." in n)


@dataclass
class Table:
    """n-gram hash -> items, as sorted keys and a CSR list of item indices."""

    keys: np.ndarray
    starts: np.ndarray
    items: np.ndarray

    @classmethod
    def build(cls, pairs: list[tuple[int, int]]) -> Table:
        if not pairs:
            return cls(np.zeros(0, np.uint64), np.zeros(1, np.int64), np.zeros(0, np.int32))
        arr = np.array(pairs, dtype=np.uint64)
        order = np.lexsort((arr[:, 1], arr[:, 0]))
        arr = np.unique(arr[order], axis=0)
        keys, first = np.unique(arr[:, 0], return_index=True)
        starts = np.append(first, len(arr)).astype(np.int64)
        return cls(keys, starts, arr[:, 1].astype(np.int32))

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in ``hashes`` that are keys, their key indices)."""
        if not len(self.keys) or not len(hashes):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        idx = np.searchsorted(self.keys, hashes)
        idx[idx == len(self.keys)] = 0
        hit = np.nonzero(self.keys[idx] == hashes)[0]
        return hit, idx[hit]

    def items_of(self, key: int) -> np.ndarray:
        return self.items[self.starts[key]:self.starts[key + 1]]

    def find(self, flat: np.ndarray, offsets: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(flat start positions, key indices) of the n-grams of a batch that are keys (compiled scan)."""
        keyset = self.__dict__.get("_keyset")
        if keyset is None:  # built once per process (the table arrives by broadcast)
            keyset = self.__dict__["_keyset"] = KeySet(self.keys)
        return ngram_lookup(flat, offsets, n, keyset)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_keyset"}


@dataclass
class MathIndex:
    n: int
    table: Table
    totals: np.ndarray  # distinct short n-grams per item (0: not a math item)
    min_overlap: np.ndarray
    nums: dict[int, frozenset[str]]
    lengths: np.ndarray  # tokens per item's math text: the window its n-grams and numbers must share


@dataclass
class Index:
    """Everything the executors need, broadcast once."""

    n: int
    lengths: tuple[int, ...]
    table: Table
    items: list[tuple[str, str]]  # (benchmark, item id)
    math: list[MathIndex] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    def item_totals(self) -> np.ndarray:
        """Distinct indexed n-grams per item."""
        return np.bincount(self.table.items.astype(np.int64), minlength=len(self.items))


def build_index(specs: list[BenchmarkSpec], items_by_bench: dict[str, list[Item]], n: int,
                min_item_tokens: int) -> Index:
    items: list[tuple[str, str]] = []
    pairs: list[tuple[int, int]] = []
    lengths = {n}
    stats: dict = {}
    math_pairs: dict[int, list[tuple[int, int]]] = {}
    math_meta: dict[int, dict[int, tuple[int, float, frozenset[str]]]] = {}
    for spec in specs:
        st = stats.setdefault(spec.name, {"items": 0, "ngrams": 0, "indexed_whole": 0, "too_short": 0,
                                          "math_items": 0})
        for item in items_by_bench[spec.name]:
            k = len(items)
            items.append((item.benchmark, item.item_id))
            st["items"] += 1
            toks = tokens(unlabel(item.text))
            th = hash_tokens(toks)
            if len(th) >= n:
                hs = np.unique(ngram_hashes(th, n)[_wordy(toks, n)])
            elif len(th) >= min_item_tokens and _wordy(toks, len(toks)).all():
                hs = ngram_hashes(th, len(th))
                lengths.add(len(th))
                st["indexed_whole"] += 1
            else:
                st["too_short"] += 1
                hs = np.zeros(0, np.uint64)
            # Short items (ARC and MMLU questions): the first field alone, whole, when it is shorter than n
            # tokens, so a copy of the question without its choices is found (GPT-3 and Llama 2 matched
            # short items whole on normalised text).
            if item.short_text is not None and len(th) >= n:
                qt = tokens(unlabel(item.short_text))
                if min_item_tokens <= len(qt) < n and _wordy(qt, len(qt)).all():
                    hs = np.concatenate([hs, ngram_hashes(hash_tokens(qt), len(qt))])
                    lengths.add(len(qt))
                    st["indexed_whole"] += 1
            st["ngrams"] += len(hs)
            pairs += [(int(h), k) for h in hs]
            if spec.math and item.math_text is not None:
                nums = distinctive(numbers(item.math_text))
                if len(nums) >= spec.math.min_numbers:
                    mtoks = tokens(item.math_text)
                    short = np.unique(ngram_hashes(hash_tokens(mtoks), spec.math.n)[_wordy(mtoks, spec.math.n)])
                    if len(short):
                        math_pairs.setdefault(spec.math.n, []).extend((int(h), k) for h in short)
                        math_meta.setdefault(spec.math.n, {})[k] = (len(short), spec.math.min_overlap, nums,
                                                                    len(mtoks))
                        st["math_items"] += 1
    maths = []
    for mn, mp in sorted(math_pairs.items()):
        # Short n-grams shared by many items ("how many", "at the end") say nothing about one item: drop
        # those in more than 1% of the math items (at least 10) and measure overlap on the rest.
        table = Table.build(mp)
        per_key = np.diff(table.starts)
        limit = max(10, len(math_meta[mn]) // 100)
        keep = per_key <= limit
        kept_pairs = [(int(table.keys[k]), int(i)) for k in np.nonzero(keep)[0].tolist()
                      for i in table.items_of(k).tolist()]
        # Per benchmark: the dropped n-grams among its own items' (the math sets share one table).
        for name in {items[k][0] for k in math_meta[mn]}:
            stats[name].setdefault("math_common_ngrams_dropped", 0)
        for key in np.nonzero(~keep)[0].tolist():
            for name in {items[i][0] for i in table.items_of(key).tolist()}:
                stats[name]["math_common_ngrams_dropped"] += 1
        table = Table.build(kept_pairs)
        totals = np.zeros(len(items), np.int64)
        np.add.at(totals, table.items.astype(np.int64), 1)
        overlap = np.ones(len(items))
        item_len = np.zeros(len(items), np.int64)
        nums = {}
        for k, (_, ov, ns, length) in math_meta[mn].items():
            overlap[k], nums[k], item_len[k] = ov, ns, length
        maths.append(MathIndex(mn, table, totals, overlap, nums, item_len))
    return Index(n, tuple(sorted(lengths)), Table.build(pairs), items, maths, stats=stats)


def split_common(index: Index, common: np.ndarray, docs: np.ndarray, viral_share: float
                 ) -> tuple[np.ndarray, dict[str, dict]]:
    """Which common n-grams (key indices found in many documents, with their document counts) to ignore.

    An n-gram common in the corpus is ignored when it is a small part of every item it belongs to (a stock
    phrase: "which of the following is"); an item with at least ``viral_share`` of its n-grams common is a
    viral copy, the worst contamination, and keeps all of them. (ignored keys, per benchmark: ignored
    n-grams, items partly common, viral items)."""
    totals = index.item_totals()
    item_common = np.zeros(len(index.items), np.int64)
    for k in common.tolist():
        item_common[index.table.items_of(k)] += 1
    share = np.divide(item_common, totals, out=np.zeros(len(totals)), where=totals > 0)
    viral = share >= viral_share
    ignored = [k for k in common.tolist() if not viral[index.table.items_of(k)].any()]
    most = dict(zip(common.tolist(), docs.tolist(), strict=True))
    report: dict[str, dict] = {}
    for name in index.stats:
        report[name] = {"ignored_common_ngrams": 0, "items_partly_common": 0, "viral_items": []}
    for k in ignored:
        for name in {index.items[i][0] for i in index.table.items_of(k).tolist()}:
            report[name]["ignored_common_ngrams"] += 1
    for i in np.nonzero(item_common)[0].tolist():
        bench, item_id = index.items[i]
        if viral[i]:
            keys = [k for k in common.tolist() if i in index.table.items_of(k)]
            report[bench]["viral_items"].append({"item": item_id, "common_share": round(float(share[i]), 3),
                                                 "max_docs_per_ngram": int(max(most[k] for k in keys))})
        else:
            report[bench]["items_partly_common"] += 1
    return np.array(sorted(ignored), dtype=np.int64), report


@dataclass
class Hit:
    key: int
    start: int  # token position
    length: int  # tokens


Batch = tuple[np.ndarray, np.ndarray]  # token hashes end to end, document offsets


def _batch(texts: pa.Array) -> Batch:
    """Every document's token hashes (labels blanked) laid end to end, with document offsets: compiled
    for ASCII documents, the Python tokenizer for the others (text/fast_ngrams.py)."""
    return token_hashes(texts, unlabel)


def as_array(texts: list[str | None] | pa.Array) -> pa.Array:
    if isinstance(texts, pa.ChunkedArray):
        return texts.combine_chunks()
    return texts if isinstance(texts, pa.Array) else pa.array(texts, pa.string())


def find_hits(texts: list[str | None] | pa.Array, index: Index, ignored: np.ndarray | None = None,
              batch: Batch | None = None) -> dict[int, list[Hit]]:
    """Per document (by position in ``texts``) its n-gram hits, leaving out the ``ignored`` (common) keys."""
    flat, offsets = batch or _batch(as_array(texts))
    out: dict[int, list[Hit]] = {}
    for length in index.lengths:
        pos, keys = index.table.find(flat, offsets, length)
        if ignored is not None and len(ignored) and len(keys):
            keep = ~np.isin(keys, ignored)
            pos, keys = pos[keep], keys[keep]
        docs = np.searchsorted(offsets, pos, side="right") - 1
        for d, k, p in zip(docs.tolist(), keys.tolist(), pos.tolist(), strict=True):
            out.setdefault(d, []).append(Hit(k, p - int(offsets[d]), length))
    return out


def find_rephrased(texts: list[str | None] | pa.Array, index: Index, exclude: dict[int, set[int]],
                   batch: Batch | None = None) -> dict[int, dict[int, tuple[int, tuple[int, int]]]]:
    """Per document, math items rephrased in it: {doc: {item: (shared short n-grams, (start, end) chars)}}.

    Within one window of twice the item's length (in tokens) the document shares at least `min_overlap` of
    the item's short n-grams, and every distinctive number of the item appears in that window's text: a long
    page that holds an item's numbers in one place and its phrases in another is not a copy. Items already
    matched by n-grams (``exclude``) are skipped."""
    if not index.math:
        return {}
    arr = as_array(texts)
    flat, offsets = batch or _batch(arr)
    found: dict[int, dict[int, tuple[int, tuple[int, int]]]] = {}
    for mi in index.math:
        pos, keys = mi.table.find(flat, offsets, mi.n)
        if not len(pos):
            continue
        docs = np.searchsorted(offsets, pos, side="right") - 1
        first = mi.table.starts[keys]
        counts = mi.table.starts[keys + 1] - first
        if not counts.sum():
            continue
        # every (document, item, key, position) behind the hits (vectorised), then the pairs with enough keys
        item_ids = mi.table.items[expand_ranges(first, counts)].astype(np.int64)
        h_doc, h_key, h_pos = np.repeat(docs, counts), np.repeat(keys, counts), np.repeat(pos, counts)
        codes = h_doc * len(mi.totals) + item_ids
        pair_key = np.unique(np.stack([codes, h_key], axis=1), axis=0)
        uniq, shared = np.unique(pair_key[:, 0], return_counts=True)
        item_of = uniq % len(mi.totals)
        need = np.ceil(mi.min_overlap[item_of] * mi.totals[item_of])
        candidates = uniq[(mi.totals[item_of] > 0) & (shared >= need)]
        if not len(candidates):
            continue
        sel = np.isin(codes, candidates)
        order = np.lexsort((h_pos[sel], codes[sel]))
        c_code, c_key, c_pos = codes[sel][order], h_key[sel][order], h_pos[sel][order]
        bounds = np.flatnonzero(np.concatenate([[True], c_code[1:] != c_code[:-1], [True]]))
        for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            code = int(c_code[lo])
            d, item = code // len(mi.totals), code % len(mi.totals)
            doc = d
            if item in exclude.get(doc, ()):
                continue
            rel = c_pos[lo:hi] - int(offsets[d])
            best = _densest(rel, c_key[lo:hi], 2 * int(mi.lengths[item]))
            if best is None or best[0] < mi.min_overlap[item] * mi.totals[item]:
                continue
            count, a, b = best
            text = arr[doc].as_py() or ""
            starts, ends = _token_offsets(text)
            length = int(mi.lengths[item])
            window = (starts[max(0, a - length)], ends[min(len(ends) - 1, b + mi.n - 1 + length)])
            if mi.nums[item] <= numbers(text[window[0]:window[1]]):
                # the span: the shared phrases and the item's numbers around them
                lo, hi = starts[a], ends[min(len(ends) - 1, b + mi.n - 1)]
                for m in _NUMBER.finditer(text, window[0], window[1]):
                    if numbers(m.group()) & mi.nums[item]:
                        lo, hi = min(lo, m.start()), max(hi, m.end())
                found.setdefault(doc, {})[item] = (count, (lo, hi))
    return found


def _token_offsets(text: str) -> tuple[list[int], list[int]]:
    """Start and end character offsets of the tokens of ``text`` with its choice labels blanked (compiled
    for ASCII text)."""
    fast = token_offsets(text)
    if fast is not None:
        return fast
    _, starts, ends = token_spans(unlabel(text))
    return starts, ends


def _densest(pos: np.ndarray, keys: np.ndarray, width: int) -> tuple[int, int, int] | None:
    """(distinct keys, first, last position) of the window of ``width`` tokens holding the most distinct
    keys; ``pos`` sorted."""
    best = None
    j = 0
    for i in range(len(pos)):
        while pos[i] - pos[j] >= width:
            j += 1
        distinct = len(set(keys[j:i + 1].tolist()))
        if best is None or distinct > best[0]:
            best = (distinct, int(pos[j]), int(pos[i]))
    return best


def spans(hits: list[Hit], starts: list[int], ends: list[int]) -> list[tuple[int, int]]:
    """Merged character spans of ``hits`` (token positions -> offsets)."""
    raw = sorted((starts[h.start], ends[h.start + h.length - 1]) for h in hits)
    merged: list[list[int]] = []
    for a, b in raw:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def cut(text: str, matched: list[tuple[int, int]], margin: int, min_fragment: int) -> str:
    """``text`` without each matched span and ``margin`` characters on each side; fragments shorter than
    ``min_fragment`` characters are dropped; the rest are joined by blank lines."""
    removed: list[list[int]] = []
    for a, b in matched:
        a, b = max(0, a - margin), min(len(text), b + margin)
        if removed and a <= removed[-1][1]:
            removed[-1][1] = max(removed[-1][1], b)
        else:
            removed.append([a, b])
    fragments, last = [], 0
    for a, b in removed:
        fragments.append(text[last:a])
        last = b
    fragments.append(text[last:])
    kept = [f.strip() for f in fragments if len(f.strip()) >= min_fragment]
    return "\n\n".join(kept)


@dataclass
class Decision:
    entries: list[dict]  # benchmark, item, kind, ngrams, excerpt
    text: str | None  # the cut text (cut action)
    cuts: int
    verdict: str | None  # why the document goes: too_many_cuts, nothing_left (cut action)


def decide(texts: list[str | None] | pa.Array, index: Index, action: str, margin: int, min_fragment: int,
           max_cuts: int, ignored: np.ndarray | None = None) -> list[Decision | None]:
    """For every document: what matched, and (cut) what is left; None for clean documents."""
    texts = as_array(texts)
    batch = _batch(texts)  # tokenised and hashed once for both matchers
    hits = find_hits(texts, index, ignored, batch)
    by_item: dict[int, dict[int, list[Hit]]] = {}
    for doc, hs in hits.items():
        for h in hs:
            for item in index.table.items_of(h.key).tolist():
                by_item.setdefault(doc, {}).setdefault(item, []).append(h)
    rephrased = find_rephrased(texts, index, {d: set(v) for d, v in by_item.items()}, batch)
    out: list[Decision | None] = [None] * len(texts)
    for doc in sorted(set(by_item) | set(rephrased)):
        text = texts[doc].as_py() or ""
        starts, ends = _token_offsets(text)
        entries = []
        for item, hs in sorted(by_item.get(doc, {}).items()):
            a, b = spans(hs, starts, ends)[0]  # the first quoted passage, whole
            bench, item_id = index.items[item]
            entries.append({"benchmark": bench, "item": item_id, "kind": "ngram",
                            "ngrams": len({h.key for h in hs}), "excerpt": text[a:b][:300]})
        for item, (count, (a, b)) in sorted(rephrased.get(doc, {}).items()):
            bench, item_id = index.items[item]
            entries.append({"benchmark": bench, "item": item_id, "kind": "numbers", "ngrams": count,
                            "excerpt": text[a:b][:300]})
        decision = Decision(entries, None, 0, None)
        if action == "cut":
            matched = _merged(spans(hits.get(doc, []), starts, ends) + [s for _, s in rephrased.get(doc, {}).values()])
            decision.cuts = len(matched)
            if len(matched) > max_cuts:
                decision.verdict = "too_many_cuts"
            else:
                decision.text = cut(text, matched, margin, min_fragment)
                if not decision.text:
                    decision.verdict = "nothing_left"
        out[doc] = decision
    return out

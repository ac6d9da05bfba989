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
from ..text.ngrams import TokenHasher, batch_ngrams, ngram_hashes, token_spans, tokens
from .benchmarks import BenchmarkSpec, Item

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


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


@dataclass
class MathIndex:
    n: int
    table: Table
    totals: np.ndarray  # distinct short n-grams per item (0: not a math item)
    min_overlap: np.ndarray
    nums: dict[int, frozenset[str]]


@dataclass
class Index:
    """Everything the executors need, broadcast once."""

    n: int
    lengths: tuple[int, ...]
    table: Table
    items: list[tuple[str, str]]  # (benchmark, item id)
    math: list[MathIndex] = field(default_factory=list)
    stats: dict = field(default_factory=dict)


def build_index(specs: list[BenchmarkSpec], items_by_bench: dict[str, list[Item]], n: int,
                min_item_tokens: int) -> Index:
    hasher = TokenHasher()
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
            th = hasher(tokens(item.text))
            if len(th) >= n:
                hs = np.unique(ngram_hashes(th, n))
            elif len(th) >= min_item_tokens:
                hs = ngram_hashes(th, len(th))
                lengths.add(len(th))
                st["indexed_whole"] += 1
            else:
                st["too_short"] += 1
                hs = np.zeros(0, np.uint64)
            st["ngrams"] += len(hs)
            pairs += [(int(h), k) for h in hs]
            if spec.math and item.math_text is not None:
                nums = distinctive(numbers(item.math_text))
                if len(nums) >= spec.math.min_numbers:
                    short = np.unique(ngram_hashes(hasher(tokens(item.math_text)), spec.math.n))
                    if len(short):
                        math_pairs.setdefault(spec.math.n, []).extend((int(h), k) for h in short)
                        math_meta.setdefault(spec.math.n, {})[k] = (len(short), spec.math.min_overlap, nums)
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
        table = Table.build(kept_pairs)
        totals = np.zeros(len(items), np.int64)
        np.add.at(totals, table.items.astype(np.int64), 1)
        overlap = np.ones(len(items))
        nums = {}
        for k, (_, ov, ns) in math_meta[mn].items():
            overlap[k], nums[k] = ov, ns
        for name in stats:
            stats[name].setdefault("math_common_ngrams_dropped", 0)
        stats[specs[0].name]["math_common_ngrams_dropped"] += int((~keep).sum())
        maths.append(MathIndex(mn, table, totals, overlap, nums))
    return Index(n, tuple(sorted(lengths)), Table.build(pairs), items, maths, stats=stats)


@dataclass
class Hit:
    key: int
    start: int  # token position
    length: int  # tokens


def _batch(texts: list[str | None], hasher: TokenHasher) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Every present document's token hashes laid end to end, with document offsets. Tokens are
    dictionary-encoded by Arrow (in C), so only the batch's distinct words are hashed in Python."""
    present = [i for i, t in enumerate(texts) if t]
    flat: list[str] = []
    sizes = np.zeros(len(present), dtype=np.int64)
    for j, i in enumerate(present):
        toks = tokens(texts[i])  # type: ignore[arg-type]
        sizes[j] = len(toks)
        flat.extend(toks)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    if not flat:
        return np.zeros(0, np.uint64), offsets, present
    encoded = pa.array(flat, pa.string()).dictionary_encode()
    distinct = hasher(encoded.dictionary.to_pylist())
    return distinct[encoded.indices.to_numpy()], offsets, present


Batch = tuple[np.ndarray, np.ndarray, list[int]]


def find_hits(texts: list[str | None], index: Index, ignored: np.ndarray | None = None,
              batch: Batch | None = None) -> dict[int, list[Hit]]:
    """Per document (by position in ``texts``) its n-gram hits, leaving out the ``ignored`` (common) keys."""
    flat, offsets, present = batch or _batch(texts, TokenHasher())
    out: dict[int, list[Hit]] = {}
    for length in index.lengths:
        hashes, positions = batch_ngrams(flat, offsets, length)
        hit, keys = index.table.lookup(hashes)
        if ignored is not None and len(ignored) and len(keys):
            keep = ~np.isin(keys, ignored)
            hit, keys = hit[keep], keys[keep]
        pos = positions[hit]
        docs = np.searchsorted(offsets, pos, side="right") - 1
        for d, k, p in zip(docs.tolist(), keys.tolist(), pos.tolist(), strict=True):
            out.setdefault(present[d], []).append(Hit(k, p - int(offsets[d]), length))
    return out


def find_rephrased(texts: list[str | None], index: Index, exclude: dict[int, set[int]],
                   batch: Batch | None = None) -> dict[int, dict[int, int]]:
    """Per document, math items whose numbers all appear and whose short n-grams overlap enough:
    {doc: {item: shared short n-grams}}; items already matched by n-grams (``exclude``) are skipped."""
    if not index.math:
        return {}
    flat, offsets, present = batch or _batch(texts, TokenHasher())
    found: dict[int, dict[int, int]] = {}
    for mi in index.math:
        hashes, positions = batch_ngrams(flat, offsets, mi.n)
        hit, keys = mi.table.lookup(hashes)
        if not len(hit):
            continue
        docs = np.searchsorted(offsets, positions[hit], side="right") - 1
        pairs = np.unique(np.stack([docs, keys], axis=1), axis=0)  # distinct (document, short n-gram)
        first = mi.table.starts[pairs[:, 1]]
        counts = mi.table.starts[pairs[:, 1] + 1] - first
        if not counts.sum():
            continue
        # every (document, item) pair behind those n-grams, and how many n-grams each shares (vectorised)
        item_ids = mi.table.items[expand_ranges(first, counts)].astype(np.int64)
        codes = np.repeat(pairs[:, 0], counts) * len(mi.totals) + item_ids
        uniq, shared = np.unique(codes, return_counts=True)
        doc_of, item_of = uniq // len(mi.totals), uniq % len(mi.totals)
        enough = (mi.totals[item_of] > 0) & (shared >= mi.min_overlap[item_of] * mi.totals[item_of])
        doc_numbers: dict[int, set[str]] = {}
        for d, item, count in zip(doc_of[enough].tolist(), item_of[enough].tolist(), shared[enough].tolist(),
                                  strict=True):
            doc = present[d]
            if item in exclude.get(doc, ()):
                continue
            if doc not in doc_numbers:
                doc_numbers[doc] = numbers(texts[doc] or "")
            if mi.nums[item] <= doc_numbers[doc]:
                found.setdefault(doc, {})[item] = count
    return found


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
    verdict: str | None  # why the document goes: too_many_cuts, nothing_left, rephrased (cut action)


def decide(texts: list[str | None], index: Index, action: str, margin: int, min_fragment: int,
           max_cuts: int, ignored: np.ndarray | None = None) -> list[Decision | None]:
    """For every document: what matched, and (cut) what is left; None for clean documents."""
    batch = _batch(texts, TokenHasher())  # tokenised and hashed once for both matchers
    hits = find_hits(texts, index, ignored, batch)
    by_item: dict[int, dict[int, list[Hit]]] = {}
    for doc, hs in hits.items():
        for h in hs:
            for item in index.table.items_of(h.key).tolist():
                by_item.setdefault(doc, {}).setdefault(item, []).append(h)
    rephrased = find_rephrased(texts, index, {d: set(v) for d, v in by_item.items()}, batch)
    out: list[Decision | None] = [None] * len(texts)
    for doc in sorted(set(by_item) | set(rephrased)):
        text = texts[doc] or ""
        _, starts, ends = token_spans(text)
        entries = []
        for item, hs in sorted(by_item.get(doc, {}).items()):
            a, b = spans(hs, starts, ends)[0]  # the first quoted passage, whole
            bench, item_id = index.items[item]
            entries.append({"benchmark": bench, "item": item_id, "kind": "ngram",
                            "ngrams": len({h.key for h in hs}), "excerpt": text[a:b][:300]})
        for item, count in sorted(rephrased.get(doc, {}).items()):
            bench, item_id = index.items[item]
            entries.append({"benchmark": bench, "item": item_id, "kind": "numbers", "ngrams": count,
                            "excerpt": text[:300]})
        decision = Decision(entries, None, 0, None)
        if action == "cut":
            matched = spans(hits.get(doc, []), starts, ends)
            decision.cuts = len(matched)
            if rephrased.get(doc):
                decision.verdict = "rephrased"
            elif len(matched) > max_cuts:
                decision.verdict = "too_many_cuts"
            else:
                decision.text = cut(text, matched, margin, min_fragment)
                if not decision.text:
                    decision.verdict = "nothing_left"
        out[doc] = decision
    return out

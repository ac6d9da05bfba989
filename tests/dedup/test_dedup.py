"""Deduplication: exact duplicates with a stated survivor policy; MinHash signatures (datasketch-compatible
mode), band keys and the (bands, rows) chooser."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.sql import functions as F

from tokenmill.dedup.exact_stage import ExactDedupParams, exact_dedup
from tokenmill.dedup.minhash import (
    MinHashSpec,
    band_keys,
    candidate_probability,
    choose_bands,
    estimated_jaccard,
    normalised_words,
    s_curve,
    shingle_hashes,
    signatures,
)
from tokenmill.pipeline.stage import StageContext
from tokenmill.schema import REMOVED_BY

DOCS = [
    ("a1", "src-b", "u1", "The Bakery opens at six, and the line reaches the bus stop."),
    ("a2", "src-a", "u2", "the bakery opens at SIX and the line   reaches the bus stop!!"),
    ("a3", "src-a", "u3", "The bakery opens at seven, and the line reaches the bus stop."),
    ("b1", "src-a", "u4", "Prices rose by 12% in 2023."),
    ("b2", "src-b", "u5", "Prices rose by 15% in 2024 ..."),
    ("c1", "src-a", "u6", "Unrelated text about rivers."),
]


def _frame(spark):
    return spark.createDataFrame([(*d, None) for d in DOCS],
                                 "id string, source string, url string, text string, removed_by string")


def _ctx(spark, tmp_path):
    return StageContext(spark, (), str(tmp_path / "c.yaml"), str(tmp_path / "w"))


def test_exact_dedup_policy(spark, tmp_path):
    out = exact_dedup(_ctx(spark, tmp_path), _frame(spark), ExactDedupParams(stage="exact_dedup"))
    got = {r["id"]: (r[REMOVED_BY], r["dup_of"], r["dup_cluster_size"]) for r in out.collect()}
    # a1/a2 and b1/b2 normalise to the same text (case, punctuation, whitespace, digits); the longer raw
    # text survives (a2 has extra spaces and marks; b2 its " ..."), a3 differs by a word.
    assert got == {"a1": ("exact_dedup:duplicate", "a2", 2), "a2": (None, None, 2), "a3": (None, None, 1),
                   "b1": ("exact_dedup:duplicate", "b2", 2), "b2": (None, None, 2), "c1": (None, None, 1)}
    by_source = exact_dedup(_ctx(spark, tmp_path), _frame(spark),
                            ExactDedupParams(stage="exact_dedup", prefer=[], source_priority=["src-b"]))
    kept = {r["id"] for r in by_source.where("removed_by is null").collect()}
    assert kept == {"a1", "a3", "b2", "c1"}  # src-b wins both pairs
    by_id = exact_dedup(_ctx(spark, tmp_path), _frame(spark), ExactDedupParams(stage="exact_dedup", prefer=[]))
    assert {r["id"] for r in by_id.where("removed_by is null").collect()} == {"a1", "a3", "b1", "c1"}
    by_url = exact_dedup(_ctx(spark, tmp_path), _frame(spark), ExactDedupParams(stage="exact_dedup", by_url=True))
    assert by_url.where("removed_by is not null").count() == 0  # every URL differs
    raw = exact_dedup(_ctx(spark, tmp_path), _frame(spark), ExactDedupParams(stage="exact_dedup", normalise=False))
    assert raw.where("removed_by is not null").count() == 0


def test_exact_dedup_nfkc(spark, tmp_path):
    """Fullwidth letters and digits, a ligature and a NO-BREAK SPACE fold to their plain forms with `nfkc`."""
    rows = [("p1", "s", "u1", "Fine Office 2024"), ("p2", "s", "u2", "\uff26ine o\ufb03ce\u00a0\uff12\uff10\uff12\uff14"),
            ("p3", "s", "u3", "Fine office hours"), ("p4", "s", "u4", None)]
    df = spark.createDataFrame([(*r, None) for r in rows],
                               "id string, source string, url string, text string, removed_by string")
    plain = exact_dedup(_ctx(spark, tmp_path), df, ExactDedupParams(stage="exact_dedup"))
    assert plain.where("removed_by is not null").count() == 0  # without NFKC the fullwidth forms differ
    ctx = _ctx(spark, tmp_path)
    out = exact_dedup(ctx, df, ExactDedupParams(stage="exact_dedup", nfkc=True))
    got = {r["id"]: (r[REMOVED_BY], r["dup_of"]) for r in out.collect()}
    # p1 is longer (16 characters; p2 has 14: the ffi ligature is one): p1 survives
    assert got == {"p1": (None, None), "p2": ("exact_dedup:duplicate", "p1"), "p3": (None, None),
                   "p4": (None, None)}
    assert out.columns == plain.columns and ctx.reported("exact_dedup")["nfkc"] is True


def test_exact_dedup_spreads_rows_without_a_key(spark, tmp_path):
    """Rows removed by earlier stages have no key; they are spread over the window's partitions by id, not
    all sent to the one partition of the null key (two thirds of a crawl in one task)."""
    rows = [(f"r{i:03d}", "s", f"u{i}", f"text number {'abcdefg'[i % 7]}", "quality:short" if i % 3 else None)
            for i in range(120)]
    df = spark.createDataFrame(rows, "id string, source string, url string, text string, removed_by string")
    key = "spark.sql.adaptive.coalescePartitions.enabled"
    before = spark.conf.get(key)
    spark.conf.set(key, "false")  # keep the 4 shuffle partitions as they are, to see where rows went
    try:
        out = exact_dedup(_ctx(spark, tmp_path), df, ExactDedupParams(stage="exact_dedup"))
        parts = {r["p"] for r in out.where("removed_by = 'quality:short'")
                 .select(F.spark_partition_id().alias("p")).collect()}
        got = {r["id"]: r[REMOVED_BY] for r in out.collect()}
    finally:
        spark.conf.set(key, before)
    assert len(parts) > 1
    # 40 live rows (i % 3 == 0) with 7 texts: one survivor per text, the rest duplicates; removed rows untouched
    assert sum(v == "exact_dedup:duplicate" for v in got.values()) == 40 - 7
    assert sum(v == "quality:short" for v in got.values()) == 80


def test_exact_dedup_same_result_for_any_partitioning(spark, tmp_path):
    one = exact_dedup(_ctx(spark, tmp_path), _frame(spark).coalesce(1), ExactDedupParams(stage="exact_dedup"))
    many = exact_dedup(_ctx(spark, tmp_path), _frame(spark).repartition(5), ExactDedupParams(stage="exact_dedup"))
    assert sorted(map(tuple, one.select("id", REMOVED_BY, "dup_of").collect())) == sorted(
        map(tuple, many.select("id", REMOVED_BY, "dup_of").collect()))


def test_signatures_match_datasketch():
    datasketch = pytest.importorskip("datasketch")
    texts = [d[3] for d in DOCS] + ["", "two words", "x " * 300]
    spec = MinHashSpec(num_perm=64, seed=7, mode="datasketch")
    h, o = shingle_hashes(texts, spec)
    sig = signatures(h, o, spec)
    for text, row in zip(texts, sig, strict=True):
        words = normalised_words(text)
        grams = {" ".join(words[i:i + 5]) for i in range(len(words) - 4)} or ({" ".join(words)} if words else set())
        m = datasketch.MinHash(num_perm=64, seed=7, scheme="legacy")
        for g in grams:
            m.update(g.encode("utf-8"))
        assert np.array_equal(m.hashvalues, row)


def test_arrow_words_equal_python_normalisation():
    """The batch (Arrow) word split is the one the Python normalisation gives, on awkward text too."""
    from tokenmill.dedup.minhash import batch_words

    texts = ["Hello, World! It's 2024-11-23; e-mail: a_b@c.de", "caf\u00e9 CAF\u00c9 na\u00efve \u00ff\u00df",
             "\u00a0non\u00a0breaking\u2003em\u3000ideographic\tTab\nLine\x0bvt\x1cfs",
             "\uff21\uff22\uff23 \uff11\uff12 \u2460 fullwidth and circled", "\u0645\u0631\u062d\u0628\u0627 \u0661\u0662\u0663 \u4f60\u597d\uff0c\u4e16\u754c",
             "", "   ", "...!!!", "\u0915\u093f\u0924\u093e\u092c \u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22", "e\u0301 combining"]
    for words, text in zip(batch_words(texts), texts, strict=True):
        assert words == normalised_words(text), text


def test_signatures_estimate_jaccard():
    def word(i: int, prefix: str) -> str:  # letters only: digits are normalised to 0
        return prefix + "".join(chr(97 + (i // 26 ** k) % 26) for k in range(3))

    base = [word(i, "w") for i in range(400)]
    edited = list(base)
    for i in range(0, 400, 40):
        edited[i] = word(i, "x")  # 10 one-word edits
    shuffled = base[200:] + base[:200]
    other = [word(i, "z") for i in range(400)]
    texts = [" ".join(t) for t in (base, edited, shuffled, other)]
    spec = MinHashSpec(num_perm=256)
    h, o = shingle_hashes(texts, spec)
    sig = signatures(h, o, spec)
    grams = [{tuple(t.split()[i:i + 5]) for i in range(396)} for t in texts]
    for j in (1, 2, 3):
        true = len(grams[0] & grams[j]) / len(grams[0] | grams[j])
        assert abs(estimated_jaccard(sig[0], sig[j]) - true) < 0.08
    assert estimated_jaccard(sig[0], sig[3]) == 0.0
    # Coefficients are drawn over all 64 bits: unrelated documents never collide in every slot, and the
    # permutations disagree (they do not all pick the same shingle).
    assert len({int(np.argmin(sig[0]))}) == 1 and len(set(sig[0].tolist())) > 200
    keys = band_keys(sig, 14, 8)
    assert keys.shape == (4, 14) and not (keys[0] == keys[3]).any()
    assert (keys[0] == keys[0]).all()


def test_word_hashes_equal_for_equal_words_of_every_length():
    """Words are hashed from the batch's bytes in 8-byte chunks (xxh3 past 64 bytes): equal words hash
    equal wherever they are, different words differ, at every length around the chunk edges."""
    from tokenmill.dedup.minhash import _normalised_bytes, _span_hashes, _word_spans

    words = ["w" + "x" * k for k in range(100)] + ["y" * 70 + "a", "y" * 70 + "b", "abcdefgh", "abcdefghi",
                                                   "abcdefgh\u00e9", "\u00e9abcdefg", "stra\u00dfe"]
    texts = [" ".join(words), "  ".join(reversed(words)) + " ", "", "WX!"]
    codes, offsets = _normalised_bytes(texts)
    starts, ends, per_doc = _word_spans(codes, offsets)
    h = _span_hashes(codes, starts, ends)
    n = len(words)
    assert per_doc.tolist() == [0, n, 2 * n, 2 * n, 2 * n + 1]
    assert len(set(h[:n].tolist())) == n
    assert h[:n].tolist() == h[n:2 * n].tolist()[::-1]
    assert h[2 * n] == h[1]  # "WX!" normalises to "wx", the second word


def test_shingles_of_a_document_do_not_depend_on_its_batch():
    """A document's shingle hashes are the same alone and in any batch (ASCII documents take the byte table,
    the others the Unicode kernels: mixing them in one batch changes nothing), so partitioning never
    changes a signature."""
    texts = ["The bakery opens at six, and the line reaches the bus stop on Main Street.",
             "Caf\u00e9 \u201cL\u2019Aube\u201d \u2014 ouvert \u00e0 7h, ferm\u00e9 le lundi ; r\u00e9servations au 01 23.",
             None, "", "short one", "\u4f60\u597d\uff0c\u4e16\u754c\u3002 \u0645\u0631\u062d\u0628\u0627 \u0661\u0662\u0663 hello world again",
             "x" * 100 + " " + "y" * 9 + " tail words come after the long ones here"]
    spec = MinHashSpec()
    h, o = shingle_hashes(texts, spec)
    for i, text in enumerate(texts):
        alone, offsets = shingle_hashes([text], spec)
        assert alone.tolist() == h[o[i]:o[i + 1]].tolist() and offsets.tolist() == [0, o[i + 1] - o[i]], text
    reordered, ro = shingle_hashes(texts[::-1], spec)
    n = len(texts)
    assert all(reordered[ro[n - 1 - i]:ro[n - i]].tolist() == h[o[i]:o[i + 1]].tolist() for i in range(n))
    words = [len(normalised_words(t or "")) for t in texts]
    assert [int(o[i + 1] - o[i]) for i in range(n)] == [w - 4 if w >= 5 else min(w, 1) for w in words]
    assert words == [15, 13, 0, 0, 2, 7, 10]  # CJK runs split at the comma; Arabic-Indic digits one word "000"


def test_signature_estimates_are_unbiased():
    """The multiply-add permutations (over mixed inputs) estimate Jaccard without bias: 300 pairs of shingle
    sets of known Jaccard, 128 permutations: mean error within 0.01, spread as the binomial's sqrt(J (1 - J) / k)."""
    rng = np.random.default_rng(3)
    spec = MinHashSpec(num_perm=128)
    hashes, offsets, truth = [], [0], []
    for _ in range(300):
        size, j = int(rng.integers(50, 800)), rng.uniform(0.2, 0.95)
        shared = int(round(2 * size * j / (1 + j)))  # |A n B| for |A| = |B| = size and Jaccard j
        start = int(rng.integers(0, 2 ** 40))  # consecutive values: the hardest input for a linear family
        pool = np.arange(start, start + 2 * size, dtype=np.uint64)
        a, b = pool[:size], np.concatenate([pool[:shared], pool[size:2 * size - shared]])
        truth.append(shared / (2 * size - shared))
        for part in (a, b):
            hashes.append(part)
            offsets.append(offsets[-1] + len(part))
    sig = signatures(np.concatenate(hashes), np.array(offsets), spec)
    est = estimated_jaccard(sig[0::2], sig[1::2])
    err = est - np.array(truth)
    assert abs(err.mean()) < 0.01
    z = err / np.sqrt(np.array(truth) * (1 - np.array(truth)) / 128)
    assert 0.8 < z.std() < 1.2


def test_band_chooser_and_s_curve():
    assert s_curve(14, 8)[0.8] == pytest.approx(0.9235, abs=1e-4)  # FineWeb's 14 x 8: 0.92 at 0.8
    assert candidate_probability(0.7, 14, 8) == pytest.approx(0.5645, abs=1e-4)
    b, r, fp, fn = choose_bands(0.8, 112)
    assert b * r <= 112 and 0.70 < (1 / b) ** (1 / r) < 0.85
    b2, r2, _, fn2 = choose_bands(0.8, 112, fp_weight=0.1, fn_weight=0.9)
    assert fn2 <= fn  # weighting false negatives more never raises them


def _words(prefix: str, n: int, start: int = 0) -> list[str]:
    return [prefix + "".join(chr(97 + (i // 26 ** k) % 26) for k in range(3)) for i in range(start, start + n)]


def _near_dup_frame(spark, extra=()):
    base = _words("w", 300)
    one_edit = list(base)
    one_edit[150] = "changed"
    # A chain: A ~ B and B ~ C, while A and C are further apart than the threshold.
    a = _words("c", 400)
    b = a[:360] + _words("d", 40)
    c = a[:320] + _words("d", 40) + _words("e", 40)
    rows = [
        ("d1", "s1", " ".join(base)), ("d2", "s2", " ".join(base)),           # identical
        ("d3", "s1", " ".join(one_edit)),                                      # one word changed
        ("d4", "s1", " ".join(_words("u", 300))),                              # unrelated
        ("d5", "s2", " ".join(_words("v", 300))),                              # unrelated
        ("ca", "s1", " ".join(a)), ("cb", "s1", " ".join(b)), ("cc", "s1", " ".join(c)),
        ("e1", "s1", ""),                                                      # empty: no shingles
        *extra,
    ]
    return spark.createDataFrame([(i, s, None, t, None) for i, s, t in rows],
                                 "id string, source string, url string, text string, removed_by string")


def test_minhash_dedup_clusters(spark, tmp_path):
    from tokenmill.dedup.minhash_stage import MinHashDedupParams, minhash_dedup

    ctx = _ctx(spark, tmp_path)
    out = minhash_dedup(ctx, _near_dup_frame(spark), MinHashDedupParams(stage="minhash_dedup", threshold=0.7))
    got = {r["id"]: (r[REMOVED_BY], r["dup_cluster"], r["dup_cluster_size"], r["dup_of"]) for r in out.collect()}
    # d1, d2, d3 form one cluster; all have the same length except d3 ("changed" is longer than the word it
    # replaced): the longest survives.
    assert got["d3"] == (None, "d1", 3, None)
    assert got["d1"] == ("minhash_dedup:near_duplicate", "d1", 3, "d3")
    assert got["d2"] == ("minhash_dedup:near_duplicate", "d1", 3, "d3")
    assert got["d4"] == (None, "d4", 1, None) and got["d5"] == (None, "d5", 1, None)
    assert got["e1"] == (None, "e1", 1, None)
    # The chain ca ~ cb ~ cc (ca and cc below the threshold) is one connected component, but a document is
    # only removed for a survivor it is itself similar to: cb goes for ca, cc (Jaccard 0.66 with ca) stays.
    assert got["ca"] == (None, "ca", 2, None) and got["cb"] == ("minhash_dedup:near_duplicate", "ca", 2, "ca")
    assert got["cc"] == (None, "cc", 1, None)
    report = ctx.reported("minhash_dedup")
    assert report["candidate_pairs"] >= report["pairs_after_verification"] >= 4
    assert report["connected_components"]["left_cluster"] == 1
    assert report["connected_components"]["converged"]


def test_minhash_dedup_deterministic_across_partitions(spark, tmp_path):
    from tokenmill.dedup.minhash_stage import MinHashDedupParams, minhash_dedup

    params = MinHashDedupParams(stage="minhash_dedup", threshold=0.7, prefer=[], source_priority=["s2"])
    results = []
    for parts in (1, 3, 7):
        df = _near_dup_frame(spark).repartition(parts)
        out = minhash_dedup(_ctx(spark, tmp_path), df, params)
        results.append(sorted(map(tuple, out.select("id", REMOVED_BY, "dup_cluster", "dup_of").collect())))
    assert results[0] == results[1] == results[2]
    kept = {r[0] for r in results[0] if r[1] is None}
    assert "d2" in kept and "d1" not in kept  # source priority: s2 first


def test_minhash_dedup_giant_bucket(spark, tmp_path):
    from tokenmill.dedup.minhash_stage import MinHashDedupParams, minhash_dedup

    boiler = " ".join(_words("b", 200))
    extra = [(f"g{i:04d}", "s1", boiler) for i in range(400)]  # 400 copies: one bucket per band
    ctx = _ctx(spark, tmp_path)
    out = minhash_dedup(ctx, _near_dup_frame(spark, extra), MinHashDedupParams(stage="minhash_dedup"))
    kept = out.where(F.col("id").startswith("g") & F.col(REMOVED_BY).isNull()).select("id").collect()
    assert [r["id"] for r in kept] == ["g0000"]  # same length: the smallest id survives
    assert ctx.reported("minhash_dedup")["largest_buckets"][0]["size"] == 400
    assert ctx.reported("minhash_dedup")["candidate_pairs"] <= 14 * 400  # star edges, not 400^2 / 2 pairs


def test_minhash_precision_recall_on_known_groups(spark, tmp_path):
    """Generated documents with known near-duplicate groups (a few percent of words edited, Jaccard of
    5-gram sets about 0.8-0.9): pair precision and recall at threshold 0.8 both at least 0.95."""
    import random

    from tokenmill.dedup.minhash_stage import MinHashDedupParams, minhash_dedup

    rng = random.Random(5)
    vocab = _words("q", 5000)
    rows, group = [], {}
    for g in range(150):
        base = [rng.choice(vocab) for _ in range(rng.randint(200, 400))]
        copies = 1 + (rng.random() < 0.4) * rng.randint(1, 3)
        for c in range(copies):
            words = list(base)
            if c:
                for i in rng.sample(range(len(words)), max(1, len(words) // 100)):
                    words[i] = rng.choice(vocab)  # about 1% of words: Jaccard of 5-grams ~0.9
            doc_id = f"g{g:03d}-{c}"
            rows.append((doc_id, "s", None, " ".join(words), None))
            group[doc_id] = g
    df = spark.createDataFrame(rows, "id string, source string, url string, text string, removed_by string")
    ctx = _ctx(spark, tmp_path)
    out = minhash_dedup(ctx, df, MinHashDedupParams(stage="minhash_dedup", threshold=0.8))
    cluster = {r["id"]: r["dup_cluster"] for r in out.select("id", "dup_cluster").collect()}
    ids = sorted(cluster)
    true_pairs = {(a, b) for i, a in enumerate(ids) for b in ids[i + 1:] if group[a] == group[b]}
    found = {(a, b) for i, a in enumerate(ids) for b in ids[i + 1:] if cluster[a] == cluster[b]}
    assert true_pairs, "the corpus has duplicate groups"
    precision = len(found & true_pairs) / max(1, len(found))
    recall = len(found & true_pairs) / len(true_pairs)
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)
    est = ctx.reported("minhash_dedup")["estimate"]  # the report's own estimate, from a sample of ~1000
    assert est["sample_docs"] > 100 and est["precision"] >= 0.9 and est["recall"] >= 0.9


def test_incremental_dedup_against_stored_index(spark, tmp_path):
    """Run 1 builds the index; run 2 (a new 'snapshot') removes near copies of run-1 documents, dedups
    within itself, leaves a re-seen document alone, and grows the index."""
    from tokenmill.dedup.minhash_stage import MinHashDedupParams, minhash_dedup

    index = str(tmp_path / "index")
    params = MinHashDedupParams(stage="minhash_dedup", threshold=0.7, index=index)
    first = _near_dup_frame(spark)
    ctx = _ctx(spark, tmp_path)
    minhash_dedup(ctx, first, params).collect()
    assert ctx.reported("minhash_dedup")["index"]["added_documents"] == 8  # every document with shingles
    runs = tmp_path / "index" / "runs"
    assert [p.name for p in runs.iterdir() if not p.name.startswith(".")] == []  # staged until the output commits
    ctx.committed()
    assert sorted(p.name for p in (tmp_path / "index").iterdir() if not p.name.startswith(".")) == [
        "index.json", "runs"]
    (run_dir,) = list(runs.iterdir())  # one committed run folder, the temporary one renamed into place
    assert sorted(p.name for p in run_dir.iterdir() if not p.name.startswith(".")) == [
        "_SUCCESS", "bands", "manifest.json", "signatures"]

    base = _words("w", 300)
    edited = list(base)
    edited[10] = "snapshot"
    fresh = _words("n", 300)
    rows = [("n1", "s1", " ".join(edited)),          # near copy of d1 (run 1)
            ("n2", "s1", " ".join(fresh)), ("n3", "s1", " ".join(fresh)),  # duplicates of each other
            ("d4", "s1", " ".join(_words("u", 300)))]  # seen before (same id): not a duplicate of itself
    second = spark.createDataFrame([(i, s, None, t, None) for i, s, t in rows],
                                   "id string, source string, url string, text string, removed_by string")
    ctx2 = _ctx(spark, tmp_path)
    got = {r["id"]: (r[REMOVED_BY], r["dup_of"]) for r in minhash_dedup(ctx2, second, params).collect()}
    assert got["n1"] == ("minhash_dedup:near_duplicate", "d1")  # the earlier run's document wins
    assert got["n2"] == (None, None) and got["n3"] == ("minhash_dedup:near_duplicate", "n2")
    assert got["d4"] == (None, None)
    assert ctx2.reported("minhash_dedup")["index"] == {"path": ctx2.reported("minhash_dedup")["index"]["path"],
                                                      "added_documents": 3, "documents": 11}


def test_index_published_only_when_the_output_is_committed(spark, tmp_path):
    """A run whose write fails leaves the index as it was (nothing to dedup later documents against that
    was never published); the committed run adds its documents; other MinHash settings are refused."""
    import json

    from conftest import write_config
    from tokenmill.errors import ConfigError
    from tokenmill.pipeline import load_pipeline, run

    docs = tmp_path / "docs"
    docs.mkdir()
    base = _words("w", 300)
    edited = base[:5] + ["x"] + base[6:]
    texts = [" ".join(base), " ".join(edited), " ".join(_words("u", 300))]
    (docs / "a.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    (tmp_path / "blocker").write_text("a file where the output's folder should be")
    index = tmp_path / "index"
    data = {"name": "t", "output": str(tmp_path / "blocker" / "out"),
            "sources": [{"name": "snap", "format": "jsonl", "paths": str(docs / "*.jsonl")}],
            "stages": ["read", {"stage": "minhash_dedup", "threshold": 0.7, "index": str(index)}, "write"]}

    def go():
        return run(spark, load_pipeline(str(write_config(tmp_path / "c.yaml", data))))

    with pytest.raises(Exception):  # noqa: B017 - Hadoop's error for a file in the output's path
        go()
    assert not (index / "index.json").exists()
    assert not (index / "runs").exists() or list((index / "runs").iterdir()) == []  # the staged run discarded

    data["output"] = str(tmp_path / "out")
    result = go()
    report = result.manifest["stage_reports"]["minhash_dedup"]
    assert report["index"]["added_documents"] == 3 and report["index"]["documents"] == 3
    assert result.manifest["output"]["removed_by_reason_and_source"] == {"minhash_dedup:near_duplicate": {"snap": 1}}
    (run_dir,) = [p for p in (index / "runs").iterdir()]  # committed; no temporary folder left beside it
    assert json.loads((run_dir / "manifest.json").read_text())["documents"] == 3
    assert spark.read.parquet(str(run_dir / "signatures")).count() == 3
    assert (report["bands"], report["rows"]) == (17, 5)  # chosen for recall at 0.7 (none given)
    assert spark.read.parquet(str(run_dir / "bands")).count() == 3 * 17
    assert json.loads((index / "index.json").read_text())["num_perm"] == 112
    assert go().skipped is True  # the index the stage updates itself is not an input of its fingerprint

    data["stages"][1]["threshold"] = 0.8  # bands left to the stage follow the index (17 x 5), not 13 x 7
    data["output"] = str(tmp_path / "out2")
    assert go().manifest["stage_reports"]["minhash_dedup"]["bands"] == 17
    data["stages"][1].update(num_perm=128, bands=16, rows=5)
    with pytest.raises(ConfigError, match=r"index .*index was built with other MinHash settings; "
                                          r"num_perm: index 112, config 128, bands: index 17, config 16"):
        go()


def test_sample_dedup_config_and_rerun_against_its_own_index(spark, sample_dir, tmp_path):
    """conf/pipelines/dedup_sample.yaml on the sample crawl: exact counts per stage; a forced rerun against the index it
    built removes exactly the same documents (its own documents are not their own duplicates) and adds none."""
    from conftest import sample_config, write_config
    from tokenmill.pipeline import load_pipeline, run

    data = sample_config(sample_dir, tmp_path / "out", conf="dedup_sample.yaml")
    data["stages"][2]["index"] = str(tmp_path / "index")
    plan = load_pipeline(str(write_config(tmp_path / "c.yaml", data)))
    first = run(spark, plan)
    counts = [(s["name"], s["rows_in"], s["removed"], s["rows_out"]) for s in first.manifest["stages"]]
    assert counts == [("read", 326, {"empty_text": 1, "http_status": 2, "not_html": 3}, 320),
                      ("exact_dedup", 320, {"duplicate": 19}, 301),
                      ("minhash_dedup", 301, {"near_duplicate": 15}, 286), ("write", 286, {}, 286)]
    assert first.manifest["stage_reports"]["minhash_dedup"]["index"]["added_documents"] == 301
    # The audit trail is whole although exact_dedup is checkpointed: every read row is in data/ or removed/
    # exactly once, the exact duplicates (removed before the checkpoint) included, with their dup_of.
    removed = spark.read.parquet(str(tmp_path / "out" / "removed"))
    by_reason = {r["removed_by"]: r["n"] for r in removed.groupBy("removed_by").agg(F.count("*").alias("n")).collect()}
    assert by_reason == {"read:empty_text": 1, "read:http_status": 2, "read:not_html": 3,
                         "exact_dedup:duplicate": 19, "minhash_dedup:near_duplicate": 15}
    assert removed.where(F.col("removed_by") == "exact_dedup:duplicate").where(F.col("dup_of").isNull()).count() == 0
    assert sum(sum(v.values()) for v in first.manifest["output"]["removed_by_reason_and_source"].values()) == 40
    assert removed.select("id").union(spark.read.parquet(str(tmp_path / "out" / "data")).select("id")).distinct() \
        .count() == 326
    kept = {r["id"] for r in spark.read.parquet(str(tmp_path / "out" / "data")).select("id").collect()}
    again = run(spark, plan, force=True)
    assert [s["removed"] for s in again.manifest["stages"]] == [s[2] for s in counts]
    assert {r["id"] for r in spark.read.parquet(str(tmp_path / "out" / "data")).select("id").collect()} == kept
    assert again.manifest["stage_reports"]["minhash_dedup"]["index"] == {
        "path": str(tmp_path / "index"), "added_documents": 0, "documents": 301}


def test_empty_texts_are_not_duplicates_of_each_other(spark, tmp_path):
    """Empty extractions, whitespace and punctuation-only texts get no exact-dedup key: none is removed as a
    duplicate of another, none joins a cluster; real duplicates beside them still are."""
    rows = [("e1", ""), ("e2", ""), ("e3", "   \n\t "), ("e4", "!!! ..."), ("e5", None),
            ("t1", "Same text here."), ("t2", "same TEXT here")]
    df = spark.createDataFrame([(i, "s", None, t, None) for i, t in rows],
                               "id string, source string, url string, text string, removed_by string")
    got = {r["id"]: (r[REMOVED_BY], r["dup_cluster"], r["dup_of"]) for r in
           exact_dedup(_ctx(spark, tmp_path), df, ExactDedupParams(stage="exact_dedup")).collect()}  # small: 7 rows
    assert {k: v for k, v in got.items() if k.startswith("e")} == {f"e{i}": (None, None, None) for i in range(1, 6)}
    assert got["t1"][0] is None and got["t2"] == ("exact_dedup:duplicate", got["t1"][1], "t1")


def test_exact_clusters_merge_into_near_clusters(spark, tmp_path):
    """exact_dedup then minhash_dedup: an exact cluster inside a near cluster is one cluster whose size
    counts every member, and the exact-removed rows keep their dup_of and take the merged cluster."""
    from tokenmill.dedup.minhash_stage import MinHashDedupParams, minhash_dedup

    ctx = _ctx(spark, tmp_path)
    exact = exact_dedup(ctx, _near_dup_frame(spark), ExactDedupParams(stage="exact_dedup"))
    out = minhash_dedup(ctx, exact, MinHashDedupParams(stage="minhash_dedup", threshold=0.7))
    got = {r["id"]: (r[REMOVED_BY], r["dup_cluster"], r["dup_cluster_size"], r["dup_of"]) for r in out.collect()}
    # d1, d2 (its exact copy) and d3 (one word changed, longer: the survivor) are one cluster of three
    assert got["d3"] == (None, "d1", 3, None)
    assert got["d1"] == ("minhash_dedup:near_duplicate", "d1", 3, "d3")
    assert got["d2"] == ("exact_dedup:duplicate", "d1", 3, "d1")  # exact-removed: keeps its dup_of
    exact_cluster = {r["id"]: r["dup_cluster"] for r in exact.collect()}  # small: 9 rows
    assert got["d4"][1:3] == (exact_cluster["d4"], 1)  # unrelated: keeps its own (exact) cluster
    assert got["e1"] == (None, "e1", 1, None)  # empty: a cluster of its own, never a duplicate
    assert sorted(v[2] for k, v in got.items() if k in ("ca", "cb", "cc")) == [1, 2, 2]  # cc: not like ca


def _near_threshold_frame(spark):
    """Originals of 300 words, each with copies whose Jaccard of 5-gram sets lies close to 0.75 (one word in
    about 40-70 changed), and the exact Jaccard of every copy with its original."""
    import random

    from tokenmill.dedup.minhash import MinHashSpec, shingle_hashes

    rng = random.Random(11)
    vocab = _words("n", 4000)
    rows, truth = [], {}
    for g in range(40):
        base = [rng.choice(vocab) for _ in range(300)]
        rows.append((f"o{g:02d}", " ".join(base + ["extra"])))  # the longest: the survivor
        for c in range(3):
            words = list(base)
            for i in rng.sample(range(300), rng.randint(6, 12)):
                words[i] = rng.choice(vocab)
            rows.append((f"o{g:02d}-{c}", " ".join(words)))
    h, o = shingle_hashes([t for _, t in rows], MinHashSpec())
    sets = {rows[i][0]: set(h[o[i]:o[i + 1]].tolist()) for i in range(len(rows))}
    for doc_id, _ in rows:
        if "-" in doc_id:
            a, b = sets[doc_id], sets[doc_id.split("-")[0]]
            truth[doc_id] = len(a & b) / len(a | b)
    df = spark.createDataFrame([(i, "s", None, t, None) for i, t in rows],
                               "id string, source string, url string, text string, removed_by string")
    return df, truth


def test_near_threshold_pairs_decided_by_exact_jaccard(spark, tmp_path):
    """Copies around the threshold: with exact verification no copy below 0.75 is removed, and every copy at
    or above it is, but for the few LSH does not make candidates (the bands are chosen for P(candidate) >=
    0.95 at the threshold: about 2 of these 60 copies at 0.76). The signature estimate, +-0.04, decides
    several wrongly in both directions."""
    from tokenmill.dedup.minhash_stage import MinHashDedupParams, minhash_dedup

    df, truth = _near_threshold_frame(spark)
    assert 0.2 < sum(j >= 0.75 for j in truth.values()) / len(truth) < 0.8  # both sides of the threshold
    ctx = _ctx(spark, tmp_path)

    def removed(verify):
        out = minhash_dedup(ctx, df, MinHashDedupParams(stage="minhash_dedup", threshold=0.75, verify=verify))
        return {r["id"] for r in out.where(F.col(REMOVED_BY).isNotNull()).collect()}

    expected = {k for k, j in truth.items() if j >= 0.75}
    exact = removed("exact")
    missed = expected - exact
    assert exact <= expected and len(missed) <= 3 and all(truth[k] < 0.8 for k in missed)
    report = ctx.reported("minhash_dedup")
    assert (report["bands"], report["rows"], report["verify"]) == (16, 6, "exact")
    assert report["estimate"]["precision"] == 1.0 and report["estimate"]["recall"] >= 0.95
    wrong = removed("estimate") ^ expected
    assert wrong  # the estimate misjudges pairs this close to the threshold


def test_bands_chosen_from_threshold_and_warned_when_far(caplog):
    from tokenmill.dedup.minhash import bands_for_recall, candidate_probability
    from tokenmill.dedup.minhash_stage import MinHashDedupParams

    p = MinHashDedupParams(stage="minhash_dedup", threshold=0.5)
    assert (p.bands, p.rows) == bands_for_recall(0.5, 112) == (23, 3)
    assert candidate_probability(0.5, 23, 3) >= 0.95 > candidate_probability(0.5, 14, 8)
    assert (MinHashDedupParams(stage="minhash_dedup").bands, MinHashDedupParams(stage="minhash_dedup").rows) == (13, 7)
    # without verification the balanced choice (equal weight on false positives and negatives)
    p = MinHashDedupParams(stage="minhash_dedup", threshold=0.8, verify="none")
    assert (p.bands, p.rows) == choose_bands(0.8, 112)[:2]
    assert MinHashDedupParams(stage="minhash_dedup", verify=True).verify == "exact"  # the old boolean still reads
    with caplog.at_level("WARNING", logger="tokenmill.dedup"):
        MinHashDedupParams(stage="minhash_dedup", threshold=0.5, bands=14, rows=8)
    assert "14 bands x 8 rows: P(candidate) 5% at threshold 0.5" in caplog.text
    assert "recommended 23 x 3: 95%" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="tokenmill.dedup"):
        MinHashDedupParams(stage="minhash_dedup", threshold=0.8, bands=14, rows=8)  # FineWeb's: close enough
    assert caplog.text == ""
    with pytest.raises(ValueError, match="give both `bands` and `rows`, or neither"):
        MinHashDedupParams(stage="minhash_dedup", bands=10)

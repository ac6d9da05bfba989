"""Connected components round by round, and the `minhash_bands` job's choice and S-curve."""

from __future__ import annotations

import pytest

from tokenmill.dedup.components import components, large_star, small_star
from tokenmill.dedup.job import format_bands
from tokenmill.dedup.minhash import choose_bands, threshold_of
from tokenmill.errors import ConfigError


def _edges(spark, pairs):
    return spark.createDataFrame(pairs, "u long, v long")


def test_one_round_of_large_and_small_star(spark):
    # a path 1-2-3-4: large-star hangs each larger neighbour on the smallest of the neighbourhood
    e = _edges(spark, [(1, 2), (2, 3), (3, 4)])
    assert sorted(tuple(r) for r in large_star(e).collect()) == [(2, 1), (3, 1), (4, 2)]  # small
    # small-star connects each node's smaller neighbours to the smallest of them
    assert sorted(tuple(r) for r in small_star(_edges(spark, [(3, 1), (3, 2)])).collect()) == [(2, 1), (3, 1)]


def test_components_converge_to_stars_around_the_smallest_id(spark):
    # two components: a long path (needs several rounds) and a triangle; an isolated self-loop is dropped
    path = [(i, i + 1) for i in range(10, 30)]
    out, log = components(_edges(spark, path + [(5, 7), (7, 6), (6, 5), (40, 40)]), max_rounds=20)
    roots = {r["node"]: r["root"] for r in out.collect()}  # small: 24 nodes
    assert roots == {**{i: 10 for i in range(10, 31)}, 5: 5, 6: 5, 7: 5}
    assert log["converged"] and 2 <= log["rounds"] <= 8
    assert [r["round"] for r in log["log"]] == list(range(1, log["rounds"] + 1))
    with pytest.raises(RuntimeError, match="did not converge in 1 rounds"):
        components(_edges(spark, path), max_rounds=1)


def test_hubs_meet_their_neighbourhood_in_a_broadcast_join_with_the_same_components(spark):
    """A page copied 400 times links its copies to one vertex: a hub. Its edges take the broadcast side of
    the join (the plan says so), and the components are those of the plain rounds."""
    star = [(1000, 1001 + i) for i in range(400)]  # hub 1000, not the smallest id of its component
    pairs = star + [(1001, 7), (7, 3)] + [(i, i + 1) for i in range(20, 32)]
    plain, plain_log = components(_edges(spark, pairs), max_rounds=20)
    hubbed, hub_log = components(_edges(spark, pairs), max_rounds=20, hub_degree=50)
    want = {**{n: 3 for n in [3, 7, 1000] + list(range(1001, 1401))}, **{i: 20 for i in range(20, 33)}}
    assert {r["node"]: r["root"] for r in plain.collect()} == want  # small: 418 nodes
    assert {r["node"]: r["root"] for r in hubbed.collect()} == want
    assert "hubs" not in plain_log["log"][0]
    assert hub_log["log"][0]["hubs"] == 1  # vertex 1000 with 401 edges
    assert all(r.get("hubs", 0) >= 1 for r in hub_log["log"][1:])  # from round 1 on, root 3 holds the star
    hubs = spark.createDataFrame([(1000,)], "u long")
    plan = large_star(_edges(spark, star), hubs)._jdf.queryExecution().executedPlan().toString()
    assert "BroadcastHashJoin" in plan


def test_small_edge_lists_are_solved_in_the_driver_with_the_rounds_answer(spark):
    """Up to `driver_max_edges` edges, one collect and scipy's labelling replace the rounds: the same
    (node, root) table, for numeric ids and for string ids (smallest by byte order: "a10" < "a9")."""
    path = [(i, i + 1) for i in range(10, 30)]
    pairs = path + [(5, 7), (7, 6), (6, 5), (40, 40), (50, 50), (50, 51)]
    rounds, rounds_log = components(_edges(spark, pairs), max_rounds=20)
    driver, driver_log = components(_edges(spark, pairs), driver_max_edges=len(pairs), n_edges=len(pairs))
    assert driver_log == {"rounds": 0, "converged": True, "method": "driver", "edges": len(pairs)}
    assert rounds_log["method"] == "rounds"
    want = {**{i: 10 for i in range(10, 31)}, 5: 5, 6: 5, 7: 5, 50: 50, 51: 50}  # 40: only a self-loop
    assert {r["node"]: r["root"] for r in rounds.collect()} == want  # small: 29 nodes
    assert {r["node"]: r["root"] for r in driver.collect()} == want
    assert driver.schema == rounds.schema
    named = spark.createDataFrame([("a9", "b"), ("b", "a10"), ("c", "d")], "u string, v string")
    out, _ = components(named, driver_max_edges=10, n_edges=3)
    assert {r["node"]: r["root"] for r in out.collect()} == {"a9": "a10", "b": "a10", "a10": "a10", "c": "c", "d": "c"}
    empty, _ = components(spark.createDataFrame([], "u string, v string"), driver_max_edges=10, n_edges=0)
    assert empty.count() == 0 and empty.columns == ["node", "root"]


def test_minhash_bands_job_choice_and_curve():
    text = format_bands(0.8, 112)
    b, r, _, _ = choose_bands(0.8, 112)
    assert text.splitlines()[0].startswith(f"bands {b} x rows {r} = {b * r} of 112 hashes")
    assert b * r <= 112 and abs(threshold_of(b, r) - 0.8) < 0.1
    curve = [float(line.split()[1]) for line in text.splitlines()[2:]]
    assert curve == sorted(curve) and curve[-1] > 0.99  # P(candidate) rises with similarity
    for bad, message in [((1.5, 112), "--threshold 1.5"), ((0.8, 0), "--num-perm 0"), ((0.8, 112, -1, 1), "fp-weight")]:
        with pytest.raises(ConfigError, match=message):
            format_bands(*bad)


def test_sorted_shingle_sets_equal_numpy_unique_per_document():
    """The verification's shingle sets (sorted in place, repeats dropped in one pass) are `np.unique` of
    each document's hashes, empty documents and repeats across a document boundary included."""
    import numpy as np

    from tokenmill.dedup.minhash_stage import _sorted_sets

    rng = np.random.default_rng(0)
    for _ in range(300):
        lengths = rng.integers(0, 6, size=rng.integers(0, 8))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        hashes = rng.integers(0, 4, size=offsets[-1]).astype(np.uint64)
        flat, out = _sorted_sets(hashes, offsets)
        assert out.dtype == np.int32 and len(out) == len(offsets)
        for i in range(len(offsets) - 1):
            assert np.array_equal(flat[out[i]:out[i + 1]], np.unique(hashes[offsets[i]:offsets[i + 1]]))

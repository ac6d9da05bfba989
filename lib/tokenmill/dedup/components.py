"""Connected components on a DataFrame of edges: alternating large-star / small-star (Kiveris et al. 2014,
"Connected Components in MapReduce and Beyond"), each round materialised by `keep` (the stage passes a
reliable checkpoint on a cluster, so a lost executor loses nothing: checkpoints.py), a capped number of
rounds, convergence logged. No single-machine union-find, no jar.

A vertex with more than `hub_degree` edges (a cluster of 10^5 copies of one page makes its smallest id
one after the first large-star) meets its neighbourhood minimum in a broadcast join, so its edges are not
shuffled into one task; persisting every other round instead of checkpointing was measured 8x slower
in local mode (the plans re-derive the uncut lineage), so every round is materialised.

After convergence every component is a star around its smallest id: `components(edges)` returns
(node, root) for every node that has an edge.

An edge list of at most `driver_max_edges` pairs (default 1,000,000: two id columns, tens of MB) is
solved in the driver instead (scipy's connected components over the collected edges, one job and one
small table back), the same (node, root) table: each distributed round is several Spark jobs, and a
100k-document dedup spent ~45 of its 114 jobs there (bench/cold.py). Crawl-scale edge lists take the
rounds.
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

log = logging.getLogger("tokenmill.dedup")


def _both_ways(e: DataFrame) -> DataFrame:
    return e.union(e.select(F.col("v").alias("u"), F.col("u").alias("v")))


HUB_DEGREE = 10_000
DRIVER_MAX_EDGES = 1_000_000


def _with_min(left: DataFrame, m: DataFrame, hubs: DataFrame | None) -> DataFrame:
    """``left`` (u, v) joined on u with ``m`` (u, m). With ``hubs`` (the ids of vertices of very high
    degree, at most 2|edges| / hub_degree of them), the hubs' edges meet their `m` in a broadcast join and
    only the other vertices' edges are shuffled."""
    if hubs is None:
        return left.join(m, "u")
    hub_ids = F.broadcast(hubs)
    hub_m = F.broadcast(m.join(hub_ids, "u", "left_semi"))
    return (left.join(hub_m, "u")
            .unionByName(left.join(hub_ids, "u", "left_anti").join(m.join(hub_ids, "u", "left_anti"), "u")))


def large_star(e: DataFrame, hubs: DataFrame | None = None) -> DataFrame:
    """Connect every strictly larger neighbour of u to the smallest node of u's neighbourhood (u included)."""
    both = _both_ways(e)
    m = both.groupBy("u").agg(F.least(F.min("v"), F.first("u")).alias("m"))
    return (_with_min(both, m, hubs).where(F.col("v") > F.col("u"))
            .select(F.col("v").alias("u"), F.col("m").alias("v")).distinct())


def small_star(e: DataFrame, hubs: DataFrame | None = None) -> DataFrame:
    """Connect u and its smaller-or-equal neighbours to the smallest of them."""
    oriented = e.select(F.greatest("u", "v").alias("u"), F.least("u", "v").alias("v")).where(F.col("u") != F.col("v"))
    m = oriented.groupBy("u").agg(F.min("v").alias("m"))
    moved = _with_min(oriented, m, hubs).select(F.col("v").alias("u"), F.col("m").alias("v"))
    return moved.union(m.select("u", F.col("m").alias("v"))).where(F.col("u") != F.col("v")).distinct()


def find_hubs(e: DataFrame, hub_degree: int, keep) -> tuple[DataFrame | None, int]:
    """The vertices of ``e`` with more than ``hub_degree`` edges (materialised) and how many; (None, 0)
    when there are none, so a round without hubs is the plain star pair."""
    hubs = keep(_both_ways(e).groupBy("u").count().where(F.col("count") > hub_degree).select("u"))
    n = hubs.count()
    return (hubs, n) if n else (None, 0)


def _fingerprint(e: DataFrame) -> tuple[int, int]:
    r = e.agg(F.count(F.lit(1)).alias("n"),
              F.sum(F.xxhash64("u", "v").cast("decimal(38,0)")).alias("h")).first()  # one row
    return int(r["n"]), int(r["h"] or 0)


def components(edges: DataFrame, max_rounds: int = 40, keep=None, hub_degree: int = HUB_DEGREE,
               driver_max_edges: int = 0, n_edges: int | None = None) -> tuple[DataFrame, dict]:
    """(node, root) for every node with an edge, root = smallest id of its component; and a round log.
    ``keep(df)`` materialises each round (default: a local checkpoint; the stage passes a reliable one on
    a cluster). Each round first finds the hubs of its input (one aggregation). With ``n_edges`` (the
    count of ``edges``, known to the caller) at most ``driver_max_edges``, solved in the driver."""
    keep = keep or (lambda df: df.localCheckpoint())
    if n_edges is not None and n_edges <= driver_max_edges:
        return on_driver(edges), {"rounds": 0, "converged": True, "method": "driver", "edges": n_edges}
    e = keep(edges.select(F.least("u", "v").alias("u"), F.greatest("u", "v").alias("v")).where(
        F.col("u") != F.col("v")).distinct())
    previous = _fingerprint(e)
    rounds = []
    converged = False
    for i in range(1, max_rounds + 1):
        hubs, n_hubs = find_hubs(e, hub_degree, keep)
        nxt = keep(small_star(large_star(e, hubs), hubs))  # materialised before the old state is dropped
        fp = _fingerprint(nxt)
        rounds.append({"round": i, "edges": fp[0], **({"hubs": n_hubs} if n_hubs else {})})
        log.info("connected components: round %d, %d edges%s", i, fp[0], f", {n_hubs} hubs" if n_hubs else "")
        e = nxt
        if fp == previous:
            converged = True
            break
        previous = fp
    if not converged:
        raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")
    nodes = e.select(F.col("u").alias("node"), F.col("v").alias("root")).union(
        e.select(F.col("v").alias("node"), F.col("v").alias("root")))
    out = nodes.groupBy("node").agg(F.min("root").alias("root"))
    return out, {"rounds": len(rounds), "converged": converged, "method": "rounds", "log": rounds}


def on_driver(edges: DataFrame) -> DataFrame:
    """`components` of a small edge list in the driver: the (u, v) ids collected as Arrow, numbered, labelled
    by scipy's connected components, each label's smallest id its root; returned as a small DataFrame."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    spark = edges.sparkSession
    schema = edges.select(F.col("u").alias("node"), F.col("u").alias("root")).schema
    table = edges.select("u", "v").toArrow()  # small: at most driver_max_edges pairs of ids
    if len(table) == 0:
        return spark.createDataFrame([], schema)
    ends = pa.concat_arrays([table.column("u").combine_chunks(), table.column("v").combine_chunks()])
    loops = pc.equal(table.column("u"), table.column("v")).to_numpy(zero_copy_only=False)
    ids = pc.unique(ends)
    index = pc.index_in(ends, value_set=ids).to_numpy(zero_copy_only=False)
    n, half = len(ids), len(table)
    keep_edge = ~loops
    on_edge = np.zeros(n, dtype=bool)  # a node whose only edges are self-loops has no component
    on_edge[index[:half][keep_edge]] = True
    on_edge[index[half:][keep_edge]] = True
    graph = coo_matrix((np.ones(int(keep_edge.sum()), dtype=np.int8),
                        (index[:half][keep_edge], index[half:][keep_edge])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    order = pc.sort_indices(ids)  # ids ordered as Spark orders them (strings: by bytes)
    rank = np.empty(n, dtype=np.int64)
    rank[order.to_numpy()] = np.arange(n)
    smallest = np.full(int(label.max()) + 1, n, dtype=np.int64)
    np.minimum.at(smallest, label, rank)
    by_rank = pc.take(ids, order)
    nodes = np.flatnonzero(on_edge)
    out = pa.table({"node": pc.take(ids, pa.array(nodes)), "root": pc.take(by_rank, pa.array(smallest[label[nodes]]))})
    return spark.createDataFrame(out, schema)

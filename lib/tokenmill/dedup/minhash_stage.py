"""The `minhash_dedup` stage: near-duplicate removal with MinHash LSH, star edges, optional verification,
connected components in Spark and a deterministic survivor per cluster.

1. Signatures and band keys per live document, in Arrow batches (numpy; see minhash.py).
2. LSH with bands chosen for recall at the threshold unless given: (band, key, id) rows grouped by
   (band, key); a bucket of up to `all_pairs_max` documents gives all its pairs, a larger one star edges
   from its members to its smallest id, so a boilerplate bucket of 10^5 pages costs 10^5 edges.
3. Verification (on by default): an edge whose exact Jaccard (the two documents' shingle sets) is below the
   threshold is dropped, so LSH false positives do not chain unrelated documents together and pairs near the
   threshold are decided by their true similarity, not a +-0.04 estimate.
4. Connected components (components.py), then the survivor of each cluster by the stated policy (source
   priority, preferred columns, length, then the smallest id): the others are removed with `dup_of`.
Everything keys on the stable document ids, so the same input gives the same output for any partitioning.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator, model_validator
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ..checkpoints import fits_broadcast, materialize
from ..errors import ConfigError
from ..io.hadoopfs import HadoopFS, qualify
from ..pipeline.commit import StagedOutput, committed_children, read_manifest
from ..pipeline.stage import StageContext, live, mark_removed, register
from ..schema import ID, SOURCE, TEXT
from .components import DRIVER_MAX_EDGES, HUB_DEGREE, components
from .minhash import (
    MinHashSpec,
    band_keys,
    bands_for,
    bands_warning,
    s_curve,
    shingle_hashes,
    signatures,
)
from .survivors import DUP_CLUSTER, DUP_CLUSTER_SIZE, DUP_OF, SurvivorParams, survivor_order

log = logging.getLogger("tokenmill.dedup")


class MinHashDedupParams(SurvivorParams):
    """MinHash LSH near-duplicate removal (FineWeb's defaults: word 5-grams, 112 hashes = 14 bands x 8 rows;
    docs/quality-filters.md §9)."""

    num_perm: int = Field(default=112, ge=2)
    # Not given: chosen from the threshold and num_perm (minhash.bands_for): with verification, for recall at
    # the threshold (P(candidate) >= 0.95 there, the fewest false candidates); without, the balanced choice.
    bands: int | None = Field(default=None, ge=1)
    rows: int | None = Field(default=None, ge=1)
    ngram: int = Field(default=5, ge=1)
    shingle: Literal["word", "char"] = "word"
    seed: int = 1
    threshold: float = Field(default=0.8, gt=0.0, le=1.0)  # Jaccard of a true duplicate
    # Candidate pairs are kept when their Jaccard reaches the threshold: `exact` compares the two documents'
    # shingle sets (candidates are a few % of documents, so this is cheap and decides pairs near the threshold
    # right), `estimate` the share of equal signature slots (noisy: +-0.04 at 112 hashes), `none` keeps all.
    verify: Literal["exact", "estimate", "none"] = "exact"
    # Buckets up to this size compare all their member pairs; larger ones (boilerplate) only star edges to
    # their centre, so a bucket of 10^5 pages costs 10^5 pairs, not 10^10.
    all_pairs_max: int = Field(default=32, ge=2)
    max_rounds: int = Field(default=40, ge=1)  # connected-components rounds before giving up
    hub_degree: int = Field(default=HUB_DEGREE, ge=1)  # components: vertices with more edges are broadcast
    # components: an edge list up to this size is solved in the driver (0: always the distributed rounds)
    driver_components_max_edges: int = Field(default=DRIVER_MAX_EDGES, ge=0)
    # Incremental dedup: a folder keeping the band table (Parquet, partitioned by band) and signatures of
    # earlier runs. New documents are deduplicated against it and against each other; documents of earlier
    # runs always survive. With update_index the run's new documents are staged in the index folder and
    # published only once the output that reflects them is committed (a failed run leaves the index as it was).
    index: str | None = None
    update_index: bool = True

    def unstamped(self) -> list[str]:
        """An index this stage updates is its own output, not an input: stamping it would rerun every time."""
        return [self.index] if self.index and self.update_index else []
    # Quality estimate for the report: about this many documents sampled by a stable hash of their id,
    # every pair within the sample compared by exact Jaccard of its shingle sets (0: no estimate).
    estimate_sample: int = Field(default=1000, ge=0)

    @field_validator("verify", mode="before")
    @classmethod
    def _verify_bool(cls, v):
        """`verify: true/false` (before `exact`/`estimate`) still reads: true is the exact check."""
        return {True: "exact", False: "none"}.get(v, v) if isinstance(v, bool) else v

    @model_validator(mode="after")
    def _fits(self):
        recommended = bands_for(self.threshold, self.num_perm, self.verify != "none")
        if self.bands is None and self.rows is None:
            self.__dict__.update(bands=recommended[0], rows=recommended[1])  # not an assignment: no re-validation
        elif self.bands is None or self.rows is None:
            raise ValueError("give both `bands` and `rows`, or neither (then they are chosen from the threshold: "
                             f"{recommended[0]} x {recommended[1]} for threshold {self.threshold})")
        else:
            warning = bands_warning(self.bands, self.rows, self.threshold, recommended)
            if warning:
                log.warning("minhash_dedup: %s", warning)
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self

    def spec(self) -> MinHashSpec:
        return MinHashSpec(num_perm=self.num_perm, ngram=self.ngram, shingle=self.shingle, seed=self.seed)


def needs_signatures(params: MinHashDedupParams) -> bool:
    """Whether the signatures themselves are kept past the band keys: for the estimate of a pair's Jaccard
    and for an index. With exact verification and no index every pair is decided by its shingle sets."""
    return params.verify != "exact" or params.index is not None


def signature_frame(df: DataFrame, params: MinHashDedupParams) -> DataFrame:
    """Live documents as (id, source, __len, <policy columns>, [sig array<bigint>,] bands array<bigint>,
    has_shingles): what the graph and the survivor policy need, so the input is read once more only at the end.
    `sig` only where `needs_signatures` (112 longs a document: most of the frame otherwise)."""
    spec = params.spec()
    with_sig = needs_signatures(params)
    perms = spec.permutations()
    keep = [ID, SOURCE, *[c for c in params.policy_columns() if c not in (ID, SOURCE)]]
    missing = [c for c in keep if c not in df.columns]
    if missing:
        raise ValueError(f"minhash_dedup: `prefer` names column(s) {', '.join(missing)}, not in the data")

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            texts = b.column(TEXT)
            h, o = shingle_hashes(texts, spec)
            sig = signatures(h, o, spec, perms)
            keys = band_keys(sig, params.bands, params.rows)
            empty = np.diff(o) == 0  # nothing to compare: never a candidate
            keys[empty] = 0
            n = len(texts)
            sig_col = [_long_lists(sig, spec.num_perm)] if with_sig else []
            yield pa.RecordBatch.from_arrays(
                [*(b.column(c) for c in keep), pc.utf8_length(b.column(TEXT)).cast(pa.int64()), *sig_col,
                 _long_lists(keys, params.bands), pa.array(~empty if n else np.zeros(0, bool))],
                names=[*keep, "__len", *(["sig"] if with_sig else []), "bands", "has_shingles"])

    base = {f.name: f for f in df.schema.fields}
    sig_field = [T.StructField("sig", T.ArrayType(T.LongType()))] if with_sig else []
    schema = T.StructType([base[c] for c in keep] + [T.StructField("__len", T.LongType()), *sig_field,
        T.StructField("bands", T.ArrayType(T.LongType())), T.StructField("has_shingles", T.BooleanType())])
    return df.where(live(df)).select(*keep, TEXT).mapInArrow(run, schema)


def _long_lists(values: np.ndarray, width: int) -> pa.Array:
    """A (rows x width) uint64 matrix as an Arrow list<int64> column (offsets every `width`)."""
    flat = pa.array(values.view(np.int64).ravel())
    return pa.ListArray.from_arrays(pa.array(np.arange(0, len(flat) + 1, width, dtype=np.int32)), flat)


def _how(cc: dict) -> str:
    return "in the driver" if cc.get("method") == "driver" else f"in {cc['rounds']} rounds"


def describe_minhash(manifest: dict, label: str) -> list[str]:
    """The console lines: bands, S-curve, candidate pairs, clusters, the index."""
    rep = manifest.get("stage_reports", {}).get(label, {})
    if "candidate_pairs" not in rep:
        return []
    lines = ["", f"{label}: {rep['bands']} bands x {rep['rows']} rows, threshold {rep['threshold']}, "
             f"S-curve {rep['s_curve']}, verification {rep['verify']}",
             f"candidate pairs {rep['candidate_pairs']:,}, after verification {rep['pairs_after_verification']:,}; "
             f"clusters by size {rep['clusters_by_size']}; components {_how(rep['connected_components'])}"]
    if rep.get("bands_warning"):
        lines.append(f"warning: {rep['bands_warning']}")
    if "index" in rep:
        idx = rep["index"]
        lines.append(f"index {idx['path']}: {idx['added_documents']:,} documents added, {idx['documents']:,} in all")
    return lines


@register("minhash_dedup", "filter", MinHashDedupParams, version="5",
          requires=lambda p: [ID, TEXT, SOURCE] + p.policy_columns(), adds=[DUP_CLUSTER, DUP_CLUSTER_SIZE, DUP_OF],
          audit=[DUP_OF, DUP_CLUSTER], describe=describe_minhash, passes="many")  # 3: exact verification, chosen bands; 4: signatures v3; 5: 32-bit verification sets
def minhash_dedup(ctx: StageContext, df: DataFrame, params: MinHashDedupParams) -> DataFrame:
    """Remove near duplicates; `dup_cluster` (smallest id), `dup_cluster_size` and `dup_of` on every document."""
    spark = df.sparkSession
    index = qualify(params.index) if params.index else None
    if index:
        params = _check_index_spec(spark, index, params)
    indexed = index_runs(spark, index) if index else []
    sigs = materialize(signature_frame(df, params).where("has_shingles"))
    buckets, all_sigs, old_ids = _band_rows(spark, sigs, indexed)
    shared, edges, n_candidates = _candidate_edges(buckets, params.all_pairs_max, bool(indexed))
    sets = None
    if params.verify != "none":
        edges, sets = _verified(edges, df, all_sigs, params, bool(indexed))
    n_verified = edges.count()
    roots, cc_log = components(edges, params.max_rounds, keep=materialize, hub_degree=params.hub_degree,
                               driver_max_edges=params.driver_components_max_edges, n_edges=n_verified)
    decided, csize = _survivors(sigs, roots, old_ids, params)
    if params.verify != "none":
        roots, decided, csize, cc_log["left_cluster"] = _checked_against_survivor(
            roots, decided, csize, edges, sets, all_sigs, sigs, old_ids, params)
    if params.verify == "none":
        decided = materialize(decided)  # read by the output join, the estimate and the size check below
    small = fits_broadcast(decided)  # then the documents, texts and all, are not shuffled for the output join
    if DUP_CLUSTER in df.columns and DUP_CLUSTER_SIZE in df.columns:
        out = _merged_with_earlier_clusters(df, decided, roots, small)
    else:
        out = df.join(F.broadcast(decided) if small else decided, ID, "left")
        out = (out.withColumn(DUP_CLUSTER, F.when(live(df), F.coalesce(F.col("root"), F.col(ID))))
               .withColumn(DUP_CLUSTER_SIZE, F.when(live(df), F.coalesce(F.col("__size"), F.lit(1))))
               .withColumn(DUP_OF, F.when(F.col("__removed"), F.col("__keep"))))
    out = mark_removed(out, F.coalesce(F.col("__removed"), F.lit(False)), ctx.label, "near_duplicate")
    report = _report(shared, csize, params, n_candidates, n_verified, cc_log)
    if params.estimate_sample:
        report["estimate"] = _estimate(df, sigs, decided, params)
    if index and params.update_index:
        report["index"] = _stage_index(ctx, sigs, indexed, index, params)
    ctx.report_all(report)
    return out.drop("root", "__rank", "__first", "__size", "__old", "__removed", "__keep")


def _merged_with_earlier_clusters(df: DataFrame, decided: DataFrame, roots: DataFrame,
                                  small: bool = False) -> DataFrame:
    """The near clusters joined with the clusters of an earlier dedup stage (exact_dedup): an exact cluster
    inside a near cluster is one cluster, whose size counts every member (the kept documents of the near
    cluster weigh their exact cluster's size), and the rows the earlier stage removed take their survivor's
    near cluster and size (keeping their `dup_of`). A survivor not in any near cluster keeps its cluster."""
    prev = {DUP_CLUSTER: "__pc", DUP_CLUSTER_SIZE: "__ps", DUP_OF: "__po"}
    base = df
    for name, alias in prev.items():
        base = base.withColumnRenamed(name, alias) if name in df.columns else base.withColumn(alias, F.lit(None))
    is_live = live(base)
    weights = base.where(is_live).select(F.col(ID).alias("node"), F.coalesce(F.col("__ps"), F.lit(1)).alias("w"))
    weighted = roots.join(weights, "node").groupBy("root").agg(F.sum("w").cast("long").alias("__wsize"))
    clustered = decided.join(weighted, "root", "left")  # one row per clustered document, as `decided`
    out = base.join(F.broadcast(clustered) if small else clustered, ID, "left")
    out = (out.withColumn(DUP_CLUSTER, F.when(is_live, F.coalesce(F.col("root"), F.col("__pc"), F.col(ID))))
           .withColumn(DUP_CLUSTER_SIZE, F.when(is_live, F.coalesce(F.col("__wsize"), F.col("__ps"), F.lit(1))))
           .withColumn(DUP_OF, F.when(F.col("__removed"), F.col("__keep"))))
    # One row per earlier cluster (its live survivor): where the rows it removed now belong.
    moved = (out.where(is_live & F.col("__pc").isNotNull()).groupBy(F.col("__pc").alias("__mc"))
             .agg(F.min(DUP_CLUSTER).alias("__nc"), F.min(DUP_CLUSTER_SIZE).alias("__ns")))
    out = out.join(moved, F.col("__pc") == F.col("__mc"), "left")
    out = (out.withColumn(DUP_CLUSTER, F.when(is_live, F.col(DUP_CLUSTER)).otherwise(F.coalesce("__nc", "__pc")))
           .withColumn(DUP_CLUSTER_SIZE, F.when(is_live, F.col(DUP_CLUSTER_SIZE))
                       .otherwise(F.coalesce("__ns", "__ps")))
           .withColumn(DUP_OF, F.when(is_live, F.col(DUP_OF)).otherwise(F.col("__po"))))
    return out.drop("__pc", "__ps", "__po", "__mc", "__nc", "__ns", "__wsize")


def _band_rows(spark, sigs: DataFrame, indexed: list[str]) -> tuple[DataFrame, DataFrame, DataFrame | None]:
    """(band, key, id, old) rows of this run's documents and of the index's earlier runs, the signatures of
    both, and the ids of earlier runs (None without an index). A document seen before (same id) is itself."""
    new_b = sigs.select(ID, F.posexplode("bands").alias("band", "key")).withColumn("old", F.lit(False))
    if not indexed:
        return new_b, (sigs.select(ID, "sig") if "sig" in sigs.columns else None), None
    old_b = (read_index(spark, indexed, "bands").select(ID, "band", "key")
             .join(sigs.select(ID), ID, "left_anti").withColumn("old", F.lit(True)))
    old_sigs = read_index(spark, indexed, "signatures").select(ID, "sig").join(sigs.select(ID), ID, "left_anti")
    return new_b.unionByName(old_b), sigs.select(ID, "sig").unionByName(old_sigs), old_b.select(ID).distinct()


def _candidate_edges(buckets: DataFrame, all_pairs_max: int, indexed: bool = False
                     ) -> tuple[DataFrame, DataFrame, int]:
    """The shared buckets (materialised) and the candidate edges (u, v) with at least one new document.

    A bucket of up to `all_pairs_max` documents gives all its pairs, so two near duplicates that share a
    bucket are compared directly, not only through its centre (with verification, a chain through the centre
    can break where the pair itself holds). A larger bucket (boilerplate: 10^5 pages) gives star edges from
    each new member to its centre: a document of an earlier run if the bucket has one (it is already
    published), else the smallest id. The aggregation combines map-side, so a huge bucket is not one task's
    work; the table of shared buckets is materialised (it also feeds the report), so adaptive execution sees
    its real size: broadcast when small, and its skew-join split of oversized buckets when not."""
    if indexed:
        shared = buckets.groupBy("band", "key").agg(
            F.min(F.struct((~F.col("old")).alias("o"), F.col(ID).alias("i"))).getField("i").alias("center"),
            F.count(F.lit(1)).alias("size"), F.sum(F.when(~F.col("old"), 1).otherwise(0)).alias("n_new"))
    else:  # every member is new: plain aggregates, no struct minimum
        shared = buckets.groupBy("band", "key").agg(F.min(ID).alias("center"), F.count(F.lit(1)).alias("size"))
        shared = shared.withColumn("n_new", F.col("size"))
    shared = materialize(shared.where((F.col("size") > 1) & (F.col("n_new") > 0)))
    members = buckets.join(shared, ["band", "key"])
    small = members.where(F.col("size") <= all_pairs_max).select("band", "key", ID, "old")
    a, b = small.alias("a"), small.alias("b")
    pairs = (a.join(b, (F.col("a.band") == F.col("b.band")) & (F.col("a.key") == F.col("b.key"))
                    & (F.col(f"a.{ID}") < F.col(f"b.{ID}")) & ~(F.col("a.old") & F.col("b.old")))
             .select(F.col(f"a.{ID}").alias("u"), F.col(f"b.{ID}").alias("v")))
    stars = (members.where((F.col("size") > all_pairs_max) & ~F.col("old") & (F.col(ID) != F.col("center")))
             .select(F.col(ID).alias("u"), F.col("center").alias("v")))
    edges = materialize(pairs.unionByName(stars).distinct())
    return shared, edges, edges.count()


def _shingle_sets(df: DataFrame, params: MinHashDedupParams) -> DataFrame:
    """(id, sh): each document's distinct shingle hashes folded to 32 bits, sorted, in Arrow batches.

    32 bits halve what verification materialises and joins twice (the sets are its largest rows) and
    `array_intersect` compares ints; two distinct shingles of documents of n shingles each collide with
    probability 2^-32, so a pair's Jaccard moves by about n/2^32 (2e-7 at n = 1,000): nothing near a threshold."""
    spec = params.spec()

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            h, o = shingle_hashes(batch.column(TEXT), spec)
            flat, offsets = _sorted_sets((h ^ (h >> np.uint64(32))).astype(np.uint32), o)
            yield pa.RecordBatch.from_arrays(
                [batch.column(ID), pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat.view(np.int32)))],
                names=[ID, "sh"])

    return df.select(ID, TEXT).mapInArrow(run, T.StructType([
        T.StructField(ID, T.StringType()), T.StructField("sh", T.ArrayType(T.IntegerType()))]))


def _sorted_sets(hashes: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each document's distinct hashes, sorted: (flat, int32 offsets). Sorted in place per document and
    repeats dropped in one vectorised pass (six times faster than `np.unique` per document)."""
    h = hashes.copy()
    for i in range(len(offsets) - 1):
        h[offsets[i]:offsets[i + 1]].sort()
    first = np.ones(len(h), dtype=bool)
    first[1:] = h[1:] != h[:-1]
    first[offsets[:-1][np.diff(offsets) > 0]] = True  # a document's first hash, whatever ends the one before
    n = len(offsets) - 1
    counts = np.bincount(np.repeat(np.arange(n), np.diff(offsets))[first], minlength=n)
    return h[first], np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)


def _verified(edges: DataFrame, df: DataFrame, all_sigs: DataFrame, params: MinHashDedupParams,
              indexed: bool) -> tuple[DataFrame, DataFrame | None]:
    """The candidate edges whose Jaccard reaches the threshold: exact (the two shingle sets, read again only
    for the documents on an edge) or estimated (share of equal signature slots). A pair with a document of an
    earlier run (the index keeps signatures, not texts) is decided by the estimate. (edges, shingle sets)."""
    est = F.aggregate(F.zip_with("sa", "sb", lambda x, y: F.when(x == y, 1).otherwise(0)), F.lit(0),
                      lambda acc, x: acc + x) / F.lit(params.num_perm)
    if all_sigs is not None:
        a = all_sigs.select(F.col(ID).alias("u"), F.col("sig").alias("sa"))
        b = all_sigs.select(F.col(ID).alias("v"), F.col("sig").alias("sb"))
    if params.verify == "estimate":
        return materialize(edges.join(a, "u").join(b, "v").where(est >= F.lit(params.threshold)).select("u", "v")), None
    nodes = edges.select(F.col("u").alias(ID)).union(edges.select(F.col("v").alias(ID))).distinct()
    sets = materialize(_shingle_sets(df.where(live(df)).join(nodes, ID, "left_semi"), params))
    inter = F.size(F.array_intersect("sa", "sb"))
    exact = inter / (F.size("sa") + F.size("sb") - inter)
    both = (edges.join(sets.select(F.col(ID).alias("u"), F.col("sh").alias("sa")), "u")
            .join(sets.select(F.col(ID).alias("v"), F.col("sh").alias("sb")), "v"))
    kept = both.where(exact >= F.lit(params.threshold)).select("u", "v")
    if indexed:
        rest = edges.join(both.select("u", "v"), ["u", "v"], "left_anti")
        kept = kept.unionByName(rest.join(a, "u").join(b, "v").where(est >= F.lit(params.threshold)).select("u", "v"))
    return materialize(kept), sets


def _pair_similar(pairs: DataFrame, sets: DataFrame | None, all_sigs: DataFrame, params: MinHashDedupParams,
                  indexed: bool) -> DataFrame:
    """(u, v, similar) for pairs of documents: exact Jaccard when both shingle sets are at hand, else the
    signature estimate (a document of an earlier run: without an index every clustered document has its set)."""
    est = F.aggregate(F.zip_with("sa", "sb", lambda x, y: F.when(x == y, 1).otherwise(0)), F.lit(0),
                      lambda acc, x: acc + x) / F.lit(params.num_perm)
    exact_only = params.verify == "exact" and sets is not None and not indexed
    out = pairs if exact_only else (
        pairs.join(all_sigs.select(F.col(ID).alias("u"), F.col("sig").alias("sa")), "u", "left")
        .join(all_sigs.select(F.col(ID).alias("v"), F.col("sig").alias("sb")), "v", "left"))
    if exact_only:
        out = (out.join(sets.select(F.col(ID).alias("u"), F.col("sh").alias("xa")), "u")
               .join(sets.select(F.col(ID).alias("v"), F.col("sh").alias("xb")), "v"))
        inter = F.size(F.array_intersect("xa", "xb"))
        j = inter / (F.size("xa") + F.size("xb") - inter)
    elif params.verify == "exact" and sets is not None:
        out = (out.join(sets.select(F.col(ID).alias("u"), F.col("sh").alias("xa")), "u", "left")
               .join(sets.select(F.col(ID).alias("v"), F.col("sh").alias("xb")), "v", "left"))
        inter = F.size(F.array_intersect("xa", "xb"))
        j = F.when(F.col("xa").isNotNull() & F.col("xb").isNotNull(),
                   inter / (F.size("xa") + F.size("xb") - inter)).otherwise(est)
    else:
        j = est
    return out.select("u", "v", (j >= F.lit(params.threshold)).alias("similar"))


def _checked_against_survivor(roots: DataFrame, decided: DataFrame, csize: DataFrame, edges: DataFrame,
                              sets: DataFrame | None, all_sigs: DataFrame, sigs: DataFrame,
                              old_ids: DataFrame | None, params: MinHashDedupParams):
    """Every removed document must itself be a near duplicate of the document it is removed for. Connected
    components chain A ~ B ~ C into one cluster although A and C may differ; a member below the threshold
    with its cluster's survivor leaves the cluster and stays (nothing kept is like it; the survivor is
    unchanged, so one pass suffices). (roots, decided, sizes, members that left)."""
    decided = materialize(decided)  # read here, by the estimate and by the output
    removed = decided.where("__removed").select(F.col(ID).alias("u"), F.col("__keep").alias("v"))
    # A removed document joined to its survivor by a verified edge passed this very test already (every
    # cluster of two, most of the others): only the other pairs are compared.
    known = edges.select(F.least("u", "v").alias("a"), F.greatest("u", "v").alias("b"))
    removed = removed.join(known, (F.least("u", "v") == F.col("a")) & (F.greatest("u", "v") == F.col("b")),
                           "left_anti")
    far = materialize(_pair_similar(removed, sets, all_sigs, params, old_ids is not None).where(~F.col("similar"))
                      .select(F.col("u").alias("node")))
    n_far = far.count()
    if n_far == 0:
        return roots, decided, csize, 0
    kept = roots.join(far, "node", "left_anti")
    sizes = kept.groupBy("root").agg(F.count(F.lit(1)).alias("n"), F.min("node").alias("new_root"))
    roots = materialize(kept.join(sizes.where("n > 1"), "root").select("node", F.col("new_root").alias("root")))
    decided, csize = _survivors(sigs, roots, old_ids, params)
    return roots, materialize(decided), csize, n_far


def _survivors(sigs: DataFrame, roots: DataFrame, old_ids: DataFrame | None, params: MinHashDedupParams
               ) -> tuple[DataFrame, DataFrame]:
    """Per clustered document: its root, rank by the survivor policy, cluster size, whether it is removed
    and which document it duplicates; and the cluster sizes. A cluster holding a document of an earlier run
    keeps that one: every new member is a duplicate."""
    members = sigs.join(roots.withColumnRenamed("node", ID), ID, "inner")
    w = Window.partitionBy("root").orderBy(*survivor_order(params, sigs.columns, F.col("__len")))
    csize = roots.groupBy("root").agg(F.count(F.lit(1)).alias("__size"))
    decided = (members.select(ID, "root", F.row_number().over(w).alias("__rank"), F.first(ID).over(w).alias("__first"))
               .join(csize, "root"))
    if old_ids is not None:
        old_keep = (roots.join(old_ids.withColumnRenamed(ID, "node"), "node")
                    .groupBy("root").agg(F.min("node").alias("__old")))
        decided = decided.join(old_keep, "root", "left")
    else:
        decided = decided.withColumn("__old", F.lit(None).cast("string"))
    decided = (decided.withColumn("__removed", F.col("__old").isNotNull() | (F.col("__rank") > 1))
               .withColumn("__keep", F.coalesce(F.col("__old"), F.col("__first"))))
    return decided, csize


def _estimate(df: DataFrame, sigs: DataFrame, decided: DataFrame, params: MinHashDedupParams) -> dict:
    """Precision and recall of the outcome on a stable random sample, by exact Jaccard of shingle sets:
    precision = sampled removed documents similar to the document they are removed for (`dup_of`); recall =
    similar pairs within the sample of which at least one document was removed (not both left)."""
    live_df = df.where(live(df))
    n = sigs.count()  # the checkpointed signature frame: no second pass over the input for the rate
    if n == 0:
        return {"sample_docs": 0}
    rate = min(1.0, params.estimate_sample / n)
    bucket = 1_000_000
    pick = (F.abs(F.xxhash64(F.lit("estimate"), F.col(ID))) % bucket) < int(rate * bucket)
    # The sample and its survivors from the checkpointed frames, then their texts in one scan of the input.
    rows = (sigs.where(pick).select(ID).join(decided.select(ID, "__removed", "__keep"), ID, "left")
            .collect())  # small: about estimate_sample rows, the sample itself
    keep_ids = sorted({r["__keep"] for r in rows if r["__removed"]})
    wanted = sorted({r[ID] for r in rows} | set(keep_ids))
    picked = live_df.where(F.col(ID).isin(wanted)).select(ID, TEXT)
    texts = {r[ID]: r[TEXT] for r in picked.collect()} if wanted else {}  # small: the sample and its survivors
    rows = [{**r.asDict(), TEXT: texts.get(r[ID])} for r in rows]
    keeps = {k: texts[k] for k in keep_ids if k in texts}  # a survivor of an earlier run has no text here
    spec = params.spec()

    def sets_of(texts: list[str]) -> list[set[int]]:
        h, o = shingle_hashes(texts, spec)
        return [set(h[o[i]:o[i + 1]].tolist()) for i in range(len(texts))]

    def jaccard(a: set[int], b: set[int]) -> float:
        if len(a) > len(b):
            a, b = b, a
        if len(a) < params.threshold * len(b):  # Jaccard <= |small| / |big|: cannot reach it
            return 0.0
        inter = len(a & b)
        return inter / (len(a) + len(b) - inter)

    sets = sets_of([r[TEXT] or "" for r in rows])
    keep_sets = dict(zip(keeps, sets_of(list(keeps.values())), strict=True))
    removed = [i for i, r in enumerate(rows) if r["__removed"] and r["__keep"] in keep_sets]
    right = sum(jaccard(sets[i], keep_sets[rows[i]["__keep"]]) >= params.threshold for i in removed)
    similar = both_kept = 0
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            if sets[i] and sets[j] and jaccard(sets[i], sets[j]) >= params.threshold:
                similar += 1
                both_kept += not rows[i]["__removed"] and not rows[j]["__removed"]
    return {"sample_docs": len(rows), "removed_in_sample": len(removed), "pairs_similar": similar,
            "precision": round(right / len(removed), 4) if removed else None,
            "recall": round(1 - both_kept / similar, 4) if similar else None}


INDEX_SPEC = "index.json"
_SPEC_FIELDS = ("num_perm", "bands", "rows", "ngram", "shingle", "seed")
SIGNATURES_VERSION = 3  # 2: word normalisation; 3: byte-level word hashes, multiply-add permutations


def _index_spec(params: MinHashDedupParams) -> dict:
    """What makes band keys comparable across runs: an index is only usable with the same values."""
    dumped = params.model_dump()
    return {"signatures_version": SIGNATURES_VERSION, **{k: dumped[k] for k in _SPEC_FIELDS}}


def _check_index_spec(spark, index: str, params: MinHashDedupParams) -> MinHashDedupParams:
    """An index built with other MinHash settings would silently match nothing: refuse it, naming the keys.
    Bands and rows that the config leaves to the stage follow the index (the index's band keys are fixed)."""
    fs = HadoopFS(spark, index)
    if not fs.exists(f"{index}/{INDEX_SPEC}"):
        return params
    stored = json.loads(fs.read_text(f"{index}/{INDEX_SPEC}"))
    if not {"bands", "rows"} & params.model_fields_set and stored.get("bands") and stored.get("rows"):
        if (stored["bands"], stored["rows"]) != (params.bands, params.rows):
            log.info("minhash_dedup: bands x rows %d x %d from the index %s", stored["bands"], stored["rows"], index)
            params = params.model_copy(update={"bands": stored["bands"], "rows": stored["rows"]})
    wanted = _index_spec(params)
    diff = {k: (stored.get(k), v) for k, v in wanted.items() if stored.get(k) != v}
    if diff:
        raise ConfigError(f"minhash_dedup: index {index} was built with other MinHash settings; "
                          + ", ".join(f"{k}: index {a!r}, config {b!r}" for k, (a, b) in diff.items())
                          + " (use a new index folder, or the index's settings)")
    return params


def index_runs(spark, index: str) -> list[str]:
    """The committed runs of an index (`<index>/runs/<run>`), plus an index written before runs existed
    (`<index>/bands` and `<index>/signatures` at its top)."""
    runs = [r for r in committed_children(spark, f"{index}/runs")  # a run that added nothing has no band files
            if (read_manifest(spark, r) or {}).get("documents", 1) > 0]
    return ([index] if HadoopFS(spark, index).exists(f"{index}/bands") else []) + runs


def read_index(spark, runs: list[str], table: str) -> DataFrame:
    """One table (`bands`, partitioned by band, or `signatures`) of every committed run."""
    frames = [spark.read.parquet(f"{run}/{table}") for run in runs]
    out = frames[0]
    for other in frames[1:]:
        out = out.unionByName(other)
    return out


def _stage_index(ctx: StageContext, sigs: DataFrame, indexed: list[str], index: str,
                 params: MinHashDedupParams) -> dict:
    """Write this run's documents (not already indexed) as band rows (partitioned by band) and signatures
    into a staged run folder of the index, committed (pipeline/commit.py) once the output is committed: the
    next run deduplicates against them without reading their text again, and never against a failed run."""
    spark = sigs.sparkSession
    fresh = sigs
    before = 0
    if indexed:
        known = read_index(spark, indexed, "signatures").select(ID)
        before = known.count()
        fresh = sigs.join(known, ID, "left_anti")
    fresh = materialize(fresh)
    if fresh.isEmpty():  # nothing new: no run to add (an empty band table could not be read back)
        return {"path": index, "added_documents": 0, "documents": before}
    # a fresh, unique folder: on an object store it is written in place, committed by its own manifest
    run = StagedOutput(spark, f"{index}/runs/{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}",
                       unique=True)
    (fresh.select(ID, F.posexplode("bands").alias("band", "key")).write.mode("overwrite")
     .partitionBy("band").parquet(f"{run.path}/bands"))
    fresh.select(ID, "sig").write.mode("overwrite").parquet(f"{run.path}/signatures")
    added = fresh.count()
    spec = _index_spec(params)
    fs = HadoopFS(spark, index)

    def publish() -> None:
        if not fs.exists(f"{index}/{INDEX_SPEC}"):
            fs.write_text(f"{index}/{INDEX_SPEC}", json.dumps(spec, indent=2) + "\n")
        run.commit({"kind": "minhash_index_run", "documents": added, "spec": spec,
                    "finished_at": datetime.now(UTC).isoformat(timespec="seconds")})
        log.info("minhash index %s: %d documents added", index, added)

    ctx.after_commit.append(publish)
    ctx.on_abort.append(lambda: run.__exit__(None, None, None))
    return {"path": index, "added_documents": added, "documents": before + added}


def _report(shared: DataFrame, csize: DataFrame, params: MinHashDedupParams, n_candidates: int,
            n_verified: int, cc_log: dict) -> dict:
    """Bucket and cluster sizes (small aggregates), candidate pairs before/after verification, the S-curve.
    Largest buckets: of those shared by two documents or more (the materialised table)."""
    largest = [{"band": r["band"], "size": r["size"]} for r in
               shared.orderBy(F.desc("size"), "band", "key").limit(10).collect()]  # small: 10 rows
    clusters = csize.select("__size")
    bucket = (F.when(F.col("__size") <= 2, "2").when(F.col("__size") <= 5, "3-5").when(F.col("__size") <= 20, "6-20")
              .when(F.col("__size") <= 100, "21-100").otherwise(">100"))
    size_rows = clusters.groupBy(bucket.alias("b")).agg(F.count(F.lit(1)).alias("n")).collect()  # small: 5 rows
    by_size = {r["b"]: r["n"] for r in size_rows}
    return {"num_perm": params.num_perm, "bands": params.bands, "rows": params.rows, "ngram": params.ngram,
            "shingle": params.shingle, "threshold": params.threshold, "s_curve": s_curve(params.bands, params.rows),
            "candidate_pairs": n_candidates, "pairs_after_verification": n_verified, "verify": params.verify,
            "largest_buckets": largest, "clusters_by_size": by_size, "connected_components": cc_log,
            "bands_warning": bands_warning(params.bands, params.rows, params.threshold,
                                           bands_for(params.threshold, params.num_perm, params.verify != "none"))}

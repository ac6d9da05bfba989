"""A materialised table joined to the documents is broadcast when its rows fit under Spark's threshold, so
the documents (texts and all) are not shuffled for the join; a bigger one is not."""

from __future__ import annotations

from pyspark.sql import functions as F

from tokenmill.checkpoints import fits_broadcast, materialize


def _plan(df) -> str:
    return df._jdf.queryExecution().executedPlan().toString()


def test_fits_broadcast_follows_the_threshold(spark):
    small = materialize(spark.range(1000).select(F.col("id").cast("string").alias("id"), F.lit(True).alias("r")))
    old = spark.conf.get("spark.sql.autoBroadcastJoinThreshold")
    try:
        assert fits_broadcast(small)  # 1,000 rows x (8 + 20 + 1) bytes
        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "20kb")
        assert not fits_broadcast(small)  # 29,000 bytes > 20 KB
        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
        assert not fits_broadcast(small)  # broadcasting switched off
    finally:
        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", old)


def test_near_dedup_output_join_does_not_shuffle_the_documents(spark, tmp_path):
    from tests.dedup.test_dedup import _ctx, _near_dup_frame

    from tokenmill.dedup.minhash_stage import MinHashDedupParams, minhash_dedup

    out = minhash_dedup(_ctx(spark, tmp_path), _near_dup_frame(spark),
                        MinHashDedupParams(stage="minhash_dedup", threshold=0.7))
    plan = _plan(out)
    assert "BroadcastHashJoin" in plan and "SortMergeJoin" not in plan
    assert out.where("removed_by is not null").count() > 0

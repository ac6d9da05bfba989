"""The warm-up job imports the plan's modules in the Python workers Spark then reuses, once per application."""

from __future__ import annotations

from tokenmill import warmup


def test_workers_are_warmed_once_with_the_modules_imported(spark, monkeypatch):
    monkeypatch.setattr(warmup, "_WARMED", set())
    thread = warmup.warm_workers(spark, ["colorsys", "tokenmill.text.fast_ngrams"])
    assert thread is not None
    thread.join(120)
    assert warmup.warm_workers(spark, ["colorsys"]) is None  # once per application

    def imported(batches):
        import sys

        import pyarrow as pa

        for _ in batches:
            yield pa.RecordBatch.from_pylist([{"has": "colorsys" in sys.modules}])

    cores = spark.sparkContext.defaultParallelism
    rows = spark.range(cores, numPartitions=cores).mapInArrow(imported, "has boolean").collect()  # small
    assert any(r["has"] for r in rows)  # a worker the warm-up started, reused (others may predate it)

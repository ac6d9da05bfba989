"""The mixture builder: realised tokens against the plan, passes, shards, determinism, upsampling, failures."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from pyspark.sql import functions as F

from conftest import ROOT
from tokenmill.config import validate
from tokenmill.mixing.build import MixtureError, build_mixture
from tokenmill.mixing.config import MixtureConfig


def sample_mixture(out: Path, output: Path, **plan) -> MixtureConfig:
    data = yaml.safe_load((ROOT / "conf" / "pipelines" / "mixture_sample.yaml").read_text())
    for s in data["sources"]:
        s["path"] = str(out / "data")
        s["manifest"] = str(out / "manifest.json")
    data["output"] = str(output)
    data["plan"].update(plan)
    return validate(MixtureConfig, data, "sample-mixture")


def synthetic(path: Path, n: int, source: str = "synth", seed: int = 0, buckets: bool = False) -> str:
    """n documents with known token counts (50..449, a fixed pattern) written as Parquet."""
    ids = [f"{source}-{i:06d}" for i in range(n)]
    tokens = [50 + (i * 7919 + seed) % 400 for i in range(n)]
    cols = {"id": ids, "text": [f"doc {i}" for i in range(n)], "source": [source] * n,
            "n_tokens": pa.array(tokens, pa.int64())}
    if buckets:
        cols["quality_bucket"] = [i % 2 for i in range(n)]
    path.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), str(path / "part-0.parquet"))
    return str(path)


def synth_config(path: str, output: Path, total: float, **extra) -> MixtureConfig:
    build = extra.pop("build", {})
    plan = {"target": {"total_tokens": total}, "mode": "explicit_tokens", "seed": 11, **extra}
    return validate(MixtureConfig, {"name": "synth", "output": str(output), "plan": plan, "build": build,
                                    "sources": [{"name": "synth", "path": path}]}, "synth")


def read_rows(path: str) -> list[dict]:
    return pq.read_table(path).to_pylist()


def test_sample_mixture_realises_the_plan(spark, sample_run, tmp_path):
    out, run = sample_run
    result = build_mixture(spark, sample_mixture(out, tmp_path / "mix"))
    m = result.manifest
    unique = {k: v["tokens"] for k, v in run.manifest["output"]["tokens_by_source"].items()}
    assert m["planned_tokens"] == pytest.approx(300_000)  # 15k params x 20 tokens/param
    df = spark.read.parquet(f"{result.output}/data")
    assert sorted(df.columns) == sorted(["text", "source", "id", "pass_idx", "n_tokens", "n_tokens_estimated"])
    for name, r in m["sources"].items():
        assert r["ok"] and r["method"] == "exact_prefix"  # sources this small need exact selection
        assert abs(r["realised_tokens"] - r["planned_tokens"]) <= r["max_doc_tokens"] / 2 + 1
        epochs = r["planned_tokens"] / unique[name]
        k = math.floor(epochs)
        copies = {row["id"]: row["n"] for row in df.where(F.col("source") == name).groupBy("id")
                  .agg(F.count("*").alias("n")).collect()}
        assert len(copies) == r["docs"] == run.manifest["output"]["rows_by_source"][name]  # every doc k >= 1 times
        assert set(copies.values()) <= {k, k + 1}
        extra_tokens = sum(row["n_tokens"] for row in df.where((F.col("source") == name) & (F.col("pass_idx") == k))
                           .collect())
        assert extra_tokens == pytest.approx((epochs - k) * unique[name], abs=r["max_doc_tokens"] / 2 + 1)
    # pass_idx runs 0..copies-1 for every document
    gaps = df.groupBy("source", "id").agg(F.count("*").alias("n"), F.max("pass_idx").alias("mx"))
    assert gaps.where(F.col("mx") != F.col("n") - 1).count() == 0
    assert m["n_shards"] == 6 and len(m["shards"]) == 6
    assert sum(s["tokens"] for s in m["shards"]) == m["realised_tokens"]
    assert all(30_000 < s["tokens"] < 70_000 for s in m["shards"])  # about 50k tokens each
    assert (Path(result.output) / "plan.json").exists() and (Path(result.output) / "_SUCCESS").exists()


def test_same_seed_same_shards_other_seed_other_order(spark, sample_run, tmp_path):
    out, _ = sample_run
    a = build_mixture(spark, sample_mixture(out, tmp_path / "a"))
    b = build_mixture(spark, sample_mixture(out, tmp_path / "b"))
    files = sorted(p.name for p in Path(a.output, "data").glob("*.parquet"))
    assert files == sorted(p.name for p in Path(b.output, "data").glob("*.parquet"))
    assert files[0] == "shard-00000-of-00006.parquet"
    for name in files:
        assert read_rows(f"{a.output}/data/{name}") == read_rows(f"{b.output}/data/{name}")
    c = build_mixture(spark, sample_mixture(out, tmp_path / "c", seed=99))
    first = [(r["id"], r["pass_idx"]) for r in read_rows(f"{a.output}/data/{files[0]}")]
    assert first != [(r["id"], r["pass_idx"]) for r in read_rows(f"{c.output}/data/{files[0]}")]
    again = build_mixture(spark, sample_mixture(out, tmp_path / "a"))
    assert again.skipped  # same config and inputs


def test_large_source_uses_bernoulli_selection_within_tolerance(spark, tmp_path):
    path = synthetic(tmp_path / "synth", 30_000)
    unique = sum(50 + (i * 7919) % 400 for i in range(30_000))
    result = build_mixture(spark, synth_config(path, tmp_path / "mix", 2.5 * unique,
                                               build={"shard_tokens": 4e6}))
    r = result.manifest["sources"]["synth"]
    assert r["method"] == "bernoulli"
    assert abs(r["deviation"]) <= 0.005
    df = spark.read.parquet(f"{result.output}/data")
    third = df.where(F.col("pass_idx") == 2).count()
    assert abs(third - 15_000) < 4 * math.sqrt(30_000 * 0.25)  # about half the documents get a third pass
    assert df.where(F.col("pass_idx") < 2).count() == 60_000
    assert result.manifest["n_shards"] == math.ceil(2.5 * unique / 4e6)


def test_deviation_beyond_tolerance_fails_and_writes_nothing(spark, tmp_path):
    path = synthetic(tmp_path / "small", 100)
    unique = sum(50 + (i * 7919) % 400 for i in range(100))
    cfg = synth_config(path, tmp_path / "mix", 2.5 * unique, tolerance=0.001, build={"sigmas": 1e-9})
    with pytest.raises(MixtureError, match="synth: planned"):
        build_mixture(spark, cfg)
    assert not (tmp_path / "mix").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".mix")]  # no temporary folder left
    exact = build_mixture(spark, synth_config(path, tmp_path / "mix", 2.5 * unique, tolerance=0.001,
                                              exact_tokens=True))
    assert exact.manifest["sources"]["synth"]["method"] == "exact_prefix"
    assert abs(exact.manifest["sources"]["synth"]["deviation_tokens"]) <= 449 / 2 + 1


def test_upsampling_by_quality_bucket(spark, tmp_path):
    path = synthetic(tmp_path / "q", 2_000, buckets=True)
    unique = sum(50 + (i * 7919) % 400 for i in range(2_000))
    cfg = synth_config(path, tmp_path / "mix", 1.0 * unique, exact_tokens=True,
                       build={"upsample": {"column": "quality_bucket", "weights": {"1": 3.0, "0": 1.0}},
                              "columns": ["quality_bucket"]})
    result = build_mixture(spark, cfg)
    df = spark.read.parquet(f"{result.output}/data")
    tokens = {r["quality_bucket"]: r["t"] for r in df.groupBy("quality_bucket")
              .agg(F.sum("n_tokens").alias("t")).collect()}
    unique_by = {b: sum(50 + (i * 7919) % 400 for i in range(2_000) if i % 2 == b) for b in (0, 1)}
    # copies ∝ weight: bucket 1 is repeated three times as often as bucket 0
    assert (tokens[1] / unique_by[1]) / (tokens[0] / unique_by[0]) == pytest.approx(3.0, rel=0.02)
    assert abs(result.manifest["sources"]["synth"]["deviation_tokens"]) <= 449 / 2 + 1


def test_epoch_ordered_puts_later_passes_in_later_shards(spark, tmp_path):
    path = synthetic(tmp_path / "e", 3_000)
    unique = sum(50 + (i * 7919) % 400 for i in range(3_000))
    result = build_mixture(spark, synth_config(path, tmp_path / "mix", 3 * unique,
                                               build={"order": "epoch_ordered", "shard_tokens": unique / 2}))
    files = sorted(Path(result.output, "data").glob("*.parquet"))
    passes = [sorted({r["pass_idx"] for r in read_rows(str(f))}) for f in files]
    for before, after in zip(passes, passes[1:], strict=False):
        assert before[-1] <= after[0]
    assert passes[0][0] == 0 and passes[-1][-1] == 2


def test_shards_load_with_datasets_streaming(spark, sample_run, tmp_path):
    from datasets import load_dataset

    out, _ = sample_run
    result = build_mixture(spark, sample_mixture(out, tmp_path / "mix"))
    stream = load_dataset("parquet", data_files=f"{result.output}/data/*.parquet", split="train", streaming=True)
    rows = list(stream)
    assert len(rows) == result.manifest["rows"]
    assert set(rows[0]) >= {"text", "source", "id", "pass_idx", "n_tokens"}


def test_source_without_token_counts_is_a_clear_error(spark, tmp_path):
    from tokenmill.errors import ConfigError

    path = tmp_path / "raw"
    path.mkdir()
    pq.write_table(pa.table({"id": ["a"], "text": ["hello"]}), str(path / "x.parquet"))
    with pytest.raises(ConfigError, match=r"synth.*no `n_tokens` column.*bytes_per_token"):
        build_mixture(spark, synth_config(str(path), tmp_path / "mix", 10))
    ok = validate(MixtureConfig, {"name": "s", "output": str(tmp_path / "m2"),
                                  "plan": {"target": {"total_tokens": 1}, "mode": "explicit_tokens"},
                                  "sources": [{"name": "synth", "path": str(path), "bytes_per_token": 2.5}]}, "x")
    built = build_mixture(spark, ok)
    assert built.manifest["sources"]["synth"]["n_tokens_estimated"] is True

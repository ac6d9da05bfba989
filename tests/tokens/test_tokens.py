"""The `tokens` stage and the count_tokens job, with tokenizers trained here (nothing is downloaded)."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
from pyspark.sql import functions as F

from conftest import ROOT, own_tokenizer
from tokenmill.pipeline.stage import StageContext
from tokenmill.schema import REMOVED_BY
from tokenmill.tokens.stage import TokensParams, tokens


def _ctx(spark, tmp_path, names):
    return StageContext(spark, [SimpleNamespace(name=n) for n in names], "test.yaml",
                        str(tmp_path / "work"))


def test_sample_run_counts_every_document_with_the_tokenizer(sample_run, sample_dir, spark):
    from tokenizers import Tokenizer

    out, result = sample_run
    tok = Tokenizer.from_file(str(sample_dir / "tokenizer" / "tokenizer.json"))
    rows = spark.read.parquet(str(out / "data")).select("source", "text", "n_tokens", "n_bytes",
                                                        "n_tokens_estimated").collect()
    assert len(rows) == 320
    totals: dict[str, list[int]] = {}
    for r in rows:
        assert r["n_tokens"] == len(tok.encode(r["text"], add_special_tokens=False).ids)
        assert r["n_bytes"] == len(r["text"].encode("utf-8"))
        assert r["n_tokens_estimated"] is False
        t = totals.setdefault(r["source"], [0, 0, 0])
        t[0] += 1
        t[1] += r["n_bytes"]
        t[2] += r["n_tokens"]
    by_source = result.manifest["output"]["tokens_by_source"]
    assert {k: [v["docs"], v["bytes"], v["tokens"]] for k, v in by_source.items()} == totals
    assert result.manifest["output"]["tokens"] == sum(t[2] for t in totals.values())
    assert [s["stage"] for s in result.manifest["stages"]] == ["read", "langid", "decontaminate", "tokens", "write"]
    removed = spark.read.parquet(str(out / "removed"))
    assert removed.where(F.col("n_tokens").isNotNull()).count() == 0  # removed documents are not tokenized


def test_special_tokens_only_when_configured(spark, tmp_path):
    tok_dir = own_tokenizer(tmp_path / "tok")
    df = spark.createDataFrame([("a", "the quick brown fox", "s", None), ("b", "über den Fluss", "s", None),
                                ("c", "dropped", "s", "x:y"), ("d", "", "s", None)],
                               f"id string, text string, source string, {REMOVED_BY} string")
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(tok_dir)
    plain = tokens(_ctx(spark, tmp_path, ["s"]), df, TokensParams(stage="tokens", tokenizer=tok_dir))
    special = tokens(_ctx(spark, tmp_path, ["s"]), df, TokensParams(stage="tokens", tokenizer=tok_dir,
                                                                    add_special_tokens=True))
    got = {r["id"]: r["n_tokens"] for r in plain.collect()}
    assert got == {"a": len(hf("the quick brown fox", add_special_tokens=False)["input_ids"]),
                   "b": len(hf("über den Fluss", add_special_tokens=False)["input_ids"]), "c": None, "d": 0}
    assert {r["id"]: r["n_tokens"] for r in special.collect()} == {"a": got["a"] + 2, "b": got["b"] + 2,
                                                                   "c": None, "d": 2}


def test_calibrated_estimate_is_within_two_percent(spark, sample_run, sample_dir, tmp_path):
    out, result = sample_run
    data = (spark.read.parquet(str(out / "data")).drop("n_tokens", "n_bytes", "n_tokens_estimated")
            .withColumn(REMOVED_BY, F.lit(None).cast("string")))
    names = sorted(result.manifest["output"]["tokens_by_source"])
    ctx = _ctx(spark, tmp_path, names)
    est = tokens(ctx, data, TokensParams(stage="tokens", method="estimate", tokenizer=str(sample_dir / "tokenizer"),
                                         calibration_docs=100, seed=7))
    got = {r["source"]: r["t"] for r in est.groupBy("source").agg(F.sum("n_tokens").alias("t")).collect()}
    real = result.manifest["output"]["tokens_by_source"]
    for name in names:
        assert abs(got[name] - real[name]["tokens"]) / real[name]["tokens"] < 0.02, name
    report = ctx.reported("tokens")
    warc = report["calibration"]["commoncrawl/CC-SAMPLE-2024-10"]
    assert 60 < warc["sample_docs"] < 140  # about 100 of the 200 pages: a sample, not the whole source
    for name in names:
        cal = report["calibration"][name]
        assert 10 <= cal["sample_docs"] <= real[name]["docs"]
        assert cal["holdout_error"] is not None and cal["holdout_error"] < 0.05
        assert report["rho"][name] == pytest.approx(cal["rho"])
    assert est.where(~F.col("n_tokens_estimated")).count() == 0


def test_estimate_needs_rho_or_a_tokenizer(spark, tmp_path):
    from tokenmill.errors import ConfigError

    df = spark.createDataFrame([("a", "text", "s", None)], f"id string, text string, source string, {REMOVED_BY} string")
    with pytest.raises(ConfigError, match="no rho for s"):
        tokens(_ctx(spark, tmp_path, ["s"]), df, TokensParams(stage="tokens", method="estimate"))
    given = tokens(_ctx(spark, tmp_path, ["s"]), df, TokensParams(stage="tokens", method="estimate", rho={"s": 2.0}))
    assert given.first()["n_tokens"] == 2  # 4 bytes / 2


def test_count_tokens_job_prints_and_writes_the_table(sample_run, sample_dir, tmp_path):
    out, result = sample_run
    target = tmp_path / "counts.json"
    done = subprocess.run([sys.executable, "-m", "tokenmill", "count_tokens", "--input", str(out),
                           "--tokenizer", str(sample_dir / "tokenizer"), "--calibrate", "30", "--out", str(target),
                           "--spark-profile", "test"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    counts = json.loads(target.read_text())["sources"]
    expected = result.manifest["output"]["tokens_by_source"]
    assert {k: v["tokens"] for k, v in counts.items()} == {k: v["tokens"] for k, v in expected.items()}
    for name in expected:
        assert name in done.stdout
    assert "unique tokens" in done.stdout and "held-out err" in done.stdout

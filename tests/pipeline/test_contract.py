"""The stage contract on its own: declared columns checked by the planner before Spark, the helpers every
stage uses (`mark_removed`, `map_batches`), labels and reports, and the one commit helper."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from conftest import write_config
from tokenmill.errors import ConfigError, OutputError
from tokenmill.pipeline import load_pipeline
from tokenmill.pipeline.commit import StagedOutput, read_manifest
from tokenmill.pipeline.stage import StageContext, live, map_batches, mark_removed

DOCS = [("a", "one two", None), ("b", "three", "read:too_large"), ("c", "four five six", None)]


def _frame(spark):
    return spark.createDataFrame(DOCS, "id string, text string, removed_by string")


def _config(tmp_path, stages, write="write", **extra):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "hello world", "id": "1"}) + "\n")
    data = {"output": str(tmp_path / "out"), "sources": [{"name": "s", "format": "jsonl", "paths": str(src)}],
            "stages": ["read", *stages, write], **extra}
    return str(write_config(tmp_path / "c.yaml", data))


def test_planner_names_the_stage_and_the_missing_column_before_spark(tmp_path):
    # No Spark session is used here: the check is made on the declared columns only.
    with pytest.raises(ConfigError, match=r"stages\[1\] \(language_filter\): needs column\(s\) lang, lang_score, "
                                          r"which no source or earlier stage provides; a stage that adds it: langid"):
        load_pipeline(_config(tmp_path, [{"stage": "language_filter", "languages": ["en"]}]))
    with pytest.raises(ConfigError, match=r"stages\[1\] \(quality_filter\): needs column\(s\) qs_.*quality_signals"):
        load_pipeline(_config(tmp_path, [{"stage": "quality_filter", "rules": "gopher_quality"}]))
    with pytest.raises(ConfigError, match=r"stages\[1\] \(pick\): needs column\(s\) quality_dclm"):
        load_pipeline(_config(tmp_path, [{"stage": "quality_select", "id": "pick", "scores": ["quality_dclm"],
                                          "method": "threshold", "threshold": 0.5}]))
    with pytest.raises(ConfigError, match=r"stages\[2\] \(write\): needs column\(s\) lang\b"):
        load_pipeline(_config(tmp_path, ["exact_dedup"], write={"stage": "write", "partition_by": ["lang"]}))
    # provided by an earlier stage: planned without error, in order
    plan = load_pipeline(_config(tmp_path, ["langid", {"stage": "language_filter", "languages": ["en"]},
                                            "quality_signals", {"stage": "quality_filter", "rules": "gopher_quality"}]))
    assert [s.label for s in plan.stages] == ["read", "langid", "language_filter", "quality_signals", "quality_filter",
                                              "write"]
    # the quality rules' signals stay on removed rows too (report.html draws kept vs removed per threshold)
    gopher = {"qs_word_count", "qs_mean_word_length", "qs_hash_word_ratio", "qs_ellipsis_word_ratio",
              "qs_bullet_lines_ratio", "qs_ellipsis_lines_ratio", "qs_alpha_words_ratio", "qs_stop_words"}
    assert plan.audit_columns(len(plan.stages) - 1) == {"lang", "lang_score", "quality_failed"} | gopher


def test_mark_removed_keeps_the_first_reason_and_never_untags(spark):
    df = _frame(spark)
    out = mark_removed(df, F.length("text") > 3, "f", "long")
    out = mark_removed(out, F.lit(True), "g", F.concat(F.lit("all_"), F.col("id")))
    got = {r["id"]: r["removed_by"] for r in out.collect()}  # small: 3 rows
    assert got == {"a": "f:long", "b": "read:too_large", "c": "f:long"}
    assert {r["id"] for r in df.where(live(df)).collect()} == {"a", "c"}  # small: 3 rows


def test_map_batches_adds_and_replaces_columns_in_place(spark):
    def fn(batch: pa.RecordBatch) -> dict:
        return {"text": pc.utf8_upper(batch.column("text")), "n_chars": pc.utf8_length(batch.column("text"))}

    out = map_batches(_frame(spark), fn, [T.StructField("text", T.StringType()), T.StructField("n_chars", T.IntegerType())])
    assert out.columns == ["id", "text", "removed_by", "n_chars"]  # the replaced column keeps its place
    assert [tuple(r) for r in out.orderBy("id").collect()] == [  # small: 3 rows
        ("a", "ONE TWO", None, 7), ("b", "THREE", "read:too_large", 5), ("c", "FOUR FIVE SIX", None, 13)]


def test_labels_and_reports(spark):
    from tokenmill.dedup.exact_stage import ExactDedupParams, exact_dedup

    ctx = StageContext(spark, (), "t.yaml", "/tmp/w")
    exact_dedup(ctx, _frame(spark), ExactDedupParams(stage="exact_dedup", id="exact_pass_1"))
    assert set(ctx.reported()) == {"exact_pass_1"} and ctx.reported("exact_pass_1")["normalise"] is True
    with pytest.raises(RuntimeError, match="no stage label"):
        ctx.report("x", 1)
    view = ctx.for_stage("mine")
    view.report("x", 1)
    assert ctx.reported("mine") == {"x": 1}  # one shared store, keyed by label
    assert set(ctx.take_reports()) == {"exact_pass_1", "mine"} and ctx.reported() == {}


def test_staged_output_commits_in_one_step_and_cleans_up_on_error(spark, tmp_path):
    dest = tmp_path / "model"
    with pytest.raises(ValueError):
        with StagedOutput(spark, str(dest)) as out:
            (tmp_path / out.path.rsplit("/", 1)[1]).mkdir()
            raise ValueError("boom")
    assert not dest.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".model.tmp-")]
    for run in (1, 2):
        with StagedOutput(spark, str(dest)) as out:
            spark.range(3).write.parquet(f"{out.path}/data")
            out.commit({"run": run})
        assert read_manifest(spark, str(dest))["run"] == run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # the old output replaced, no temp left
    foreign = tmp_path / "thesis"
    foreign.mkdir()
    (foreign / "chapter1.tex").write_text("x")
    with pytest.raises(OutputError, match="not a tokenmill output"):
        with StagedOutput(spark, str(foreign)) as out:
            spark.range(1).write.parquet(f"{out.path}/data")
            out.commit({})
    assert (foreign / "chapter1.tex").exists()

"""Commit by manifest (object stores have no atomic folder rename): each run under its own immutable folder,
one single-object write as the commit, readers resolving through it, `gc` for the old runs. Exercised here
on local disk with `spark.tokenmill.commit=pointer` (what `auto` picks for s3://, gs://, abfs://)."""

from __future__ import annotations

import json

import pyarrow.dataset as ds
import pytest

from conftest import sample_config, write_config
from tokenmill.pipeline import load_pipeline, run
from tokenmill.pipeline.commit import committed_folder, read_manifest, resolve_data
from tokenmill.pipeline.gc import collect_garbage, plan_gc


@pytest.fixture
def pointer_mode(spark):
    spark.conf.set("spark.tokenmill.commit", "pointer")
    yield
    spark.conf.unset("spark.tokenmill.commit")


def _rows(folder: str, removed: bool = False):
    data = ds.dataset(folder, format="parquet", partitioning="hive").to_table(columns=["id", "text"])
    return sorted((r["id"], r["text"]) for r in data.to_pylist())


def test_a_pointer_committed_pipeline_equals_a_renamed_one_and_gc_removes_the_old_run(
        spark, sample_dir, tmp_path, pointer_mode):
    from tokenmill.report.explain import explain
    from tokenmill.report.explore import open_run

    conf = sample_config(sample_dir, tmp_path / "out", conf="dedup_sample.yaml")
    # a checkpoint (its removed rows join the output's), removals by two stages, a partitioned write
    conf["stages"] = ["read", {"stage": "exact_dedup", "checkpoint": True},
                      {"stage": "filter_rows", "when": "length(text) < 400", "reason": "short"},
                      {"stage": "write", "partition_by": ["source"], "keep_removed": True}]
    conf["work_dir"] = str(tmp_path / "work")
    first = run(spark, load_pipeline(str(write_config(tmp_path / "p1.yaml", conf))))
    out = tmp_path / "out"
    manifest = json.loads((out / "manifest.json").read_text())
    run1 = manifest["run_folder"]
    assert run1.startswith("runs/") and (out / run1 / "_SUCCESS").exists()
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))  # (.crc: Hadoop checksums)
    assert names == ["_SUCCESS", "manifest.json", "runs"]  # no data/ moved here
    data = manifest["output"]["data"]
    assert data == f"{out / run1}/rows/removed_by=__HIVE_DEFAULT_PARTITION__"
    assert committed_folder(spark, str(out)) == str(out / run1)
    assert resolve_data(spark, f"{out}/data") == data

    # the same pipeline committed by rename: the same rows kept, the same removed
    spark.conf.set("spark.tokenmill.commit", "rename")
    conf_r = dict(conf, output=str(tmp_path / "renamed"), work_dir=str(tmp_path / "work_r"))
    renamed = run(spark, load_pipeline(str(write_config(tmp_path / "r.yaml", conf_r))))
    spark.conf.set("spark.tokenmill.commit", "pointer")
    assert _rows(data) == _rows(str(tmp_path / "renamed" / "data"))
    assert renamed.manifest["output"]["removed_by_reason_and_source"] == \
        first.manifest["output"]["removed_by_reason_and_source"]
    reasons = first.manifest["output"]["removed_by_reason_and_source"]
    assert {r.split(":")[0] for r in reasons} == {"read", "exact_dedup", "filter_rows"}  # the checkpoint's too
    counts = [[(s["stage"], s["rows_in"], s["rows_out"]) for s in r.manifest["stages"]] for r in (first, renamed)]
    assert counts[0] == counts[1]

    # readers resolve through the pointer: explain, the notebooks' open_run
    some_id = _rows(data)[0][0]
    assert explain(str(out), some_id)["found"]
    opened = open_run(str(out), "tokenmill pipeline ...")
    removed_by = opened.removed.to_table(columns=["removed_by"]).column("removed_by").to_pylist()
    assert removed_by and None not in removed_by  # the kept partition is filtered out of `removed`
    assert opened.kept.count_rows() == first.manifest["output"]["rows"]

    # a rerun with another config: a new run folder, the pointer moves, the old run stays until gc
    conf["stages"][3]["partition_by"] = []
    second = run(spark, load_pipeline(str(write_config(tmp_path / "p2.yaml", conf))))
    run2 = read_manifest(spark, str(out))["run_folder"]
    assert run2 != run1 and second.manifest["output"]["rows"] == first.manifest["output"]["rows"]
    plan = plan_gc(str(out))
    assert [(r["run"], r["state"], r["remove"]) for r in plan["runs"]] == [
        (run2.split("/")[1], "current", False), (run1.split("/")[1], "committed", True)]
    assert (out / run1).exists()
    done = collect_garbage(str(out))
    assert done["removed"] == [str(out / run1)] and not (out / run1).exists() and (out / run2).exists()
    assert _rows(resolve_data(spark, f"{out}/data")) == _rows(data.replace(run1, run2))


def test_a_stage_that_reads_its_input_several_times_gets_it_materialised_once(spark, sample_dir, tmp_path, caplog):
    """Near-dedup reads its input four times (signatures, shingle sets, the estimate, the output join).
    Behind WARC extraction and exact dedup in the same segment, the runner materialises that input, so
    every WARC file is opened once; the rows equal those of the run with an explicit checkpoint."""
    import logging

    conf = sample_config(sample_dir, tmp_path / "fused", conf="dedup_sample.yaml")
    conf["sources"] = [s for s in conf["sources"] if s["format"] == "warc"]
    conf["stages"] = ["read", {"stage": "exact_dedup"}, {"stage": "minhash_dedup", "threshold": 0.8},
                      {"stage": "write", "keep_removed": True}]
    conf["work_dir"] = str(tmp_path / "work")
    conf["auto_checkpoint"] = False  # one plan: exact_dedup's removals ride into near-dedup
    with caplog.at_level(logging.INFO, logger="tokenmill.pipeline"):
        fused = run(spark, load_pipeline(str(write_config(tmp_path / "fused.yaml", conf))))
    assert "minhash_dedup reads its input several times: materialised first" in caplog.text
    opened = fused.manifest["stage_reports"]["read"]["files_opened"]
    assert opened == len(list((sample_dir / "warc").glob("*.warc.gz")))  # each WARC file read once
    caplog.clear()
    staged = dict(conf, output=str(tmp_path / "staged"))
    staged["stages"] = ["read", {"stage": "exact_dedup", "checkpoint": True}] + conf["stages"][2:]
    with caplog.at_level(logging.INFO, logger="tokenmill.pipeline"):
        checkpointed = run(spark, load_pipeline(str(write_config(tmp_path / "staged.yaml", staged))))
    assert "materialised first" not in caplog.text  # its input is the checkpoint's Parquet: a plain scan
    assert _rows(str(tmp_path / "fused" / "data")) == _rows(str(tmp_path / "staged" / "data"))
    assert fused.manifest["output"]["removed_by_reason_and_source"] == \
        checkpointed.manifest["output"]["removed_by_reason_and_source"]


def test_rows_removed_before_a_shuffle_are_set_aside_by_an_automatic_checkpoint(spark, sample_dir, tmp_path, caplog):
    """A filter, then exact dedup (a window over whole rows): the runner ends the segment after the filter,
    so its removed rows go to a checkpoint's removed/ instead of through the shuffle. Same rows, same
    removals, same audit trail as the one-plan run (`auto_checkpoint: false`)."""
    import logging

    conf = sample_config(sample_dir, tmp_path / "auto", conf="dedup_sample.yaml")
    conf["sources"] = [s for s in conf["sources"] if s["format"] == "warc"]
    conf["stages"] = ["read", {"stage": "filter_rows", "when": "length(text) < 400", "reason": "short"},
                      {"stage": "exact_dedup"}, {"stage": "write", "keep_removed": True}]
    conf["work_dir"] = str(tmp_path / "work")
    with caplog.at_level(logging.INFO, logger="tokenmill.pipeline"):
        auto = run(spark, load_pipeline(str(write_config(tmp_path / "auto.yaml", conf))))
    assert "checkpoint after filter_rows: exact_dedup moves whole rows" in caplog.text
    assert (tmp_path / "work" / "01-filter_rows" / "manifest.json").exists()
    caplog.clear()
    plain = dict(conf, output=str(tmp_path / "plain"), work_dir=str(tmp_path / "work2"), auto_checkpoint=False)
    with caplog.at_level(logging.INFO, logger="tokenmill.pipeline"):
        one = run(spark, load_pipeline(str(write_config(tmp_path / "plain.yaml", plain))))
    assert "checkpoint after" not in caplog.text and not (tmp_path / "work2" / "01-filter_rows").exists()
    removed = auto.manifest["output"]["removed_by_reason_and_source"]
    assert removed["filter_rows:short"] and removed["exact_dedup:duplicate"]
    assert removed == one.manifest["output"]["removed_by_reason_and_source"]
    assert [(r["stage"], r["rows_in"], r["rows_out"]) for r in auto.manifest["stages"]] == \
        [(r["stage"], r["rows_in"], r["rows_out"]) for r in one.manifest["stages"]]
    for part in ("data", "removed"):
        assert _rows(str(tmp_path / "auto" / part)) == _rows(str(tmp_path / "plain" / part))

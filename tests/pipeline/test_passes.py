"""Fused Python passes: consecutive Arrow-form stages run as one `mapInArrow` per task and give the rows,
manifests and reports the stage-by-stage path (`fuse: false`) gives; the plan has one Python node per
pass; a stage that raises inside a pass is named; workers that count tokens import neither `torch` nor
`transformers`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from conftest import ROOT, sample_config, write_config


def _rows(folder: Path, part: str) -> list[dict]:
    if not (folder / part).exists() or not any((folder / part).rglob("*.parquet")):
        return []
    table = ds.dataset(str(folder / part), format="parquet", partitioning="hive").to_table()
    return sorted(table.to_pylist(), key=lambda r: r["id"])


def _manifest(folder: Path) -> dict:
    m = json.loads((folder / "manifest.json").read_text())
    return {"stages": m["stages"], "reports": m["stage_reports"],
            "output": {k: v for k, v in m["output"].items() if k not in ("data", "removed", "path", "report")}}


def _stage_by_stage(spark, config: Path, tmp_path: Path) -> Path:
    """The same config run with `fuse: false` into ``tmp_path``."""
    from tokenmill.pipeline import load_pipeline, run

    out = tmp_path / "stage_by_stage"
    plan = load_pipeline(str(config), [f"output={out}", "fuse=false", f"work_dir={tmp_path / 'work'}"])
    run(spark, plan)
    return out


def test_fineweb_order_fused_equals_stage_by_stage(spark, fineweb_run, tmp_path):
    """FineWeb's order (url, langid, language, Gopher x2, C4 with its line modifier, signals again, FineWeb,
    words) on the sample: one pass, and every row, count and report of the stage-by-stage run."""
    config, fused, result = fineweb_run
    other = _stage_by_stage(spark, config, tmp_path)
    assert _rows(fused, "data") == _rows(other, "data")
    assert _rows(fused, "removed") == _rows(other, "removed")
    assert _manifest(fused) == _manifest(other)
    kept = result.manifest["output"]["rows"]
    removed = sum(sum(v.values()) for v in result.manifest["output"]["removed_by_reason_and_source"].values())
    assert (kept, removed) == (7, 319) and kept == len(_rows(fused, "data"))  # 326 records, 6 skipped by the read


def test_sample_pipeline_fused_equals_stage_by_stage(spark, sample_run, sample_dir, tmp_path):
    """The sample pipeline: langid's cascade in one pass, decontaminate's common-n-gram count as a job of
    its own (its `prepare`), then decontaminate and tokens in the write task; all equal."""
    fused, result = sample_run
    config = write_config(tmp_path / "sample.yaml", sample_config(sample_dir, fused))
    other = _stage_by_stage(spark, config, tmp_path)
    assert _rows(fused, "data") == _rows(other, "data")
    assert _rows(fused, "removed") == _rows(other, "removed")
    assert _manifest(fused) == _manifest(other)
    assert result.manifest["output"]["tokens"] == json.loads((other / "manifest.json").read_text())["output"]["tokens"]


def test_dry_run_shows_the_passes(sample_dir, tmp_path):
    from tokenmill.pipeline import load_pipeline
    from tokenmill.pipeline.job import format_plan

    data = sample_config(sample_dir, tmp_path / "out", conf="quality_fineweb.yaml")
    data = json.loads(json.dumps(data).replace("conf/presets/", str(ROOT / "conf/presets") + "/"))
    text = format_plan(load_pipeline(str(write_config(tmp_path / "fw.yaml", data))))
    assert ("segment 1 -> " + str(tmp_path / "out") + ": read -> [url_filter > langid > language_filter > "
            "quality_signals > gopher_repetition > gopher_quality > c4 > signals_after_c4 > fineweb > word_filter] "
            "(reads commoncrawl/CC-SAMPLE-2024-10, commoncrawl/CC-SAMPLE-2024-18-wet, sample-books in its tasks) "
            "-> write") in text
    data["stages"][-1] = {"stage": "write"}  # unpartitioned: the write task writes Parquet itself
    data["fuse"] = False
    text = format_plan(load_pipeline(str(write_config(tmp_path / "off.yaml", data))))
    assert "fuse: false" in text and "[" not in text.split("passes (")[1].split("\n", 1)[1].split("[a > b]")[0]
    data["fuse"] = True
    data["stages"].insert(4, {"stage": "filter_rows", "when": "length(text) > 10"})
    text = format_plan(load_pipeline(str(write_config(tmp_path / "on.yaml", data))))
    assert ": read -> [url_filter > langid > language_filter] (reads" in text
    assert ("-> filter_rows -> [quality_signals > gopher_repetition > gopher_quality > c4 > signals_after_c4 > "
            "fineweb > word_filter] (writes Parquet in its tasks) -> write") in text


def test_one_python_node_per_pass(spark, sample_dir):
    """The frame of a pass of four stages right after a Python read has one Python node in its plan (one
    worker per task, the files read by the pass), where the read and the stages on their own have one each."""
    from tokenmill.catalog import load_stages
    from tokenmill.io.sources import read_source
    from tokenmill.pipeline.passes import build_steps, run_pass
    from tokenmill.pipeline.plan import plan_config
    from tokenmill.pipeline.stage import StageContext

    load_stages()
    data = sample_config(sample_dir, sample_dir / "unused", conf="quality_fineweb.yaml")
    data = json.loads(json.dumps(data).replace("conf/presets/", str(ROOT / "conf/presets") + "/"))
    plan = plan_config(data, "fw.yaml")
    ctx = StageContext(spark, sources=tuple(plan.config.sources), config_path="fw.yaml")
    df = read_source(spark, plan.config.sources[2], "books", str(sample_dir))  # JSONL: read by Python
    stages = plan.stages[1:5]  # url_filter, langid, language_filter, quality_signals
    fused = run_pass(df, build_steps(ctx, stages, df.columns))
    separate = df
    for st in stages:
        separate = st.spec.run(ctx.for_stage(st.label), separate, st.params)

    def python_nodes(frame) -> int:
        plan_text = frame._jdf.queryExecution().executedPlan().toString()
        return sum(plan_text.count(node) for node in ("MapInArrow", "ArrowEvalPython", "BatchEvalPython"))

    assert python_nodes(fused) == 1  # the pass reads the files itself
    assert python_nodes(separate) == 4  # the read, url_filter, langid, quality_signals (language_filter: SQL)
    key = lambda r: r["id"]  # noqa: E731
    assert sorted(fused.toArrow().to_pylist(), key=key) == sorted(
        separate.select(*fused.columns).toArrow().to_pylist(), key=key)


def test_a_stage_raising_in_a_pass_is_named(spark, sample_dir, tmp_path):
    """A stage that raises inside a fused pass fails the run with its error, and the error names the stage."""
    from tokenmill.pipeline import load_pipeline, run
    from tokenmill.pipeline import stage as contract

    spec = contract.REGISTRY["word_filter"]

    def broken(ctx, params, columns):
        def fn(cols):
            raise ValueError("a word list went missing")

        return contract.ArrowStep([], fn)

    data = sample_config(sample_dir, tmp_path / "out", conf="sample.yaml")
    data["stages"] = ["read", {"stage": "langid", "backend": "cld2"},
                      {"stage": "word_filter", "words": {"en": ["zzz"]}}, {"stage": "write"}]
    contract.REGISTRY["word_filter"] = contract.replace(spec, arrow=broken)
    try:
        with pytest.raises(Exception) as info:
            run(spark, load_pipeline(str(write_config(tmp_path / "p.yaml", data))))
    finally:
        contract.REGISTRY["word_filter"] = spec
    assert "a word list went missing" in str(info.value)
    assert "raised by stage 'word_filter' (in a fused Python pass)" in str(info.value)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_workers_of_the_sample_pipeline_import_neither_torch_nor_transformers(sample_dir):
    """What a worker of the sample and FineWeb pipelines imports (the stages' modules, their warm-up hooks,
    a token count with the sample's tokenizer): no `torch`, no `transformers`."""
    code = f"""
import sys
sys.path.insert(0, {str(ROOT / 'lib')!r})
from tokenmill.warmup import import_and_warm
import_and_warm(["tokenmill.pipeline.builtin", "tokenmill.langid.stage", "tokenmill.quality.stage",
                 "tokenmill.quality.url_filter", "tokenmill.quality.word_filter", "tokenmill.decontam.stage",
                 "tokenmill.tokens.stage", "tokenmill.io.arrow_write", "tokenmill.pipeline.passes"])
from tokenmill.tokens.tokenizer import TokenizerSpec, count_tokens
print(count_tokens(["the quick brown fox", None], TokenizerSpec({str(sample_dir / 'tokenizer')!r})))
print(sorted(m for m in ("torch", "transformers") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[1] == "[]"
    from transformers import AutoTokenizer

    want = len(AutoTokenizer.from_pretrained(str(sample_dir / "tokenizer"))("the quick brown fox",
                                                                          add_special_tokens=False)["input_ids"])
    assert out[0] == f"[{want}, None]"

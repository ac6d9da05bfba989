"""Reading instruction data in Spark: JSONL, Parquet and `save_to_disk` folders give the same canonical rows;
bad records are counted removals naming their line (or errors with on_error: raise); OASST1 trees become
threads after a keyed shuffle."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import types as T

from conftest import write_config
from instruct.instruct_fixtures import FIXTURES, records
from tokenmill.catalog import load_stages
from tokenmill.config import validate
from tokenmill.errors import ConfigError
from tokenmill.instruct.formats import MESSAGE_LIST
from tokenmill.instruct.job import _SourceModel
from tokenmill.instruct.read import read_instruct

load_stages()


def source(name: str, use: str, fmt: str = "jsonl", path: str | None = None, **instruct):
    entry = {"name": name, "format": fmt, "instruct": {"for": use, **instruct}}
    if fmt == "hf":
        entry["dataset"] = path
    else:
        entry["paths"] = [path or str(FIXTURES / f"{name}.jsonl")]
    if fmt == "jsonl":
        entry["on_error"] = "skip"
    return validate(_SourceModel, {"source": entry}, "test").source


def rows(spark, src, tmp_path) -> list[dict]:
    df = read_instruct(spark, src, "test", str(tmp_path / "work"))
    return [r.asDict(recursive=True) for r in df.collect()]


def test_sharegpt_jsonl_rows_and_counted_removals(spark, tmp_path):
    df = read_instruct(spark, source("sharegpt", "sft"), "test", str(tmp_path))
    assert df.schema["messages"].dataType == MESSAGE_LIST  # list<struct<role, content>> through Spark
    got = [r.asDict(recursive=True) for r in df.collect()]
    kept = [r for r in got if r["removed_by"] is None]
    removed = sorted((r["removed_by"], r["meta"]["where"]) for r in got if r["removed_by"])
    assert len(got) == 9 and len(kept) == 6
    assert removed == [("read:bad_json", "line 9"), ("read:bad_message", "line 7"), ("read:missing_role", "line 8")]
    first = next(r for r in kept if r["meta"]["where"] == "line 1")
    assert first["messages"] == [{"role": "user", "content": "What is the capital of France?"},
                                 {"role": "assistant", "content": "The capital of France is Paris."}]
    assert first["text"] == "What is the capital of France?\n\nThe capital of France is Paris."
    assert len({r["id"] for r in got}) == 9


def test_on_error_raise_names_file_and_line(spark, tmp_path):
    src = source("sharegpt", "sft")
    src.on_error = "raise"
    with pytest.raises(Exception) as err:
        read_instruct(spark, src, "test", str(tmp_path)).collect()
    assert "sharegpt.jsonl" in str(err.value) and "line 7" in str(err.value)
    assert "conversations[0] is a str, not an object" in str(err.value)


def _parquet(tmp_path: Path, name: str) -> str:
    table = pa.Table.from_pylist(records(name))
    path = tmp_path / f"{name}.parquet"
    pq.write_table(table, path)
    return str(path)


def test_parquet_and_saved_dataset_map_like_jsonl(spark, tmp_path):
    import datasets

    expect = sorted(json.dumps(r["messages"]) for r in rows(spark, source("messages", "sft"), tmp_path)
                    if r["removed_by"] is None)
    # The fixture's last row has an int content: Arrow cannot hold both in one column, so Parquet gets the rest.
    good = [r for r in records("messages") if not isinstance(r["messages"][-1]["content"], int)]
    good = [{**r, "messages": [{"role": m["role"], "content": m["content"] if isinstance(m["content"], str)
                                else m["content"][0]["text"]} for m in r["messages"]]} for r in good]
    pq.write_table(pa.Table.from_pylist(good), tmp_path / "no_robots.parquet")
    pq_rows = rows(spark, source("no_robots", "sft", "parquet", str(tmp_path / "no_robots.parquet")), tmp_path)
    assert sorted(json.dumps(r["messages"]) for r in pq_rows) == expect
    assert {r["meta"]["where"] for r in pq_rows} == {f"row {i}" for i in range(6)}
    assert {r["meta"]["category"] for r in pq_rows} == {"Generation", "Chat", "Open QA", "Rewrite"}
    saved = tmp_path / "saved"
    datasets.Dataset.from_list(good).save_to_disk(str(saved))
    hf_rows = rows(spark, source("no_robots_hf", "sft", "hf", str(saved)), tmp_path)
    assert sorted(json.dumps(r["messages"]) for r in hf_rows) == expect


def test_oasst1_threads_in_spark(spark, tmp_path):
    best = rows(spark, source("oasst1", "sft"), tmp_path)
    assert len(best) == 1 and best[0]["meta"]["orig_id"] == "m5" and best[0]["meta"]["tree_id"] == "t1"
    assert [m["role"] for m in best[0]["messages"]] == ["user", "assistant", "user", "assistant"]
    every = rows(spark, source("oasst1", "sft", threads="all"), tmp_path)
    assert sorted(r["meta"]["orig_id"] for r in every) == ["m2", "m5", "m6"]
    as_parquet = rows(spark, source("oasst1", "sft", "parquet", _parquet(tmp_path, "oasst1"), threads="all"), tmp_path)
    assert sorted(json.dumps(r["messages"]) for r in as_parquet) == sorted(json.dumps(r["messages"]) for r in every)


def test_grpo_and_dpo_columns(spark, tmp_path):
    got = rows(spark, source("gsm8k", "grpo"), tmp_path)
    assert [r["answer"] for r in sorted(got, key=lambda r: r["meta"]["where"])] == ["72", "1450"]
    dpo = rows(spark, source("hh_rlhf", "dpo"), tmp_path)
    assert all(set(r) >= {"prompt", "chosen", "rejected"} for r in dpo)
    orca = rows(spark, source("orca_dpo", "dpo", fields={"prompt": "question"}), tmp_path)
    assert orca[0]["prompt"][0] == {"role": "system", "content": "You are an AI assistant."}


def test_a_layout_that_cannot_feed_the_method_is_a_config_error(spark, tmp_path):
    with pytest.raises(ConfigError, match="cannot feed dpo"):
        read_instruct(spark, source("alpaca", "dpo"), "sources[0]", str(tmp_path))
    with pytest.raises(ConfigError, match="layout alpaca cannot feed grpo"):
        read_instruct(spark, source("alpaca", "grpo", layout="alpaca"), "sources[0]", str(tmp_path))


def test_pipeline_plans_instruct_columns(tmp_path):
    from tokenmill.pipeline import load_pipeline

    base = {"output": str(tmp_path / "out"), "sources": [
        {"name": "sg", "format": "jsonl", "paths": str(FIXTURES / "sharegpt.jsonl"), "instruct": {"for": "sft"}}]}
    plan = load_pipeline(str(write_config(tmp_path / "a.yaml", {
        **base, "stages": ["read", {"stage": "instruct_format", "template": "chatml"}, "write"]})))
    assert [s.name for s in plan.stages] == ["read", "instruct_format", "write"]
    text_source = {"name": "docs", "format": "jsonl", "paths": str(FIXTURES / "alpaca.jsonl")}
    with pytest.raises(ConfigError, match="needs column.*messages"):
        load_pipeline(str(write_config(tmp_path / "b.yaml", {**base, "sources": [text_source], "stages": [
            "read", {"stage": "instruct_format"}, "write"]})))
    with pytest.raises(ConfigError, match="one pipeline reads one kind of data"):
        load_pipeline(str(write_config(tmp_path / "c.yaml", {**base, "sources": base["sources"] + [text_source]})))


def test_instruct_schema_types():
    from tokenmill.instruct.formats import spark_schema

    assert spark_schema("grpo")["answer"].dataType == T.StringType()
    assert spark_schema("dpo")["chosen"].dataType == MESSAGE_LIST


def test_byte_ranges_read_the_same_rows(spark, tmp_path):
    whole = rows(spark, source("sharegpt", "sft"), tmp_path)
    src = source("sharegpt", "sft")
    src.split_bytes = 100  # ten ranges or so, most cutting lines in the middle
    parts = rows(spark, src, tmp_path)
    key = lambda r: r["id"]  # noqa: E731
    assert sorted(parts, key=key) == sorted(whole, key=key)
    assert read_instruct(spark, src, "test", str(tmp_path)).rdd.getNumPartitions() > 5


def test_shipped_instruct_config_plans():
    from conftest import ROOT
    from tokenmill.pipeline import load_pipeline

    plan = load_pipeline(str(ROOT / "conf" / "pipelines" / "instruct_filter.yaml"))
    assert [s.label for s in plan.stages] == [
        "read", "instruct_filter", "prompt_text", "exact_prompts", "near_prompts", "all_text", "decontaminate",
        "instruct_format", "instruct_split", "write"]


def test_blocks_of_lines_read_what_line_by_line_reading_reads(spark, tmp_path, monkeypatch):
    """The fast path takes plain JSONL in blocks of whole lines: blank and whitespace-only lines skipped,
    CRLF endings, a line over max_doc_bytes and a block holding a broken line (per-record path), the last
    line without a newline; whole-file and byte-range reads equal the per-record read."""
    import json as _json

    from tokenmill.instruct.fastmap import FastMapper

    lines = []
    for i in range(60):
        conv = {"id": f"c{i}", "conversations": [{"from": "human", "value": f"question {i} " + "é" * (i % 4)},
                                                 {"from": "gpt", "value": f"answer {i}."}]}
        line = _json.dumps(conv, ensure_ascii=False)
        if i == 7:
            line = "   "  # whitespace only
        elif i == 8:
            line = ""  # blank
        elif i == 20:
            line = line.replace("answer", "answer " + "x" * 900)  # over max_doc_bytes
        elif i == 33:
            line = '{"id": "c33", "conversations": [{"from": "human", "value": broken'
        lines.append(line + ("\r\n" if i % 5 == 0 else "\n"))
    lines[-1] = lines[-1].rstrip("\r\n")  # no newline at the end
    path = tmp_path / "convs.jsonl"
    path.write_text("".join(lines), encoding="utf-8")

    def read(split_bytes=None):
        src = source("convs", "sft", path=str(path), layout="sharegpt")
        src.max_doc_bytes = 600
        if split_bytes:
            src.split_bytes = split_bytes
        got = rows(spark, src, tmp_path)
        return sorted(got, key=lambda r: r["id"])

    blocks = read()
    assert len(blocks) == 58  # 60 lines, less the two blank ones
    where = {r["meta"]["where"]: r["removed_by"] for r in blocks}
    assert "line 8" not in where and "line 9" not in where and where["line 34"] == "read:bad_json"
    assert where["line 21"] is not None and where["line 60"] is None
    # in ranges of 700 bytes, only the block holding the broken line goes record by record
    assert read(split_bytes=700) == blocks
    with monkeypatch.context() as m:  # record by record (decided on the driver)
        m.setattr(FastMapper, "applies", staticmethod(lambda *a: False))
        assert read() == blocks

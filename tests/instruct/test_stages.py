"""The instruct_* stages and the convert / split / filter / export jobs, end to end in Spark local mode."""

from __future__ import annotations

import argparse
import json

import pytest
from pyspark.sql import functions as F

from conftest import own_tokenizer
from instruct.instruct_fixtures import FIXTURES
from tokenmill.catalog import load_stages
from tokenmill.instruct.job import convert_job, filter_job, split_job
from tokenmill.instruct.stage import (
    InstructFilterParams,
    InstructFormatParams,
    InstructSplitParams,
    _allocate,
    instruct_filter,
    instruct_format,
    instruct_split,
)
from tokenmill.pipeline.stage import StageContext

load_stages()


def frame(spark, n: int = 200, sources=("a", "b"), repeat_every: int = 10):
    """n canonical SFT rows; every ``repeat_every``-th row repeats the previous row's prompt."""
    rows = []
    for i in range(n):
        p = i - 1 if i % repeat_every == 0 and i else i
        rows.append((f"id{i:04d}", sources[0] if i < n * 3 // 4 else sources[1],
                     [("user", f"prompt {p}"), ("assistant", f"reply {i}")]))
    schema = "id string, source string, messages array<struct<role:string,content:string>>"
    return (spark.createDataFrame(rows, schema).withColumn("text", F.lit("x"))
            .withColumn("removed_by", F.lit(None).cast("string")))


def sft_frame(spark, rows):
    """Canonical SFT rows from (id, [(role, content), ...]) pairs."""
    return (spark.createDataFrame(rows, "id string, messages array<struct<role:string,content:string>>")
            .withColumn("source", F.lit("s")).withColumn("text", F.lit(""))
            .withColumn("removed_by", F.lit(None).cast("string")))


def ctx(spark, tmp_path):
    return StageContext(spark, work_dir=str(tmp_path))


def test_split_fractions_stable_across_partitions_and_prompts(spark, tmp_path):
    params = InstructSplitParams(stage="instruct_split", fractions={"train": 0.8, "validation": 0.1, "test": 0.1})
    df = frame(spark)
    one = {r["id"]: r["split"] for r in instruct_split(ctx(spark, tmp_path), df.repartition(1), params).collect()}
    seven = {r["id"]: r["split"] for r in instruct_split(ctx(spark, tmp_path), df.repartition(7), params).collect()}
    assert one == seven and set(one.values()) == {"train", "validation", "test"}
    for i in range(10, 200, 10):  # a repeated prompt lands in its twin's split
        assert one[f"id{i:04d}"] == one[f"id{i - 1:04d}"]
    by_id = InstructSplitParams(stage="instruct_split", key="id", fractions={"train": 0.5, "test": 0.5})
    again = {r["id"]: r["split"] for r in instruct_split(ctx(spark, tmp_path), df.repartition(3), by_id).collect()}
    assert again == {r["id"]: r["split"] for r in instruct_split(ctx(spark, tmp_path), df, by_id).collect()}


def test_split_exact_sizes_stratified(spark, tmp_path):
    params = InstructSplitParams(stage="instruct_split", sizes={"validation": 10, "test": 5}, key="id")
    out = instruct_split(ctx(spark, tmp_path), frame(spark).repartition(5), params)
    counts = {(r["source"], r["split"]): r["count"] for r in out.groupBy("source", "split").count().collect()}
    # 150 rows of a, 50 of b: validation 7.5 / 2.5 -> 8 / 2 (largest remainder, ties by name), test 4 / 1
    assert counts == {("a", "validation"): 8, ("b", "validation"): 2, ("a", "test"): 4, ("b", "test"): 1,
                      ("a", "train"): 138, ("b", "train"): 47}
    again = instruct_split(ctx(spark, tmp_path), frame(spark).repartition(2), params)
    assert sorted(map(tuple, out.select("id", "split").collect())) == sorted(map(tuple, again.select("id", "split").collect()))
    assert _allocate({"a": 1, "b": 1}, {"v": 1}) == {"a": [("v", 0, 1)], "b": [("v", 0, 0)]}


def test_filter_stage_removes_problems_and_lengths(spark, tmp_path):
    rows = [("ok", [("user", "hi there"), ("assistant", "hello, how can I help?")]),
            ("none", [("user", "anyone?")]),
            ("long", [("user", "x" * 50), ("assistant", "fine")]),
            ("first", [("assistant", "I start"), ("user", "ok"), ("assistant", "done")])]
    df = sft_frame(spark, rows)
    params = InstructFilterParams(stage="instruct_filter", problems=["no_assistant", "assistant_first"],
                                  max_chars={"prompt": 20})
    got = {r["id"]: r["removed_by"] for r in instruct_filter(ctx(spark, tmp_path), df, params).collect()}
    assert got == {"ok": None, "none": "instruct_filter:no_assistant", "long": "instruct_filter:prompt_too_long",
                   "first": "instruct_filter:assistant_first"}
    with pytest.raises(ValueError, match="unknown problem"):
        InstructFilterParams(stage="instruct_filter", problems=["nope"])


def test_format_through_a_tokenizers_chat_template(spark, tmp_path):
    from transformers import AutoTokenizer

    path = own_tokenizer(tmp_path / "tok")
    tok = AutoTokenizer.from_pretrained(path)
    tok.chat_template = ("{% for m in messages %}{% if m['role'] == 'system' and not loop.first %}"
                         "{{ raise_exception('system must come first') }}{% endif %}"
                         "<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}")
    tok.save_pretrained(path)
    rows = [("a", [("user", "hi"), ("assistant", "hello")]), ("b", [("user", "hi"), ("system", "late")])]
    df = sft_frame(spark, rows)
    out = instruct_format(ctx(spark, tmp_path), df, InstructFormatParams(stage="instruct_format", template=path))
    got = {r["id"]: (r["text"], r["removed_by"]) for r in out.collect()}
    assert got["a"] == ("<|user|>hi</s><|assistant|>hello</s>", None)
    assert got["b"] == (None, "instruct_format:template_cannot_express")


def args(spark, **kw) -> argparse.Namespace:
    base = dict(config=None, overrides=[], spark_profile="test", force=False, output=None, export=None,
                to="canonical", template="chatml", near_threshold=0.8, benchmarks=None, key="prompt",
                sizes=None, fractions="train=0.9,validation=0.05,test=0.05", spark=spark)
    base.update(kw)
    return argparse.Namespace(**base)


def manifest(path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def test_convert_then_export_loads_with_datasets(spark, tmp_path):
    import datasets

    out = tmp_path / "conv"
    convert_job(args(spark, source=str(FIXTURES / "sharegpt.jsonl"), use="sft", to="text", template="chatml",
                     output=str(out), export="jsonl"))
    stages = {s["stage"]: s for s in manifest(out)["stages"]}
    assert stages["read"]["removed"] == {"bad_json": 1, "bad_message": 1, "missing_role": 1}
    assert stages["instruct_format"]["rows_out"] == 6  # chatml expresses any role order
    ds = datasets.load_dataset("json", data_files=str(tmp_path / "conv-jsonl" / "data" / "*.json.gz"), split="train")
    assert ds.num_rows == 6 and set(ds.column_names) == {"id", "source", "messages", "text"}
    row = next(r for r in ds if r["messages"][0]["content"] == "What is the capital of France?")
    assert row["text"] == ("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
                           "<|im_start|>assistant\nThe capital of France is Paris.<|im_end|>\n")
    # ... and the text converts back to the same messages (the text layout parses chatml).
    back = tmp_path / "back"
    convert_job(args(spark, source=str(tmp_path / "conv-jsonl" / "data"), use="sft", output=str(back),
                     overrides=["instruct.layout=text"]))
    again = {json.dumps(r["messages"]) for r in spark.read.parquet(str(back / "data")).collect()
             for r in [r.asDict(recursive=True)]}
    assert again == {json.dumps(r["messages"]) for r in ds}


def test_split_job_and_every_export_format(spark, tmp_path):
    import datasets

    from tokenmill.instruct.export import export_output

    out = tmp_path / "split"
    split_job(args(spark, source=str(FIXTURES / "messages.jsonl"), use="sft", output=str(out),
                   fractions="train=0.5,test=0.5"))
    kept = spark.read.parquet(str(out / "data"))
    counts = {r["split"]: r["count"] for r in kept.groupBy("split").count().collect()}
    assert sum(counts.values()) == 6
    for fmt in ("jsonl", "parquet", "hf"):
        info = export_output(str(out), fmt, str(tmp_path / f"x-{fmt}"), spark=spark)
        assert info["rows"] == 6 and info["splits"] == sorted(counts)
        if fmt == "hf":
            ds = datasets.load_from_disk(info["output"])
        else:
            builder = "json" if fmt == "jsonl" else "parquet"
            ds = datasets.load_dataset(builder, data_files={s: f"{info['output']}/data/split={s}/*" +
                                                            (".json.gz" if fmt == "jsonl" else ".parquet")
                                                            for s in counts})
        assert {s: ds[s].num_rows for s in counts} == counts
        assert "messages" in ds[next(iter(counts))].column_names


def test_export_zstd_jsonl_input_txt_and_push_without_a_token(spark, tmp_path, monkeypatch):
    import glob

    import datasets
    import pyarrow.parquet as pq

    from tokenmill.instruct.export import export_output

    out = tmp_path / "conv"
    convert_job(args(spark, source=str(FIXTURES / "sharegpt.jsonl"), use="sft", output=str(out), to="text"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    info = export_output(str(out), "jsonl", str(tmp_path / "z"), push_to_hub="me/x", spark=spark, compression="zstd")
    files = glob.glob(f"{info['output']}/data/*.json.zst")
    assert files and not glob.glob(f"{info['output']}/data/*.json")
    assert datasets.load_dataset("json", data_files=files, split="train").num_rows == info["rows"]
    assert info["pushed"].startswith("not pushed to me/x: set HF_TOKEN")
    info = export_output(str(out), "txt", str(tmp_path / "t"), spark=spark, separator="\n<|endoftext|>\n")
    folders = sorted(glob.glob(f"{info['output']}/*/input.txt"))
    assert len(folders) == 1
    parts = sorted(glob.glob(folders[0].replace("input.txt", "data/*.parquet")))
    texts = [t for p in parts for t in pq.read_table(p, columns=["text"]).column(0).to_pylist()]
    assert len(texts) == info["rows"]
    assert open(folders[0], encoding="utf-8", newline="").read() == "\n<|endoftext|>\n".join(texts)


def test_filter_job_on_gsm8k_with_decontamination(spark, tmp_path):
    bench = tmp_path / "gsm8k_test.jsonl"
    bench.write_text(json.dumps({"question": "A company has 1200 employees and hires 250 more. How many employees "
                                             "does it have?", "answer": "1450"}) + "\n")
    out = tmp_path / "filtered"
    filter_job(args(spark, source=str(FIXTURES / "gsm8k.jsonl"), use="grpo", output=str(out),
                    benchmarks=f"gsm8k={bench}"))
    stages = {s["stage"]: s for s in manifest(out)["stages"]}
    assert stages["decontaminate"]["removed"] == {"contaminated": 1}
    assert stages["write"]["rows_out"] == 1
    kept = spark.read.parquet(str(out / "data")).collect()
    assert [r["answer"] for r in kept] == ["72"]


def test_strings_form_for_trl_standard_columns(spark, tmp_path):
    sft = [("a", [("system", "S"), ("user", "Q1"), ("assistant", "A1"), ("user", "Q2"), ("assistant", "A2")]),
           ("b", [("user", "only a question")])]
    df = sft_frame(spark, sft)
    params = InstructFormatParams(stage="instruct_format", template="chatml", form="strings")
    got = {r["id"]: r.asDict() for r in instruct_format(ctx(spark, tmp_path), df, params).collect()}
    assert got["a"]["prompt_text"] == ("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n"
                                       "<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n"
                                       "<|im_start|>assistant\n")
    assert got["a"]["completion_text"] == "A2"
    assert got["b"]["removed_by"] == "instruct_format:template_cannot_express"
    out = tmp_path / "hh"
    convert_job(args(spark, source=str(FIXTURES / "hh_rlhf.jsonl"), use="dpo", to="strings", template="llama2",
                     output=str(out)))
    rows = {r["meta"]["where"]: r for r in spark.read.parquet(str(out / "data")).collect()}
    first = rows["line 1"]
    assert first["prompt_text"] == ("<s>[INST] What are some cuss words in english? [/INST] I'd rather not list "
                                    "those. </s><s>[INST] Why not? [/INST]")
    assert (first["chosen_text"], first["rejected_text"]) == (
        "They can hurt people, and I want to be helpful and kind.", "Fine, here is a list.")
    # line 3's transcripts share no prompt (validation reports prompt_not_shared): its prompt is empty
    assert rows["line 3"]["prompt_text"] == ""

"""The pipeline in local Spark: exact counts and ids from the sample crawl, audit, atomic output, resume."""

from __future__ import annotations

import json
import uuid

import pandas as pd
import pytest
from pyspark.sql import functions as F

from conftest import sample_config, write_config
from tokenmill.errors import ConfigError
from tokenmill.pipeline import load_pipeline, run
from tokenmill.schema import stable_id

WARC = "commoncrawl/CC-SAMPLE-2024-10"
WET = "commoncrawl/CC-SAMPLE-2024-18-wet"


def run_config(spark, path, data, overrides=(), force=False):
    return run(spark, load_pipeline(str(write_config(path, data)), list(overrides)), force=force)


def response_id(url):
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'1234|{url}|response')}>"


def test_sample_counts_per_stage_and_source(sample_run):
    out, result = sample_run
    manifest = json.loads((out / "manifest.json").read_text())
    assert (out / "_SUCCESS").exists()
    volume = [{k: s.pop(k) for k in ("chars_in", "chars_out", "tokens_in", "tokens_out") if k in s}
              for s in manifest["stages"]]
    assert manifest["stages"] == [
        {"stage": "read", "name": "read", "kind": "read", "rows_in": 326,
         "removed": {"empty_text": 1, "http_status": 2, "not_html": 3}, "rows_out": 320},
        {"stage": "langid", "name": "langid", "kind": "annotate", "rows_in": 320, "removed": {}, "rows_out": 320},
        {"stage": "decontaminate", "name": "decontaminate", "kind": "filter", "rows_in": 320, "removed": {},
         "rows_out": 320},
        {"stage": "tokens", "name": "tokens", "kind": "annotate", "rows_in": 320, "removed": {}, "rows_out": 320},
        {"stage": "write", "name": "write", "kind": "write", "rows_in": 320, "removed": {}, "rows_out": 320},
    ]
    assert manifest["output"]["rows_by_source"] == {WARC: 200, WET: 40, "sample-books": 40, "sample-news": 40}
    # characters and tokens through the stages, observed by the write: what data/ holds, plus what was removed
    kept = pd.read_parquet(out / "data", columns=["text", "n_tokens"])
    removed = pd.read_parquet(out / "removed", columns=["text"])
    chars = int(kept["text"].str.len().sum())
    assert [v["chars_out"] for v in volume] == [chars] * 5
    assert volume[0]["chars_in"] == chars + int(removed["text"].fillna("").str.len().sum())
    assert [v.get("tokens_out") for v in volume] == [None, None, None, int(kept["n_tokens"].sum()),
                                                     int(kept["n_tokens"].sum())]
    assert manifest["output"]["removed_by_reason_and_source"] == {
        "read:empty_text": {WARC: 1}, "read:http_status": {WARC: 2}, "read:not_html": {WARC: 3}}
    assert [i["n_files"] for i in manifest["inputs"]] == [2, 1, 1, 1]
    assert manifest["versions"]["pyspark"].startswith("4.")
    assert result.skipped is False


def test_ids_are_stable_unique_and_derived_from_records(spark, sample_run, sample_dir):
    out, _ = sample_run
    df = spark.read.parquet(str(out / "data"))
    assert df.count() == 320 and df.select("id").distinct().count() == 320
    index = json.loads((sample_dir / "index.json").read_text())
    first = index["pages"][0]["url"]
    row = df.where(F.col("url") == first).collect()  # small: one page
    assert len(row) == 1 and row[0]["id"] == stable_id(WARC, response_id(first))
    assert row[0]["meta"]["warc_record_id"] == response_id(first)
    wet = df.where(F.col("url") == "https://de.example.org/wet/00000").collect()[0]  # small: one page
    refers = f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, '1234|https://de.example.org/wet/00000|wet-response')}>"
    # Ids come from each record's own WARC-Record-ID; `meta.page_id` (the response record) joins WARC and WET.
    assert wet["id"] == stable_id(WET, wet["meta"]["warc_record_id"]) and wet["meta"]["page_id"] == refers
    assert wet["meta"]["cc_lang"] == "deu"
    assert wet["meta"]["decode_errors"] == "2" and wet["text"].endswith("\ufffd\ufffd broken bytes")


def test_column_mappings(spark, sample_run):
    out, _ = sample_run
    df = spark.read.parquet(str(out / "data"))
    news = df.where(F.col("url") == "https://news.example.com/es/2").collect()[0]  # small: one row
    assert news["source"] == "sample-news"
    assert news["meta"]["dump"] == "CC-MAIN-2024-10" and news["meta"]["language_score"] == "0.808"
    assert news["id"] == stable_id("sample-news", news["meta"]["orig_id"])
    book = df.where(F.col("url") == "https://books.example.org/en/1").collect()[0]  # small: one row
    assert book["id"] == stable_id("sample-books", "dolma-00001")
    assert json.loads(book["meta"]["metadata"]) == {"url": "https://books.example.org/en/1", "lang": "en"}
    assert book["meta"]["added"] == "2024-04-01" and book["meta"]["line"] == "2"


def test_removed_rows_are_written_with_reason(spark, sample_run):
    out, _ = sample_run
    removed = spark.read.parquet(str(out / "removed"))
    rows = {r["url"]: r["removed_by"] for r in removed.select("url", "removed_by").collect()}  # small: 6 rows
    assert rows == {
        "https://en.example.org/logo.png": "read:not_html", "https://en.example.org/report.pdf": "read:not_html",
        "https://en.example.org/style.css": "read:not_html", "https://en.example.org/missing": "read:http_status",
        "https://en.example.org/old": "read:http_status", "https://en.example.org/blank": "read:empty_text"}


def test_rerun_skips_and_changed_config_reruns(spark, sample_dir, tmp_path):
    data = sample_config(sample_dir, tmp_path / "out")
    first = run_config(spark, tmp_path / "c.yaml", data)
    second = run_config(spark, tmp_path / "c.yaml", data)
    assert (first.skipped, second.skipped) == (False, True)
    assert second.manifest["finished_at"] == first.manifest["finished_at"]
    third = run_config(spark, tmp_path / "c.yaml", data, ["stages[4].keep_removed=false"])
    assert third.skipped is False
    removed = spark.read.parquet(str(tmp_path / "out" / "removed"))
    assert removed.count() == 6 and removed.where(F.col("text").isNotNull()).count() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "out"]  # no temp folders left


def test_failed_run_leaves_nothing_half_written(spark, sample_dir, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jsonl").write_text('{"text": "fine"}\n{"text": broken\n')
    data = sample_config(sample_dir, tmp_path / "out")
    data["sources"].append({"name": "broken", "format": "jsonl", "paths": str(bad / "*.jsonl")})
    with pytest.raises(Exception, match=r"x\.jsonl: line 2: invalid JSON"):
        run_config(spark, tmp_path / "c.yaml", data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "c.yaml"]
    data["sources"][-1]["on_error"] = "skip"
    result = run_config(spark, tmp_path / "c.yaml", data)
    assert result.manifest["output"]["removed_by_reason_and_source"]["read:bad_json"] == {"broken": 1}
    assert result.manifest["output"]["rows_by_source"]["broken"] == 1


def test_checkpointed_stage_resumes(spark, sample_dir, tmp_path):
    data = sample_config(sample_dir, tmp_path / "out", stages=[{"stage": "read", "checkpoint": True}, "write"])
    first = run_config(spark, tmp_path / "c.yaml", data)
    assert (tmp_path / "out.work" / "00-read" / "_SUCCESS").exists()
    assert [s["rows_out"] for s in first.manifest["stages"]] == [320, 320]
    data["stages"][1] = {"stage": "write", "partition_by": ["source"]}
    second = run_config(spark, tmp_path / "c.yaml", data)
    assert second.skipped is False and [s["rows_in"] for s in second.manifest["stages"]] == [326, 320]
    assert spark.read.parquet(str(tmp_path / "out" / "data")).count() == 320


def test_missing_parquet_column_is_a_clear_error(spark, sample_dir, tmp_path):
    data = sample_config(sample_dir, tmp_path / "out")
    data["sources"][3]["fields"] = {"text_field": "content"}
    with pytest.raises(ConfigError, match=r"sources\[3\]: .*news-00000\.parquet: column 'content' \(text_field\) not found"):
        run_config(spark, tmp_path / "c.yaml", data)


def test_hugging_face_datasets(spark, tmp_path):
    import datasets

    saved = tmp_path / "hf_saved"
    datasets.Dataset.from_dict({"content": [f"document {i}" for i in range(25)],
                                "link": [f"https://hf.example/{i}" for i in range(25)],
                                "score": [i / 10 for i in range(25)]}).save_to_disk(str(saved))
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"text": f"row {i}", "uid": f"u{i}"}) + "\n" for i in range(7)))
    data = {"name": "hf", "output": str(tmp_path / "out"), "sources": [
        {"name": "saved", "format": "hf", "dataset": str(saved), "shard_rows": 10,
         "fields": {"text_field": "content", "url_field": "link"}},
        {"name": "builder", "format": "hf", "dataset": "json", "data_files": [str(rows)],
         "fields": {"id_field": "uid"}}]}
    result = run_config(spark, tmp_path / "c.yaml", data)
    assert result.manifest["output"]["rows_by_source"] == {"builder": 7, "saved": 25}
    df = spark.read.parquet(str(tmp_path / "out" / "data"))
    doc = df.where(F.col("url") == "https://hf.example/12").collect()[0]  # small: one row
    assert doc["text"] == "document 12" and doc["meta"]["score"] == "1.2"
    assert doc["id"] == stable_id("saved", "part-00001.parquet:2")
    assert df.where(F.col("text") == "row 3").collect()[0]["id"] == stable_id("builder", "u3")  # small
    assert len(list((tmp_path / "out.work" / "hf" / "saved" / "data").glob("*.parquet"))) == 3  # committed staging

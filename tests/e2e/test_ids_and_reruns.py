"""Never mislabel: unique ids from full relative paths, string-typed text, fingerprints that include every
referenced file, and inputs read once per run."""

from __future__ import annotations

import json
import os
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from conftest import write_config
from tokenmill.errors import InputError
from tokenmill.pipeline import load_pipeline, run
from tokenmill.schema import stable_id


def run_pipeline(spark, tmp_path, sources, stages=None, name="c.yaml", **extra):
    data = {"name": "ids", "output": str(tmp_path / "out"), "sources": sources,
            "stages": stages or [{"stage": "read"}, {"stage": "write"}], **extra}
    return run(spark, load_pipeline(str(write_config(tmp_path / name, data))))


def test_parquet_files_of_the_same_name_in_different_folders_keep_unique_ids(spark, tmp_path):
    for lang in ("en", "de"):
        (tmp_path / "pq" / f"lang={lang}").mkdir(parents=True)
        pq.write_table(pa.table({"text": [f"{lang} document {i}" for i in range(20)]}),
                       tmp_path / "pq" / f"lang={lang}" / "part-0.parquet")
    result = run_pipeline(spark, tmp_path, [{"name": "pq", "format": "parquet", "paths": str(tmp_path / "pq")}])
    df = spark.read.parquet(str(tmp_path / "out" / "data"))
    assert result.manifest["output"]["rows"] == 40 and df.select("id").distinct().count() == 40
    row = df.where(F.col("text") == "de document 3").first()
    assert row["id"] == stable_id("pq", "lang=de/part-0.parquet:3")


def test_one_big_parquet_file_is_read_by_several_tasks_with_the_ids_of_a_whole_read(spark, tmp_path):
    """Spark splits a Parquet file at row-group boundaries (spark.sql.files.maxPartitionBytes, 128 MiB by
    default): one multi-GB file is not one task. Ids (relative path + row index in the file) are the same
    whichever task reads a row."""
    from tokenmill.io.sources import ParquetSource, read_source

    (tmp_path / "pq").mkdir()
    texts = [f"document {i} " + "words of filler text " * 30 for i in range(8000)]
    pq.write_table(pa.table({"text": texts}), tmp_path / "pq" / "big.parquet", row_group_size=500,
                   compression="none")
    src = ParquetSource(name="pq", format="parquet", paths=[str(tmp_path / "pq")])
    before = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", str(1 << 20))  # the file is ~5 MB: 16 row groups
    try:
        df = read_source(spark, src, "sources[0]", str(tmp_path / "work"))
        sizes = df.rdd.glom().map(len).collect()  # small: one count per partition
        rows = {r["text"]: r["id"] for r in df.select("id", "text").collect()}  # small: 8,000 rows
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", before)
    assert len([n for n in sizes if n]) >= 4 and sum(sizes) == 8000
    assert all(n % 500 == 0 for n in sizes)  # whole row groups per task
    assert rows[texts[0]] == stable_id("pq", "big.parquet:0")
    assert rows[texts[7777]] == stable_id("pq", "big.parquet:7777")
    assert len(set(rows.values())) == 8000


def test_jsonl_globs_with_equal_file_names_keep_unique_ids(spark, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.jsonl").write_text("".join(json.dumps({"text": f"{folder}{i}"}) + "\n" for i in range(3)))
    src = {"name": "j", "format": "jsonl", "paths": [str(tmp_path / "a" / "*.jsonl"), str(tmp_path / "b" / "*.jsonl")]}
    run_pipeline(spark, tmp_path, [src])
    df = spark.read.parquet(str(tmp_path / "out" / "data"))
    assert df.count() == 6 and df.select("id").distinct().count() == 6
    assert df.where(F.col("text") == "b1").first()["id"] == stable_id("j", "b/x.jsonl:2")


@pytest.mark.parametrize("arrow_tail", [False, True])
def test_duplicate_ids_fail_the_write_with_a_clear_message(spark, tmp_path, caplog, arrow_tail):
    """Also where the write task runs the last stage and checks ids by their hashes (io/arrow_write.py)."""
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"id": "doc-6" if i == 2 else f"doc-{i}",
                                                          "text": f"t{i}"}) + "\n" for i in range(8)))
    (tmp_path / "b.jsonl").write_text(json.dumps({"q": " ".join(f"w{i}" for i in range(20))}) + "\n")
    src = {"name": "j", "format": "jsonl", "paths": str(tmp_path / "d.jsonl"), "fields": {"id_field": "id"}}
    stages = None
    if arrow_tail:
        stages = ["read", {"stage": "decontaminate", "max_docs_per_ngram": 0,
                           "benchmarks": [{"name": "b", "path": str(tmp_path / "b.jsonl"), "fields": ["q"]}]}, "write"]
    with pytest.raises(InputError, match=rf"{tmp_path / 'out'}: ids: 1 id\(s\) appear more than once .*\(j\) x2: {tmp_path}/d\.jsonl [37] \| .*"
                                         r"give the source an `id_field` whose values are unique"):
        with caplog.at_level("INFO", logger="tokenmill"):
            run_pipeline(spark, tmp_path, [src], stages)
    assert ("decontaminate run in the write task" in caplog.text) == arrow_tail
    assert not (tmp_path / "out").exists()


def test_parquet_text_column_must_be_a_string(spark, tmp_path):
    pq.write_table(pa.table({"text": list(range(5))}), tmp_path / "ints.parquet")
    with pytest.raises(InputError, match=r"ints\.parquet: column 'text' \(text_field\): is bigint, not a string"):
        run_pipeline(spark, tmp_path, [{"name": "p", "format": "parquet", "paths": str(tmp_path / "ints.parquet")}])


def _touch_later(path):
    later = time.time() + 5
    os.utime(path, (later, later))


def test_rerun_reruns_when_a_referenced_file_changes(spark, tmp_path):
    from conftest import own_tokenizer

    (tmp_path / "docs.jsonl").write_text("".join(json.dumps({"text": f"the quick brown fox number {i} jumps over the "
                                                             "lazy dog again and again"}) + "\n" for i in range(6)))
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"question": "what is the airspeed of an unladen swallow in the summer time",
                                 "answer": "about eleven metres a second"}) + "\n")
    words = tmp_path / "bad_words.txt"
    words.write_text("zyzzyva\n")
    tok = own_tokenizer(tmp_path / "tok")
    src = [{"name": "d", "format": "jsonl", "paths": str(tmp_path / "docs.jsonl")}]
    stages = [{"stage": "read"},
              {"stage": "decontaminate", "benchmarks": [{"name": "b", "path": str(bench), "fields": ["question"]}]},
              {"stage": "word_filter", "lists": {"en": str(words)}},
              {"stage": "tokens", "tokenizer": tok},
              {"stage": "write"}]
    assert run_pipeline(spark, tmp_path, src, stages).skipped is False
    assert run_pipeline(spark, tmp_path, src, stages).skipped is True
    for changed in (bench, words, tmp_path / "tok" / "tokenizer.json"):
        _touch_later(changed)
        assert run_pipeline(spark, tmp_path, src, stages).skipped is False, changed
        assert run_pipeline(spark, tmp_path, src, stages).skipped is True


def test_sample_pipeline_opens_each_input_file_once(sample_run):
    _, result = sample_run
    streamed = sum(i["n_files"] for i in result.manifest["inputs"] if i["format"] in ("warc", "wet", "jsonl"))
    assert streamed > 0
    assert result.manifest["stage_reports"]["read"]["files_opened"] == streamed

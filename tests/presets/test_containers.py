"""Whole-file record containers (a JSON array, an object holding one, CSV/TSV) read like JSONL: one row
per record, numbered, and a file that cannot be read is a clear error or, with `on_error: skip`, one
counted skip; dataset fields named like tokenmill's own meta keys are kept under `field.<name>`."""

from __future__ import annotations

import json

import pytest
from pydantic import TypeAdapter

from tokenmill.io.sources import Source, read_source
from tokenmill.schema import REMOVED_BY


def _read(spark, tmp_path, **source):
    src = TypeAdapter(Source).validate_python({"name": "c", "format": "jsonl", **source})
    rows = read_source(spark, src, "sources[0]", str(tmp_path / "work")).collect()  # small: a few rows
    return [r.asDict(recursive=True) for r in rows]


def test_json_array_and_object_records(spark, tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([{"text": "one", "file": "x.wav"}, {"text": "two"}, 3]))
    rows = _read(spark, tmp_path, paths=[str(tmp_path / "a.json")], container="array", on_error="skip")
    kept = [r for r in rows if r[REMOVED_BY] is None]
    assert [r["text"] for r in kept] == ["one", "two"]
    assert kept[0]["meta"]["field.file"] == "x.wav" and kept[0]["meta"]["file"].endswith("a.json")
    assert kept[1]["meta"]["line"] == "2"
    assert [(r[REMOVED_BY], r["meta"]["where"]) for r in rows if r[REMOVED_BY]] == [("read:bad_json", "record 3")]
    (tmp_path / "b.json").write_text(json.dumps({"version": 1, "data": [{"caption": "a dog"}]}))
    rows = _read(spark, tmp_path, paths=[str(tmp_path / "b.json")], container="array", records_key="data",
                 fields={"text_field": "caption"})
    assert [r["text"] for r in rows] == ["a dog"]


def test_unreadable_container_is_an_error_or_a_counted_skip(spark, tmp_path):
    (tmp_path / "c.json").write_text('{"data": [1, 2')
    with pytest.raises(Exception, match="c.json.*cannot read the array container"):
        _read(spark, tmp_path, paths=[str(tmp_path / "c.json")], container="array")
    rows = _read(spark, tmp_path, paths=[str(tmp_path / "c.json")], container="array", on_error="skip")
    assert [r[REMOVED_BY] for r in rows] == ["read:bad_file"]
    (tmp_path / "d.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(Exception, match="expected an object with a list under 'data'"):
        _read(spark, tmp_path, paths=[str(tmp_path / "d.json")], container="array", records_key="data")


def test_csv_with_quoted_fields_tsv_as_published(spark, tmp_path):
    (tmp_path / "e.csv").write_text('id,caption\n1,"a cat, asleep"\n2,"two\nlines"\n')
    rows = _read(spark, tmp_path, paths=[str(tmp_path / "e.csv")], container="csv",
                 fields={"text_field": "caption", "id_field": "id"})
    assert [(r["text"], r["meta"]["orig_id"]) for r in rows] == [("a cat, asleep", "1"), ("two\nlines", "2")]
    # TSV as Common Voice and OpenSLR publish it: no quoting, a quote is part of the text
    (tmp_path / "f.tsv").write_text('sentence\tup_votes\nhello there\t2\n"Quoted," she said.\t1\n')
    rows = _read(spark, tmp_path, paths=[str(tmp_path / "f.tsv")], container="tsv", fields={"text_field": "sentence"})
    assert [(r["text"], r["meta"]["up_votes"]) for r in rows] == [("hello there", "2"), ('"Quoted," she said.', "1")]
    # and without a header line (OpenSLR's utt_spk_text.tsv), named by `column_names`
    (tmp_path / "g.tsv").write_text("0a1b2c3d4e\t0a1b2\tनमस्ते संसार\n")
    rows = _read(spark, tmp_path, paths=[str(tmp_path / "g.tsv")], container="tsv",
                 column_names=["utterance_id", "speaker_id", "text"], fields={"id_field": "utterance_id"})
    assert [(r["text"], r["meta"]["orig_id"], r["meta"]["speaker_id"]) for r in rows] == [
        ("नमस्ते संसार", "0a1b2c3d4e", "0a1b2")]

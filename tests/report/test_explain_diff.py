"""`explain` and `diff` on written runs: a removed duplicate names its stage, reason and survivor; a kept
document says so; an unknown id gets the closest ids; a run without a manifest is named as unfinished;
two runs differing in one rule give the changed key, the changed counts and the ids that moved."""

from __future__ import annotations

import argparse
import json

import pytest

from conftest import write_config
from tokenmill.errors import ConfigError
from tokenmill.pipeline import load_pipeline, run
from tokenmill.report.diff import diff_runs, format_diff
from tokenmill.report.explain import explain, format_explanation
from tokenmill.report.job import explain_job

DOCS = [
    {"id": "doc-001", "url": "https://a.example/1", "text": "The river flooded the lower town after three days of rain."},
    {"id": "doc-002", "url": "https://a.example/2", "text": "The river flooded the lower town after three days of rain!"},
    {"id": "doc-003", "url": "https://a.example/3", "text": "Short one."},
    {"id": "doc-004", "url": "https://a.example/4", "text": "A recipe for bread needs flour, water, salt and time to rise."},
    {"id": "doc-005", "url": "https://a.example/5", "text": "A slightly longer note."},
]


def _run(spark, tmp_path, name: str, min_length: int):
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    data = {"name": name, "output": str(tmp_path / name), "work_dir": str(tmp_path / "work"),
            "sources": [{"name": "news", "format": "jsonl", "paths": [str(src)],
                         "fields": {"id_field": "id", "url_field": "url"}}],
            "stages": ["read", {"stage": "filter_rows", "id": "length", "when": f"length(text) < {min_length}",
                                "reason": "too_short"},
                       "exact_dedup", {"stage": "write", "keep_removed": True}]}
    return run(spark, load_pipeline(str(write_config(tmp_path / f"{name}.yaml", data))))


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    first = _run(spark, tmp, "a", 11)
    second = _run(spark, tmp, "b", 30)
    return tmp, first, second


def test_explain_a_duplicate_a_kept_and_an_unknown_document(runs):
    tmp, first, _ = runs
    out = str(tmp / "a")
    kept = [r for r in explain(out, "https://a.example/1")["rows"]]
    dup = explain(out, "https://a.example/2")["rows"]
    winner, loser = (kept, dup) if kept[0]["status"] == "kept" else (dup, kept)
    assert winner[0]["status"] == "kept"
    assert loser[0]["status"] == "removed" and loser[0]["stage"] == "exact_dedup" and loser[0]["reason"] == "duplicate"
    assert loser[0]["survivor"]["id"] == winner[0]["id"] and loser[0]["survivor"]["kept"]
    short = explain(out, "https://a.example/3")["rows"][0]
    assert (short["stage"], short["reason"]) == ("length", "too_short")
    assert explain(out, "doc-003")["rows"][0]["id"] == short["id"]  # the source's own id (meta.orig_id) finds it
    lines = format_explanation(explain(out, "https://a.example/3"))
    assert "removed by stage 'length' (filter_rows), reason: too_short" in lines[1]
    unknown = explain(out, winner[0]["id"][:-2] + "zz")
    assert unknown["found"] is False and unknown["did_you_mean"][0] == winner[0]["id"]
    args = argparse.Namespace(output=out, key="no-such-thing", json=False)
    assert explain_job(args) == 1


def test_explain_without_a_manifest_names_the_unfinished_run(tmp_path):
    (tmp_path / "half").mkdir()
    with pytest.raises(ConfigError, match="no manifest.json: the run did not finish"):
        explain(str(tmp_path / "half"), "x")


def test_diff_of_two_runs(runs):
    tmp, first, second = runs
    info = diff_runs(str(tmp / "a"), str(tmp / "b"))
    assert info["rows"] == [3, 2]
    assert info["config"] == {"stages[1].when": ["length(text) < 11", "length(text) < 30"]}
    length = next(s for s in info["stages"] if s["stage"] == "length")
    assert length["removed"] == [{"too_short": 1}, {"too_short": 2}]
    moved = info["kept_then_removed"]
    assert moved["count"] == 1 and moved["sample"][0]["removed_by"] == "length:too_short"
    assert info["removed_then_kept"]["count"] == 0
    text = "\n".join(format_diff(info))
    assert "too_short 1->2" in text and "stages[1].when: 'length(text) < 11' -> 'length(text) < 30'" in text

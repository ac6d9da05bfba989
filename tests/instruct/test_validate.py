"""validate_dataset: the mapping and why, every problem counted with its example rows, token lengths with a
real tokenizer, duplicate prompts, languages and the verdict."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, own_tokenizer
from instruct.instruct_fixtures import FIXTURES
from tokenmill.instruct.job import validate_dataset
from tokenmill.instruct.validate import CLEAN, READY, UNUSABLE


def run(spark, name: str, use: str, tmp_path, overrides=(), **options) -> dict:
    path = name if "/" in name else str(FIXTURES / f"{name}.jsonl")
    options.setdefault("langid", False)
    return validate_dataset(path, use, list(overrides), str(tmp_path / "report"), spark=spark, **options)


def wheres(entry: dict) -> list[str]:
    return [e["where"] for e in entry["examples"]]


def test_sharegpt_every_problem_with_its_rows(spark, tmp_path):
    report = run(spark, "sharegpt", "sft", tmp_path)
    assert report["columns"] == {"id": "string", "conversations": "list<struct<from: string, value: string>>"}
    assert report["mapping"]["layout"] == "sharegpt" and not report["mapping"]["canonical"]
    assert {k: (v["count"], wheres(v)) for k, v in report["rows"]["removed_at_read"].items()} == {
        "bad_json": (1, ["line 9"]), "bad_message": (1, ["line 7"]), "missing_role": (1, ["line 8"])}
    assert {k: (v["count"], wheres(v)) for k, v in report["problems"].items()} == {
        "assistant_first": (1, ["line 3"]), "same_role_twice": (1, ["line 4"]), "empty_turn": (1, ["line 5"]),
        "unknown_role": (1, ["line 6"])}
    assert report["rows"] == {**report["rows"], "read": 9, "mapped": 6, "clean": 2, "usable": 6}
    verdict = report["verdict"]
    assert verdict["status"] == CLEAN
    assert any(c.startswith("tokenmill convert_format --source") and "--set instruct.layout=sharegpt" in c
               for c in verdict["commands"])
    assert any(c.startswith("tokenmill filter_dataset") for c in verdict["commands"])
    written = json.loads((tmp_path / "report" / "validation.json").read_text())
    assert written["verdict"] == verdict


def test_messages_problems(spark, tmp_path):
    report = run(spark, "messages", "sft", tmp_path)
    assert report["mapping"]["canonical"]
    assert {k: wheres(v) for k, v in report["problems"].items()} == {
        "system_not_first": ["line 2"], "no_assistant": ["line 3"], "mojibake": ["line 4"],
        "truncated_response": ["line 5"]}
    assert wheres(report["rows"]["removed_at_read"]["non_string_content"]) == ["line 7"]


def test_preference_and_grpo_problems(spark, tmp_path):
    dpo = run(spark, "hh_rlhf", "dpo", tmp_path)
    assert {k: wheres(v) for k, v in dpo["problems"].items()} == {
        "chosen_equals_rejected": ["line 2"], "prompt_not_shared": ["line 3"]}
    grpo = run(spark, "math", "grpo", tmp_path)
    assert grpo["answers"] == "numbers or expressions (math)"
    assert {k: wheres(v) for k, v in grpo["problems"].items()} == {"answer_not_verifiable": ["line 3"]}
    orca = run(spark, "orca_dpo", "dpo", tmp_path, ["instruct.fields.prompt=question"])
    assert orca["mapping"]["layout"] == "dpo" and orca["mapping"]["canonical"]
    assert {k: v["count"] for k, v in orca["problems"].items()} == {"chosen_equals_rejected": 1}


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _chat(i: int, prompt: str) -> dict:
    return {"id": f"c{i}", "messages": [{"role": "user", "content": prompt},
                                        {"role": "assistant", "content": f"Answer number {i}."}]}


def test_clean_canonical_data_is_ready_with_token_lengths_and_duplicates(spark, tmp_path):
    long = "please write a detailed summary of the history of the printing press in europe and asia"
    prompts = [f"question {w} about the weather today" for w in ("one", "two", "three", "four", "five", "six")]
    prompts += [long, long.replace("asia", "africa"), "the quick brown fox", "the quick brown fox"]
    path = _write(tmp_path / "chat.jsonl", [_chat(i, p) for i, p in enumerate(prompts)])
    tok = own_tokenizer(tmp_path / "tok")
    report = run(spark, path, "sft", tmp_path, tokenizer=tok, max_length=12)
    assert report["verdict"]["status"] == READY and report["problems"] == {}
    d = report["duplicates"]
    assert d["exact_prompt_rate"] == 0.1  # one of ten prompts repeats another
    assert d["near_prompt_rate"] == 0.2  # that one, and the printing-press prompt with its last word changed (Jaccard 13/15)
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(tok)
    lengths = [len(hf(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    replies = [len(hf(f"Answer number {i}.", add_special_tokens=False)["input_ids"]) for i in range(10)]
    t = report["tokens"]
    assert (t["prompt"]["min"], t["prompt"]["max"]) == (min(lengths), max(lengths))
    assert (t["response"]["min"], t["response"]["max"]) == (min(replies), max(replies))
    totals = [p + r for p, r in zip(lengths, replies, strict=True)]
    assert t["share_over_max_length"] == sum(x > 12 for x in totals) / 10


def test_languages_come_from_langid(spark, tmp_path):
    report = run(spark, "sharegpt", "sft", tmp_path, langid=True)
    assert list(report["languages"]["top"]) == ["en"]


def test_unusable_data_and_no_mapping(spark, tmp_path):
    path = _write(tmp_path / "q.jsonl", [{"messages": [{"role": "user", "content": f"q{i}"}]} for i in range(3)]
                  + [_chat(9, "a real question")])
    report = run(spark, path, "sft", tmp_path)
    assert report["verdict"]["status"] == UNUSABLE
    assert "only 25.0% of 4 rows" in report["verdict"]["reasons"][0] and "no_assistant (3)" in report["verdict"]["reasons"][0]
    nothing = run(spark, "alpaca", "dpo", tmp_path)
    assert nothing["verdict"]["status"] == UNUSABLE and "cannot feed dpo" in nothing["verdict"]["reasons"][0]


@pytest.mark.parametrize("name,use,code", [("alpaca", "dpo", 2)])
def test_cli_exit_code_and_table(tmp_path, name, use, code):
    out = subprocess.run([sys.executable, "-m", "tokenmill", "validate_dataset", "--source",
                          str(FIXTURES / f"{name}.jsonl"), "--for", use, "--output", str(tmp_path / "v")],
                         cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "lib")})
    assert out.returncode == code, out.stderr[-2000:]
    assert "verdict   unusable" in out.stdout and "cannot feed dpo" in out.stdout

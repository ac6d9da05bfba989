"""The Arrow fast path gives exactly the rows of the per-record path, and declines chunks it cannot map."""

from __future__ import annotations

import json

import pytest

from tokenmill.instruct.fastmap import FastMapper
from tokenmill.instruct.layouts import MapOptions
from tokenmill.instruct.read import Mapper


def _records(layout: str) -> list[dict]:
    k_role, k_text, field = ("from", "value", "conversations") if layout == "sharegpt" else ("role", "content", "messages")
    roles = ["human", "gpt"] if layout == "sharegpt" else ["user", "assistant"]
    out = []
    for i in range(40):
        turns = [{k_role: roles[t % 2], k_text: f"turn {t} of «{i}» — naïve café {'x' * (i % 5)}"} for t in range(i % 6)]
        if i % 7 == 3:
            turns.insert(0, {k_role: " System ", k_text: "be brief"})
        if i % 11 == 5:
            turns.append({k_role: "narrator", k_text: ""})  # unknown role, empty content: kept, reported later
        # scalars go to meta as str() gives them: bools, negative ints, floats (1e-05), nulls (left out) and
        # strings over META_MAX_CHARS (left out)
        out.append({"id": f"r{i}", "flag": i % 2 == 0, "score": i / 4 if i % 9 else 1e-05, field: turns,
                    "nested": {"a": 1}, "n": -i * 1000, "maybe": None if i % 3 else "v", "note": "é" * (190 + i % 20)})
    return out


@pytest.mark.parametrize("layout", ["sharegpt", "messages"])
def test_fast_path_equals_per_record_path(layout):
    records = _records(layout)
    mapper = Mapper("src", "sft", MapOptions(layout=layout), None)
    assert FastMapper.applies(mapper, records)
    fast = FastMapper(mapper, records)
    lines = [(i + 1, (json.dumps(r, ensure_ascii=False) + "\n").encode()) for i, r in enumerate(records)]
    batch = fast.batch(lines, "/data/x.jsonl", "x.jsonl")
    assert batch is not None
    got = batch.to_pylist()
    want = [mapper.row(r, f"x.jsonl:{n}", "/data/x.jsonl", f"line {n}") for (n, _), r in zip(lines, records, strict=True)]
    assert {k for w in want for k in w["meta"]} == {"id", "flag", "score", "n", "maybe", "note", "file", "where"}
    for g, w in zip(got, want, strict=True):
        assert g.pop("meta") == list(w.pop("meta").items())
        assert g == w


def test_fast_path_declines_what_it_cannot_map():
    records = _records("sharegpt")
    mapper = Mapper("src", "sft", MapOptions(layout="sharegpt"), None)
    fast = FastMapper(mapper, records)
    good = (1, json.dumps(records[1]).encode())
    for bad in (b'{"conversations": [{"from": "human", "value": 42}]}', b'{"conversations": ["text"]}',
                b'{"id": "x"}', b'{"conversations": [{"value": "no role"}]}', b'{broken'):
        assert fast.batch([good, (2, bad)], "/f", "f") is None
    assert not FastMapper.applies(Mapper("src", "sft", MapOptions(layout="sharegpt"), "id"), records)  # id_field
    assert not FastMapper.applies(mapper, [{"system": "s", "conversations": []}])  # a system-prompt field

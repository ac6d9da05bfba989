"""A segment whose last stages have Arrow forms runs them in the write task and writes Parquet there: the
output (kept and removed rows, columns and types), the manifest's counts, volumes and stage reports are
those of the Spark path, and a failed task attempt's files never reach the output."""

from __future__ import annotations

import json
import random

import pyarrow.parquet as pq
import pytest

from conftest import write_config
from tokenmill.io import arrow_write

QUESTIONS = ["Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May",
             "Weng earns 12 dollars an hour for babysitting and yesterday she just did 50 minutes of babysitting"]


def _rows(n: int):
    rng = random.Random(3)
    words = "the cat sat on a mat while naïve café owners in Zürich counted 42 apples".split()
    for i in range(n):
        turns = [{"from": "human", "value": " ".join(rng.choice(words) for _ in range(rng.randint(1, 30)))},
                 {"from": "gpt", "value": " ".join(rng.choice(words) for _ in range(rng.randint(0, 30))) + "."}]
        if i % 23 == 0:
            turns[1]["value"] = "CafÃ© " + turns[1]["value"]
        if i % 29 == 0:
            turns[1]["value"] = turns[1]["value"][:-1] + " and"
        if i % 9 == 0:
            turns[0]["value"] = "Please solve: " + QUESTIONS[i % 2] + ". Thanks"
        if i % 13 == 0:
            turns.insert(0, {"from": "gpt", "value": "Hello!"})
        if i % 17 == 0:
            turns.append({"from": "gpt", "value": "and more"})
        yield {"conversations": turns, "score": i % 5}


def _config(tmp_path, action: str, keep_removed: bool, out: str) -> dict:
    data = tmp_path / "convs.jsonl"
    if not data.exists():
        data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _rows(600)))
        (tmp_path / "bench.jsonl").write_text("".join(json.dumps({"question": q, "answer": "72"}) + "\n"
                                                      for q in QUESTIONS))
    return {"name": "arrow", "output": str(tmp_path / out),
            "sources": [{"name": "convs", "format": "jsonl", "paths": [str(data)],
                         "instruct": {"for": "sft", "layout": "sharegpt"}}],
            "stages": ["read", {"stage": "instruct_filter"}, {"stage": "instruct_format", "template": "chatml"},
                       {"stage": "decontaminate", "benchmarks": [{"name": "items", "path": str(tmp_path / "bench.jsonl"),
                                                                  "fields": ["question", "answer"]}],
                        "action": action, "max_docs_per_ngram": 0, "n": 8},
                       {"stage": "write", "keep_removed": keep_removed}]}


def _read(folder) -> dict:
    out = {}
    for part in ("data", "removed"):
        table = pq.read_table(folder / part) if (folder / part).exists() and any((folder / part).rglob("*.parquet")) else None
        out[part] = None if table is None else sorted(table.to_pylist(), key=lambda r: r["id"])
        out[part + "_schema"] = None if table is None else [(f.name, str(f.type)) for f in table.schema
                                                            if f.name != "removed_by"]
    return out


def _manifest(folder) -> dict:
    m = json.loads((folder / "manifest.json").read_text())
    return {"stages": m["stages"], "reports": m["stage_reports"], "output": {k: v for k, v in m["output"].items()
                                                                             if k not in ("data", "removed", "path")}}


@pytest.mark.parametrize(("action", "keep_removed"), [("flag", False), ("remove", True), ("remove", False)])
def test_arrow_tail_writes_what_the_spark_path_writes(spark, tmp_path, monkeypatch, caplog, action, keep_removed):
    from tokenmill.pipeline import load_pipeline, run

    cfg = write_config(tmp_path / "a.yaml", _config(tmp_path, action, keep_removed, "arrow"))
    with caplog.at_level("INFO", logger="tokenmill"):
        run(spark, load_pipeline(str(cfg)))
    assert "instruct_filter, instruct_format, decontaminate run in the write task" in caplog.text
    with monkeypatch.context() as m:
        m.setattr(arrow_write, "supported", lambda *a: False)
        run(spark, load_pipeline(str(write_config(tmp_path / "s.yaml", _config(tmp_path, action, keep_removed, "spark")))))
    got, want = _read(tmp_path / "arrow"), _read(tmp_path / "spark")
    assert got == want
    assert _manifest(tmp_path / "arrow") == _manifest(tmp_path / "spark")
    stages = {s["stage"]: s for s in _manifest(tmp_path / "arrow")["stages"]}
    # i % 13: assistant first; i % 23: mojibake (3 of them were assistant first: 0, 299, 598); i % 17: two
    # replies in a row (36, less 0, 221, 442 and 391, counted before); i % 29: replies cut on "and". Every
    # 9th row quotes a benchmark question: 67, less the 12 removed before (by i % 13, 23, 17 and 29)
    assert stages["instruct_filter"]["removed"] == {"assistant_first": 47, "mojibake": 24, "same_role_twice": 32,
                                                    "truncated_response": 7}
    quoting = sum("Please solve" in r["text"] for r in _read(tmp_path / "arrow")["data"]) if action == "flag" else 0
    if action == "remove":
        assert stages["decontaminate"]["removed"] == {"contaminated": 55}
    else:
        assert quoting == 55 and all(bool(r["contaminated_by"]) == ("Please solve" in r["text"]) for r in got["data"])


def test_files_of_attempts_spark_did_not_count_are_deleted(spark, tmp_path):
    """Only the files the successful task attempts reported reach the output: a file another attempt left
    in the staging folder (here planted before the job) is deleted, and the counts do not see it."""
    df = spark.createDataFrame([(f"d{i}", "src", None, "x" * i, None if i % 3 else "f:short") for i in range(30)],
                               "id string, source string, url string, text string, removed_by string")
    dest = tmp_path / "out"
    stray = dest / "_all" / "removed_by=f%3Ashort" / "part-00000-999.parquet"
    stray.parent.mkdir(parents=True)
    pq.write_table(df.limit(5).drop("removed_by").toArrow(), stray)
    written = arrow_write.write_arrow(df.repartition(3), [], str(dest), keep_removed=True)
    counts, volume = written.counts, written.volume
    assert counts == {"kept": 20, "kept_by_source": {"src": 20}, "removed": {"f:short": {"src": 10}}}
    assert volume[None][:2] == [20, sum(i for i in range(30) if i % 3)]
    assert volume["f:short"][:2] == [10, sum(i for i in range(30) if i % 3 == 0)]
    assert not (dest / "_all").exists() and not any(p.name == stray.name for p in dest.rglob("*.parquet"))
    assert arrow_write.escape_partition("a:b/c=d e%") == "a%3Ab%2Fc%3Dd e%25"


@pytest.mark.parametrize("kind", ["two_sources", "documents"])
def test_arrow_tail_after_a_union_and_on_plain_documents(spark, tmp_path, monkeypatch, caplog, kind):
    """Two sources (the write task reads Spark's batches of the union, not the files) and plain text
    documents (decontaminate's Arrow form alone) write what the Spark path writes."""
    from tokenmill.pipeline import load_pipeline, run

    def config(out: str) -> dict:
        cfg = _config(tmp_path, "remove", True, out)
        if kind == "two_sources":
            cfg["sources"].append({**cfg["sources"][0], "name": "again"})
        else:
            docs = tmp_path / "docs.jsonl"
            docs.write_text("".join(json.dumps({"text": " ".join(t["value"] for t in r["conversations"])}) + "\n"
                                    for r in _rows(300)))
            cfg["sources"] = [{"name": "docs", "format": "jsonl", "paths": [str(docs)]}]
            cfg["stages"] = ["read", cfg["stages"][3], cfg["stages"][4]]
        return cfg

    with caplog.at_level("INFO", logger="tokenmill"):
        run(spark, load_pipeline(str(write_config(tmp_path / "a.yaml", config("arrow")))))
    assert "decontaminate run in the write task" in caplog.text
    with monkeypatch.context() as m:
        m.setattr(arrow_write, "supported", lambda *a: False)
        run(spark, load_pipeline(str(write_config(tmp_path / "s.yaml", config("spark")))))
    assert _read(tmp_path / "arrow") == _read(tmp_path / "spark")
    assert _manifest(tmp_path / "arrow") == _manifest(tmp_path / "spark")
    stages = {s["stage"]: s for s in _manifest(tmp_path / "arrow")["stages"]}
    assert stages["decontaminate"]["removed"] == {"contaminated": 110 if kind == "two_sources" else 34}

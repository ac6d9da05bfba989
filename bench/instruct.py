"""Benchmark: validate + convert to text + decontaminate instruction data, tokenmill in Spark local[2] against
the same work written with `datasets` (`load_dataset` + `map` + `filter` + `to_parquet`) in one process.

Data: generated ShareGPT-layout conversations (`conversations` of {from, value}) of 2-8 turns, each turn 1-3
English sentences of the sample corpus, some with a system turn; 1% quote a benchmark question (GSM8K-style
items from bench/decontam.py) in a user turn, 0.5% start with the assistant, 0.5% have an empty reply.
tokenmill: one pipeline `read (instruct sft) -> instruct_filter (every problem) -> instruct_format (chatml,
into text) -> decontaminate (13-grams, flag, no common-phrase pass) -> write`. datasets: a batched `map` that maps the
turns, runs the same eight checks, renders chatml and looks up 13-gram hashes of the benchmark, then `filter`
and `to_parquet` (what users write today). Reported: rows per second per core (Spark: wall time x 2 cores),
and the rows each side flagged; the same pipeline once more as a user runs it (`python -m tokenmill pipeline`,
a fresh process, cold). Results: bench/results/instruct.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "bench"))

from decontam import make_items  # noqa: E402
from tokenmill.sample.texts import SENTENCES  # noqa: E402

ROLES = {"human": "user", "gpt": "assistant", "system": "system"}


def make_rows(n: int, items: list[dict], rng: random.Random):
    for i in range(n):
        turns = []
        if rng.random() < 0.2:
            turns.append({"from": "system", "value": "You are a helpful assistant."})
        k = rng.randint(1, 4)
        for t in range(k):
            user = " ".join(rng.choice(SENTENCES["en"]) for _ in range(rng.randint(1, 3)))
            if t == 0 and rng.random() < 0.01:
                user = "Solve this: " + rng.choice(items)["question"]
            reply = " ".join(rng.choice(SENTENCES["en"]) for _ in range(rng.randint(1, 3)))
            turns += [{"from": "human", "value": user}, {"from": "gpt", "value": reply}]
        r = rng.random()
        if r < 0.005:
            turns = turns[1:] if turns[0]["from"] == "human" else turns
            turns.insert(0, {"from": "gpt", "value": "Hello!"})
        elif r < 0.01:
            turns[-1]["value"] = " "
        yield {"id": f"conv-{i}", "conversations": turns}


def write_jsonl(path: Path, n: int, items: list[dict], seed: int) -> int:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as out:
        for row in make_rows(n, items, rng):
            out.write(json.dumps(row) + "\n")
    return path.stat().st_size


# ---- the datasets baseline ------------------------------------------------------------------------------

_WORD = re.compile(r"\w+")
MOJIBAKE = re.compile("(Ã[\u0080-\u00bf]|â€|Â[\u00a0-\u00bf]|\ufffd)")


def ngram_set(texts: list[str], n: int = 13) -> set[int]:
    out = set()
    for t in texts:
        words = _WORD.findall(t.lower())
        for i in range(len(words) - n + 1):
            out.add(hash(tuple(words[i:i + n])))
    return out


def baseline(path: Path, items: list[dict], out: Path, cache: Path) -> dict:
    import datasets

    bench = ngram_set([it["question"] + " " + it["answer"] for it in items])
    started = time.time()
    ds = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(cache))

    def fn(batch):
        texts, problems, flagged, messages = [], [], [], []
        for conv in batch["conversations"]:
            msgs = [{"role": ROLES.get(t["from"], t["from"]), "content": t["value"]} for t in conv]
            roles = [m["role"] for m in msgs]
            found = []
            if any(not m["content"].strip() for m in msgs):
                found.append("empty_turn")
            first = next((r for r in roles if r != "system"), None)
            if first == "assistant":
                found.append("assistant_first")
            if any(a == b and a != "tool" for a, b in zip(roles[1:], roles[:-1], strict=False)):
                found.append("same_role_twice")
            if "assistant" not in roles:
                found.append("no_assistant")
            if any(r not in ("system", "user", "assistant", "tool") for r in roles):
                found.append("unknown_role")
            if "system" in roles[1:]:
                found.append("system_not_first")
            replies = [m["content"].strip() for m in msgs if m["role"] == "assistant"]
            if replies and len(replies[-1].split()) >= 20 and re.search(r"(?:[^\W\d_]|[,;:(\[{–-])$", replies[-1]):
                found.append("truncated_response")
            if any(MOJIBAKE.search(m["content"]) for m in msgs):
                found.append("mojibake")
            text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in msgs)
            words = _WORD.findall("\n\n".join(m["content"] for m in msgs).lower())
            hit = any(hash(tuple(words[i:i + 13])) in bench for i in range(len(words) - 12))
            messages.append(msgs)
            problems.append(found)
            texts.append(text)
            flagged.append(hit)
        return {"messages": messages, "problems": problems, "text": texts, "contaminated": flagged}

    ds = ds.map(fn, batched=True, batch_size=1000, remove_columns=["conversations"])
    kept = ds.filter(lambda b: [not p for p in b["problems"]], batched=True, batch_size=1000)
    kept.to_parquet(str(out))
    wall = time.time() - started
    return {"rows": ds.num_rows, "kept": kept.num_rows, "with_problems": ds.num_rows - kept.num_rows,
            "contaminated": sum(kept["contaminated"]), "wall_seconds": round(wall, 2),
            "rows_per_second_per_core": round(ds.num_rows / wall, 1)}


# ---- tokenmill ------------------------------------------------------------------------------------------

def tokenmill(path: Path, bench_file: Path, out: Path) -> dict:
    import yaml

    from tokenmill.pipeline import load_pipeline, run
    from tokenmill.spark import build_session

    cfg = {"name": "bench-instruct", "output": str(out), "sources": [
        {"name": "convs", "format": "jsonl", "paths": [str(path)], "on_error": "skip",
         "instruct": {"for": "sft", "layout": "sharegpt"}}],
        # The chatml string becomes `text`, which decontaminate reads; like the baseline's set lookup, no
        # common-phrase pass (max_docs_per_ngram: 0).
        "stages": ["read", {"stage": "instruct_filter"}, {"stage": "instruct_format", "template": "chatml"},
                   {"stage": "decontaminate", "benchmarks": [{"name": "items", "path": str(bench_file),
                                                              "fields": ["question", "answer"]}], "action": "flag",
                    "max_docs_per_ngram": 0},
                   {"stage": "write"}]}
    cfg_path = out.parent / "bench-instruct.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    spark = build_session("local", app_name="bench-instruct")
    cores = spark.sparkContext.defaultParallelism
    try:
        plan = load_pipeline(str(cfg_path))
        started = time.time()
        result = run(spark, plan, force=True)
        wall = time.time() - started
        kept = spark.read.parquet(f"{out}/data")
        contaminated = kept.where("size(contaminated_by) > 0").count()
    finally:
        spark.stop()
    stages = {s["stage"]: s for s in result.manifest["stages"]}
    rows = stages["read"]["rows_in"]
    from coldrun import cold_pipeline

    cold_dir = out.parent / "cold"
    cold_dir.mkdir(exist_ok=True)
    cold = cold_pipeline(str(cfg_path), str(cold_dir))  # the same command as a user types it, a fresh process
    cold["rows_per_second_per_core"] = round(rows / cold["seconds"] / cores, 1)
    return {"pipeline_cold": cold, "rows": rows, "kept": stages["write"]["rows_out"], "with_problems": sum(stages["instruct_filter"]["removed"].values()),
            "removed_by_reason": stages["instruct_filter"]["removed"], "contaminated": contaminated,
            "wall_seconds": round(wall, 2), "cores": cores, "rows_per_second_per_core": round(rows / wall / cores, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--baseline-rows", type=int, default=200_000,
                    help="rows for the datasets baseline (one process; its rate is per row, so fewer suffice)")
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "instruct.json"))
    args = ap.parse_args()
    items = make_items(args.items, random.Random(7))
    tmp = Path(tempfile.mkdtemp(prefix="bench-instruct-"))
    try:
        bench_file = tmp / "items.jsonl"
        bench_file.write_text("".join(json.dumps({"question": it["question"], "answer": it["answer"]}) + "\n"
                                      for it in items))
        data = tmp / "convs.jsonl"
        size = write_jsonl(data, args.rows, items, 1)
        small = tmp / "convs-small.jsonl"
        write_jsonl(small, args.baseline_rows, items, 1)  # the same first rows
        ours = tokenmill(data, bench_file, tmp / "out")
        theirs = baseline(small, items, tmp / "baseline.parquet", tmp / "hf-cache")
        result = {
            "bench": "instruct: validate + convert to chatml + decontaminate (13-grams)",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "input": {"rows": args.rows, "bytes": size, "turns": "2-8", "benchmark_items": args.items},
            "tokenmill_spark_local": {k: v for k, v in ours.items() if k != "pipeline_cold"},
            "tokenmill_pipeline_cold": ours["pipeline_cold"],
            "datasets_one_process": theirs,
            "speedup_per_core": round(ours["rows_per_second_per_core"] / theirs["rows_per_second_per_core"], 2),
            # datasets' figure is its whole work in one process (load, map, filter, write), ours cold as well
            "cold_speedup_per_core": round(ours["pipeline_cold"]["rows_per_second_per_core"]
                                           / theirs["rows_per_second_per_core"], 2),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

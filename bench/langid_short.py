"""Benchmark: macro-F1 of every language-identification backend and of each shipped langid configuration
on the hardest inputs — two-word texts in 75 languages (../shared/dev-data/langid/lingua-word-pairs.tsv,
300 per language, from lingua's test data) — and on our labelled set (data/langid/labelled.jsonl).

A shipped configuration is the `langid` stage entry of a pipeline in conf/pipelines/ (the cascades restrict
lingua to 8 or 14 languages). Goal: no shipped configuration more than 2 points of macro-F1 below
lingua with all 75 languages, on either set. `und` counts as a wrong answer. One process (no Spark): the
same `identify` function the stage runs in each Arrow batch. Results: bench/results/langid_short.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from tokenmill.langid.config import LangidParams  # noqa: E402
from tokenmill.langid.evaluate import Count, report  # noqa: E402
from tokenmill.langid.identify import identify  # noqa: E402
from tokenmill.langid.stage import build_spec  # noqa: E402

PAIRS = ROOT.parent / "shared" / "dev-data" / "langid" / "lingua-word-pairs.tsv"
LABELLED = ROOT / "data" / "langid" / "labelled.jsonl"
SHIPPED = ["sample.yaml", "langid_route.yaml", "langid_eval.yaml"]


def word_pairs() -> tuple[list[str], list[str]]:
    gold, texts = [], []
    for line in PAIRS.read_text(encoding="utf-8").splitlines():
        lang, _, text = line.partition("\t")
        if lang == "lang":  # the header
            continue
        gold.append(lang)
        texts.append(text)
    return gold, texts


def labelled() -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    return [r["lang"] for r in rows], [r["text"] for r in rows]


def shipped(name: str) -> dict:
    """The `langid` stage entry of a shipped pipeline (or a bare stage entry)."""
    data = yaml.safe_load((ROOT / "conf" / "pipelines" / name).read_text())
    entry = data if data.get("stage") == "langid" else next(
        s for s in data["stages"] if isinstance(s, dict) and s.get("stage") == "langid")
    return {k: v for k, v in entry.items() if k not in ("stage", "id", "paragraphs")}


def macro_f1(gold: list[str], pred: list[str]) -> float:
    return round(report([Count(g, p, 0, True, 1) for g, p in zip(gold, pred, strict=True)])["all"]["macro_f1"], 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "langid_short.json"))
    args = ap.parse_args()
    configs = {"cld2": {"backend": "cld2"}, "lingua_all": {"backend": "lingua"},
               "lingua_all_low_accuracy": {"backend": "lingua", "lingua": {"low_accuracy": True}}}
    configs |= {f"shipped:{name}": shipped(name) for name in SHIPPED}
    sets = {"word_pairs_75": word_pairs(), "labelled_14": labelled()}
    out: dict = {"sets": {k: {"texts": len(v[0]), "languages": len(set(v[0]))} for k, v in sets.items()},
                 "configs": {}}
    for name, cfg in configs.items():
        spec = build_spec(None, LangidParams(stage="langid", **cfg))
        entry: dict = {"config": cfg}
        for set_name, (gold, texts) in sets.items():
            start = time.perf_counter()
            pred = identify(texts, spec).lang
            entry[set_name] = {"macro_f1": macro_f1(gold, pred), "und": pred.count("und"),
                               "seconds": round(time.perf_counter() - start, 2)}
        out["configs"][name] = entry
        print(f"{name:<28} " + "  ".join(f"{s} {entry[s]['macro_f1']:.4f} (und {entry[s]['und']})" for s in sets),
              flush=True)
    best = out["configs"]["lingua_all"]
    out["gap_to_lingua_all_points"] = {
        name: {s: round(100 * (best[s]["macro_f1"] - e[s]["macro_f1"]), 2) for s in sets}
        for name, e in out["configs"].items() if name.startswith("shipped:")}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()

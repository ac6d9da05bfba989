"""The any_to_text_moe and curation_steps recipes end to end on local copies built from the presets'
fixtures (a few dozen documents each, small budgets): every source runs its stages, the plan follows the
recipe's rule (UniMax; priority with the unused tail), and the mixture realises each source's target
within the builder's tolerance."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import yaml

from presets.test_source_presets import FIXTURES, PRESETS, _write
from tokenmill.io.fields import FieldMap
from tokenmill.mixing.recipe import load_recipe, prepare
from tokenmill.sample.texts import SENTENCES

rng = random.Random(11)


def _doc(k: int = 12) -> str:
    return " ".join(rng.choice(SENTENCES["en"]) for _ in range(k))


def _set(row: dict, dotted: str, value) -> None:
    node = row
    *parents, last = dotted.split(".")
    for p in parents:
        node = node[p]
    node[last] = value


def _rows(name: str, n: int) -> list[dict]:
    """``n`` rows in the preset's published schema: its fixture's first row with new text (and ids)."""
    preset = yaml.safe_load((PRESETS / f"{name}.yaml").read_text())
    template = json.loads((FIXTURES / f"{name}.json").read_text())["rows"][0]
    fields, instruct = preset.get("fields") or {}, preset.get("instruct")
    rows = []
    for i in range(n):
        row = copy.deepcopy(template)
        if instruct and instruct["layout"] == "sharegpt":
            row["conversations"] = [{"from": "human", "value": f"Question {i}: {_doc(2)}", "weight": 0.0},
                                    {"from": "gpt", "value": _doc(6), "weight": 1.0}]
        elif instruct and instruct["layout"] == "gsm8k":
            row.update(question=f"Problem {i}: {_doc(2)} How many are left?", answer=f"{_doc(2)}\n#### {i}")
        else:
            fm = FieldMap(**fields)  # the layout's text and id fields
            _set(row, fm.text_field, _doc())
            if fm.id_field:
                _set(row, fm.id_field, f"{name}-{i}")
        rows.append(row)
    return rows


def _mirror(root: Path, name: str, files: str, n: int = 30) -> str:
    folder = root / name
    _write(folder / files.replace("*", "00000"), {"rows": _rows(name, n)})
    return str(folder)


def _check_mixture(out: Path, manifest: dict) -> dict:
    mixture = json.loads((out / "mixture" / "manifest.json").read_text())
    plan = {s["name"]: s for s in manifest["plan"]["sources"]}
    for name, s in mixture["sources"].items():
        assert s["ok"] and abs(s["realised_tokens"] - plan[name]["target_tokens"]) <= s["allowed_deviation_tokens"], name
    return plan


def test_any_to_text_moe_end_to_end(spark, tmp_path, sample_dir):
    recipe, _ = load_recipe("any_to_text_moe")
    sets = [f"output={tmp_path / 'out'}", f"tokens.tokenizer={sample_dir / 'tokenizer'}", "plan.target.n_params=3000"]
    small = {"gsm8k": 3, "arc": 2}  # small sets, as they are next to web corpora
    for i, src in enumerate(recipe.sources):
        name = src.model_extra["preset"]
        files = (src.model_extra.get("hub") or yaml.safe_load((PRESETS / f"{name}.yaml").read_text())["hub"])["files"]
        sets.append(f"sources[{i}].path={_mirror(tmp_path / 'mirror', name, files, small.get(name, 30))}")
    recipe, where = load_recipe("any_to_text_moe", sets)
    manifest = prepare(spark, recipe, where)
    assert list(manifest["sources"]) == [s.model_extra["preset"] for s in recipe.sources]
    plan = _check_mixture(tmp_path / "out", manifest)
    assert abs(sum(s["target_tokens"] for s in plan.values()) - 60000) < 1e-6  # D = 20 N
    # UniMax: the small sets (GSM8K, ARC) are repeated up to their 8-epoch caps, the rest share equally
    assert plan["gsm8k"]["epochs"] == 8 and plan["arc"]["epochs"] == 8
    rest = [plan[n]["target_tokens"] for n in plan if n not in small]
    assert len(rest) == 5 and max(rest) - min(rest) < 1e-6 * max(rest)


def test_curation_steps_end_to_end(spark, tmp_path, sample_dir):
    recipe, _ = load_recipe("curation_steps")
    sets = [f"output={tmp_path / 'out'}", f"tokens.tokenizer={sample_dir / 'tokenizer'}", "plan.target.n_params=5500"]
    for i, src in enumerate(recipe.sources):
        name = src.model_extra["preset"]
        if name == "sample_warc":
            sets.append(f"sources[{i}].paths=[{sample_dir / 'warc'}/*.warc.gz]")
            continue
        files = yaml.safe_load((PRESETS / f"{name}.yaml").read_text())["hub"]["files"]
        sets.append(f"sources[{i}].path={_mirror(tmp_path / 'mirror', name, files)}")
    recipe, where = load_recipe("curation_steps", sets)
    manifest = prepare(spark, recipe, where)
    plan = _check_mixture(tmp_path / "out", manifest)
    order = [s["name"] for s in manifest["plan"]["sources"]]
    filled = [plan[n]["target_tokens"] for n in order]
    # priority (D = 110,000): math first at its 4-epoch cap, code at its 15% share, the Pile at its 2-epoch
    # cap, then the filtered web fills the rest; the crawl, last, stays unused
    assert plan["mathpile"]["epochs"] == 4 and abs(plan["the_stack_v2"]["share"] - 0.15) < 1e-9
    assert plan["the_pile"]["epochs"] == 2
    assert 0 < plan["refinedweb"]["target_tokens"] < plan["refinedweb"]["unique_tokens"]
    assert plan["commoncrawl/CC-SAMPLE-2024-10"]["target_tokens"] == 0 and filled[-1] == 0
    assert abs(sum(filled) - 110000) < 1e-6

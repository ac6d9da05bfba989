"""Recipes end to end on fixtures: the SmolLM-Corpus recipe prepares its three subsets from local mirrors
(per-source pipelines, token budget, mixture, one folder per subset with input.txt and Parquet), the
realised tokens match the plan, input.txt is the Parquet text in order, a rerun skips every source, and a
dry run of every shipped recipe reads no data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import own_tokenizer
from tokenmill.errors import ConfigError
from tokenmill.mixing.recipe import dry_run, load_recipe, prepare
from tokenmill.sample.texts import SENTENCES

ROOT = Path(__file__).resolve().parents[2]


def _mirror(root: Path, n: int = 40) -> None:
    """A local copy of HuggingFaceTB/smollm-corpus laid out as the repository: its three subsets' Parquet."""
    rng = random.Random(3)

    def doc(k: int) -> str:
        return " ".join(rng.choice(SENTENCES["en"]) for _ in range(k))

    subsets = {
        "cosmopedia-v2": [{"prompt": f"Write about topic {i}.", "text": doc(6), "token_length": 60, "audience": "general",
                           "format": "blogpost", "seed_data": "web_samples_v2"} for i in range(n)],
        "fineweb-edu-dedup": [{"text": doc(8), "id": f"<urn:uuid:{i:08d}>", "metadata": {
            "dump": "CC-MAIN-2023-50", "url": f"https://edu.example.org/{i}", "date": "2023-12-01", "file_path": "s3://x",
            "language": "en", "language_score": 0.95, "token_count": 80, "score": 3.5, "int_score": 4}} for i in range(n)],
        "python-edu": [{"blob_id": f"{i:040x}", "repo_name": "teach/py", "path": f"l{i}.py", "length_bytes": 30,
                        "score": 3.2, "int_score": 3, "text": f"# lesson {i}\nx = {i}\nprint(x * 2)\n"} for i in range(n)],
    }
    for name, rows in subsets.items():
        (root / name).mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), root / name / "train-00000-of-00001.parquet")


def _overrides(tmp_path: Path, mirror: Path, tok: str) -> list[str]:
    return [f"output={tmp_path / 'out'}", f"tokens.tokenizer={tok}",
            *[f"sources[{i}].path={mirror}" for i in range(3)],
            "plan.target.total_tokens=20000", "build.shard_tokens=5000", 'export.separator="\\n<|endoftext|>\\n"']  # YAML escapes


def test_smollm_corpus_recipe_end_to_end(spark, tmp_path, monkeypatch):
    monkeypatch.setenv("TOKENMILL_REPORT", "1")  # the recipe's report.html (and each run's) is written
    mirror = tmp_path / "smollm-corpus"
    _mirror(mirror)
    tok = own_tokenizer(tmp_path / "tok")
    recipe, where = load_recipe("smollm_corpus", _overrides(tmp_path, mirror, tok))
    manifest = prepare(spark, recipe, where)
    names = ["smollm_cosmopedia_v2", "smollm_fineweb_edu_dedup", "smollm_python_edu"]
    assert list(manifest["sources"]) == names
    assert all(not s["skipped"] and s["tokens"]["docs"] == 40 for s in manifest["sources"].values())
    # the plan: natural shares of the counted tokens, 20,000 in all; the mixture realises each source's
    # target within the builder's tolerance (one document's tokens)
    plan = {s["name"]: s for s in manifest["plan"]["sources"]}
    assert sum(s["target_tokens"] for s in plan.values()) == pytest.approx(20000)
    mixture = json.loads((tmp_path / "out" / "mixture" / "manifest.json").read_text())
    for name in names:
        assert plan[name]["unique_tokens"] == manifest["sources"][name]["tokens"]["tokens"]
        got = mixture["sources"][name]
        assert got["ok"] and abs(got["realised_tokens"] - plan[name]["target_tokens"]) <= got["allowed_deviation_tokens"]
    # one folder per subset: input.txt is the exported Parquet's text, in file and row order
    for name in names:
        info = manifest["export"][name]
        fs, root = fsspec.core.url_to_fs(info["parquet"])
        texts = []
        for path in sorted(p for p in fs.find(root) if p.endswith(".parquet")):
            with fs.open(path, "rb") as handle:
                texts += pq.read_table(handle, columns=["text"]).column(0).to_pylist()
        with fsspec.open(info["input_txt"], "rt", encoding="utf-8") as handle:
            assert handle.read() == "\n<|endoftext|>\n".join(texts)
        assert info["documents"] == len(texts) == mixture["sources"][name]["rows"]
    assert (tmp_path / "out" / "recipe.json").exists() and (tmp_path / "out" / "configs" / "mixture.yaml").exists()
    # report.html beside recipe.json: a row per source with its counts and a link to its own report, the mixture
    page = (tmp_path / "out" / "report.html").read_text()
    assert manifest["report"] == str(tmp_path / "out" / "report.html")
    for name in names:
        src = json.loads((Path(manifest["sources"][name]["output"]) / "manifest.json").read_text())
        assert (f"<td>{name}</td><td>computed</td><td>40</td><td>{src['output']['rows']}</td>" in page
                and f"<a href='{src['output']['report']}'>report</a>" in page)
        assert Path(src["output"]["report"]).exists()
    assert '<img alt="sources"' in page and '<img alt="mixture"' in page and "<td>D (tokens)</td>" in page
    # resumable: a second run finds every source and the mixture up to date
    again = prepare(spark, recipe, where)
    assert all(s["skipped"] for s in again["sources"].values()) and again["mixture"]["skipped"]


@pytest.mark.parametrize("name", ["smollm_corpus", "any_to_text_moe", "curation_steps"])
def test_dry_run_reads_no_data(tmp_path, name):
    # every source points at a folder that does not exist: a dry run that opened a file would fail
    recipe, where = load_recipe(name, [f"sources[{i}].path={tmp_path / 'nowhere'}" for i in range(7 if name != "smollm_corpus" else 3)
                                       if i < len(load_recipe(name)[0].sources)])
    text = dry_run(recipe, where)
    assert "planned from the published sizes" in text
    for src in recipe.sources:
        assert src.model_extra["preset"] in text or "CC-SAMPLE" in text


def test_curation_steps_fills_by_priority():
    recipe, where = load_recipe("curation_steps")
    text = dry_run(recipe, where)
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.split() and line.split()[0] in
            {"mathpile", "the_stack_v2", "the_pile", "refinedweb", "commoncrawl/CC-SAMPLE-2024-10"}}
    # math at its 4-epoch cap, code and the Pile at their max shares, web fills the rest, the crawl is unused
    assert rows["mathpile"][2] == "3.8e+10" and rows["the_stack_v2"][3] == "15.00%" and rows["the_pile"][3] == "35.00%"
    assert rows["refinedweb"][3] == "22.86%" and rows["commoncrawl/CC-SAMPLE-2024-10"][2] == "0"
    assert "left unused" in text and "commoncrawl/CC-SAMPLE-2024-10 1e+12" in text


def test_a_dry_run_needs_published_sizes(tmp_path):
    recipe, where = load_recipe("smollm_corpus", ["sources[1].unique_tokens=null"])
    with pytest.raises(ConfigError, match="unique_tokens"):
        dry_run(recipe, where)

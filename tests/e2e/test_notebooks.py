"""Each notebook runs on the outputs of the sample's runs (pointed at them by TOKENMILL_OUTPUT) and shows
what those outputs hold; pointed at a missing output, it says which command makes it."""

from __future__ import annotations

import os
import re

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from conftest import ROOT, own_tokenizer


def execute(name: str, output) -> tuple[str, int]:
    """Run notebooks/<name> with TOKENMILL_OUTPUT=output: (all its text output, the number of images)."""
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    env_before = dict(os.environ)
    os.environ.update(TOKENMILL_OUTPUT=str(output), TOKENMILL_SPARK_PROFILE="test")
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "\n".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in outputs)
    return text, sum(1 for o in outputs if o.get("data", {}).get("image/png"))


def test_01_explore(sample_run):
    out, _ = sample_run
    text, images = execute("01_explore.ipynb", out)
    assert "320 documents in" in text
    assert "commoncrawl/CC-SAMPLE-2024-18-wet" in text and "read:not_html" in text
    assert images >= 1


def test_02_quality_thresholds(fineweb_run):
    _, out, _ = fineweb_run
    text, images = execute("02_quality_thresholds.ipynb", out)
    assert "gopher_quality            11           4           7  gopher_short_doc=4" in text
    assert ("gopher_quality:gopher_short_doc min=30 max=None: 0 kept documents would be removed, "
            "4 removed documents would pass") in text
    assert images == 2  # the grid of the stage's rules, the signal with the new threshold


def test_03_dedup_clusters(dedup_run):
    out, result = dedup_run
    text, images = execute("03_dedup_clusters.ipynb", out)
    rep = result.manifest["stage_reports"]["minhash_dedup"]
    assert f"{rep['bands']} bands x {rep['rows']} rows, threshold 0.8" in text
    members, low = re.search(r"(\d+) members; min exact Jaccard ([0-9.]+)", text).groups()
    from tokenmill.report import explore

    top = explore.clusters(explore.open_run(out, command="make run"), top=10)
    assert int(members) == top["removed"].sum() == 16 and float(low) >= 0.8  # exact and verified near duplicates
    assert "--- kept" in text and images == 1


def test_04_plan_mixture(sample_run):
    out, _ = sample_run
    text, images = execute("04_plan_mixture.ipynb", out)
    assert "D (tokens)        3e+05" in text and "N (params)        1.5e+04" in text
    assert images == 2


def test_05_instruct_validation(spark, tmp_path):
    from instruct.instruct_fixtures import FIXTURES
    from tokenmill.instruct.job import validate_dataset

    tok = own_tokenizer(tmp_path / "tok")
    validate_dataset(str(FIXTURES / "sharegpt.jsonl"), "sft", [], str(tmp_path / "v"), spark=spark, tokenizer=tok,
                     langid=False)
    text, images = execute("05_instruct_validation.ipynb", tmp_path / "v")
    assert "verdict   ready after mapping/cleaning" in text
    assert re.search(r"assistant_first\s+mapped\s+1\s+line 3", text)
    assert " $ tokenmill convert_format --source" in text and images == 2


@pytest.mark.parametrize("name, command", [
    ("02_quality_thresholds.ipynb", "python -m tokenmill pipeline --config conf/pipelines/quality_fineweb.yaml"),
    ("03_dedup_clusters.ipynb", "python -m tokenmill dedup_minhash --config conf/pipelines/dedup_sample.yaml"),
    ("04_plan_mixture.ipynb", "make run"),
    ("05_instruct_validation.ipynb", "python -m tokenmill validate_dataset --source")])
def test_a_missing_output_names_its_command(name, command, tmp_path):
    with pytest.raises(CellExecutionError) as info:
        execute(name, tmp_path / "missing")
    assert "make it with" in str(info.value) and command in str(info.value)

"""The exploration notebook runs on the sample output; the CLI and every job answer --help."""

from __future__ import annotations

import os
import subprocess
import sys

import nbformat
from nbclient import NotebookClient

from conftest import ROOT


def test_notebook_runs_on_sample_output(sample_run):
    out, _ = sample_run
    nb = nbformat.read(ROOT / "notebooks" / "01_explore.ipynb", as_version=4)
    env_before = dict(os.environ)
    os.environ.update(TOKENMILL_OUTPUT=str(out), TOKENMILL_SPARK_PROFILE="test")
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "320 documents in" in text
    assert "commoncrawl/CC-SAMPLE-2024-18-wet" in text and "read:not_html" in text
    assert any(o.get("data", {}).get("image/png") for c in nb.cells for o in c.get("outputs", []))


def _run(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_cli_lists_jobs_and_jobs_have_help():
    top = _run("-m", "tokenmill", "--help")
    assert top.returncode == 0 and "pipeline" in top.stdout and "sample" in top.stdout
    for job in ("pipeline", "sample"):
        res = _run(str(ROOT / "jobs" / f"{job}.py"), "--help")
        assert res.returncode == 0 and "usage:" in res.stdout
    assert "--config" in _run("-m", "tokenmill", "pipeline", "--help").stdout


def test_cli_reports_config_errors_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("output: x\nsources: []\nstages: [read, write]\nbogus: 1\n")
    res = _run("-m", "tokenmill", "pipeline", "--config", str(bad))
    assert res.returncode == 2
    assert f"error: {bad}: bogus: unknown key" in res.stderr and "Traceback" not in res.stderr

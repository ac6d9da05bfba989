"""report.html of a real run: written beside the manifest, self-contained (images inline, nothing fetched),
the funnel table equal to the manifest's counts, dedup's S-curve, cluster sizes and largest clusters with
the differing words marked; the `report` job rewrites it from the output alone."""

from __future__ import annotations

import argparse
import json
import re

from conftest import sample_config, write_config
from tokenmill.pipeline import load_pipeline, run
from tokenmill.report.job import report_job


def test_dedup_run_report(spark, sample_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TOKENMILL_REPORT", "1")
    data = sample_config(sample_dir, tmp_path / "out", conf="dedup_sample.yaml")
    data["stages"][2]["index"] = str(tmp_path / "index")
    data["work_dir"] = str(tmp_path / "work")
    result = run(spark, load_pipeline(str(write_config(tmp_path / "d.yaml", data))))
    out = tmp_path / "out"
    page = (out / "report.html").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["output"]["report"] == f"{out}/report.html" and result.manifest["output"]["report"]
    assert "http://" not in page and "https://" not in re.sub(r"<code>.*?</code>|<td>.*?</td>", "", page)
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    alts = [a for a, _ in images]
    assert {"funnel", "minhash_dedup S-curve", "minhash_dedup cluster sizes"} <= set(alts)
    assert all(len(b) > 1000 for _, b in images)
    funnel = re.search(r'<table class="funnel">(.*?)</table>', page, re.S).group(1)
    cells = [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", funnel)[1:]]
    for stage, row in zip(manifest["stages"], cells, strict=True):
        assert row[0] == stage["stage"]
        assert [int(x.replace(",", "")) for x in row[3:6]] == [stage["rows_in"], sum(stage["removed"].values()),
                                                               stage["rows_out"]]
    assert "Largest duplicate clusters" in page and "<mark>" in page
    (out / "report.html").unlink()
    assert report_job(argparse.Namespace(output=str(out))) == 0
    assert (out / "report.html").exists()

"""report.html of a real run: written beside the manifest, self-contained (images inline, nothing fetched),
the funnel table equal to the manifest's counts, dedup's S-curve, cluster sizes and largest clusters with
the differing words marked; the `report` job rewrites it from the output alone."""

from __future__ import annotations

import argparse
import json
import re

from tokenmill.report.job import report_job


def test_dedup_run_report(dedup_run):
    out, result = dedup_run
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


def test_mixture_report(spark, sample_run, tmp_path, monkeypatch):
    """A mixture's report: planned vs realised tokens per source, epochs, and the law's N and D."""
    from mixing.test_mixture import sample_mixture
    from tokenmill.mixing.build import build_mixture

    monkeypatch.setenv("TOKENMILL_REPORT", "1")
    out, _ = sample_run
    result = build_mixture(spark, sample_mixture(out, tmp_path / "mix"))
    page = (tmp_path / "mix" / "report.html").read_text()
    assert result.manifest["report"] == f"{result.output}/report.html"
    assert '<img alt="mixture"' in page and "Mixture: planned" not in page  # the title is in the image
    for name, r in result.manifest["sources"].items():
        assert f"<td>{name}</td><td>{r['planned_tokens']:,.0f}</td><td>{r['realised_tokens']:,.0f}</td>" in page
    assert "<td>N (parameters)</td>" in page and "<td>D (tokens)</td>" in page

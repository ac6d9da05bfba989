"""Progress lines come from Spark's status tracker while a pipeline runs: running stages with tasks done of
total, and a line per finished Spark job; `quiet` prints nothing."""

from __future__ import annotations

import io

from conftest import sample_config, write_config
from tokenmill.pipeline import load_pipeline, run
from tokenmill.pipeline.progress import Progress, progress


def test_progress_lines_while_a_pipeline_runs(spark, sample_dir, tmp_path):
    cfg = write_config(tmp_path / "p.yaml", sample_config(sample_dir, tmp_path / "out"))
    out = io.StringIO()
    with Progress(spark, "sample", interval=0.1, every=0.0, out=out, min_job_seconds=0.0) as p:
        run(spark, load_pipeline(str(cfg)))
    text = out.getvalue()
    assert p.lines and text.count("\n") == len(p.lines)
    assert any(" succeeded in " in line and line.startswith("[sample] Spark job ") for line in p.lines)
    assert any("tasks" in line and "/" in line for line in p.lines if "stage " in line)
    with progress(spark, "sample", quiet=True) as q:
        assert q is None

"""Progress lines come from Spark's status tracker while a pipeline runs: running stages with tasks done of
total, and a line per finished Spark job; `quiet` prints nothing."""

from __future__ import annotations

import io
import os
import re

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


SLOW_JOB = """
import sys, time
sys.path.insert(0, "lib")
from tokenmill.spark import build_session
from tokenmill.pipeline.progress import Progress

spark = build_session("local", app_name="progress-rows")

def slow(batches):
    for b in batches:
        time.sleep(1.5)
        yield b

df = spark.range(0, 8000, numPartitions=8).mapInPandas(slow, "id long")
with Progress(spark, "rows", interval=0.3, every=0.0, out=sys.stdout):
    df.write.mode("overwrite").parquet(sys.argv[1])
spark.stop()
"""


def test_rows_so_far_from_the_status_api(tmp_path):
    """With the UI on (the local profile), progress lines also say how many rows the stage's finished tasks
    read or wrote, from the driver's status API: 8 tasks of 1,000 rows, 1.5 s each, on two cores."""
    import subprocess
    import sys

    from conftest import ROOT

    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    res = subprocess.run([sys.executable, "-c", SLOW_JOB, str(tmp_path / "out")], capture_output=True, text=True,
                         cwd=ROOT, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = [int(m.group(2).replace(",", "")) for m in
            re.finditer(r": (\d+)/8 tasks, ([\d,]+) rows, \d+ running", res.stdout)]
    assert rows and all(r % 1000 == 0 and 1000 <= r <= 8000 for r in rows), res.stdout

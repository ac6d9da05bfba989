"""The whole-process figure every bench reports beside its warm one: the command a user types
(`python -m tokenmill pipeline --config X`), run cold in a fresh interpreter, timed from outside, with its
phases read from its own log: start (interpreter, imports, CLI, until the job logs its config), Spark start
and planning (until the segment starts), the segment (its "done in" line), and the tail (manifest,
report.html, Spark stop, JVM exit)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _stamp(line: str) -> float | None:
    m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})", line)
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() if m else None


def cold_pipeline(config: dict | str, work: str) -> dict:
    """Run a pipeline config (a dict is written to ``work``/cold.yaml) as a user does; seconds and phases."""
    if isinstance(config, dict):
        path = os.path.join(work, "cold.yaml")
        Path(path).write_text(json.dumps(config))
        config = path
    logs = os.path.join(work, "cold-logs")
    started, ended = _run(["pipeline", "--config", config, "--force"], logs)
    log = open(max(Path(logs).glob("tokenmill-pipeline-*.log"), key=os.path.getmtime), encoding="utf-8").read()
    lines = log.splitlines()
    t_config = next(_stamp(x) for x in lines if "tokenmill.pipeline: config" in x)
    done = next(x for x in lines if "tokenmill.pipeline: done in" in x)
    t_done, segment = _stamp(done), float(re.search(r"done in ([\d.]+) s", done).group(1))
    return {"command": "python -m tokenmill pipeline --config <config> --force --quiet",
            "seconds": round(ended - started, 2),
            "phases": {"start_imports_cli": round(t_config - started, 2),
                       "spark_start_and_planning": round(t_done - segment - t_config, 2),
                       "segment": round(segment, 2),
                       "manifest_report_stop": round(ended - t_done, 2)}}


def cold_command(args: list[str], work: str) -> dict:
    """Any other job as a user types it (`python -m tokenmill <job> ...`), a fresh process: its seconds."""
    started, ended = _run(args, os.path.join(work, "cold-logs"))
    return {"command": "python -m tokenmill " + " ".join(a if not a.startswith("/") else "<path>" for a in args),
            "seconds": round(ended - started, 2)}


def _run(args: list[str], logs: str) -> tuple[float, float]:
    """``python -m tokenmill <args> --quiet`` in a fresh interpreter, its logs in ``logs``: (start, end)."""
    env = dict(os.environ, TOKENMILL_LOG_DIR=logs, PYTHONPATH=str(ROOT / "lib"))
    started = time.time()
    proc = subprocess.run([sys.executable, "-m", "tokenmill", *args, "--quiet"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    ended = time.time()
    if proc.returncode:
        raise SystemExit(proc.stdout[-2000:] + proc.stderr[-4000:])
    return started, ended

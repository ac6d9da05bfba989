"""The `explain` and `diff` jobs: read written outputs (pyarrow, no Spark session), print or emit JSON."""

from __future__ import annotations

import argparse
import json

from ..cli import Job
from .diff import diff_runs, format_diff
from .explain import explain, format_explanation


def explain_job(args: argparse.Namespace) -> int:
    info = explain(args.output, args.key)
    print(json.dumps(info, indent=2, ensure_ascii=False, default=str) if args.json else "\n".join(format_explanation(info)))
    return 0 if info["found"] else 1


def _explain_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", required=True, help="a run's output folder (the one holding manifest.json)")
    p.add_argument("key", help="a document id or URL")
    p.add_argument("--json", action="store_true", help="the whole answer as JSON")


def diff_job(args: argparse.Namespace) -> int:
    info = diff_runs(args.first, args.second, args.sample)
    print(json.dumps(info, indent=2, ensure_ascii=False, default=str) if args.json else "\n".join(format_diff(info)))
    return 0


def _diff_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("first", help="run A's output folder")
    p.add_argument("second", help="run B's output folder")
    p.add_argument("--sample", type=int, default=10, help="ids shown per direction")
    p.add_argument("--json", action="store_true")


JOBS = [
    Job("explain", "where a document went in a run: kept, or removed by which stage, why, and its survivor",
        _explain_args, explain_job),
    Job("diff", "what changed between two runs: stage counts, config keys, documents kept in one only",
        _diff_args, diff_job),
]


def report_job(args: argparse.Namespace) -> int:
    from .explain import load_manifest
    from .html import write_report

    path = write_report(load_manifest(args.output), args.output)
    print(f"report   {path}")
    return 0


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", required=True, help="a run's output folder (the one holding manifest.json)")


JOBS.append(Job("report", "(re)write report.html of a run from its manifest and output", _report_args, report_job))

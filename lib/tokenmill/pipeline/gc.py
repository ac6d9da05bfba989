"""`tokenmill gc`: list the runs kept under a pointer-committed output (`<output>/runs/<run-id>/`, see
commit.py) and remove those nothing points to; also the leftovers of killed runs beside a renamed output.

Runs are never deleted by the run that replaces them (a reader may be reading the old one: on an object
store there is no atomic swap of a folder); `gc` does it when the user says so, keeping the current run
and the newest `--keep - 1` others. Unfinished runs (no `_SUCCESS`) are removed only while no run holds
the output's lock. Works through fsspec, without Spark (s3a:// is read as s3://).
"""

from __future__ import annotations

import argparse
import json
import posixpath

from ..cli import Job
from ..io.hadoopfs import FsspecFS
from .commit import MANIFEST, RUNS, SUCCESS


def _fs_path(path: str) -> str:
    return "s3://" + path.split("://", 1)[1] if path.startswith(("s3a://", "s3n://")) else path


def _size(fs: FsspecFS, folder: str) -> int:
    return sum(n for _, n, _ in fs.list_files(folder))


def plan_gc(output: str, keep: int = 1, storage_options: dict | None = None) -> dict:
    """What `gc` would do at ``output``: every run with its state and bytes, and which are removed."""
    output = _fs_path(output).rstrip("/")
    fs = FsspecFS(output, storage_options)
    current = None
    if fs.exists(f"{output}/{MANIFEST}"):
        try:
            current = json.loads(fs.read_text(f"{output}/{MANIFEST}")).get("run_folder")
        except ValueError:
            current = None
    parent, _, name = output.rpartition("/")
    locked = fs.exists(f"{parent}/.{name}.lock")
    runs = []
    for run in sorted(fs.list_dirs(f"{output}/{RUNS}"), reverse=True):  # newest first: ids start with a UTC time
        folder = f"{output}/{RUNS}/{run}"
        state = ("current" if current == f"{RUNS}/{run}" else
                 "committed" if fs.exists(f"{folder}/{SUCCESS}") else "unfinished")
        runs.append({"run": run, "path": folder, "state": state, "bytes": _size(fs, folder)})
    kept_others = 0
    for r in runs:
        if r["state"] == "committed":
            kept_others += 1
            r["remove"] = current is not None and kept_others > keep - 1
        else:
            r["remove"] = r["state"] == "unfinished" and not locked
    leftovers = [p for p in fs.glob(f"{parent}/.{name}.tmp-*")] if not locked else []
    return {"output": output, "current": current, "locked": locked, "runs": runs, "leftovers": leftovers,
            "freed_bytes": sum(r["bytes"] for r in runs if r["remove"])}


def collect_garbage(output: str, keep: int = 1, storage_options: dict | None = None, dry_run: bool = False) -> dict:
    """Remove what `plan_gc` marks; returns the plan (with `removed`: what went)."""
    plan = plan_gc(output, keep, storage_options)
    fs = FsspecFS(plan["output"], storage_options)
    removed = []
    if not dry_run:
        for r in plan["runs"]:
            if r["remove"]:
                fs.delete(r["path"])
                removed.append(r["path"])
        for p in plan["leftovers"]:
            fs.delete(p)
            removed.append(p)
    plan["removed"] = removed
    return plan


def format_gc(plan: dict, dry_run: bool) -> str:
    lines = [f"{plan['output']}: current run {plan['current'] or '(none: not a pointer-committed output)'}"
             + (" (a run holds the lock: unfinished runs are left alone)" if plan["locked"] else "")]
    for r in plan["runs"]:
        action = ("remove" if dry_run else "removed") if r["remove"] else "keep"
        lines.append(f"  {r['run']:<28} {r['state']:<10} {r['bytes'] / 1e6:>10.1f} MB  {action}")
    for p in plan["leftovers"]:
        lines.append(f"  {posixpath.basename(p):<28} leftover of a killed run  {'remove' if dry_run else 'removed'}")
    verb = "would free" if dry_run else "freed"
    lines.append(f"{verb} {plan['freed_bytes'] / 1e6:.1f} MB")
    return "\n".join(lines)


def gc_job(args: argparse.Namespace) -> int:
    plan = collect_garbage(args.output, args.keep, dry_run=args.dry_run)
    print(format_gc(plan, args.dry_run))
    return 0


def _gc_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", required=True, help="a pipeline, mixture or staging output folder")
    p.add_argument("--keep", type=int, default=1, help="committed runs kept, the current one included (default 1)")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")


JOBS = [Job("gc", "remove the old runs of a pointer-committed output (object stores) and killed runs' leftovers",
            _gc_args, gc_job, own_dry_run=True)]

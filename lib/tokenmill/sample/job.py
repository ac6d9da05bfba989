"""The `sample` job: write the deterministic sample crawl the tests, `make run` and the notebooks use."""

from __future__ import annotations

import argparse

from ..cli import Job


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="data/sample", help="folder to write the sample corpus into")
    parser.add_argument("--pages", type=int, default=None, help="number of HTML pages in the WARC (default: the sample size)")
    parser.add_argument("--seed", type=int, default=1234)


def sample_job(args: argparse.Namespace) -> int:
    from .generate import write_sample

    summary = write_sample(args.out, seed=args.seed, n_pages=args.pages)
    for name, path in summary["files"].items():
        print(f"{name:<10} {path}")
    return 0


JOBS = [Job("sample", "write the deterministic sample crawl (WARC, WET, JSONL, Parquet)", add_args, sample_job)]

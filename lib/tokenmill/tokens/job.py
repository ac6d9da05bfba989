"""The count_tokens job: documents, bytes and tokens per source, as a table and optionally JSON."""

from __future__ import annotations

import argparse
import json
import os

from pyspark.sql import functions as F

from ..cli import Job, output_arg, spark_args
from ..errors import ConfigError
from ..io.hadoopfs import HadoopFS, qualify
from ..schema import SOURCE, TEXT
from .count import N_BYTES, N_TOKENS, bytes_column, calibrate, ship, token_totals, tokens_column


def format_counts(table: dict, calibration: dict | None = None) -> str:
    head = f"{'source':<40} {'docs':>10} {'bytes':>14} {'unique tokens':>14} {'bytes/token':>11}"
    lines = [head, "-" * len(head)]
    for name, r in table.items():
        bpt = f"{r['bytes_per_token']:.4f}" if r.get("bytes_per_token") else "-"
        lines.append(f"{name[:40]:<40} {r['docs']:>10,} {r['bytes'] or 0:>14,} {r['tokens']:>14,} {bpt:>11}")
    lines.append("-" * len(head))
    lines.append(f"{'total':<40} {sum(r['docs'] for r in table.values()):>10,} "
                 f"{sum(r['bytes'] or 0 for r in table.values()):>14,} {sum(r['tokens'] for r in table.values()):>14,}")
    if calibration:
        lines += ["", f"{'calibration':<40} {'sample':>10} {'rho':>14} {'held-out err':>14}"]
        for name, c in calibration.items():
            err = f"{c['holdout_error']:.3%}" if c["holdout_error"] is not None else "-"
            lines.append(f"{name[:40]:<40} {c['sample_docs']:>10,} {c['rho'] or 0:>14.4f} {err:>14}")
    return "\n".join(lines)


def count_tokens(spark, path: str, tokenizer: str | None = None, add_special_tokens: bool = False,
                 calibrate_docs: int = 0, seed: int = 0) -> tuple[dict, dict | None]:
    """Documents, bytes and tokens per source of Parquet data (a pipeline output folder: its data/), counted
    with ``tokenizer`` or summed from the stored `n_tokens`; with ``calibrate_docs``, bytes/token per source
    measured on a sample with its held-out error."""
    folder = qualify(path)
    fs = HadoopFS(spark, folder)
    if fs.exists(f"{folder}/data") and fs.exists(f"{folder}/_SUCCESS"):
        folder = f"{folder}/data"
    df = spark.read.parquet(folder)
    if SOURCE not in df.columns:
        df = df.withColumn(SOURCE, F.lit(os.path.basename(path.rstrip("/"))))
    calibration = None
    if tokenizer:
        if TEXT not in df.columns:
            raise ConfigError(f"{path}: no `text` column to tokenize")
        spec = ship(spark, tokenizer, add_special_tokens)
        df = df.withColumn(N_BYTES, bytes_column(TEXT)).withColumn(N_TOKENS, tokens_column(TEXT, spec))
        if calibrate_docs:
            calibration = calibrate(df, spec, calibrate_docs, seed)
    elif N_TOKENS not in df.columns:
        raise ConfigError(f"{path}: no `n_tokens` column; pass --tokenizer to count")
    elif N_BYTES not in df.columns and TEXT in df.columns:
        df = df.withColumn(N_BYTES, bytes_column(TEXT))
    return token_totals(df), calibration


def count_tokens_job(args: argparse.Namespace) -> int:
    from ..spark import build_session

    spark = build_session(args.spark_profile, app_name="tokenmill-count-tokens")
    try:
        table, calibration = count_tokens(spark, args.input, args.tokenizer, args.add_special_tokens,
                                          args.calibrate, args.seed)
    finally:
        spark.stop()
    print(format_counts(table, calibration))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump({"input": args.input, "tokenizer": args.tokenizer, "sources": table,
                       "calibration": calibration}, handle, indent=2)
            handle.write("\n")
        print(f"\ncounts   {os.path.abspath(args.out)}")
    return 0


def add_args(parser: argparse.ArgumentParser) -> None:
    output_arg(parser, "its data/ is counted")
    parser.add_argument("--tokenizer", default=None, help="tokenizer directory (or cached hub id); without it the "
                        "existing n_tokens column is summed")
    parser.add_argument("--add-special-tokens", action="store_true")
    parser.add_argument("--calibrate", type=int, default=0, metavar="DOCS",
                        help="also measure bytes/token per source on a sample of DOCS documents, with its held-out error")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the table as JSON (usable as `manifest:` in a mixture config)")
    spark_args(parser)


JOBS = [Job("count_tokens", "count documents, bytes and tokens per source of a Parquet dataset", add_args,
            count_tokens_job)]

"""The `extract_eval` job: token P/R/F1 of each HTML extractor against labelled main texts."""

from __future__ import annotations

import argparse
import json

from ..cli import Job, spark_args
from ..io.html import EXTRACTORS
from .evaluate import evaluate_extraction, format_eval


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--warc", required=True, help="WARC file(s) (glob or fsspec URL) with the labelled pages")
    parser.add_argument("--labels", required=True, help="JSONL with each page's URL and human-checked main text")
    parser.add_argument("--url-field", default="url")
    parser.add_argument("--text-field", default="articleBody")
    parser.add_argument("--extractor", action="append", choices=list(EXTRACTORS), default=None,
                        help="an extractor to measure (repeatable; default: all)")
    parser.add_argument("--out", default=None, help="write the result as JSON here")
    parser.add_argument("--work", default="work/extract_eval")
    spark_args(parser)


def extract_eval_job(args: argparse.Namespace) -> int:
    from ..spark import build_session

    spark = build_session(args.spark_profile, app_name="tokenmill-extract-eval")
    try:
        result = evaluate_extraction(spark, args.warc, args.labels, args.extractor or list(EXTRACTORS), args.work,
                                     args.url_field, args.text_field)
    finally:
        spark.stop()
    print(format_eval(result))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)
            fh.write("\n")
    return 0


JOBS = [Job("extract_eval", "token precision/recall/F1 of each HTML extractor against labelled main texts "
            "(e.g. the article-extraction benchmark)", add_args, extract_eval_job)]

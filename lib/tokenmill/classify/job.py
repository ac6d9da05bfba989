"""The `train_quality` job: fit the quality classifier (Spark logistic regression or fastText) and print its
held-out metrics."""

from __future__ import annotations

import argparse

from ..cli import Job, spark_args
from ..config import load
from .config import TrainParams
from .train import train


def format_metrics(m: dict) -> str:
    lines = [f"model              {m.get('kind', 'spark')}",
             f"held-out documents {m['test_docs']:,} (trained on {m['train_docs']:,})",
             f"ROC-AUC            {m['roc_auc']:.4f}",
             f"at threshold {m['threshold']:.2f}: precision {m['precision']}, recall {m['recall']}, F1 {m['f1']}",
             "calibration (probability bin: documents, mean predicted, observed positive share)"]
    lines += [f"  {c['bin']:<14}{c['docs']:>8,}{c['mean_predicted']:>10.3f}{c['observed_positive']:>10.3f}"
              for c in m["calibration"]]
    return "\n".join(lines)


def train_quality_job(args: argparse.Namespace) -> int:
    from ..spark import build_session

    params = load(TrainParams, args.config, args.overrides)
    spark = build_session(args.spark_profile, app_name=f"tokenmill-train-{params.name}")
    try:
        metrics = train(spark, params)
    finally:
        spark.stop()
    print(format_metrics(metrics))
    model = f"{params.model_out}/model.bin" if params.kind == "fasttext" else params.model_out
    print(f"model    {model}   (quality_classifier kind: {params.kind})\nmetrics  {params.model_out}/metrics.json")
    return 0


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="training YAML, e.g. conf/pipelines/train_quality_sample.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set model_out=models/q2 --set features.idf=true")
    spark_args(parser)


JOBS = [Job("train_quality", "train a quality classifier (Spark HashingTF + logistic regression, or fastText "
            "bigrams as DCLM); prints ROC-AUC, precision/recall, calibration; saves the model", add_args,
            train_quality_job)]

"""Benchmark: quality classifiers, documents per second per core through the `quality_classifier` stage
in Spark local[*]: the Spark logistic-regression PipelineModel (JVM-side), a fastText model (bigrams,
dim 100, the shape of DCLM's), and transformers sequence-classification models: a tiny BERT and a
6-layer BERT-size one (hidden 768, 12 heads, randomly initialised: speed does not depend on the weights),
each with a regression head as FineWeb-Edu's classifier has.

Corpus: `--docs` generated documents of about 2,000 characters (good prose, spam, shop pages), Parquet.
Every model is trained or built first (untimed); the stage is warmed on 200 documents (Python workers
started, model loaded); then timed: read -> score -> count of non-null scores.
Results: bench/results/classifiers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402


def corpus(n: int, chars: int, seed: int = 17) -> list[dict]:
    from tokenmill.sample.webdocs import labelled_docs

    docs = []
    pool = labelled_docs(n, seed, mean_words=chars // 5)
    for d in pool:
        text = d["text"]
        while len(text) < chars:
            text += "\n" + text
        docs.append({"id": d["id"], "text": text[:chars], "label": d["label"]})
    return docs


def build_models(work: str, spark) -> dict[str, dict]:
    """Every model the bench scores with: {name: stage params}."""
    import fasttext
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    from tokenmill.classify.config import TrainParams
    from tokenmill.classify.train import train
    from tokenmill.sample.webdocs import labelled_docs

    train_docs = labelled_docs(4000, seed=5)
    for label, name in ((1, "pos"), (0, "neg")):
        with open(os.path.join(work, f"{name}.jsonl"), "w") as fh:
            for d in train_docs:
                if d["label"] == label:
                    fh.write(json.dumps({"id": d["id"], "text": d["text"]}) + "\n")
    lr_path = os.path.join(work, "lr_model")
    metrics = train(spark, TrainParams.model_validate({
        "positives": [{"name": "ref", "format": "jsonl", "paths": os.path.join(work, "pos.jsonl")}],
        "negatives": [{"name": "cc", "format": "jsonl", "paths": os.path.join(work, "neg.jsonl")}],
        "model_out": lr_path, "work": os.path.join(work, "train")}))

    ft_file = os.path.join(work, "ft.txt")
    with open(ft_file, "w") as fh:
        for d in train_docs:
            fh.write(f"{'__label__hq' if d['label'] else '__label__cc'} {' '.join(d['text'].split())}\n")
    ft = fasttext.train_supervised(ft_file, epoch=5, wordNgrams=2, dim=100, thread=2, seed=1, verbose=0)
    ft_path = os.path.join(work, "ft.bin")
    ft.save_model(ft_path)

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator([d["text"] for d in train_docs[:1000]], trainers.WordPieceTrainer(
        vocab_size=8000, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=512)
    out = {"spark_lr": {"kind": "spark", "model": lr_path, "train_roc_auc": metrics["roc_auc"]},
           "fasttext": {"kind": "fasttext", "model": ft_path}}
    for name, (layers, hidden, heads) in {"bert_tiny": (2, 64, 2), "bert_6_layer": (6, 768, 12)}.items():
        torch.manual_seed(0)
        cfg = BertConfig(vocab_size=fast.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                         num_attention_heads=heads, intermediate_size=hidden * 4, max_position_embeddings=512,
                         num_labels=1)
        path = os.path.join(work, name)
        BertForSequenceClassification(cfg).save_pretrained(path)
        fast.save_pretrained(path)
        out[name] = {"kind": "transformers", "model": path, "batch_size": 16, "max_length": 512,
                     "layers": layers, "hidden": hidden}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=10_000)
    ap.add_argument("--chars", type=int, default=2000)
    ap.add_argument("--bert-docs", type=int, default=None, help="documents for the 6-layer model (default --docs)")
    ap.add_argument("--out", default="bench/results/classifiers.json")
    args = ap.parse_args()

    from pyspark.sql import functions as F

    from tokenmill.classify.config import ClassifierParams
    from tokenmill.classify.stage import quality_classifier
    from tokenmill.pipeline.stage import StageContext
    from tokenmill.spark import build_session

    spark = build_session("local", app_name="bench-classifiers")
    cores = spark.sparkContext.defaultParallelism
    work = tempfile.mkdtemp(prefix="bench-classifiers-")
    docs = corpus(args.docs, args.chars)
    path = os.path.join(work, "docs.parquet")
    pq.write_table(pa.table({"id": [d["id"] for d in docs], "text": [d["text"] for d in docs],
                             "source": ["gen"] * len(docs)}), path, row_group_size=500)
    spark.conf.set("spark.sql.files.maxPartitionBytes", str(max(1 << 18, os.path.getsize(path) // (4 * cores))))
    built = build_models(work, spark)
    results: dict = {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                                 "cpu_count": os.cpu_count(), "spark_cores": cores},
                     "docs": args.docs, "chars_per_doc": args.chars, "models": {}}
    for name, spec in built.items():
        n = args.bert_docs if name == "bert_6_layer" and args.bert_docs else args.docs
        extra = {k: v for k, v in spec.items() if k in ("batch_size", "max_length")}
        params = ClassifierParams(stage="quality_classifier", name="b", kind=spec["kind"], model=spec["model"], **extra)
        ctx = StageContext(spark, [], "bench", os.path.join(work, "w"))
        base = spark.read.parquet(path).withColumn("removed_by", F.lit(None).cast("string"))
        warm = quality_classifier(ctx, base.limit(200), params).where("quality_b is not null").count()
        df = base.limit(n) if n < args.docs else base
        start = time.perf_counter()
        scored = quality_classifier(ctx, df, params).where("quality_b is not null").count()
        seconds = time.perf_counter() - start
        results["models"][name] = {"docs": n, "scored": scored, "warmup_docs": warm, "seconds": round(seconds, 2),
                                   "docs_per_s_per_core": round(n / seconds / cores, 1),
                                   **{k: v for k, v in spec.items() if k not in ("model", "kind")}}
        print(name, json.dumps(results["models"][name]), flush=True)
    spark.stop()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()

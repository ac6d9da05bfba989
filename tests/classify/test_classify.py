"""Model-based quality: training in Spark, scoring with Spark ML / fastText / transformers, selection."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from pyspark.sql import functions as F

from tokenmill.classify.config import ClassifierParams, SelectParams, TrainParams
from tokenmill.classify.stage import (
    QUALITY_BUCKET,
    model_spec,
    quality_classifier,
    quality_select,
    score_column,
)
from tokenmill.classify.train import fit, train
from tokenmill.pipeline.stage import StageContext, resolve_deferred
from tokenmill.sample.webdocs import labelled_docs
from tokenmill.schema import REMOVED_BY


def _ctx(spark, tmp_path):
    return StageContext(spark, (), "test", str(tmp_path / "work"))


def _write_labelled(tmp_path, n=1600, seed=11):
    docs = labelled_docs(n, seed)
    for label, name in ((1, "pos"), (0, "neg")):
        with open(tmp_path / f"{name}.jsonl", "w") as fh:
            for d in docs:
                if d["label"] == label:
                    fh.write(json.dumps({"id": d["id"], "text": d["text"]}) + "\n")
    return docs


def _train_params(tmp_path, **extra) -> TrainParams:
    return TrainParams.model_validate({
        "name": "t", "language": "en",
        "positives": [{"name": "ref", "format": "jsonl", "paths": str(tmp_path / "pos.jsonl")}],
        "negatives": [{"name": "cc", "format": "jsonl", "paths": str(tmp_path / "neg.jsonl")}],
        "model_out": str(tmp_path / "model"), "work": str(tmp_path / "work"), **extra})


def _docs_frame(spark, docs, partitions=4):
    rows = [(d["id"], d["text"], "gen", d.get("lang", "en")) for d in docs]
    return (spark.createDataFrame(rows, "id string, text string, source string, lang string")
            .withColumn(REMOVED_BY, F.lit(None).cast("string")).repartition(partitions, "id"))


def test_train_quality_auc_metrics_and_reload(spark, tmp_path):
    from tokenmill.classify.train import load_model

    _write_labelled(tmp_path)
    params = _train_params(tmp_path)
    metrics = train(spark, params)
    model = load_model(spark, str(tmp_path / "model"))
    assert metrics["roc_auc"] > 0.9
    c = metrics["confusion"]
    assert c["tp"] + c["fp"] + c["fn"] + c["tn"] == metrics["test_docs"] > 100
    assert metrics["precision"] > 0.85 and metrics["recall"] > 0.85
    assert sum(b["docs"] for b in metrics["calibration"]) == metrics["test_docs"]
    # Balanced: the two classes have the same expected size; held out about 20%.
    assert 0.1 < metrics["test_docs"] / (metrics["test_docs"] + metrics["train_docs"]) < 0.3

    assert json.loads((tmp_path / "model" / "metrics.json").read_text())["roc_auc"] == metrics["roc_auc"]

    docs = labelled_docs(300, seed=99)
    df = _docs_frame(spark, docs)
    p = ClassifierParams(stage="quality_classifier", name="gpt3", kind="spark", model=str(tmp_path / "model"))
    a = {r["id"]: r["quality_gpt3"] for r in quality_classifier(_ctx(spark, tmp_path), df, p).collect()}
    from pyspark.ml.functions import vector_to_array

    from tokenmill.classify.train import FEATURE_INPUT, PROBABILITY

    direct = {r["id"]: r["p"] for r in model.transform(df.withColumn(FEATURE_INPUT, F.col("text")))
              .select("id", vector_to_array(PROBABILITY)[1].alias("p")).collect()}
    assert a == direct  # the stage scores exactly as the saved model's own transform
    good = [a[d["id"]] for d in docs if d["label"] == 1]
    bad = [a[d["id"]] for d in docs if d["label"] == 0]
    assert np.mean(good) > np.mean(bad) + 0.3
    assert set(quality_classifier(_ctx(spark, tmp_path), df, p).columns) == set(df.columns) | {"quality_gpt3"}


def test_training_is_deterministic(spark, tmp_path):
    """The same data and seed give the same split, sampling and fit: equal metrics twice over (a small set
    and few iterations: the property, not the quality, is under test)."""
    _write_labelled(tmp_path, n=300)
    params = _train_params(tmp_path, max_iter=10)
    (_, first), (_, second) = fit(spark, params), fit(spark, params)
    assert first["roc_auc"] == second["roc_auc"] and first["confusion"] == second["confusion"]
    assert first["train_docs"] == second["train_docs"] > 0


def test_train_quality_needs_both_classes(spark, tmp_path):
    from tokenmill.errors import ConfigError

    _write_labelled(tmp_path, n=20)
    (tmp_path / "neg.jsonl").write_text(json.dumps({"id": "n1", "text": ""}) + "\n")  # nothing to learn from
    with pytest.raises(ConfigError, match="both classes"):
        fit(spark, _train_params(tmp_path))


def _fasttext_model(tmp_path) -> str:
    fasttext = pytest.importorskip("fasttext")
    lines = []
    for d in labelled_docs(600, seed=5, noise=0.0):
        label = "__label__hq" if d["label"] else "__label__cc"
        lines.append(f"{label} {' '.join(d['text'].split())}")
    train_file = tmp_path / "ft_train.txt"
    train_file.write_text("\n".join(lines) + "\n")
    model = fasttext.train_supervised(str(train_file), epoch=5, wordNgrams=2, dim=16, thread=1, seed=1, verbose=0)
    path = str(tmp_path / "ft.bin")
    model.save_model(path)
    return path


def test_fasttext_scores_loaded_once_per_worker(spark, tmp_path):
    path = _fasttext_model(tmp_path)
    docs = labelled_docs(400, seed=21)
    for i, d in enumerate(docs):
        d["lang"] = "en" if i % 4 else "de"
    docs[3]["text"] = ""
    df = _docs_frame(spark, docs, partitions=8)
    p = ClassifierParams(stage="quality_classifier", name="dclm", kind="fasttext", model=path, language="en",
                         only_language=True)
    ctx = _ctx(spark, tmp_path)
    out = quality_classifier(ctx, df, p)
    rows = {r["id"]: r["quality_dclm"] for r in out.collect()}
    assert len(rows) == len(docs)
    for d in docs:
        if d["lang"] != "en" or not d["text"]:
            assert rows[d["id"]] is None
        else:
            assert math.isfinite(rows[d["id"]]) and 0.0 <= rows[d["id"]] <= 1.0
    again = {r["id"]: r["quality_dclm"] for r in quality_classifier(ctx, df, p).collect()}
    assert again == rows
    good = [rows[d["id"]] for d in docs if d["label"] == 1 and rows[d["id"]] is not None]
    bad = [rows[d["id"]] for d in docs if d["label"] == 0 and rows[d["id"]] is not None]
    assert np.mean(good) > np.mean(bad)
    # Loads: at most once per Python worker process, never per batch or task (16 tasks). Each load notes
    # its worker's pid: how many workers Spark's pool holds depends on what ran before in the session.
    loads = spark.sparkContext.accumulator(0)
    noted = tmp_path / "loads.txt"

    def loaded():
        with open(noted, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        loads.add(1)

    import shutil

    fresh = tmp_path / "fresh" / os.path.basename(path)  # a model no worker has loaded yet
    fresh.parent.mkdir()
    shutil.copy(path, fresh)
    spec = model_spec(ctx, p.model_copy(update={"model": str(fresh)}))
    small = df.withColumn("s", score_column(F.col("text"), spec, loaded))
    small = small.repartition(16)  # more tasks than workers
    assert small.where(F.col("s").isNotNull()).count() == len(docs) - 1
    pids = noted.read_text().split()
    assert 1 <= loads.value == len(pids) == len(set(pids))
    report = resolve_deferred(ctx.reported("quality_classifier"))
    # (the last run's loads: workers that loaded the model for the first run keep it)
    assert report["language"] == "en" and isinstance(report["model_loads"], int) and report["model_loads"] >= 0


def _tiny_bert(tmp_path, layers=2, hidden=32, num_labels=1) -> str:
    pytest.importorskip("torch")
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=500, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tok.train_from_iterator([d["text"] for d in labelled_docs(200, seed=3)], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=128)
    import torch

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=fast.vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=hidden * 2, max_position_embeddings=128, num_labels=num_labels)
    model = BertForSequenceClassification(cfg)
    path = tmp_path / "bert"
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return str(path)


def test_transformers_regression_head_scores(spark, tmp_path):
    path = _tiny_bert(tmp_path)
    docs = labelled_docs(120, seed=8)
    docs[5]["text"] = ""
    df = _docs_frame(spark, docs, partitions=3)
    p = ClassifierParams(stage="quality_classifier", name="edu", kind="transformers", model=path, batch_size=16)
    out = quality_classifier(_ctx(spark, tmp_path), df, p)
    rows = {r["id"]: r["quality_edu"] for r in out.collect()}
    assert len(rows) == len(docs) and rows[docs[5]["id"]] is None
    values = [v for k, v in rows.items() if k != docs[5]["id"]]
    assert all(math.isfinite(v) for v in values) and len(set(values)) > 50  # a regression output per document
    again = {r["id"]: r["quality_edu"] for r in quality_classifier(_ctx(spark, tmp_path), df.repartition(5), p).collect()}
    assert again.keys() == rows.keys()
    assert all(again[k] == rows[k] or abs(again[k] - rows[k]) < 1e-5 for k in rows)  # batch padding only


def test_transformers_classification_head_probability(spark, tmp_path):
    path = _tiny_bert(tmp_path, num_labels=2)
    df = _docs_frame(spark, labelled_docs(40, seed=9), partitions=2)
    p = ClassifierParams(stage="quality_classifier", name="cls", kind="transformers", model=path, positive_label=1)
    values = [r["quality_cls"] for r in quality_classifier(_ctx(spark, tmp_path), df, p).collect()]
    assert len(values) == 40 and all(0.0 <= v <= 1.0 for v in values)


def test_model_paths_and_config_errors(spark, tmp_path):
    from pydantic import ValidationError

    from tokenmill.errors import ConfigError

    with pytest.raises(ConfigError, match="no such file"):
        quality_classifier(_ctx(spark, tmp_path), _docs_frame(spark, labelled_docs(4)), ClassifierParams(
            stage="quality_classifier", name="x", kind="fasttext", model=str(tmp_path / "missing.bin")))
    with pytest.raises(ConfigError, match="no such directory"):
        quality_classifier(_ctx(spark, tmp_path), _docs_frame(spark, labelled_docs(4)), ClassifierParams(
            stage="quality_classifier", name="x", kind="transformers", model=str(tmp_path / "nothing")))
    with pytest.raises(ConfigError, match="PipelineModel"):
        quality_classifier(_ctx(spark, tmp_path), _docs_frame(spark, labelled_docs(4)), ClassifierParams(
            stage="quality_classifier", name="x", kind="spark", model=str(tmp_path)))
    with pytest.raises(ValidationError, match="only_language needs"):
        ClassifierParams(stage="quality_classifier", name="x", kind="spark", model="m", only_language=True)
    with pytest.raises(ValidationError, match="lower-case"):
        ClassifierParams(stage="quality_classifier", name="Bad Name", kind="spark", model="m")
    with pytest.raises(ValidationError, match="needs `keep_top`"):
        SelectParams(stage="quality_select", scores=["q"], method="percentile")
    with pytest.raises(ConfigError, match="not in the data"):
        quality_select(_ctx(spark, tmp_path), _docs_frame(spark, labelled_docs(4)),
                       SelectParams(stage="quality_select", scores=["quality_nope"], method="threshold", threshold=0.5))


def _scores_frame(spark, n=10_000, partitions=7, seed=4):
    rng = np.random.default_rng(seed)
    scores = rng.random(n)
    rows = [(f"s{i:05d}", float(s), float(t)) for i, (s, t) in enumerate(zip(scores, rng.random(n), strict=True))]
    df = (spark.createDataFrame(rows, "id string, q double, q2 double")
          .withColumn(REMOVED_BY, F.lit(None).cast("string")).repartition(partitions, "id"))
    return df, scores


def _kept(df):
    return {r["id"] for r in df.where(F.col(REMOVED_BY).isNull()).select("id").collect()}


def test_select_threshold_and_percentile(spark, tmp_path):
    df, scores = _scores_frame(spark)
    ctx = _ctx(spark, tmp_path)
    out = quality_select(ctx, df, SelectParams(stage="quality_select", scores=["q"], method="threshold", threshold=0.7))
    assert len(_kept(out)) == int((scores >= 0.7).sum())
    assert out.where(F.col(REMOVED_BY) == "quality_select:below_threshold").count() == int((scores < 0.7).sum())
    p = SelectParams(stage="quality_select", scores=["q"], method="percentile", keep_top=0.1, relative_error=0.0)
    out = quality_select(ctx, df, p)
    assert abs(len(_kept(out)) - 1000) <= 7  # the expected number, +- one per partition boundary
    cutoff = ctx.reported("quality_select")["cutoff"]
    assert abs(cutoff - np.quantile(scores, 0.9)) < 1e-3
    # Several classifiers combined by max (Nemotron-CC).
    both = quality_select(ctx, df, SelectParams(stage="quality_select", scores=["q", "q2"], method="threshold",
                                                threshold=0.9))
    rows = df.select("q", "q2").collect()
    assert len(_kept(both)) == sum(1 for r in rows if max(r["q"], r["q2"]) >= 0.9)


def test_select_pareto_seeded_and_expected_fraction(spark, tmp_path):
    df, scores = _scores_frame(spark)
    ctx = _ctx(spark, tmp_path)

    def run(seed):
        return _kept(quality_select(ctx, df, SelectParams(stage="quality_select", scores=["q"], method="pareto",
                                                          alpha=9.0, seed=seed)))

    first, again, other = run(1), run(1), run(2)
    assert first == again and first != other
    expected = float(np.mean((2.0 - scores) ** -9.0))  # P(pareto(9) > 1 - s) = (2 - s)^-9
    assert abs(len(first) / len(scores) - expected) < 0.01
    # Higher scores are kept more often.
    by_id = dict(zip([f"s{i:05d}" for i in range(len(scores))], scores, strict=True))
    assert np.mean([by_id[i] for i in first]) > np.mean(scores) + 0.15


def test_select_buckets_keep_everything(spark, tmp_path):
    df, scores = _scores_frame(spark)
    ctx = _ctx(spark, tmp_path)
    out = quality_select(ctx, df, SelectParams(stage="quality_select", scores=["q"], method="buckets", buckets=5,
                                               relative_error=0.0))
    assert out.where(F.col(REMOVED_BY).isNotNull()).count() == 0
    counts = {r[QUALITY_BUCKET]: r["count"] for r in out.groupBy(QUALITY_BUCKET).count().collect()}
    assert sorted(counts) == [1, 2, 3, 4, 5] and all(abs(c - 2000) <= 5 for c in counts.values())
    edges = quality_select(ctx, df, SelectParams(stage="quality_select", scores=["q"], method="buckets",
                                                 bucket_edges=[0.5]))
    assert edges.where(F.col(QUALITY_BUCKET) == 2).count() == int((scores >= 0.5).sum())


def test_train_quality_fasttext_dclm_recipe(spark, tmp_path):
    """`kind: fasttext`: the same labelled split as the Spark model, a bigram fastText model saved as
    `model.bin` in the output folder, held-out metrics from the scorer the stage uses, and the stage
    scoring new documents with it."""
    _write_labelled(tmp_path)
    spark_metrics = train(spark, _train_params(tmp_path, model_out=str(tmp_path / "lr")))
    # a small set: more epochs than fastText's default 5 (DCLM trains on 400k documents per class)
    params = _train_params(tmp_path, kind="fasttext", fasttext={"threads": 1, "epoch": 25, "lr": 0.5})
    metrics = train(spark, params)
    out = tmp_path / "model"
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "_SUCCESS", "manifest.json", "metrics.json", "model.bin"]
    assert metrics["kind"] == "fasttext" and metrics["fasttext"]["word_ngrams"] == 2
    assert metrics["roc_auc"] > 0.9
    # the same balanced documents and held-out split as the Spark model
    assert (metrics["test_docs"], metrics["train_docs"]) == (spark_metrics["test_docs"], spark_metrics["train_docs"])
    c = metrics["confusion"]
    assert c["tp"] + c["fp"] + c["fn"] + c["tn"] == metrics["test_docs"]
    assert json.loads((out / "manifest.json").read_text())["metrics"]["roc_auc"] == metrics["roc_auc"]
    # the scoring stage loads it like any fastText model
    docs = labelled_docs(300, seed=99)
    p = ClassifierParams(stage="quality_classifier", name="dclm", kind="fasttext", model=str(out / "model.bin"))
    scored = {r["id"]: r["quality_dclm"] for r in quality_classifier(_ctx(spark, tmp_path), _docs_frame(spark, docs),
                                                                     p).collect()}
    pos = [scored[d["id"]] for d in docs if d["label"] == 1]
    neg = [scored[d["id"]] for d in docs if d["label"] == 0]
    assert sum(pos) / len(pos) > sum(neg) / len(neg) + 0.3

"""Train a quality classifier in Spark, the GPT-3 recipe: positives (curated references: Wikipedia, books,
instruction data) against negatives (raw crawl text), Spark's tokenizer + word n-grams + HashingTF
(+ optional IDF) and logistic regression. The classes are balanced by sampling, a test split is held out
by a stable hash of the document id, and the job reports ROC-AUC, precision/recall at the chosen threshold
and a calibration table; the fitted `PipelineModel` is saved to any Hadoop/fsspec path with `metrics.json`.
"""

from __future__ import annotations

import json
import logging

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import IDF, HashingTF, NGram, RegexTokenizer, SQLTransformer
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .. import __version__
from ..errors import ConfigError
from ..io.hadoopfs import HadoopFS, qualify
from ..io.outputs import OutputLock, check_destination
from ..io.sources import read_source
from ..pipeline.commit import StagedOutput
from ..schema import ID, REMOVED_BY, TEXT
from ..text.hashing import unit_hash
from .config import FeatureParams, TrainParams

log = logging.getLogger("tokenmill.classify")

FEATURE_INPUT = "__qc_text"  # the model reads this column (scoring fills it only for the rows it scores)
PROBABILITY = "__qc_probability"
LABEL = "label"


def feature_pipeline(f: FeatureParams, max_chars: int) -> list:
    """Tokenizer (lower-cased word runs), one NGram per size, HashingTF per size, concatenated (+ IDF)."""
    stages: list = [
        SQLTransformer(statement=f"SELECT *, substring(`{FEATURE_INPUT}`, 1, {max_chars}) AS __qc_cut FROM __THIS__"),
        RegexTokenizer(inputCol="__qc_cut", outputCol="__qc_words", pattern=r"\w+", gaps=False, toLowercase=True)]
    grams = []
    for n in sorted(set(f.ngrams)):
        col = "__qc_words" if n == 1 else f"__qc_{n}grams"
        if n > 1:
            stages.append(NGram(n=n, inputCol="__qc_words", outputCol=col))
        grams.append(col)
    if len(grams) == 1:
        tokens = grams[0]
    else:
        tokens = "__qc_tokens"
        stages.append(SQLTransformer(
            statement=f"SELECT *, concat({', '.join(f'`{g}`' for g in grams)}) AS {tokens} FROM __THIS__"))
    tf_out = "__qc_tf" if f.idf else "__qc_features"
    stages.append(HashingTF(inputCol=tokens, outputCol=tf_out, numFeatures=f.num_features, binary=f.binary))
    if f.idf:
        stages.append(IDF(inputCol=tf_out, outputCol="__qc_features", minDocFreq=f.min_doc_freq))
    return stages


def labelled(spark: SparkSession, params: TrainParams) -> DataFrame:
    """Positives (label 1) and negatives (label 0), empty texts dropped, classes balanced by sampling."""
    parts = []
    for label, sources in ((1.0, params.positives), (0.0, params.negatives)):
        for i, src in enumerate(sources):
            where = f"{'positives' if label else 'negatives'}[{i}]"
            df = read_source(spark, src, where, params.work)
            if REMOVED_BY in df.columns:  # records the reader skipped (counted there) are not training data
                df = df.where(F.col(REMOVED_BY).isNull())
            parts.append(df.select(ID, TEXT).where(F.col(TEXT).isNotNull() & (F.length(TEXT) > 0))
                         .withColumn(LABEL, F.lit(label)))
    data = parts[0]
    for p in parts[1:]:
        data = data.unionByName(p)
    data = data.localCheckpoint()
    counts = {r[LABEL]: r["n"] for r in data.groupBy(LABEL).agg(F.count(F.lit(1)).alias("n")).collect()}  # small: 2 rows
    if counts.get(1.0, 0) == 0 or counts.get(0.0, 0) == 0:
        raise ConfigError(f"train_quality: need documents of both classes, found positives "
                          f"{counts.get(1.0, 0)}, negatives {counts.get(0.0, 0)}")
    target = min(counts.values()) if params.balance else max(counts.values())
    if params.max_per_class:
        target = min(target, params.max_per_class)
    # Stable per-document draw: the same documents are chosen on every run and partitioning.
    rate = F.when(F.col(LABEL) == 1.0, F.lit(min(1.0, target / counts[1.0]))).otherwise(
        F.lit(min(1.0, target / counts[0.0])))
    return data.where(unit_hash(params.seed, ID, LABEL) < rate)


def fit(spark: SparkSession, params: TrainParams) -> tuple[PipelineModel, dict]:
    """Fit on the training split and evaluate on the held-out one: (model, metrics)."""
    data = labelled(spark, params).withColumn(FEATURE_INPUT, F.col(TEXT))
    is_test = unit_hash(params.seed + 1, ID) < F.lit(params.test_fraction)
    train_df = data.where(~is_test).localCheckpoint()
    test_df = data.where(is_test)
    lr = LogisticRegression(featuresCol="__qc_features", labelCol=LABEL, regParam=params.reg_param,
                            elasticNetParam=params.elastic_net, maxIter=params.max_iter,
                            probabilityCol=PROBABILITY, rawPredictionCol="__qc_raw", predictionCol="__qc_prediction")
    model = Pipeline(stages=[*feature_pipeline(params.features, params.max_chars), lr]).fit(train_df)
    pred = model.transform(test_df).select(
        LABEL, "__qc_raw", vector_to_array(F.col(PROBABILITY))[1].alias("p")).localCheckpoint()
    metrics = evaluate(pred, params.threshold, params.calibration_bins)
    metrics.update({"name": params.name, "kind": "spark", "language": params.language,
                    "features": params.features.model_dump(),
                    "train_docs": train_df.count(), "max_chars": params.max_chars,
                    "reg_param": params.reg_param, "elastic_net": params.elastic_net})
    return model, metrics


def train(spark: SparkSession, params: TrainParams) -> dict:
    """Fit, evaluate, save the model to `model_out` (a Spark PipelineModel folder, or a folder holding the
    fastText `model.bin`) with metrics.json beside it; the metrics."""
    out = qualify(params.model_out)
    check_destination(spark, out, "model_out", replace=params.overwrite)
    with OutputLock(spark, out):
        if params.kind == "spark":
            model, metrics = fit(spark, params)
        with StagedOutput(spark, out) as staged:
            if params.kind == "fasttext":
                from .fasttext_train import train_fasttext

                HadoopFS(spark, out).mkdirs(staged.path)
                metrics = train_fasttext(spark, params, staged.path)
            else:
                model.write().save(staged.path)
            HadoopFS(spark, out).write_text(f"{staged.path}/metrics.json", json.dumps(metrics, indent=1) + "\n")
            # The model folder is a tokenmill output: `_SUCCESS` and `manifest.json` mark it replaceable.
            staged.commit({"tokenmill_version": __version__, "kind": "quality_model",
                           "params": params.model_dump(mode="json"), "metrics": metrics})
    log.info("saved quality model to %s (ROC-AUC %.4f on %d held-out documents)", out, metrics["roc_auc"],
             metrics["test_docs"])
    return metrics


def evaluate(pred: DataFrame, threshold: float, bins: int) -> dict:
    """ROC-AUC, precision/recall/F1 at ``threshold`` and a calibration table, from Spark aggregates."""
    auc = BinaryClassificationEvaluator(labelCol=LABEL, rawPredictionCol="__qc_raw",
                                        metricName="areaUnderROC").evaluate(pred)
    positive = F.col("p") >= F.lit(threshold)
    r = pred.agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(F.when(positive & (F.col(LABEL) == 1.0), 1).otherwise(0)).alias("tp"),
        F.sum(F.when(positive & (F.col(LABEL) == 0.0), 1).otherwise(0)).alias("fp"),
        F.sum(F.when(~positive & (F.col(LABEL) == 1.0), 1).otherwise(0)).alias("fn"),
        F.sum(F.when(~positive & (F.col(LABEL) == 0.0), 1).otherwise(0)).alias("tn")).first()  # one row
    tp, fp, fn, tn = (int(r[k] or 0) for k in ("tp", "fp", "fn", "tn"))
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else None
    b = F.least(F.floor(F.col("p") * bins), F.lit(bins - 1)).cast("int")
    rows = (pred.groupBy(b.alias("bin")).agg(F.count(F.lit(1)).alias("docs"), F.avg("p").alias("mean_p"),
                                             F.avg(LABEL).alias("positive_rate"))
            .orderBy("bin").collect())  # small: one row per bin
    calibration = [{"bin": f"[{x['bin'] / bins:.2f}, {(x['bin'] + 1) / bins:.2f})", "docs": x["docs"],
                    "mean_predicted": round(x["mean_p"], 4), "observed_positive": round(x["positive_rate"], 4)}
                   for x in rows]
    return {"roc_auc": round(auc, 6), "test_docs": int(r["n"]), "threshold": threshold,
            "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
            "precision": round(precision, 4) if precision is not None else None,
            "recall": round(recall, 4) if recall is not None else None, "f1": round(f1, 4) if f1 else None,
            "calibration": calibration}


def load_model(spark: SparkSession, path: str) -> PipelineModel:
    """A saved PipelineModel (from `train_quality`), with a clear error when the folder is not one."""
    try:
        model = PipelineModel.load(qualify(path))
    except Exception as exc:
        raise ConfigError(f"spark quality model {path!r}: cannot load a PipelineModel "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    outputs = {p.getOrDefault("probabilityCol") for p in model.stages if p.hasParam("probabilityCol")}
    if PROBABILITY not in outputs:
        raise ConfigError(f"spark quality model {path!r}: not a tokenmill quality model (train it with train_quality)")
    return model

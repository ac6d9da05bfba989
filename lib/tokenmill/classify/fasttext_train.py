"""`train_quality` with `kind: fasttext`: DCLM's quality filter (Li et al. 2024, "DataComp-LM") is a
fastText classifier on word unigrams and bigrams, trained on instruction-style positives against raw
crawl negatives. The same positives, negatives, balancing and held-out split as the Spark model: Spark
writes the training split as fastText lines (`__label__hq <text on one line>`, in a stable shuffled
order), the driver trains on that one file (fastText is a single-machine, multi-threaded trainer), and
the held-out split is scored in Spark by the same Arrow-batch scorer the `quality_classifier` stage uses,
so the reported ROC-AUC is that of the model as it will run.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.functions import arrow_udf

from ..errors import ConfigError
from ..io.artifacts import ship_file
from ..io.hadoopfs import HadoopFS, qualify
from ..schema import ID, TEXT
from ..text.hashing import unit_hash
from .config import TrainParams
from .models import FastTextSpec, get_model
from .train import LABEL, evaluate, labelled

log = logging.getLogger("tokenmill.classify")

POSITIVE = "__label__hq"
NEGATIVE = "__label__cc"
MODEL_FILE = "model.bin"


def _training_file(data: DataFrame, params: TrainParams, folder: str) -> str:
    """The training split as one local fastText file: Spark writes text part files in a stable shuffled
    order (by a hash of the id), which are concatenated in part order on the driver."""
    spark = data.sparkSession
    parts = qualify(f"{params.work.rstrip('/')}/fasttext_train")
    line = F.concat(F.when(F.col(LABEL) == 1.0, F.lit(POSITIVE)).otherwise(F.lit(NEGATIVE)), F.lit(" "),
                    F.trim(F.regexp_replace(F.substring(TEXT, 1, params.max_chars), r"\s+", " ")))
    (data.select(line.alias("value"), unit_hash(params.seed + 2, ID).alias("__order")).orderBy("__order")
     .select("value").write.mode("overwrite").text(parts))
    local_parts = os.path.join(folder, "parts")
    HadoopFS(spark, parts).copy_to_local(parts, local_parts)
    path = os.path.join(folder, "train.txt")
    with open(path, "wb") as out:
        for part in sorted(glob.glob(os.path.join(local_parts, "part-*"))):
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out)
    return path


def _scores(df: DataFrame, spec: FastTextSpec) -> DataFrame:
    def run(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
        model = get_model(spec)
        for arr in batches:
            yield pa.array(model.score(arr.to_pylist()), pa.float64())

    p = arrow_udf(run, "double")(F.col(TEXT))
    return df.select(LABEL, p.alias("p")).withColumn("__qc_raw", F.col("p"))


def fit_fasttext(spark: SparkSession, params: TrainParams, folder: str) -> tuple[str, dict]:
    """Train on the training split, score the held-out one: (local model file, metrics)."""
    import fasttext

    data = labelled(spark, params)
    is_test = unit_hash(params.seed + 1, ID) < F.lit(params.test_fraction)
    train_df = data.where(~is_test).localCheckpoint()
    n_train = train_df.count()
    if n_train == 0:
        raise ConfigError("train_quality: the training split is empty (lower test_fraction or add documents)")
    path = _training_file(train_df, params, folder)
    ft = params.fasttext
    model = fasttext.train_supervised(input=path, dim=ft.dim, epoch=ft.epoch, lr=ft.lr, wordNgrams=ft.word_ngrams,
                                      minCount=ft.min_count, bucket=ft.bucket, loss="softmax", thread=ft.threads,
                                      seed=params.seed, verbose=0)
    model_path = os.path.join(folder, MODEL_FILE)
    model.save_model(model_path)
    spec = FastTextSpec(ship_file(spark, model_path, "fasttext model"), positive_label=POSITIVE,
                        max_chars=params.max_chars)
    pred = _scores(data.where(is_test), spec).localCheckpoint()
    metrics = evaluate(pred, params.threshold, params.calibration_bins)
    metrics.update({"name": params.name, "kind": "fasttext", "language": params.language,
                    "fasttext": ft.model_dump(), "train_docs": n_train, "max_chars": params.max_chars,
                    "positive_label": POSITIVE})
    return model_path, metrics


def train_fasttext(spark: SparkSession, params: TrainParams, staged_path: str) -> dict:
    """Fit and write `model.bin` into the staged output folder; the metrics."""
    with tempfile.TemporaryDirectory(prefix="tm-fasttext-") as folder:
        model_path, metrics = fit_fasttext(spark, params, folder)
        HadoopFS(spark, staged_path).copy_from_local(model_path, f"{staged_path}/{MODEL_FILE}")
    return metrics

"""Token precision, recall and F1 of extracted main text against a labelled main text, per page and
averaged, computed in Spark: the WARC pages are read by the normal reader with each extractor under test,
joined to the labels by URL, and scored in Arrow batches; only the averages come back to the driver.

The metric is the article-extraction benchmark's: whitespace tokens, multiset overlap; a page whose
extraction is empty (or was skipped by the reader) scores 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.functions import arrow_udf

from ..errors import ConfigError
from ..io.sources import WarcSource, read_source
from ..schema import REMOVED_BY, TEXT, URL


def token_prf(pred: str | None, gold: str | None) -> tuple[float, float, float]:
    """(precision, recall, F1) of whitespace tokens with multiset overlap; 0s when either side is empty."""
    p, g = Counter((pred or "").split()), Counter((gold or "").split())
    if not p or not g:
        return 0.0, 0.0, 0.0
    overlap = sum((p & g).values())
    precision, recall = overlap / sum(p.values()), overlap / sum(g.values())
    return precision, recall, (2 * precision * recall / (precision + recall) if overlap else 0.0)


def _prf_column(pred, gold):
    schema = "struct<p:double,r:double,f1:double>"

    def run(batches: Iterator[tuple[pa.Array, pa.Array]]) -> Iterator[pa.Array]:
        for preds, golds in batches:
            rows = [token_prf(a, b) for a, b in zip(preds.to_pylist(), golds.to_pylist(), strict=True)]
            yield pa.StructArray.from_arrays([pa.array([r[i] for r in rows], pa.float64()) for i in range(3)],
                                             names=["p", "r", "f1"])

    return arrow_udf(run, schema)(pred, gold)


def labels(spark: SparkSession, path: str, url_field: str, text_field: str) -> DataFrame:
    df = spark.read.json(path)
    missing = [c for c in (url_field, text_field) if c not in df.columns]
    if missing:
        raise ConfigError(f"{path}: no field(s) {', '.join(missing)} in the labels (fields: {', '.join(df.columns)})")
    return df.select(F.col(url_field).alias(URL), F.col(text_field).alias("__gold")).dropDuplicates([URL])


def evaluate_extraction(spark: SparkSession, warc: str, labels_path: str, extractors: list[str], work_dir: str,
                        url_field: str = "url", text_field: str = "articleBody") -> dict:
    """Per extractor: pages labelled, pages found in the WARC, mean precision / recall / F1, empty share."""
    gold = labels(spark, labels_path, url_field, text_field).localCheckpoint()
    n_labels = gold.count()
    out: dict = {"labels": n_labels, "extractors": {}}
    for name in extractors:
        src = WarcSource(name=f"eval_{name}", format="warc", paths=[warc], extractor=name)
        pages = read_source(spark, src, f"extract_eval ({name})", work_dir)
        pages = pages.select(URL, F.when(F.col(REMOVED_BY).isNull(), F.col(TEXT)).alias("__pred"))
        joined = gold.join(pages.dropDuplicates([URL]), URL, "left")
        scored = joined.select(_prf_column(F.col("__pred"), F.col("__gold")).alias("s"),
                               F.col("__pred").isNull().alias("missing"),
                               F.coalesce(F.length(F.trim("__pred")) == 0, F.lit(True)).alias("empty"))
        r = scored.agg(F.avg("s.p").alias("p"), F.avg("s.r").alias("r"), F.avg("s.f1").alias("f1"),
                       F.sum(F.col("missing").cast("int")).alias("missing"),
                       F.avg(F.col("empty").cast("double")).alias("empty")).first()  # one row
        out["extractors"][name] = {"precision": round(r["p"], 4), "recall": round(r["r"], 4), "f1": round(r["f1"], 4),
                                   "empty_share": round(r["empty"], 4), "labelled_pages_not_in_warc": int(r["missing"])}
    return out


def format_eval(result: dict) -> str:
    lines = [f"{result['labels']:,} labelled pages", f"{'extractor':<22}{'F1':>8}{'precision':>11}{'recall':>9}"
             f"{'empty':>8}{'missing':>9}"]
    for name, e in result["extractors"].items():
        lines.append(f"{name:<22}{e['f1']:>8.4f}{e['precision']:>11.4f}{e['recall']:>9.4f}{e['empty_share']:>8.3f}"
                     f"{e['labelled_pages_not_in_warc']:>9,}")
    return "\n".join(lines)

"""Typed configs: the `quality_classifier` and `quality_select` stages and the `train_quality` job."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..config import Strict
from ..io.sources import Source
from ..pipeline.stage import StageParams

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ClassifierParams(StageParams):
    """Score documents with a quality model; the score goes to `quality_<name>` (null where not scored)."""

    name: str  # the score column is quality_<name>
    kind: Literal["spark", "fasttext", "transformers"]
    model: str  # a Spark PipelineModel folder, a fastText .bin, or a transformers model directory (local or fsspec)
    language: str | None = None  # the language the model was trained for (recorded in the report)
    only_language: bool = False  # score only documents whose `lang` is `language`; others get null
    positive_label: str | int | None = None  # fastText: default __label__hq; transformers: default the last label
    # transformers
    batch_size: int = Field(default=32, ge=1)
    max_length: int | None = Field(default=None, ge=8)  # tokens (default: the model's maximum)
    device: str = "cpu"  # "cuda", "cuda:0" on GPU executors
    threads: int = Field(default=1, ge=1)  # torch threads per task
    trust_remote_code: bool = False  # off unless the config turns it on: it runs the model folder's code
    output: Literal["auto", "regression", "probability"] = "auto"
    max_chars: int | None = Field(default=None, ge=1)  # characters given to the model (default per kind)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r}: use lower-case letters, digits and underscores (it names a column)")
        return value

    @model_validator(mode="after")
    def _check(self):
        if self.only_language and not self.language:
            raise ValueError("only_language needs `language` (the language the model was trained for)")
        if self.kind == "fasttext" and isinstance(self.positive_label, int):
            raise ValueError("fasttext: positive_label is a label name such as __label__hq")
        return self

    @property
    def column(self) -> str:
        return f"quality_{self.name}"


class SelectParams(StageParams):
    """Keep documents by their quality score: threshold, top percentile, Pareto sampling (GPT-3), or tiers."""

    scores: list[str] = Field(min_length=1)  # score columns, e.g. [quality_dclm]; several are combined
    combine: Literal["max", "mean", "min"] = "max"  # Nemotron-CC combines several classifiers by max
    method: Literal["threshold", "percentile", "pareto", "buckets"]
    threshold: float | None = None  # threshold: keep score >= threshold
    keep_top: float | None = Field(default=None, gt=0.0, le=1.0)  # percentile: keep this top share (DCLM: 0.1)
    relative_error: float = Field(default=1e-4, ge=0.0, le=0.5)  # approxQuantile's error (0: exact)
    alpha: float = Field(default=9.0, gt=0.0)  # pareto: GPT-3 keeps when numpy.random.pareto(9) > 1 - score
    seed: int = 0  # pareto: the draw is a hash of (seed, id): reruns keep exactly the same documents
    buckets: int = Field(default=5, ge=2, le=100)  # buckets: tiers by quantile (1 = lowest ... n = highest)
    bucket_edges: list[float] | None = None  # buckets: explicit ascending edges instead of quantiles
    unscored: Literal["keep", "remove"] = "keep"  # documents with no score (other language, empty text)

    @model_validator(mode="after")
    def _check(self):
        need = {"threshold": "threshold", "percentile": "keep_top"}.get(self.method)
        if need and getattr(self, need) is None:
            raise ValueError(f"method {self.method} needs `{need}`")
        if self.bucket_edges is not None and sorted(self.bucket_edges) != self.bucket_edges:
            raise ValueError("bucket_edges must be ascending")
        return self


class FeatureParams(Strict):
    """Spark ML features, the GPT-3 recipe: tokenizer, word n-grams, HashingTF (+ optional IDF)."""

    ngrams: list[int] = Field(default_factory=lambda: [1, 2])  # unigrams and bigrams (DCLM's fastText uses bigrams)
    num_features: int = Field(default=1 << 18, ge=16)
    binary: bool = False
    idf: bool = False
    min_doc_freq: int = Field(default=0, ge=0)  # IDF


class FastTextTrainParams(Strict):
    """fastText supervised training (`kind: fasttext`): word unigrams + bigrams as DCLM's filter; the
    others are fastText's own defaults for supervised training."""

    word_ngrams: int = Field(default=2, ge=1)
    dim: int = Field(default=100, ge=2)
    epoch: int = Field(default=5, ge=1)
    lr: float = Field(default=0.1, gt=0.0)
    min_count: int = Field(default=1, ge=1)
    bucket: int = Field(default=2_000_000, ge=1)
    threads: int = Field(default=2, ge=1)  # fastText trains on the driver; a small, deterministic default


class TrainParams(Strict):
    """`train_quality`: a quality classifier on positives (curated references) against negatives (raw
    crawl): Spark logistic regression on hashed word n-grams (`spark`), or a fastText bigram model
    (`fasttext`, DCLM's recipe)."""

    kind: Literal["spark", "fasttext"] = "spark"
    fasttext: FastTextTrainParams = Field(default_factory=FastTextTrainParams)
    name: str = "quality"
    positives: list[Source] = Field(min_length=1)
    negatives: list[Source] = Field(min_length=1)
    model_out: str  # where the PipelineModel is saved (any Hadoop/fsspec path); metrics.json beside it
    language: str | None = None  # recorded with the model
    balance: bool = True  # sample the larger class down to the smaller one
    max_per_class: int | None = Field(default=None, ge=1)
    test_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    seed: int = 0
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)  # for precision/recall
    calibration_bins: int = Field(default=10, ge=2, le=100)
    max_chars: int = Field(default=20_000, ge=100)  # characters of each document used as features
    features: FeatureParams = Field(default_factory=FeatureParams)
    reg_param: float = Field(default=0.001, ge=0.0)
    elastic_net: float = Field(default=0.0, ge=0.0, le=1.0)
    max_iter: int = Field(default=100, ge=1)
    work: str = "work/train_quality"
    overwrite: bool = True

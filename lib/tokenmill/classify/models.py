"""Executor-side quality models behind one call, `score(texts) -> list[float | None]`, each loaded once per
Python process (a Spark worker is reused across tasks and batches), never per batch.

- fastText: a supervised classifier file (DCLM's OH-2.5+ELI5 model, or any `__label__hq` / `__label__cc`
  model); score = probability of the positive label (1 - the top probability when the top label is
  another one, exact for two-label models).
- transformers: a sequence-classification model directory (e.g. a FineWeb-Edu-style BERT regression head
  giving a 0-5 score), run in batches under `torch.inference_mode`, truncated to the model's length; score
  = the regression output (one label), or the softmax probability of the positive label.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigError
from ..io.artifacts import ShippedFile, local_dir, local_path, once_per_process

log = logging.getLogger("tokenmill.classify")

LOADS: dict[str, int] = {"fasttext": 0, "transformers": 0}  # loads in this process


@dataclass(frozen=True)
class FastTextSpec:
    """A fastText classifier file (picklable, hashable: the per-process cache key)."""

    model: ShippedFile
    positive_label: str = "__label__hq"
    max_chars: int = 100_000  # fastText reads one line: newlines become spaces, very long texts are cut


@dataclass(frozen=True)
class TransformersSpec:
    """A transformers sequence-classification model directory."""

    path: str
    shipped_name: str | None = None
    batch_size: int = 32
    max_length: int | None = None  # tokens; default: the model's own maximum
    device: str = "cpu"
    threads: int = 1  # torch intra-op threads per task (Spark already runs one task per core)
    trust_remote_code: bool = False
    positive_label: str | int | None = None  # classification heads: the label scored (default: the last)
    max_chars: int = 20_000  # characters handed to the tokenizer (enough for max_length tokens)
    output: Literal["auto", "regression", "probability"] = "auto"


def get_model(spec: FastTextSpec | TransformersSpec, on_load=None):
    """The scorer for ``spec``, built once per process; ``on_load`` is called when it loads (the stage
    passes a Spark accumulator, so its report counts the loads across executors)."""
    kind = "fasttext" if isinstance(spec, FastTextSpec) else "transformers"

    def build():
        scorer = FastTextScorer(spec) if kind == "fasttext" else TransformersScorer(spec)  # type: ignore[arg-type]
        LOADS[kind] += 1
        log.info("loaded %s quality model in pid %d", kind, os.getpid())
        return scorer

    return once_per_process(("quality", spec), build, on_load)


class FastTextScorer:
    def __init__(self, spec: FastTextSpec):
        import fasttext

        self.spec = spec
        try:
            self.model = fasttext.load_model(local_path(spec.model))
        except Exception as exc:
            raise ConfigError(f"fasttext model {spec.model.path!r}: cannot load ({exc})") from None
        labels = self.model.get_labels()
        if spec.positive_label not in labels:
            raise ConfigError(f"fasttext model {spec.model.path!r}: no label {spec.positive_label!r} "
                              f"(it has {', '.join(labels[:10])})")
        self.two_labels = len(labels) == 2

    def score(self, texts: list[str | None]) -> list[float | None]:
        todo = [i for i, t in enumerate(texts) if t]
        out: list[float | None] = [None] * len(texts)
        if not todo:
            return out
        lines = [" ".join(texts[i][:self.spec.max_chars].split()) for i in todo]  # type: ignore[index]
        # The list form of predict (multilinePredict) is the one that works with numpy 2 in fasttext 0.9.3.
        k = 2 if self.two_labels else -1
        labels, probs = self.model.predict(lines, k=k)
        for i, labs, ps in zip(todo, labels, probs, strict=True):
            p = 0.0
            for lab, q in zip(labs, ps, strict=True):
                if lab == self.spec.positive_label:
                    p = float(q)
                    break
            out[i] = min(1.0, max(0.0, p))
        return out


class TransformersScorer:
    def __init__(self, spec: TransformersSpec):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.spec = spec
        self.torch = torch
        path = local_dir(spec.path, spec.shipped_name, "transformers model")
        if not os.path.isdir(path):
            raise ConfigError(f"transformers model {spec.path!r}: not a local directory (nothing is "
                              "downloaded at run time: save the model with save_pretrained and point at it)")
        torch.set_num_threads(max(1, spec.threads))
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=spec.trust_remote_code,
                                                           local_files_only=True)
            self.model = AutoModelForSequenceClassification.from_pretrained(
                path, trust_remote_code=spec.trust_remote_code, local_files_only=True)
        except Exception as exc:
            raise ConfigError(f"transformers model {spec.path!r}: cannot load ({type(exc).__name__}: {exc})") from None
        self.model.eval().to(spec.device)
        cfg = self.model.config
        limits = [x for x in (spec.max_length, getattr(cfg, "max_position_embeddings", None),
                              self.tokenizer.model_max_length if self.tokenizer.model_max_length < 1e6 else None) if x]
        self.max_length = int(min(limits)) if limits else 512
        self.regression = spec.output == "regression" or (
            spec.output == "auto" and (cfg.num_labels == 1 or cfg.problem_type == "regression"))
        self.positive = self._positive_index(cfg, spec.positive_label)

    @staticmethod
    def _positive_index(cfg, label: str | int | None) -> int:
        if label is None:
            return cfg.num_labels - 1
        if isinstance(label, int):
            if not 0 <= label < cfg.num_labels:
                raise ConfigError(f"positive_label {label}: the model has {cfg.num_labels} labels")
            return label
        by_name = {str(v): int(k) for k, v in (cfg.id2label or {}).items()}
        if label not in by_name:
            raise ConfigError(f"positive_label {label!r}: the model's labels are {sorted(by_name)}")
        return by_name[label]

    def score(self, texts: list[str | None]) -> list[float | None]:
        torch = self.torch
        todo = [i for i, t in enumerate(texts) if t]
        out: list[float | None] = [None] * len(texts)
        # Longest first within the batch: less padding per forward pass.
        todo.sort(key=lambda i: -len(texts[i]))  # type: ignore[arg-type]
        with torch.inference_mode():
            for lo in range(0, len(todo), self.spec.batch_size):
                part = todo[lo:lo + self.spec.batch_size]
                enc = self.tokenizer([texts[i][:self.spec.max_chars] for i in part],  # type: ignore[index]
                                     truncation=True, max_length=self.max_length, padding=True, return_tensors="pt")
                enc = {k: v.to(self.spec.device) for k, v in enc.items()}
                logits = self.model(**enc).logits.float()
                if self.regression:
                    values = logits[:, 0]
                else:
                    values = torch.softmax(logits, dim=-1)[:, self.positive]
                for i, v in zip(part, values.cpu().tolist(), strict=True):
                    out[i] = float(v)
        return out

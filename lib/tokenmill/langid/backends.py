"""Language-ID backends behind one call: `predict(texts) -> (codes, scores)` on a batch of clean lines.

Each model is loaded once per Python process (a Spark worker is reused across tasks), never per batch:
- fastText: any language-ID model file (lid.176.bin, GlotLID, OpenLID); score = the top label's probability.
- CLD2 (pycld2): bundled tables; score = the share of the text in the top language, halved when CLD2
  itself flags the result unreliable (so an unsure CLD2 answer never passes a cut-off above 0.5).
- lingua: bundled n-gram models, optionally restricted to a language set and in low-accuracy mode;
  score = lingua's confidence of the top language (confidences over the set sum to 1).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Literal

from ..io.artifacts import ShippedFile, local_path, once_per_process
from .codes import UND, to_iso639_1

log = logging.getLogger("tokenmill.langid")

BackendName = Literal["fasttext", "cld2", "lingua"]

LOADS: dict[str, int] = {"fasttext": 0, "cld2": 0, "lingua": 0}  # loads in this process (tests check one each)


@dataclass(frozen=True)
class BackendSpec:
    """Everything an executor needs to build a backend (picklable, hashable: the per-process cache key)."""

    name: BackendName
    model: ShippedFile | None = None  # fastText
    languages: tuple[str, ...] = ()  # lingua: restrict to these canonical codes (empty: all 75)
    low_accuracy: bool = False  # lingua
    aliases: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def get_backend(spec: BackendSpec):
    """The backend for ``spec``, built once per process (thread-safe)."""

    def build():
        backend = {"fasttext": FastTextBackend, "cld2": Cld2Backend, "lingua": LinguaBackend}[spec.name](spec)
        LOADS[spec.name] += 1
        log.info("loaded langid backend %s in pid %d", spec.name, os.getpid())
        return backend

    return once_per_process(("langid", spec), build)


class _Backend:
    def __init__(self, spec: BackendSpec):
        self.spec = spec
        self.aliases = dict(spec.aliases)

    def code(self, label: str) -> str:
        return to_iso639_1(label, self.aliases)


class FastTextBackend(_Backend):
    """A fastText supervised model file; the batch goes through one `predict` call (C++ loop)."""

    def __init__(self, spec: BackendSpec):
        super().__init__(spec)
        import fasttext

        assert spec.model is not None
        path = local_path(spec.model)
        try:
            self.model = fasttext.load_model(path)
        except Exception as exc:
            from ..errors import ConfigError

            raise ConfigError(f"fasttext model {spec.model.path!r}: cannot load ({exc})") from None
        self.labels: dict[str, str] = {}

    def predict(self, texts: list[str]) -> tuple[list[str], list[float]]:
        if not texts:
            return [], []
        # The list form of predict (multilinePredict) is the one that works with numpy 2 in fasttext 0.9.3.
        labels, probs = self.model.predict(texts, k=1)
        codes, scores = [], []
        for label, prob in zip(labels, probs, strict=True):
            if not label:
                codes.append(UND)
                scores.append(0.0)
                continue
            raw = label[0]
            code = self.labels.get(raw)
            if code is None:
                code = self.labels[raw] = self.code(raw)
            codes.append(code)
            scores.append(min(1.0, float(prob[0])))
        return codes, scores


class Cld2Backend(_Backend):
    """Compact Language Detector 2 through pycld2 (plain text mode)."""

    def __init__(self, spec: BackendSpec):
        super().__init__(spec)
        import pycld2

        self.detect = pycld2.detect
        self.error = pycld2.error

    def predict(self, texts: list[str]) -> tuple[list[str], list[float]]:
        codes, scores = [], []
        for text in texts:
            try:
                reliable, _, details = self.detect(text, isPlainText=True)
            except self.error:  # still-invalid input: counted as undetermined, never a failed task
                codes.append(UND)
                scores.append(0.0)
                continue
            _, raw, percent, _ = details[0]
            code = self.code(raw)
            codes.append(code)
            scores.append(0.0 if code == UND else (percent / 100.0) * (1.0 if reliable else 0.5))
        return codes, scores


class LinguaBackend(_Backend):
    """lingua-py: most accurate on short and mixed texts, slowest; restrict `languages` for speed."""

    def __init__(self, spec: BackendSpec):
        super().__init__(spec)
        from lingua import IsoCode639_1, IsoCode639_3, Language, LanguageDetectorBuilder

        chosen = []
        for code in spec.languages:
            # The code itself, else a code that aliases to it (`no` is lingua's Bokmål, `nb`).
            candidates = [code] + sorted(k for k, v in self.aliases.items() if v == code)
            for wanted in candidates:
                try:
                    if len(wanted) == 2:
                        chosen.append(Language.from_iso_code_639_1(IsoCode639_1.from_str(wanted)))
                    else:
                        chosen.append(Language.from_iso_code_639_3(IsoCode639_3.from_str(wanted)))
                    break
                except ValueError:
                    continue
            else:
                from ..errors import ConfigError

                raise ConfigError(f"lingua does not know language {code!r}")
        if spec.languages and len(chosen) < 2:
            from ..errors import ConfigError

            raise ConfigError("lingua needs at least two languages to choose from")
        builder = (LanguageDetectorBuilder.from_languages(*chosen) if chosen
                   else LanguageDetectorBuilder.from_all_languages())
        if spec.low_accuracy:
            builder = builder.with_low_accuracy_mode()
        self.detector = builder.build()
        self.codes = {lang: self.code(lang.iso_code_639_1.name.lower()) for lang in Language.all()}

    def predict(self, texts: list[str]) -> tuple[list[str], list[float]]:
        codes, scores = [], []
        for text in texts:
            values = self.detector.compute_language_confidence_values(text)
            if not values or values[0].value <= 0.0:
                codes.append(UND)
                scores.append(0.0)
            else:
                codes.append(self.codes[values[0].language])
                scores.append(float(values[0].value))
        return codes, scores

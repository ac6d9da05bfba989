"""Typed configs of the `langid` and `language_filter` stages."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..config import Strict
from ..pipeline.stage import StageParams
from .codes import DEFAULT_ALIASES, canonical


class FastTextParams(Strict):
    """A fastText language-ID model file: lid.176.bin, GlotLID or OpenLID, local or fsspec URL."""

    model: str


class LinguaParams(Strict):
    """lingua: restrict to a language set for speed (empty: all 75 languages); low-accuracy mode optional."""

    languages: list[str] = Field(default_factory=list)
    low_accuracy: bool = False


class CascadeParams(Strict):
    """Fast backend first; the accurate one where the fast one is unsure."""

    fast: Literal["cld2", "fasttext"] = "cld2"
    accurate: Literal["lingua", "fasttext", "cld2"] = "lingua"
    min_score: float = Field(default=0.9, ge=0.0, le=1.0)  # fast score below this: ask the accurate backend
    min_chars: int = Field(default=200, ge=0)  # normalised text shorter than this: ask the accurate backend
    recheck: list[str] = Field(default_factory=list)  # fast answers always re-checked (close-language groups)

    @model_validator(mode="after")
    def _distinct(self):
        if self.fast == self.accurate:
            raise ValueError("cascade.fast and cascade.accurate must be different backends")
        return self


class ParagraphParams(Strict):
    """Per-paragraph identification, to flag mixed-language documents (`lang_mixed`)."""

    min_chars: int = Field(default=50, ge=1)
    max_paragraphs: int = Field(default=32, ge=2)
    min_score: float = Field(default=0.5, ge=0.0, le=1.0)
    mixed_share: float = Field(default=0.25, gt=0.0, le=1.0)


class LangidParams(StageParams):
    """`lang`, `lang_score`, `lang_backend` (and `lang_mixed`) on every live document."""

    backend: Literal["fasttext", "cld2", "lingua", "cascade"] = "cld2"
    fasttext: FastTextParams | None = None
    lingua: LinguaParams = Field(default_factory=LinguaParams)
    cascade: CascadeParams = Field(default_factory=CascadeParams)
    prefix_chars: int = Field(default=2000, ge=0)  # identify on this normalised prefix (0: the whole text)
    min_letters: int = Field(default=10, ge=0)  # fewer letters than this: `und`, not a guess
    codes: Literal["iso639_1", "iso639_3"] = "iso639_1"  # 639-1 where it exists, else 639-3; or all 639-3
    aliases: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ALIASES))
    paragraphs: ParagraphParams | None = None

    @model_validator(mode="after")
    def _check(self):
        uses = {self.backend} if self.backend != "cascade" else {self.cascade.fast, self.cascade.accurate}
        if "fasttext" in uses and self.fasttext is None:
            raise ValueError("the fasttext backend needs `fasttext: {model: <path to lid.176.bin or similar>}`")
        return self


class LanguageFilterParams(StageParams):
    """Keep the configured languages above a minimum score, with per-language thresholds."""

    languages: list[str] = Field(default_factory=list)  # empty: any identified language
    min_score: float = Field(default=0.65, ge=0.0, le=1.0)  # FineWeb/RefinedWeb: 0.65 (English, lid.176; docs/quality-filters.md §8)
    thresholds: dict[str, float] = Field(default_factory=dict)  # per language, e.g. FineWeb-2 de: 0.821
    keep_und: bool = False
    drop_mixed: bool = False  # remove documents flagged `lang_mixed`

    @field_validator("thresholds")
    @classmethod
    def _scores(cls, value: dict[str, float]):
        bad = {k: v for k, v in value.items() if not 0.0 <= v <= 1.0}
        if bad:
            raise ValueError(f"thresholds must be in [0, 1], got {bad}")
        return value


def forms(code: str) -> list[str]:
    """A configured code in both styles (`en` -> `en`, `eng`), so a filter matches either langid style."""
    from .codes import to_style

    base = canonical(code)
    return sorted({base, to_style(base, "iso639_3"), code.lower()})

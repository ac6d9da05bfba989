"""Typed configs of the `quality_signals` and `quality_filter` stages."""

from __future__ import annotations

from typing import Any

from pydantic import Field, PrivateAttr, model_validator

from ..pipeline.stage import StageParams
from .rules import RuleSet, load_rule_set


class QualitySignalsParams(StageParams):
    """Options of the signals; the defaults are the published definitions."""

    short_line_chars: int = Field(default=30, ge=1)  # FineWeb's short line: at most 30 characters
    stop_words: dict[str, list[str]] = Field(default_factory=dict)  # per language: replace or add a list
    use_lang: bool = True  # split words and pick stop words by the `lang` column when it is there


class QualityFilterParams(StageParams):
    """Apply a rule set from conf/presets/quality/ (or a YAML path), with thresholds overridable per rule."""

    rules: str  # gopher_quality, gopher_repetition, c4, fineweb, refinedweb, or a path to a rule set YAML
    overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)  # {rule: {min: .., max: .., ...}}
    disable: list[str] = Field(default_factory=list)  # rule names not to apply
    modifier: dict[str, Any] | None = None  # options of the rule set's line modifier (C4, RefinedWeb)
    _rule_set: RuleSet | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _load(self):
        self._rule_set = load_rule_set(self.rules, self.overrides, self.disable, self.modifier,
                                       f"quality_filter {self.id or self.rules}")
        return self

    @property
    def rule_set(self) -> RuleSet:
        assert self._rule_set is not None
        return self._rule_set

    def fingerprint_extra(self) -> dict:
        return self.rule_set.model_dump(mode="json")

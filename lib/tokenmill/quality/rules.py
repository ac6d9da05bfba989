"""Rule sets: named thresholds on signal columns, read from conf/presets/quality/*.yaml (docs/quality-filters.md).
The `quality_filter` stage evaluates them on whole Arrow batches of the stored signals with numpy.

A rule fails a document when its signal is below `min`, above `max`, or equal to `fail_if`. A null signal
(the rule does not apply: no words, no stop-word list for the language) never fails, unless `fail_on_null`.
`languages` limits a rule to documents whose `lang` is one of them (English-only rules say so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from ..config import Strict, conf_dirs, find_named_yaml, load_yaml, validate
from ..errors import ConfigError

RULE_DIRS = conf_dirs("presets/quality")


class Rule(Strict):
    """One published rule: a signal column and its threshold(s)."""

    name: str
    signal: str
    min: float | None = None
    max: float | None = None
    fail_if: bool | None = None  # boolean signals: fail when the signal has this value
    fail_on_null: bool = False
    languages: list[str] = Field(default_factory=list)  # empty: every language
    enabled: bool = True
    source: str = ""  # where the threshold comes from (paper / pipeline)

    @model_validator(mode="after")
    def _one_test(self):
        if self.min is None and self.max is None and self.fail_if is None and not self.fail_on_null:
            raise ValueError(f"rule {self.name!r} needs min, max, fail_if or fail_on_null")
        return self


class C4LinesParams(Strict):
    """C4's line filter (Raffel et al. 2020; options as in DataTrove's C4QualityFilter)."""

    kind: Literal["c4"] = "c4"
    split_paragraph: bool = True  # lines are "\n"-separated (C4); False is not supported on Spark executors
    remove_citations: bool = True  # "[1]", "[edit]", "[citation needed]"
    filter_no_terminal_punct: bool = True  # FineWeb turns this off
    min_words_per_line: int = 3
    max_word_length: int = 1000
    filter_javascript: bool = True
    filter_policy: bool = True  # terms of use / privacy policy / cookie lines (English)
    filter_lorem_ipsum: bool = True  # recorded as c4_lorem_ipsum (a rule decides)
    filter_curly_bracket: bool = True  # recorded as c4_curly_bracket (a rule decides)


class RefinedWebLinesParams(Strict):
    """RefinedWeb's line-wise corrections (Penedo et al. 2023, appendix G.2)."""

    kind: Literal["refinedweb"] = "refinedweb"
    max_upper_ratio: float = 0.5  # lines mostly in upper case
    min_words_per_line: int = 2  # RefinedWeb: single-word lines are mostly navigation
    remove_numeric_lines: bool = True
    remove_counters: bool = True  # "3 likes", "12 comments"
    navigation_phrases: list[str] = Field(default_factory=lambda: [
        "read more", "sign in", "sign up", "log in", "items in cart", "add to cart", "share this",
        "click here", "skip to content", "all rights reserved", "follow us"])
    max_phrase_line_words: int = 10  # a navigation phrase removes a line only when the line is this short


Modifier = C4LinesParams | RefinedWebLinesParams


class RuleSet(Strict):
    """A named list of rules, optionally with a line modifier that rewrites the text first."""

    name: str
    description: str = ""
    modifier: C4LinesParams | RefinedWebLinesParams | None = Field(default=None, discriminator="kind")
    rules: list[Rule]

    @model_validator(mode="after")
    def _unique(self):
        names = [r.name for r in self.rules]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"rule names repeat: {', '.join(dup)}")
        return self

    def active(self) -> list[Rule]:
        return [r for r in self.rules if r.enabled]


def find_rule_set(name: str) -> Path:
    """A rule set file: a path, or a name in conf/presets/quality/."""
    return find_named_yaml(name, RULE_DIRS, "quality rule set")


def load_rule_set(name: str, overrides: dict[str, dict[str, Any]], disable: list[str],
                  modifier: dict[str, Any] | None, where: str) -> RuleSet:
    """Read a rule set and apply the stage's per-rule overrides, disabled rules and modifier options."""
    path = find_rule_set(name)
    data = load_yaml(path)
    rules = {r.get("name"): r for r in data.get("rules", [])}
    unknown = sorted(set(overrides) - set(rules)) + sorted(set(disable) - set(rules))
    if unknown:
        raise ConfigError(f"{where}: rule(s) {', '.join(unknown)} not in rule set {path} "
                          f"(rules: {', '.join(rules)})")
    for name_, change in overrides.items():
        rules[name_].update(change)
    for name_ in disable:
        rules[name_]["enabled"] = False
    if modifier:
        if not data.get("modifier"):
            raise ConfigError(f"{where}: rule set {path} has no line modifier to configure")
        data["modifier"] = {**data["modifier"], **modifier}
    return validate(RuleSet, data, f"{where} (rule set {path})")

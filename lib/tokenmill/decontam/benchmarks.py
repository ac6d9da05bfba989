"""Evaluation benchmarks to decontaminate against: presets in conf/presets/benchmarks/, loaded through `datasets`.

A benchmark is a dataset split (a hub id from the local Hugging Face cache, a `save_to_disk` folder, or
JSONL / JSON / Parquet files) and the fields that make up one test item (GSM8K: question + answer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from ..config import Strict, conf_dirs, find_named_yaml, load_yaml, validate
from ..errors import ConfigError
from ..io.hf import is_saved_dataset, load_saved

PRESET_DIRS = conf_dirs("presets/benchmarks")


class MathMatch(Strict):
    """Rephrased copies of math items: the item's distinctive numbers all appear in the document, and the
    document shares at least `min_overlap` of the item's word `n`-grams (InternLM-Math's exact number match)."""

    fields: list[str] = Field(default_factory=list)  # where the numbers and n-grams come from (default: first field)
    n: int = Field(default=3, ge=1)
    min_overlap: float = Field(default=0.2, gt=0.0, le=1.0)  # with every distinctive number present
    min_numbers: int = Field(default=2, ge=1)  # items with fewer distinctive numbers are matched by n-grams only


class BenchmarkSpec(Strict):
    """One benchmark split and the fields of a test item."""

    name: str
    dataset: str | None = None  # hub id (local cache), `save_to_disk` folder, or a builder such as "json"
    config_name: str | None = None
    path: str | None = None  # JSONL / JSON / Parquet file(s) or glob instead of `dataset`
    split: str = "test"
    fields: list[str]  # dotted names reach into nested fields (TriviaQA answer.value)
    id_field: str | None = None  # default: the row's index in the split
    math: MathMatch | None = None

    @model_validator(mode="after")
    def _source(self):
        if (self.dataset is None) == (self.path is None):
            raise ValueError("give exactly one of `dataset` (hub id or folder) and `path` (files)")
        if not self.fields:
            raise ValueError("`fields` must name at least one field")
        return self


def find_preset(name: str) -> Path:
    return find_named_yaml(name, PRESET_DIRS, "benchmark preset")


def resolve(entry: str | dict[str, Any], where: str) -> BenchmarkSpec:
    """A preset name, a YAML path, or a mapping (`preset:` plus overrides, or a full spec)."""
    if isinstance(entry, str):
        path = find_preset(entry)
        return validate(BenchmarkSpec, load_yaml(path), str(path))
    data = dict(entry)
    preset = data.pop("preset", None)
    if preset:
        path = find_preset(preset)
        base = load_yaml(path)
        if "path" in data:
            base.pop("dataset", None)
            base.pop("config_name", None)
        if "dataset" in data:
            base.pop("path", None)
        base.update(data)
        data = base
    return validate(BenchmarkSpec, data, where)


@dataclass(frozen=True)
class Item:
    benchmark: str
    item_id: str
    text: str  # the fields joined
    math_text: str | None  # the fields the number match uses
    short_text: str | None = None  # the first field alone (of several): matched whole when it is short


def _flatten(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):  # ARC choices {text: [...], label: [...]}: the texts
        inner = value.get("text", list(value.values()))
        return _flatten(inner)
    if isinstance(value, list | tuple):
        return "\n".join(_flatten(v) for v in value)
    return str(value)


def _field(row: dict, dotted: str, spec: BenchmarkSpec, index: int) -> Any:
    node: Any = row
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise ConfigError(f"benchmark {spec.name}: item {index}: no field {dotted!r} "
                              f"(fields: {', '.join(row)})")
    return node


def _load_rows(spec: BenchmarkSpec):
    import datasets

    datasets.disable_progress_bars()
    if spec.path:
        ext = re.sub(r"\.(gz|zst|bz2|xz)$", "", spec.path).rsplit(".", 1)[-1].lower()
        builder = {"jsonl": "json", "json": "json", "parquet": "parquet", "csv": "csv"}.get(ext)
        if builder is None:
            raise ConfigError(f"benchmark {spec.name}: {spec.path}: unknown file type (.jsonl, .json, .parquet, .csv)")
        try:
            return datasets.load_dataset(builder, data_files=spec.path, split="train")
        except FileNotFoundError as exc:
            raise ConfigError(f"benchmark {spec.name}: {spec.path}: {exc}") from None
    assert spec.dataset is not None
    if is_saved_dataset(spec.dataset):
        return load_saved(spec.dataset, spec.split)
    try:
        return datasets.load_dataset(spec.dataset, spec.config_name, split=spec.split)
    except Exception as exc:  # offline and not cached, unknown config or split
        raise ConfigError(f"benchmark {spec.name}: cannot load {spec.dataset!r} ({spec.config_name}, {spec.split}) "
                          f"from a local path or the local Hugging Face cache: {type(exc).__name__}: {exc}") from None


def load_items(spec: BenchmarkSpec) -> list[Item]:
    """Every test item of ``spec`` (small: benchmark splits have at most tens of thousands of items)."""
    items = []
    math_fields = (spec.math.fields or spec.fields[:1]) if spec.math else []
    for index, row in enumerate(_load_rows(spec)):
        text = "\n".join(_flatten(_field(row, f, spec, index)) for f in spec.fields)
        item_id = str(_field(row, spec.id_field, spec, index)) if spec.id_field else str(index)
        math_text = "\n".join(_flatten(_field(row, f, spec, index)) for f in math_fields) if spec.math else None
        short = _flatten(_field(row, spec.fields[0], spec, index)) if len(spec.fields) > 1 else None
        items.append(Item(spec.name, item_id, text, math_text, short))
    if not items:
        raise ConfigError(f"benchmark {spec.name}: split {spec.split!r} has no items")
    return items

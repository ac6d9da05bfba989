"""The mixture config: sources (Parquet data + unique tokens), the plan settings, and how to build shards."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import Field, model_validator

from ..config import Strict, load_yaml, validate
from ..errors import ConfigError
from .plan import PlanSettings, PlanSource, SourceLimits


class MixSource(SourceLimits):
    """A source of the mixture: where its documents are, and (optionally) its unique token count."""

    name: str
    path: str | None = None  # a Parquet dataset, e.g. a pipeline's <output>/data
    select: str | None = None  # rows whose `source` column equals this (default: name; "*": every row)
    manifest: str | None = None  # a pipeline manifest.json or count_tokens JSON holding this source's tokens
    unique_tokens: float | None = Field(default=None, ge=0)

    @property
    def source_value(self) -> str:
        return self.select or self.name

    def plan_source(self, unique_tokens: float, unique_docs: int | None = None,
                    bytes_per_token: float | None = None) -> PlanSource:
        limits = self.model_dump(include=set(SourceLimits.model_fields))
        limits["unique_docs"] = unique_docs or self.unique_docs
        limits["bytes_per_token"] = bytes_per_token or self.bytes_per_token
        return PlanSource(name=self.name, unique_tokens=unique_tokens, **limits)


class Range(Strict):
    min: float = 0
    max: float | None = None  # inclusive; None: no upper end
    weight: float = Field(ge=0)


class Upsample(Strict):
    """Per-document weight from a column: exact values (`weights`, e.g. quality buckets) or numeric `ranges`
    (e.g. duplicate-cluster size, FineWeb-2's rehydration). Documents matching nothing weigh `default`."""

    column: str
    weights: dict[str, float] = Field(default_factory=dict)
    ranges: list[Range] = Field(default_factory=list)
    default: float = Field(default=1.0, ge=0)

    @model_validator(mode="after")
    def _one(self):
        if bool(self.weights) == bool(self.ranges):
            raise ValueError("upsample: give either `weights` (value -> weight) or `ranges`")
        if any(w < 0 for w in self.weights.values()):
            raise ValueError("upsample: weights must be >= 0")
        return self


class BuildSettings(Strict):
    shard_tokens: float = Field(default=100_000_000, gt=0)  # roughly this many tokens per Parquet shard
    order: Literal["shuffled", "epoch_ordered"] = "shuffled"  # epoch_ordered: later passes in later shards
    upsample: Upsample | None = None
    columns: list[str] = Field(default_factory=list)  # extra columns to carry into the shards
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    sigmas: float = Field(default=3.0, gt=0)  # Bernoulli selection only where tolerance ≥ sigmas·std


class MixtureConfig(Strict):
    name: str = "mixture"
    output: str
    plan: PlanSettings
    sources: list[MixSource]
    build: BuildSettings = Field(default_factory=BuildSettings)

    @model_validator(mode="after")
    def _unique(self):
        names = [s.name for s in self.sources]
        if not names:
            raise ValueError("sources: at least one source is needed")
        if len(set(names)) != len(names):
            raise ValueError(f"sources: names must be unique, got {names}")
        return self


def load_mixture(path: str, overrides: list[str] | tuple[str, ...] = ()) -> MixtureConfig:
    return validate(MixtureConfig, load_yaml(path, overrides), str(path), overrides=overrides)


def tokens_from_manifest(path: str, source: str) -> dict:
    """{docs, bytes, tokens} of ``source`` from a pipeline manifest (output.tokens_by_source) or a
    count_tokens JSON (sources)."""
    import fsspec

    try:
        with fsspec.open(path, "rt", encoding="utf-8") as handle:
            doc = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read token counts ({exc})") from None
    table = (doc.get("output") or {}).get("tokens_by_source") or doc.get("sources")
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: no token counts (output.tokens_by_source); run the `tokens` stage or "
                          f"the count_tokens job first")
    if source not in table:
        raise ConfigError(f"{path}: no token counts for source {source!r} (has: {', '.join(sorted(table))})")
    return table[source]

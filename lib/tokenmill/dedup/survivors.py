"""Which document of a duplicate group survives, and the columns that say so: one stated, deterministic
policy shared by `exact_dedup` and `minhash_dedup`."""

from __future__ import annotations

from pydantic import Field, field_validator
from pyspark.sql import Column
from pyspark.sql import functions as F

from ..pipeline.stage import StageParams
from ..schema import DUP_CLUSTER, DUP_CLUSTER_SIZE, DUP_OF, ID, SOURCE, TEXT

__all__ = ["DUP_CLUSTER", "DUP_CLUSTER_SIZE", "DUP_OF", "SurvivorParams", "survivor_order"]


class SurvivorParams(StageParams):
    """Which document of a duplicate group survives: stated in the config, deterministic."""

    # Survivor policy, in order: columns to prefer ("-col" = highest first, "col" = lowest first); the
    # pseudo-column `length` is the text length. The id always breaks the last tie, so the choice is stable.
    prefer: list[str] = Field(default_factory=lambda: ["-length"])
    source_priority: list[str] = Field(default_factory=list)  # sources listed earlier win (Zyda-style)

    @field_validator("prefer")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        for p in v:
            if not p.lstrip("-"):
                raise ValueError("empty column name in `prefer`")
        return v

    def policy_columns(self) -> list[str]:
        return [p.lstrip("-") for p in self.prefer if p.lstrip("-") != "length"]


def survivor_order(params: SurvivorParams, columns: list[str], length: Column | None = None) -> list[Column]:
    """The ordering whose first row survives: source priority, the preferred columns, then the id."""
    order: list[Column] = []
    if params.source_priority:
        rank = F.create_map(*[x for i, s in enumerate(params.source_priority) for x in (F.lit(s), F.lit(i))])
        order.append(F.coalesce(rank[F.col(SOURCE)], F.lit(len(params.source_priority))).asc())
    for p in params.prefer:
        name = p.lstrip("-")
        col = (length if length is not None else F.length(F.col(TEXT))) if name == "length" else F.col(name)
        if name != "length" and name not in columns:
            raise ValueError(f"exact_dedup: `prefer` names column {name!r}, not in the data ({', '.join(columns)})")
        order.append(col.desc_nulls_last() if p.startswith("-") else col.asc_nulls_last())
    order.append(F.col(ID).asc())
    return order

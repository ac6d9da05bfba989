"""Stable sampling hashes: the same document draws the same number on every run, machine and partitioning."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F


def unit_hash(seed: int, *cols: str) -> Column:
    """A stable uniform number in [0, 1) from (seed, cols): `(xxhash64 & 0x7FFF…) / 2^63` (docs/scaling-and-mixing.md §8.4)."""
    h = F.xxhash64(F.lit(seed), *[F.col(c) for c in cols])
    return (h.bitwiseAND(F.lit(0x7FFFFFFFFFFFFFFF)) / F.lit(float(2 ** 63))).cast("double")

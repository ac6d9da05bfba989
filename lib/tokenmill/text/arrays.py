"""Small numpy helpers for ragged (per-document) arrays laid end to end."""

from __future__ import annotations

import numpy as np


def within(counts: np.ndarray) -> np.ndarray:
    """For runs of the given lengths laid end to end, each element's position inside its run:
    [2, 3] -> [0, 1, 0, 1, 2]."""
    counts = np.asarray(counts, np.int64)
    return np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)


def expand_ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The indices start..start+count-1 of every range, concatenated: ([10, 3], [2, 1]) -> [10, 11, 3]."""
    counts = np.asarray(counts, np.int64)
    return np.repeat(np.asarray(starts, np.int64), counts) + within(counts)

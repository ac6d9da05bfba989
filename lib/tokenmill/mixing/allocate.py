"""From a token budget to per-source targets: base weights, epoch caps and capped water-filling.

Rules from docs/scaling-and-mixing.md §7–8: natural, temperature (mT5/XLM-R), uniform,
UniMax (Chung et al. 2023) and fixed weights; each source capped at `max_epochs · U` (Muennighoff et al.
2023: up to 4 epochs is about as good as unique data) and at `max_share · D`, floored at `min_share · D`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def base_weights(rule: str, unique: Sequence[float], temperature: float = 1.0,
                 fixed: Sequence[float | None] | None = None) -> list[float]:
    """Normalised base weights p_i for a mixture rule (they sum to 1 over sources with data)."""
    if rule == "natural":
        raw = [float(u) for u in unique]
    elif rule == "temperature":
        raw = [float(u) ** (1.0 / temperature) if u > 0 else 0.0 for u in unique]
    elif rule in ("uniform", "unimax"):
        raw = [1.0 if u > 0 else 0.0 for u in unique]
    elif rule == "fixed":
        if fixed is None or any(w is None for w in fixed):
            raise ValueError("mixture rule `fixed` needs a weight on every source")
        raw = [float(w) for w in fixed]  # type: ignore[arg-type]
    else:
        raise ValueError(f"unknown mixture rule {rule!r}")
    total = sum(raw)
    if total <= 0:
        raise ValueError("all base weights are zero: no source has data (or every fixed weight is 0)")
    return [r / total for r in raw]


def clipped_fill(total: float, weights: Sequence[float], upper: Sequence[float],
                 lower: Sequence[float] | None = None) -> tuple[list[float], float]:
    """Solve Σ clip(λ·w_i, lo_i, hi_i) = total for λ, exactly; returns (allocations, λ).

    This is capped water-filling: sources over their cap are fixed at it and the overflow goes to the free
    sources in proportion to their weights, round after round, which converges to the clip solution. Solved
    directly on the piecewise-linear Σ(λ), so no iteration count or tolerance is involved. Sources with
    w_i = 0 get their floor. Requires Σlo ≤ total ≤ Σhi (the caller checks feasibility).
    """
    n = len(weights)
    lo = list(lower) if lower is not None else [0.0] * n
    hi = list(upper)

    def filled(lam: float) -> list[float]:
        return [lo[i] if weights[i] <= 0 else min(max(lam * weights[i], lo[i]), hi[i]) for i in range(n)]

    points = sorted({0.0, *(b / w for w, b in zip(weights, lo, strict=False) if w > 0),
                     *(b / w for w, b in zip(weights, hi, strict=False) if w > 0 and math.isfinite(b))})
    prev_lam, prev_sum = points[0], sum(filled(points[0]))
    if total <= prev_sum:
        return filled(points[0]), points[0]
    for lam in points[1:]:
        s = sum(filled(lam))
        if s >= total:
            lam_star = prev_lam + (total - prev_sum) * (lam - prev_lam) / (s - prev_sum) if s > prev_sum else lam
            return filled(lam_star), lam_star
        prev_lam, prev_sum = lam, s
    # Past the last breakpoint Σ grows linearly in the free (uncapped) sources, if any.
    slope = sum(w for w, h in zip(weights, hi, strict=False) if w > 0 and not math.isfinite(h))
    if slope <= 0:
        return filled(prev_lam), prev_lam
    lam_star = prev_lam + (total - prev_sum) / slope
    return filled(lam_star), lam_star


def unimax(unique: Sequence[float], budget: float, max_epochs: float) -> tuple[list[float], float]:
    """UniMax (Chung et al. 2023, arXiv:2304.09151): equal split of what is left, smallest source first,
    each clipped at `max_epochs` epochs. Returns (allocations in input order, unallocated budget)."""
    order = sorted(range(len(unique)), key=lambda i: unique[i])
    alloc = [0.0] * len(unique)
    remaining = budget
    for k, i in enumerate(order):
        share = remaining / (len(unique) - k)
        alloc[i] = min(unique[i] * max_epochs, share)
        remaining -= alloc[i]
    return alloc, remaining

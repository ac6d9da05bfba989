"""Scaling laws: compute-optimal N and D, predicted loss, and the value of repeated data.

Constants and formulas are published results (docs/scaling-and-mixing.md §1–5):
Hoffmann et al. 2022 Approach 3 (eq. 2, 4; App. D.2), its corrected refit by Besiroglu et al. 2024 (Epoch),
and Muennighoff et al. 2023's data-constrained law (datablations README "Parametric Fit").
Convention: N counts all parameters (embeddings included), D counts tokens seen (repeats included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

FLOPS_PER_PARAM_TOKEN = 6.0  # C ≈ 6·N·D (Kaplan et al. 2020 §2.1; used by Hoffmann et al. 2022)


@dataclass(frozen=True)
class Law:
    """A parametric loss L(N, D) = E + A/N^alpha + B/D^beta and its efficient frontier under C = 6ND."""

    name: str
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str
    warning: str | None = None

    @property
    def G(self) -> float:  # noqa: N802  (the paper's symbol)
        return (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / (self.alpha + self.beta))

    @property
    def a(self) -> float:
        """Exponent of N_opt in C: N_opt = G·(C/6)^a."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """Exponent of D_opt in C: D_opt = G^-1·(C/6)^b."""
        return self.alpha / (self.alpha + self.beta)

    def loss(self, n: float, d: float) -> float:
        return self.E + self.A / n ** self.alpha + self.B / d ** self.beta

    def optimum_for_compute(self, c: float, f: float = FLOPS_PER_PARAM_TOKEN) -> tuple[float, float]:
        """(N_opt, D_opt) minimising the loss subject to f·N·D = C (Hoffmann eq. 4)."""
        n = self.G * (c / f) ** self.a
        return n, c / (f * n)

    def compute_for_params(self, n: float, f: float = FLOPS_PER_PARAM_TOKEN) -> float:
        """The budget C for which N is compute-optimal (eq. 4 inverted)."""
        return f * (n / self.G) ** (1.0 / self.a)

    def compute_for_tokens(self, d: float, f: float = FLOPS_PER_PARAM_TOKEN) -> float:
        """The budget C for which D tokens are compute-optimal."""
        return f * (d * self.G) ** (1.0 / self.b)

    def constants(self) -> dict:
        return {"name": self.name, "E": self.E, "A": self.A, "B": self.B, "alpha": self.alpha, "beta": self.beta,
                "G": self.G, "a": self.a, "b": self.b, "source": self.source}


LAWS: dict[str, Law] = {
    # Hoffmann et al. 2022, App. D.2 eq. 10 as printed: off by up to 2x at scale; for reproducing the paper only.
    "hoffmann_rounded": Law("hoffmann_rounded", 1.69, 406.4, 410.7, 0.34, 0.28,
                            "Hoffmann et al. 2022, arXiv:2203.15556, App. D.2 (rounded exponents)",
                            "hoffmann_rounded uses the paper's rounded exponents; its optimum is off by up to 2x "
                            "(Besiroglu et al. 2024): use epoch_2024 for a production budget"),
    # The more precise exponents from the paper's TeX source, via Besiroglu et al. 2024 (secondary copies).
    "hoffmann_tex": Law("hoffmann_tex", 1.6934, 406.4, 410.7, 0.3392, 0.2849,
                        "Hoffmann et al. 2022 TeX-source exponents, as reported by Besiroglu et al. 2024",
                        "hoffmann_tex reproduces the paper's Approach 3, whose fit Besiroglu et al. 2024 found "
                        "faulty; epoch_2024 is the corrected law"),
    # Besiroglu, Erdil, Barnett, You 2024 "Chinchilla Scaling: A replication attempt" (arXiv:2404.10102).
    "epoch_2024": Law("epoch_2024", 1.8172, 482.01, 2085.43, 0.3478, 0.3658,
                      "Besiroglu et al. 2024, arXiv:2404.10102 (corrected Approach 3)"),
}

RATIO_LAWS = {"ratio20": 20.0}  # Chinchilla's own 70B x 1.4T choice; Approaches 1 and 2 (Hoffmann Table 3)


def law(name: str) -> Law:
    if name not in LAWS:
        raise KeyError(f"unknown law {name!r}; known: {', '.join([*LAWS, *RATIO_LAWS])}")
    return LAWS[name]


# --- Muennighoff et al. 2023: data-constrained scaling -------------------------------------------------

@dataclass(frozen=True)
class DataConstrainedLaw:
    """L(N, D, U) with effective data D' and effective parameters N' (datablations README, C4 fit)."""

    a_: float = 6.255414
    b_: float = 7.3049974
    e_: float = 0.6254804
    alpha: float = 0.3526596
    beta: float = 0.3526596
    r_d_star: float = 15.387756
    r_n_star: float = 5.309743
    source: str = "Muennighoff et al. 2023, arXiv:2305.16264; github.com/huggingface/datablations (Parametric Fit)"

    @property
    def A(self) -> float:  # noqa: N802
        return math.exp(self.a_)

    @property
    def B(self) -> float:  # noqa: N802
        return math.exp(self.b_)

    @property
    def E(self) -> float:  # noqa: N802
        return math.exp(self.e_)

    @property
    def G(self) -> float:  # noqa: N802
        return (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / (self.alpha + self.beta))

    def effective_data(self, d: float, u: float) -> float:
        """D' = U + U·R*·(1 − exp(−R/R*)), with R = D/U − 1 *repetitions* (not epochs), R ≥ 0."""
        if u <= 0:
            return 0.0
        if d <= u:
            return d
        r = d / u - 1.0
        return u + u * self.r_d_star * (1.0 - math.exp(-r / self.r_d_star))

    def n_opt_for_tokens(self, d: float) -> float:
        """Parameters that are compute-optimal for D tokens: N_opt(D) = (D·G)^(β/α)·G."""
        return (d * self.G) ** (self.beta / self.alpha) * self.G

    def effective_params(self, n: float, u_d: float) -> float:
        u_n = min(n, self.n_opt_for_tokens(u_d))
        r = max(n / u_n - 1.0, 0.0)
        return u_n + u_n * self.r_n_star * (1.0 - math.exp(-r / self.r_n_star))

    def loss(self, n: float, d: float, u: float) -> float:
        d_eff = self.effective_data(d, u)
        n_eff = self.effective_params(n, u)
        return self.E + self.A / n_eff ** self.alpha + self.B / d_eff ** self.beta

    def grid_optimum(self, n_base: float, d_base: float, u: float, steps: int = 500,
                     widest: float = 3.0) -> tuple[float, float, float]:
        """(N, D, L) minimising L(N, D, U) along the iso-FLOP line through (N_base, D_base).

        The procedure the datablations README publishes: scale D up and N down (and the reverse) by factors
        1.0001 … `widest` on a 500-point grid. If the best point sits on the grid's edge the search moves
        its centre there and repeats, so optima further than 3x away are still found.
        """
        factors = np.linspace(1.0001, widest, steps)
        n0, d0 = n_base, d_base
        best = (math.inf, n0, d0)
        for _ in range(32):
            cands_n = np.concatenate([n0 / factors, n0 * factors])
            cands_d = np.concatenate([d0 * factors, d0 / factors])
            losses = [self.loss(n, d, min(u, d)) for n, d in zip(cands_n, cands_d, strict=False)]
            i = int(np.argmin(losses))
            if losses[i] >= best[0]:
                break
            best = (losses[i], float(cands_n[i]), float(cands_d[i]))
            if i % steps != steps - 1:  # an interior grid point: done
                break
            n0, d0 = best[1], best[2]
        return best[1], best[2], best[0]

    def optimum_unconstrained(self, c: float, f: float = FLOPS_PER_PARAM_TOKEN) -> tuple[float, float]:
        a = self.beta / (self.alpha + self.beta)
        n = self.G * (c / f) ** a
        return n, c / (f * n)

    def constants(self) -> dict:
        return {"name": "muennighoff_2023", "E": self.E, "A": self.A, "B": self.B, "alpha": self.alpha,
                "beta": self.beta, "R_D_star": self.r_d_star, "R_N_star": self.r_n_star, "G": self.G,
                "source": self.source}


MUENNIGHOFF = DataConstrainedLaw()


# --- Sardana et al. 2024: inference-aware sizing --------------------------------------------------------

def inference_aware(lw: Law, n_ref: float, d_inf: float, f: float = FLOPS_PER_PARAM_TOKEN,
                    f_inf: float = 2.0) -> dict:
    """Smallest total cost f·N·D_tr + f_inf·N·D_inf reaching the loss of the compute-optimal model of size N_ref.

    Sardana et al. 2024 (arXiv:2401.00448): D_tr(N) = (B / (ℓ − E − A/N^α))^(1/β); minimised numerically over N.
    """
    c_ref = lw.compute_for_params(n_ref, f)
    d_ref = c_ref / (f * n_ref)
    target = lw.loss(n_ref, d_ref)

    def d_train(n: float) -> float:
        gap = target - lw.E - lw.A / n ** lw.alpha
        return (lw.B / gap) ** (1.0 / lw.beta) if gap > 0 else math.inf

    def cost(log_n: float) -> float:
        n = math.exp(log_n)
        return f * n * d_train(n) + f_inf * n * d_inf

    n_min = (lw.A / (target - lw.E)) ** (1.0 / lw.alpha)  # below this no amount of data reaches the target
    lo, hi = math.log(n_min) + 1e-9, math.log(n_ref) + math.log(10.0)
    res = minimize_scalar(cost, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
    n = math.exp(res.x)
    d = d_train(n)
    ref_total = f * n_ref * d_ref + f_inf * n_ref * d_inf
    total = f * n * d + f_inf * n * d_inf
    return {"n_params": n, "tokens": d, "target_loss": target, "reference": {"n_params": n_ref, "tokens": d_ref,
            "total_flops": ref_total}, "total_flops": total, "saving_flops": ref_total - total,
            "saving_fraction": (ref_total - total) / ref_total}

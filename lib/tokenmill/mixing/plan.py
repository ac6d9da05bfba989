"""The token-budget planner: a target (N, C or D) and a law give D; a mixture rule and epoch caps split D.

`plan_mixture(settings, sources)` is pure Python (no Spark), so notebooks and tests call it directly; the
`plan_mixture` job reads unique token counts from manifests or the data and writes `plan.json`.
Spec: docs/scaling-and-mixing.md §8 and §11.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

from pydantic import Field, model_validator

from ..config import Strict
from ..errors import ConfigError
from . import laws
from .allocate import base_weights, clipped_fill

Mode = Literal["chinchilla", "tokens_per_param", "inference_aware", "explicit_tokens", "data_constrained"]
LawName = Literal["ratio20", "epoch_2024", "hoffmann_tex", "hoffmann_rounded"]
Policy = Literal["error", "raise_cap", "shrink_budget", "data_constrained"]

MUENNIGHOFF_EPOCHS = 4.0  # "up to 4 epochs ≈ unique data" (Muennighoff et al. 2023, abstract)
HIGH_RATIO = 1000.0  # tokens/param beyond which laws fitted near 20:1 are extrapolating (Sardana et al. 2024)


class Target(Strict):
    """Exactly one of n_params, compute_flops, total_tokens (explicit_tokens may also record n_params)."""

    n_params: float | None = Field(default=None, gt=0)
    compute_flops: float | None = Field(default=None, gt=0)
    total_tokens: float | None = Field(default=None, gt=0)

    def given(self) -> list[str]:
        return [k for k in ("n_params", "compute_flops", "total_tokens") if getattr(self, k) is not None]


class Mixture(Strict):
    # priority: the curation guides' order: each source in turn takes all it may (its epoch cap, max_share)
    # until the budget is full; the last ones fill the rest, and what is left of them stays unused.
    rule: Literal["natural", "temperature", "uniform", "unimax", "fixed", "priority"] = "natural"
    temperature: float = Field(default=1.0, gt=0)  # p ∝ U^(1/T); mT5 uses α = 1/T = 0.3


class PlanSettings(Strict):
    """How much data (target, mode, law) and how it is split (mixture, caps, policy)."""

    target: Target
    mode: Mode = "chinchilla"
    law: LawName | None = None  # default: ratio20 when N or D is given, epoch_2024 when C is given
    tokens_per_param: float | None = Field(default=None, gt=0)  # r, for mode tokens_per_param
    inference_tokens: float | None = Field(default=None, ge=0)  # D_inf, for mode inference_aware
    mixture: Mixture = Field(default_factory=Mixture)
    max_epochs: float = Field(default=4.0, gt=0)
    infeasible_policy: Policy = "error"
    flops_per_param_token: float = Field(default=6.0, gt=0)
    parameter_convention: Literal["total", "non_embedding"] = "total"  # recorded (Pearce & Song 2024)
    seed: int = 0
    exact_tokens: bool = False
    tolerance: float = Field(default=0.005, gt=0, lt=1)

    @model_validator(mode="after")
    def _check(self):
        given = self.target.given()
        if self.mode == "explicit_tokens":
            if self.target.total_tokens is None or self.target.compute_flops is not None:
                raise ValueError("mode explicit_tokens needs target.total_tokens (and optionally n_params to record)")
        elif len(given) != 1:
            raise ValueError(f"target: give exactly one of n_params, compute_flops, total_tokens (got {given or 'none'})")
        if self.mode == "tokens_per_param" and self.tokens_per_param is None:
            raise ValueError("mode tokens_per_param needs tokens_per_param (r), e.g. 100")
        if self.mode == "inference_aware":
            if self.inference_tokens is None:
                raise ValueError("mode inference_aware needs inference_tokens (expected lifetime inference tokens)")
            if self.target.total_tokens is not None:
                raise ValueError("mode inference_aware needs a reference n_params or compute_flops as the target")
            if self.law == "ratio20":
                raise ValueError("mode inference_aware needs a fitted law (epoch_2024, hoffmann_tex, hoffmann_rounded)")
        if self.mixture.rule == "temperature" and self.mixture.temperature <= 0:
            raise ValueError("mixture.temperature must be > 0")
        return self


class SourceLimits(Strict):
    """What a source brings to a plan besides its size: weight, epoch cap, share bounds, tags."""

    unique_docs: int | None = Field(default=None, ge=0)
    bytes_per_token: float | None = Field(default=None, gt=0)
    weight: float | None = Field(default=None, ge=0)
    max_epochs: float | None = Field(default=None, gt=0)
    min_share: float = Field(default=0.0, ge=0, le=1)
    max_share: float = Field(default=1.0, ge=0, le=1)
    tags: list[str] = Field(default_factory=list)


class PlanSource(SourceLimits):
    """A source to mix: its unique tokens (after filtering and dedup) and optional constraints."""

    name: str
    unique_tokens: float = Field(ge=0)


@dataclass
class SourcePlan:
    name: str
    unique_tokens: float
    base_share: float
    target_tokens: float
    share: float
    epochs: float
    full_passes: int
    fractional_pass: float
    max_epochs: float
    capped: bool
    limited_by: str | None
    redistributed_tokens: float
    effective_tokens: float
    unique_docs: int | None = None
    bytes_per_token: float | None = None


@dataclass
class MixturePlan:
    n_params: float | None
    tokens: float
    compute_flops: float | None
    tokens_per_param: float | None
    loss: float | None
    loss_data_constrained: float | None
    settings: dict
    law: dict | None
    sources: list[SourcePlan]
    unique_tokens: float
    effective_tokens: float
    repetition_discount: float
    unallocated_tokens: float = 0.0
    details: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def source(self, name: str) -> SourcePlan:
        return next(s for s in self.sources if s.name == name)


class PlanInfeasible(ConfigError):
    """The budget cannot be met within the epoch caps and shares, and the policy is `error`."""


def _law_name(s: PlanSettings) -> str:
    if s.law:
        return s.law
    if s.mode in ("inference_aware",) or s.target.compute_flops is not None:
        return "epoch_2024"
    return "ratio20"


def _budget(s: PlanSettings) -> tuple[float | None, float, float | None, dict, dict | None, list[str]]:
    """(N, D, C, details, law constants, warnings) from the target, mode and law (§8.1)."""
    f = s.flops_per_param_token
    t = s.target
    details: dict = {}
    warnings: list[str] = []
    if s.mode == "explicit_tokens":
        d = t.total_tokens
        n = t.n_params
        return n, d, (f * n * d if n else None), details, None, warnings
    if s.mode == "data_constrained":
        return None, 0.0, None, details, laws.MUENNIGHOFF.constants(), warnings  # solved with U in plan_mixture
    if s.mode == "inference_aware":
        lw = laws.law(_law_name(s))
        n_ref = t.n_params if t.n_params is not None else lw.optimum_for_compute(t.compute_flops, f)[0]
        res = laws.inference_aware(lw, n_ref, s.inference_tokens, f)
        details["inference_aware"] = res
        if lw.warning:
            warnings.append(lw.warning)
        return res["n_params"], res["tokens"], f * res["n_params"] * res["tokens"], details, lw.constants(), warnings
    ratio = s.tokens_per_param if s.mode == "tokens_per_param" else laws.RATIO_LAWS.get(_law_name(s))
    if ratio is not None:
        if t.n_params is not None:
            n = t.n_params
            d = ratio * n
        elif t.compute_flops is not None:
            n = math.sqrt(t.compute_flops / (f * ratio))
            d = ratio * n
        else:
            d = t.total_tokens
            n = d / ratio
        return n, d, f * n * d, details, {"name": _law_name(s) if s.mode == "chinchilla" else "tokens_per_param",
                                          "tokens_per_param": ratio}, warnings
    lw = laws.law(_law_name(s))
    if lw.warning:
        warnings.append(lw.warning)
    if t.compute_flops is not None:
        c = t.compute_flops
    elif t.n_params is not None:
        c = lw.compute_for_params(t.n_params, f)
    else:
        c = lw.compute_for_tokens(t.total_tokens, f)
    n, d = lw.optimum_for_compute(c, f)
    if t.n_params is not None:
        n = t.n_params
        d = c / (f * n)
    return n, d, c, details, lw.constants(), warnings


def _data_constrained(s: PlanSettings, c: float | None, n: float | None, d: float | None, unique: float) -> dict:
    """Re-optimise (N, D) at a fixed compute with Muennighoff's L(N, D, U) (§5; the README's grid search).

    C is the given compute, else f·N·D of the current plan, else the compute for which the given N (or D)
    is optimal under Muennighoff's own law.
    """
    f = s.flops_per_param_token
    m = laws.MUENNIGHOFF
    a = m.beta / (m.alpha + m.beta)
    if c is None:
        if n is not None and d:
            c = f * n * d
        elif n is not None:
            c = f * (n / m.G) ** (1.0 / a)
        else:
            c = f * (d * m.G) ** (1.0 / (1.0 - a))
    n0, d0 = m.optimum_unconstrained(c, f)
    n_best, d_best, loss = m.grid_optimum(n0, d0, unique)
    return {"n_params": n_best, "tokens": d_best, "compute_flops": f * n_best * d_best, "loss": loss,
            "base": {"n_params": n0, "tokens": d0, "compute_flops": c}, "unique_tokens": unique,
            "epochs": d_best / unique if unique else None}


@dataclass
class _Budget:
    """The budget being planned: parameters N, tokens D, compute C, and what the steps found."""

    n_params: float | None
    tokens: float
    compute: float | None
    details: dict
    law: dict | None
    warnings: list[str]


def plan_mixture(settings: PlanSettings, sources: list[PlanSource]) -> MixturePlan:
    """Budget and per-source targets, by the spec of docs/scaling-and-mixing.md §11; raises PlanInfeasible
    under policy `error`."""
    _check_sources(sources)
    budget = _Budget(*_budget(settings))
    unique = [x.unique_tokens for x in sources]
    shares = _base_shares(settings, sources)
    u_total = sum(u for u, w in zip(unique, shares, strict=False) if w > 0)
    caps = [x.max_epochs if x.max_epochs is not None else settings.max_epochs for x in sources]
    if settings.mode == "data_constrained":
        t = settings.target
        _apply_data_constrained(budget, _data_constrained(settings, t.compute_flops, t.n_params,
                                                          None if t.n_params else t.total_tokens, u_total))
    lower, upper, cap_factor = _fit_to_caps(settings, budget, sources, unique, caps, shares, u_total)
    if settings.mixture.rule == "priority":
        targets, left = [], budget.tokens
        for hi in upper:
            targets.append(max(0.0, min(hi, left)))
            left -= targets[-1]
        shares = [t / budget.tokens if budget.tokens else 0.0 for t in targets]
    else:
        targets, _ = clipped_fill(budget.tokens, shares, upper, lower)
    plans = [_source_plan(src, unique[i], shares[i], targets[i], budget, caps[i] * cap_factor, lower[i], upper[i])
             for i, src in enumerate(sources)]
    return _assemble(settings, budget, plans, targets, u_total)


def _check_sources(sources: list[PlanSource]) -> None:
    if not sources:
        raise ConfigError("plan: no sources")
    names = [x.name for x in sources]
    if len(set(names)) != len(names):
        raise ConfigError(f"plan: source names must be unique, got {names}")
    if sum(x.min_share for x in sources) > 1 + 1e-12:
        raise ConfigError(f"plan: min_share values sum to {sum(x.min_share for x in sources):.4g} > 1")


def _base_shares(s: PlanSettings, sources: list[PlanSource]) -> list[float]:
    """Each source's share before caps: the mixture rule (natural, temperature, uniform or fixed weights)."""
    fixed = [x.weight for x in sources] if s.mixture.rule == "fixed" else None
    rule = "natural" if s.mixture.rule == "priority" else s.mixture.rule  # priority: every source may take part
    try:
        return base_weights(rule, [x.unique_tokens for x in sources], s.mixture.temperature, fixed)
    except ValueError as exc:
        raise ConfigError(f"plan: mixture: {exc}") from None


def _apply_data_constrained(budget: _Budget, res: dict) -> None:
    budget.n_params, budget.tokens, budget.compute = res["n_params"], res["tokens"], res["compute_flops"]
    budget.details["data_constrained"] = res


def _bounds(sources, caps, unique, cap_factor: float, total: float) -> tuple[list[float], list[float]]:
    """Per source: the least tokens (min_share) and the most (epoch cap x unique tokens, max_share)."""
    upper = [min(cap * cap_factor * u, x.max_share * total) for cap, u, x in zip(caps, unique, sources, strict=False)]
    lower = [x.min_share * total for x in sources]
    return lower, upper


def _fit_to_caps(s: PlanSettings, budget: _Budget, sources, unique, caps, shares, u_total
                 ) -> tuple[list[float], list[float], float]:
    """The per-source bounds the budget is filled within; when the sources cannot hold the budget at their
    caps, the infeasible policy decides: error, re-optimise (data-constrained), raise the caps or shrink D."""
    d = budget.tokens
    lower, upper = _bounds(sources, caps, unique, 1.0, d)
    capacity = sum(h for h, w, lo_i in zip(upper, shares, lower, strict=False) if w > 0 or lo_i > 0)
    short = [x.name for x, lo_i, h in zip(sources, lower, upper, strict=False) if lo_i > h * (1 + 1e-12)]
    if capacity >= d * (1 - 1e-12) and not short:
        return lower, upper, 1.0
    # the data-constrained law already prices repetition: the caps give way, with a warning
    policy = "raise_cap" if s.mode == "data_constrained" else s.infeasible_policy
    at_caps = sum(min(cap * u, x.max_share * d) for cap, u, x in zip(caps, unique, sources, strict=False))
    why = (f"the plan needs D = {d:.4g} tokens but the sources hold at most {at_caps:.4g} within their epoch caps "
           f"and max shares (Σ max_epochs·U = {sum(cp * u for cp, u in zip(caps, unique, strict=False)):.4g})")
    if short:
        why += f"; min_share needs more than the epoch cap allows for: {', '.join(short)}"
    if policy == "error":
        raise PlanInfeasible(f"plan infeasible: {why}. Choose infeasible_policy raise_cap, shrink_budget or "
                             f"data_constrained, add data, or lower the target")
    if policy == "data_constrained":
        _apply_data_constrained(budget, _data_constrained(s, budget.compute, budget.n_params, d, u_total))
        budget.warnings.append(f"infeasible at the caps ({why}); re-optimised N and D with Muennighoff's "
                               f"data-constrained law at the same compute: N = {budget.n_params:.4g}, "
                               f"D = {budget.tokens:.4g}")
        lower, upper = _bounds(sources, caps, unique, 1.0, budget.tokens)
        if sum(upper) >= budget.tokens * (1 - 1e-12) and not any(a > b for a, b in zip(lower, upper, strict=False)):
            return lower, upper, 1.0
        policy = "raise_cap"
    if policy == "raise_cap":
        cap_factor = _cap_factor(budget.tokens, caps, unique, sources, shares)
        budget.warnings.append(f"infeasible at the caps ({why}); raised every epoch cap by x{cap_factor:.4g} "
                               f"(max_epochs {s.max_epochs:g} -> {s.max_epochs * cap_factor:.4g})")
        return (*_bounds(sources, caps, unique, cap_factor, budget.tokens), cap_factor)
    _shrink_budget(s, budget, _capacity(caps, unique, sources, shares), why)
    return (*_bounds(sources, caps, unique, 1.0, budget.tokens), 1.0)


def _shrink_budget(s: PlanSettings, budget: _Budget, d_new: float, why: str) -> None:
    """Policy shrink_budget: D becomes what the caps hold; N follows at the same compute or the same ratio."""
    f, n, d, c = s.flops_per_param_token, budget.n_params, budget.tokens, budget.compute
    budget.details["shrink_budget"] = {"requested_tokens": d, "tokens": d_new,
                                       "n_params_same_ratio": (n * d_new / d) if n else None,
                                       "n_params_same_compute": (c / (f * d_new)) if c else None}
    if n is not None:
        n = c / (f * d_new) if s.target.compute_flops is not None and c else n * d_new / d
        budget.n_params, budget.compute = n, f * n * d_new
    budget.warnings.append(
        f"infeasible at the caps ({why}); shrank the budget to D = {d_new:.4g} "
        f"({'same compute' if s.target.compute_flops is not None else 'same tokens per parameter'}: N = {n:.4g})"
        if n else f"infeasible ({why}); shrank the budget to D = {d_new:.4g}")
    budget.tokens = d_new


def _source_plan(src: PlanSource, unique: float, share: float, target: float, budget: _Budget, cap: float,
                 lower: float, upper: float) -> SourcePlan:
    """One source's target, epochs and what limited it (its epoch cap, max_share or min_share)."""
    m = laws.MUENNIGHOFF
    d = budget.tokens
    epochs = target / unique if unique > 0 else 0.0
    limited = None
    if share > 0 and target >= upper * (1 - 1e-9) and upper == cap * unique:
        limited = "max_epochs"
    elif share > 0 and src.max_share < 1 and target >= upper * (1 - 1e-9):
        limited = "max_share"
    elif lower > 0 and target <= lower * (1 + 1e-9):
        limited = "min_share"
    if epochs > MUENNIGHOFF_EPOCHS + 1e-9:
        budget.warnings.append(f"{src.name}: {epochs:.3g} epochs (> {MUENNIGHOFF_EPOCHS:g}: repeated tokens are "
                               f"worth less, effective {m.effective_data(target, unique):.4g} of {target:.4g})")
    full = math.floor(epochs + 1e-12)
    return SourcePlan(
        name=src.name, unique_tokens=unique, base_share=share, target_tokens=target, share=target / d if d else 0.0,
        epochs=epochs, full_passes=full, fractional_pass=max(epochs - full, 0.0), max_epochs=cap,
        capped=limited == "max_epochs", limited_by=limited, redistributed_tokens=target - share * d,
        effective_tokens=m.effective_data(target, unique), unique_docs=src.unique_docs,
        bytes_per_token=src.bytes_per_token)


def _assemble(s: PlanSettings, budget: _Budget, plans: list[SourcePlan], targets: list[float], u_total: float
              ) -> MixturePlan:
    """The plan: N, D, C, the predicted loss by the law used, and the per-source plans."""
    m = laws.MUENNIGHOFF
    n, d, c, law = budget.n_params, budget.tokens, budget.compute, budget.law
    f = s.flops_per_param_token
    ratio = d / n if n else None
    if ratio is not None and ratio > HIGH_RATIO:
        budget.warnings.append(f"{ratio:.0f} tokens per parameter: far beyond the ratios the laws were fitted on")
    loss = None
    if law and law.get("name") in laws.LAWS and n:
        loss = laws.LAWS[law["name"]].loss(n, d)
    elif s.mode == "data_constrained" and n:
        loss = m.loss(n, d, u_total)
    eff = sum(sp.effective_tokens for sp in plans)
    return MixturePlan(
        n_params=n, tokens=d, compute_flops=c if c is not None else (f * n * d if n else None),
        tokens_per_param=ratio, loss=loss, loss_data_constrained=m.loss(n, d, u_total) if n and u_total else None,
        settings=s.model_dump(mode="json") | {"law_used": law["name"] if law else None},
        law=law, sources=plans, unique_tokens=u_total, effective_tokens=eff,
        repetition_discount=1 - eff / d if d else 0.0, unallocated_tokens=d - sum(targets),
        details=budget.details, warnings=budget.warnings)


def _capacity(caps, unique, sources, p) -> float:
    """Largest D the caps and max shares allow: solve D = Σ min(cap·U, max_share·D) by fixed point."""
    eligible = [i for i in range(len(unique)) if p[i] > 0 or sources[i].min_share > 0]
    hard = sum(caps[i] * unique[i] for i in eligible)
    d = hard
    for _ in range(200):  # monotone decreasing sequence; converges in a handful of steps
        nxt = sum(min(caps[i] * unique[i], sources[i].max_share * d) for i in eligible)
        if abs(nxt - d) <= 1e-12 * max(d, 1):
            break
        d = nxt
    return d


def _cap_factor(d: float, caps, unique, sources, p) -> float:
    """Smallest g ≥ 1 with Σ min(g·cap·U, max_share·D) ≥ D and min_share·D ≤ g·cap·U for every source."""
    eligible = [i for i in range(len(unique)) if (p[i] > 0 or sources[i].min_share > 0) and unique[i] > 0]
    ceil = sum(sources[i].max_share * d for i in eligible)
    if ceil < d * (1 - 1e-12):
        raise PlanInfeasible(f"plan infeasible: max_share values allow only {ceil / d:.4g} of the budget; "
                             f"raising epoch caps cannot help")
    cap_tokens = [caps[i] * unique[i] for i in eligible]
    ms = [sources[i].max_share * d for i in eligible]
    _, g = clipped_fill(d, cap_tokens, ms)
    floor = max([sources[i].min_share * d / (caps[i] * unique[i]) for i in eligible] + [1.0])
    return max(g, floor) * (1 + 1e-12)


def format_plan(plan: MixturePlan) -> str:
    """The plan as a readable table plus totals and warnings (what the job prints)."""
    head = (f"{'source':<34} {'unique':>11} {'target':>11} {'share':>7} {'epochs':>7} {'passes':>6} "
            f"{'frac':>6} {'cap':>5} {'capped':>6} {'effective':>11}")
    lines = [head, "-" * len(head)]
    for s in plan.sources:
        lines.append(f"{s.name[:34]:<34} {s.unique_tokens:>11.4g} {s.target_tokens:>11.4g} {s.share:>7.2%} "
                     f"{s.epochs:>7.3f} {s.full_passes:>6d} {s.fractional_pass:>6.3f} {s.max_epochs:>5.3g} "
                     f"{('yes' if s.capped else (s.limited_by or 'no')):>6} {s.effective_tokens:>11.4g}")
    lines.append("-" * len(head))
    lines.append(f"{'total':<34} {plan.unique_tokens:>11.4g} {sum(s.target_tokens for s in plan.sources):>11.4g} "
                 f"{1:>7.0%} {'':>7} {'':>6} {'':>6} {'':>5} {'':>6} {plan.effective_tokens:>11.4g}")
    law = plan.law["name"] if plan.law else "-"

    def fmt(value, spec: str) -> str:
        return format(value, spec) if value is not None else "-"

    lines += ["",
              f"mode {plan.settings['mode']}  law {law}  mixture {plan.settings['mixture']['rule']}"
              + (f" (T={plan.settings['mixture']['temperature']:g})"
                 if plan.settings['mixture']['rule'] == 'temperature' else ""),
              f"N (params)        {fmt(plan.n_params, '.4g')}",
              f"D (tokens)        {plan.tokens:.4g}",
              f"C (FLOPs)         {fmt(plan.compute_flops, '.4g')}   (C = {plan.settings['flops_per_param_token']:g}·N·D)",
              f"tokens / param    {fmt(plan.tokens_per_param, '.2f')}",
              f"predicted loss    {fmt(plan.loss, '.4f')}   (data-constrained, Muennighoff: "
              f"{fmt(plan.loss_data_constrained, '.4f')})",
              f"effective tokens  {plan.effective_tokens:.4g}   (repetition discount {plan.repetition_discount:.2%})"]
    for w in plan.warnings:
        lines.append(f"warning: {w}")
    return "\n".join(lines)

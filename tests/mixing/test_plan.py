"""The planner: mixture rules, capped water-filling, infeasibility policies and §11 invariants (no Spark)."""

from __future__ import annotations

import json

import pytest

from tokenmill.errors import ConfigError
from tokenmill.mixing import laws
from tokenmill.mixing.allocate import base_weights, unimax
from tokenmill.mixing.plan import (
    PlanInfeasible,
    PlanSettings,
    PlanSource,
    format_plan,
    plan_mixture,
)

U = [1e9, 5e9, 2e10, 1e11]


def sources(**per_source):
    return [PlanSource(name=f"s{i}", unique_tokens=u, **{k: v[i] for k, v in per_source.items()})
            for i, u in enumerate(U)]


def explicit(total, rule="natural", temperature=1.0, **kw):
    return PlanSettings(target={"total_tokens": total}, mode="explicit_tokens",
                        mixture={"rule": rule, "temperature": temperature}, **kw)


def targets(plan):
    return [s.target_tokens for s in plan.sources]


def test_unimax_vector_and_uniform_weights_equal_unimax():
    alloc, left = unimax(U, 1e11, 4)
    assert alloc == pytest.approx([4e9, 2e10, 3.8e10, 3.8e10]) and left == 0
    for rule in ("uniform", "unimax"):
        plan = plan_mixture(explicit(1e11, rule), sources())
        assert targets(plan) == pytest.approx(alloc, rel=1e-12)
        assert [s.share for s in plan.sources] == pytest.approx([0.04, 0.2, 0.38, 0.38])
        assert [s.epochs for s in plan.sources] == pytest.approx([4, 4, 1.9, 0.38])
        assert [s.capped for s in plan.sources] == [True, True, False, False]
    with pytest.raises(PlanInfeasible, match=r"at most 5\.04e\+11"):
        plan_mixture(explicit(1e12, "unimax"), sources())
    assert unimax(U, 1e12, 4)[1] == pytest.approx(1e12 - 5.04e11)  # UniMax leaves the rest unallocated


@pytest.mark.parametrize("t,p,alloc,epochs", [
    (1, [0.007937, 0.03968, 0.1587, 0.7937], [7.937e8, 3.968e9, 1.587e10, 7.937e10], [0.7937] * 4),
    (2, [0.05647, 0.1263, 0.2525, 0.5647], [4.000e9, 1.285e10, 2.570e10, 5.746e10], [4, 2.570, 1.285, 0.5746]),
    # T = 5 needs two rounds of redistribution: s0 hits its cap first, then s1
    (5, [0.1490, 0.2056, 0.2712, 0.3742], [4.000e9, 2.000e10, 3.194e10, 4.406e10], [4, 4, 1.597, 0.4406]),
])
def test_temperature_with_capped_water_filling(t, p, alloc, epochs):
    assert base_weights("temperature", U, t) == pytest.approx(p, rel=5e-4)
    plan = plan_mixture(explicit(1e11, "temperature", t), sources())
    assert targets(plan) == pytest.approx(alloc, rel=5e-4)
    assert [s.epochs for s in plan.sources] == pytest.approx(epochs, rel=5e-4)
    assert sum(targets(plan)) == pytest.approx(1e11, rel=1e-12)
    assert [s.base_share for s in plan.sources] == pytest.approx(p, rel=5e-4)
    # what capped sources give away, the free ones receive
    assert sum(s.redistributed_tokens for s in plan.sources) == pytest.approx(0, abs=1)


def test_mt5_temperature_weights():
    assert base_weights("temperature", U, 1 / 0.3) == pytest.approx([0.1104, 0.1789, 0.2712, 0.4395], rel=5e-4)


@pytest.mark.parametrize("rule,t", [("natural", 1), ("temperature", 2), ("temperature", 5), ("uniform", 1)])
@pytest.mark.parametrize("total", [1e10, 1e11, 3e11, 5.04e11])
def test_invariants(rule, t, total):
    plan = plan_mixture(explicit(total, rule, t), sources())
    assert sum(targets(plan)) == pytest.approx(total, rel=1e-12)  # Σx = D
    for s in plan.sources:
        assert s.target_tokens <= s.max_epochs * s.unique_tokens * (1 + 1e-12)  # caps never exceeded
        assert s.full_passes + s.fractional_pass == pytest.approx(s.epochs)
        assert 0 <= s.fractional_pass < 1
        assert s.effective_tokens <= s.target_tokens + 1e-6
    again = plan_mixture(explicit(total, rule, t), sources())
    assert json.dumps(again.to_dict()) == json.dumps(plan.to_dict())  # deterministic


def test_natural_gives_every_source_the_same_epochs():
    plan = plan_mixture(explicit(3e11), sources())
    assert [s.epochs for s in plan.sources] == pytest.approx([3e11 / sum(U)] * 4)


def test_per_source_caps_and_shares():
    plan = plan_mixture(explicit(1e11), sources(max_epochs=[1, None, None, None], min_share=[0, 0.1, 0, 0],
                                                max_share=[1, 1, 1, 0.6]))
    s0, s1, s2, s3 = plan.sources
    assert s0.target_tokens == pytest.approx(1e9) and s0.capped and s0.max_epochs == 1
    assert s3.target_tokens == pytest.approx(6e10) and s3.limited_by == "max_share"
    assert s1.target_tokens >= 1e10 - 1
    assert sum(targets(plan)) == pytest.approx(1e11)
    with pytest.raises(ConfigError, match="min_share values sum"):
        plan_mixture(explicit(1e11), sources(min_share=[0.5, 0.5, 0.5, 0]))


def test_fixed_weights():
    plan = plan_mixture(explicit(1e10, "fixed"), sources(weight=[1, 1, 0, 2]))
    assert targets(plan) == pytest.approx([2.5e9, 2.5e9, 0, 5e9])
    with pytest.raises(ConfigError, match="fixed"):
        plan_mixture(explicit(1e10, "fixed"), sources())


def test_infeasible_policies():
    over = PlanSettings(target={"n_params": 1e10}, mode="tokens_per_param", tokens_per_param=100,
                        mixture={"rule": "uniform"})  # D = 1e12 > 4·ΣU = 5.04e11
    with pytest.raises(PlanInfeasible, match="infeasible_policy"):
        plan_mixture(over, sources())

    raised = plan_mixture(over.model_copy(update={"infeasible_policy": "raise_cap"}), sources())
    assert sum(targets(raised)) == pytest.approx(1e12)
    assert [s.epochs for s in raised.sources] == pytest.approx([1e12 / sum(U)] * 4)
    assert raised.sources[0].max_epochs == pytest.approx(1e12 / sum(U), rel=1e-9)
    assert any("raised every epoch cap" in w for w in raised.warnings)

    shrunk = plan_mixture(over.model_copy(update={"infeasible_policy": "shrink_budget"}), sources())
    assert shrunk.tokens == pytest.approx(5.04e11) and shrunk.n_params == pytest.approx(5.04e9)  # same r = 100
    assert [s.epochs for s in shrunk.sources] == pytest.approx([4] * 4)
    assert shrunk.details["shrink_budget"]["n_params_same_compute"] == pytest.approx(6e22 / (6 * 5.04e11))

    by_compute = PlanSettings(target={"compute_flops": 6e22}, mode="tokens_per_param", tokens_per_param=100,
                              infeasible_policy="shrink_budget")
    shrunk_c = plan_mixture(by_compute, sources())
    assert shrunk_c.compute_flops == pytest.approx(6e22) and shrunk_c.tokens == pytest.approx(5.04e11)

    dc = plan_mixture(over.model_copy(update={"infeasible_policy": "data_constrained"}), sources())
    assert dc.compute_flops == pytest.approx(6e22, rel=1e-3)  # same compute, re-optimised N and D
    m = laws.MUENNIGHOFF
    assert dc.loss_data_constrained <= m.loss(1e10, 1e12, sum(U)) + 1e-9
    assert sum(targets(dc)) == pytest.approx(dc.tokens)


def test_data_constrained_mode_reoptimises_with_muennighoff():
    c = 6 * 8.67e9 * 178e9
    plan = plan_mixture(PlanSettings(target={"compute_flops": c}, mode="data_constrained"),
                        [PlanSource(name="c4", unique_tokens=25e9)])
    assert plan.compute_flops == pytest.approx(c, rel=1e-3)
    assert plan.loss <= laws.MUENNIGHOFF.loss(6.34e9, 242e9, 25e9)  # at least as good as the README's pick
    assert 8.5 < plan.sources[0].epochs < 9.6
    assert any("epochs" in w for w in plan.warnings)  # beyond the default cap of 4, said out loud


def test_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="exactly one"):
        PlanSettings(target={"n_params": 1e9, "compute_flops": 1e21})
    with pytest.raises(ValueError, match="inference_tokens"):
        PlanSettings(target={"n_params": 1e9}, mode="inference_aware")
    with pytest.raises(ValueError, match="tokens_per_param"):
        PlanSettings(target={"n_params": 1e9}, mode="tokens_per_param")


def test_plan_table_lists_every_source_and_totals():
    text = format_plan(plan_mixture(explicit(1e11, "temperature", 5), sources()))
    for name in ("s0", "s1", "s2", "s3", "N (params)", "D (tokens)", "C (FLOPs)", "tokens / param",
                 "predicted loss", "effective tokens"):
        assert name in text
    assert text.count("yes") == 2  # s0 and s1 capped

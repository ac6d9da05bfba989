"""Scaling-law vectors of docs/scaling-and-mixing.md §9 (pure Python, no Spark)."""

from __future__ import annotations

import pytest

from tokenmill.mixing import laws
from tokenmill.mixing.plan import PlanSettings, PlanSource, plan_mixture


def close(value, expected, rel=5e-4):
    return value == pytest.approx(expected, rel=rel)


# §9.1: C, law, N, D, D/N, L at the optimum (None: no loss for the ratio rule)
OPTIMA = [
    (1e21, "hoffmann_rounded", 1.824e9, 9.136e10, 50.08, 2.329),
    (1e21, "hoffmann_tex", 2.215e9, 7.526e10, 33.98, 2.295),
    (1e21, "epoch_2024", 2.778e9, 5.999e10, 21.59, 2.306),
    (1e21, "ratio20", 2.887e9, 5.774e10, 20, None),
    (1e23, "hoffmann_rounded", 1.460e10, 1.142e12, 78.21, 2.005),
    (1e23, "hoffmann_tex", 1.813e10, 9.195e11, 50.73, 1.988),
    (1e23, "epoch_2024", 2.945e10, 5.660e11, 19.22, 2.032),
    (1e23, "ratio20", 2.887e10, 5.774e11, 20, None),
    (5.76e23, "hoffmann_rounded", 3.219e10, 2.982e12, 92.65, 1.931),
    (5.76e23, "hoffmann_tex", 4.031e10, 2.382e12, 59.08, 1.918),
    (5.76e23, "epoch_2024", 7.225e10, 1.329e12, 18.39, 1.974),
    (5.76e23, "ratio20", 6.928e10, 1.386e12, 20, None),
]


@pytest.mark.parametrize("c,law,n,d,ratio,loss", OPTIMA)
def test_compute_optimal_n_and_d_from_the_planner(c, law, n, d, ratio, loss):
    plan = plan_mixture(PlanSettings(target={"compute_flops": c}, mode="chinchilla", law=law),
                        [PlanSource(name="web", unique_tokens=1e14)])
    assert close(plan.n_params, n) and close(plan.tokens, d) and close(plan.tokens_per_param, ratio)
    assert plan.compute_flops == pytest.approx(6 * plan.n_params * plan.tokens, rel=1e-12)
    assert plan.compute_flops == pytest.approx(c, rel=1e-12)
    if loss is None:
        assert plan.loss is None
    else:
        assert plan.loss == pytest.approx(loss, abs=5e-4)
    if law.startswith("hoffmann"):
        assert any(law in w for w in plan.warnings)  # reproducing the paper only


def test_law_constants():
    assert round(laws.LAWS["hoffmann_rounded"].G, 3) == 1.345
    assert round(laws.LAWS["hoffmann_tex"].G, 3) == 1.300
    assert round(laws.LAWS["epoch_2024"].G, 4) == 0.1196
    assert round(laws.MUENNIGHOFF.G, 4) == 0.2258
    assert [round(laws.LAWS[k].a, 4) for k in ("hoffmann_rounded", "hoffmann_tex", "epoch_2024")] == \
        [0.4516, 0.4565, 0.5126]


@pytest.mark.parametrize("n,c,d", [(1e9, 1.362e20, 2.270e10), (1e10, 1.216e22, 2.027e11), (6.7e10, 4.972e23, 1.237e12)])
def test_epoch_law_inverse_from_n(n, c, d):
    plan = plan_mixture(PlanSettings(target={"n_params": n}, law="epoch_2024"), [PlanSource(name="w", unique_tokens=1e14)])
    assert plan.n_params == n and close(plan.compute_flops, c) and close(plan.tokens, d)


@pytest.mark.parametrize("n,d,c", [(124e6, 2.480e9, 1.845e18), (1.7e9, 3.400e10, 3.468e20), (7e9, 1.400e11, 5.880e21)])
def test_fixed_ratio_table(n, d, c):
    for settings in (PlanSettings(target={"n_params": n}), PlanSettings(target={"n_params": n}, mode="tokens_per_param",
                                                                      tokens_per_param=20)):
        plan = plan_mixture(settings, [PlanSource(name="w", unique_tokens=1e13)])
        assert close(plan.tokens, d) and close(plan.compute_flops, c)


@pytest.mark.parametrize("epochs,d_eff", [(1, 1.000e10), (2, 1.968e10), (4, 3.726e10), (10, 7.814e10), (40, 1.517e11)])
def test_muennighoff_effective_data_counts_repetitions_not_epochs(epochs, d_eff):
    assert close(laws.MUENNIGHOFF.effective_data(epochs * 1e10, 1e10), d_eff)


def test_muennighoff_limits_and_losses():
    m = laws.MUENNIGHOFF
    assert close(m.effective_data(1e16, 1e10), 1.639e11)
    assert m.loss(6.34e9, 242e9, 25e9) == pytest.approx(2.2256440889984477, abs=1e-12)
    assert m.loss(8.67e9, 178e9, 25e9) == pytest.approx(2.2269634075087867, abs=1e-12)
    n, d, loss = m.grid_optimum(8.67e9, 178e9, 25e9)
    assert close(n, 6.813e9) and close(d, 2.265e11) and round(d / 25e9, 3) == 9.061
    assert loss == pytest.approx(2.22527, abs=5e-6)


def test_inference_aware_reproduces_sardana_and_reduces_to_chinchilla():
    settings = PlanSettings(target={"n_params": 13e9}, mode="inference_aware", law="hoffmann_tex",
                            inference_tokens=2e12)
    plan = plan_mixture(settings, [PlanSource(name="w", unique_tokens=1e14)])
    res = plan.details["inference_aware"]
    assert close(res["reference"]["tokens"], 619e9, rel=2e-3)
    assert close(plan.n_params, 7.125e9, rel=1e-3) and close(plan.tokens, 1.297e12, rel=1e-3)
    assert close(res["total_flops"], 8.396e22, rel=1e-3) and close(res["saving_flops"], 1.633e22, rel=1e-3)
    assert round(res["saving_fraction"], 3) == 0.163
    zero = plan_mixture(settings.model_copy(update={"inference_tokens": 0.0}), [PlanSource(name="w", unique_tokens=1e14)])
    assert zero.n_params == pytest.approx(13e9, rel=1e-5)
    assert zero.tokens == pytest.approx(619.0227e9, rel=1e-5)

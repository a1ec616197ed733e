"""Critical batch size: steps to target from curves, and the S-E trade-off fit on synthetic data."""

import numpy as np
import pandas as pd
import pytest

from analysis.critical import (
    boot_ci,
    boot_steps,
    critical_batch,
    crossing,
    crossings,
    fit_tradeoff,
    steps_to_target,
    tradeoff_curve,
)

S_MIN, E_MIN = 200.0, 6400.0  # B_crit = 32
TARGET = 0.1
BS = 2 ** np.arange(11)
LRS = 1e-3 * 2 ** (np.arange(14) / 2)  # holds 1e-3 sqrt(B) for every B


def synthetic_curves(seeds=3, jitter=0.0, rng=None):
    """Power-law curves L = TARGET (step / S)^-1 that reach TARGET after S(B, lr) steps."""
    S_B, _ = tradeoff_curve(S_MIN, E_MIN, BS)
    rows = []
    for B, S in zip(BS, S_B, strict=True):
        lr_best = 1e-3 * B**0.5
        step_K = np.unique(np.geomspace(1, 20 * S, 64).astype(int))
        step_K = np.concatenate([[0], step_K])
        for lr in LRS:
            S_lr = S * (1 + np.log(lr / lr_best) ** 2)
            for seed in range(seeds):
                e = 1.0 + (jitter * rng.standard_normal() if jitter else 0.0)
                loss_K = TARGET * (np.maximum(step_K, 0.5) / (S_lr * e)) ** -1.0
                if lr == LRS[-1]:  # the largest lr diverges after a few steps
                    loss_K = np.where(step_K > 3, np.inf, loss_K)
                rows += [(B, lr, seed, s, v) for s, v in zip(step_K, loss_K, strict=True)]
    return pd.DataFrame(rows, columns=["batch_size", "lr", "seed", "step", "eval_loss"])


def test_crossing_interpolates_in_log_log():
    step, loss = np.array([0, 10, 100]), np.array([5.0, 1.0, 0.01])
    assert crossing(step, loss, 0.1) == pytest.approx(np.sqrt(10 * 100))
    assert np.isnan(crossing(step, loss, 0.001))
    assert crossing(step, loss, 3.0) == pytest.approx(10 * np.log(5 / 3) / np.log(5))  # linear
    assert crossing(np.array([1, 2]), np.array([np.inf, 0.05]), 0.1) == 2


def test_steps_to_target_finds_best_lr_steps():
    t = steps_to_target(synthetic_curves(seeds=1), TARGET)
    np.testing.assert_allclose(t.steps, tradeoff_curve(S_MIN, E_MIN, BS)[0], rtol=1e-9)
    np.testing.assert_allclose(t.lr, 1e-3 * BS**0.5, rtol=1e-9)
    np.testing.assert_allclose(t.samples, t.batch_size * t.steps)


def test_fit_recovers_smin_emin():
    f = fit_tradeoff(BS, tradeoff_curve(S_MIN, E_MIN, BS)[0] * (1 + 0.01 * np.sin(BS)))
    assert f.S_min == pytest.approx(S_MIN, rel=0.03)
    assert f.E_min == pytest.approx(E_MIN, rel=0.03)
    assert f.B_crit == pytest.approx(E_MIN / S_MIN, rel=0.05)
    assert f.B_crit_ci[0] < f.B_crit < f.B_crit_ci[1]
    # (S/S_min - 1)(E/E_min - 1) = 1 on the fitted curve
    S, E = tradeoff_curve(f.S_min, f.E_min, BS)
    np.testing.assert_allclose((S / f.S_min - 1) * (E / f.E_min - 1), 1.0, rtol=1e-9)


def test_critical_batch_from_noisy_curves_with_bootstrap():
    curves = synthetic_curves(seeds=4, jitter=0.05, rng=np.random.default_rng(0))
    c = critical_batch(curves, TARGET, n_boot=40)
    assert c.fit.S_min == pytest.approx(S_MIN, rel=0.15)
    assert c.fit.E_min == pytest.approx(E_MIN, rel=0.15)
    assert c.fit.B_crit_ci[0] < E_MIN / S_MIN < c.fit.B_crit_ci[1]
    lo, hi = boot_ci(c.boot)["B_crit"]
    assert lo < c.fit.B_crit < hi and hi / lo < 2
    assert len(c.boot) == 40 and set(c.table.batch_size) == set(BS)
    # default target: every batch size reaches it, except one whose every lane diverged
    assert len(critical_batch(curves, n_boot=0).table) == len(BS)
    dead = curves.assign(eval_loss=np.where(curves.batch_size == 2, np.inf, curves.eval_loss))
    assert set(critical_batch(dead, n_boot=0).table.batch_size) == set(BS) - {2}


def test_vectorised_crossings_and_bootstrap_match_the_scalar_path():
    rng = np.random.default_rng(3)
    step = np.array([0, 1, 2, 5, 10, 50])
    L_NxP = np.exp(rng.normal(0, 1, (500, 6)))
    L_NxP[rng.random((500, 6)) < 0.2] = np.inf
    for L, v in zip(L_NxP, crossings(step, L_NxP, 0.8), strict=True):
        np.testing.assert_allclose(v, crossing(step, L, 0.8), rtol=1e-12)
    # with one seed every resample is that seed: each row is steps_to_target
    one = synthetic_curves(seeds=1)
    B_K, S_RxK = boot_steps(one, TARGET, 5, rng)
    t = steps_to_target(one, TARGET)
    np.testing.assert_array_equal(B_K, t.batch_size)
    np.testing.assert_allclose(S_RxK, np.tile(t.steps, (5, 1)), rtol=1e-12)

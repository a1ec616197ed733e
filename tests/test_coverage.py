"""The eta* interval against known truths: synthetic loss curves with a known optimum and known
seed noise, and a small coverage run against the exact theory of the regression task."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import coverage, estimator, interval
from sweeps import coverage as study

X = np.linspace(-4.0, 0.0, 33)  # log10 lr, 8 per decade


def curves(rng, seeds: int, x0: float = -2.0, shift: float = 0.2, noise: float = 0.02):
    """Losses (lr, seed) whose seed mean has its expected minimum at x0: each seed's parabola is
    centred x0 + N(0, shift) (as a teacher and a data stream move it), plus lane noise."""
    d = rng.normal(0.0, shift, seeds)
    return 1.0 + 0.5 * (X[:, None] - x0 - d) ** 2 + noise * rng.normal(size=(X.size, seeds))


def synthetic_coverage(method: str, seeds: int, level: float, reps: int = 300) -> tuple:
    rng = np.random.default_rng(1)
    hit, err = [], []
    for _ in range(reps):
        o = estimator.one(10**X, curves(rng, seeds), 400, level, rng, method=method)
        hit.append(o["eta_lo"] <= 1e-2 <= o["eta_hi"])
        err.append(np.log10(o["eta"]) + 2.0)
    return float(np.mean(hit)), float(np.median(err))


@pytest.mark.parametrize(("seeds", "floor"), [(3, 0.8), (8, 0.88)])
def test_scaled_interval_covers_known_optimum(seeds, floor):
    cov, bias = synthetic_coverage("scaled", seeds, 0.9)
    assert floor <= cov <= 0.97, cov  # 300 repetitions: binomial sd 0.017
    assert abs(bias) < 0.125 / 2  # unbiased within half a grid step


def test_percentile_interval_is_too_narrow_with_few_seeds():
    cov, _ = synthetic_coverage("percentile", 3, 0.9)
    assert cov < 0.72  # what the scaling repairs (0.83 above)


def test_seeds_for():
    # the seed part of the half-width scales as t_{n-1}/sqrt(n): halving it from 8 seeds
    assert interval.seeds_for(8, 0.2, 0.1) == 25
    assert interval.seeds_for(8, 0.1, 0.2) == 8
    assert interval.seeds_for(1, 0.2, 0.1) == 0
    # with many seeds the t quantile is normal: a quarter of the width needs 16x the seeds
    assert 16 * 200 * 0.98 <= interval.seeds_for(200, 0.4, 0.1) <= 16 * 200


def test_binomial_interval():
    lo, hi = coverage.binomial(90, 100)
    assert 0.82 < lo < 0.83 and 0.95 < hi < 0.952
    assert coverage.binomial(0, 10)[0] == 0.0 and coverage.binomial(10, 10)[1] == 1.0


def test_small_coverage_run():
    """A fixed config, 16 seeds split into groups of 4 and 8 at three batch sizes: intervals that
    were badly narrow would miss the theory's eta* in most of these 18 trials."""
    base = dict(
        dim=16, decay=1.0, noise=0.5, density=8, lr_min=1e-3, lr_max=1.0, batch_sizes=[1, 8, 64]
    )
    configs = [base | dict(kind="steps", budget=200)]
    lanes = study.lanes(configs, log=lambda s: None)
    ev = coverage.evaluate(lanes, levels=(0.9,), groups=(4, 8), n_boot=400)
    s = coverage.summary(ev).set_index("seeds")
    assert s.loc["all", "trials"] == 18
    assert s.loc["all", "coverage"] >= 0.7
    assert abs(s.loc["all", "bias_steps"]) <= 1.0


def _opt(eta_lo, eta_hi, seeds: int) -> pd.DataFrame:
    B = np.array([1, 4, 16, 64, 256])
    return pd.DataFrame(
        dict(sweep_id="s", label="mlp+adam", batch_size=B, usable=True, seeds=seeds, level=0.95,
             eta_lo=eta_lo * B**0.5, eta_hi=eta_hi * B**0.5)
    )  # fmt: skip


def _fits(delta: float) -> pd.DataFrame:
    return pd.DataFrame(
        [
            dict(sweep_id="s", law="power", aic=0.0, delta_aic=0.0, c=1e-3, alpha=0.5),
            dict(sweep_id="s", law="surge", aic=delta, delta_aic=delta, eta_max=0.015,
                 B_noise=900.0),
        ]
    )  # fmt: skip


def test_the_report_asks_for_seeds_when_the_best_two_laws_are_not_separated():
    from analysis import advice, laws

    B = np.array([1, 4, 16, 64, 256.0])
    p, s = _fits(1.0).iloc[0], _fits(1.0).iloc[1]
    gap = np.abs(np.log(laws.predict("power", p, B) / laws.predict("surge", s, B))).max()
    # intervals of +-50% from 3 seeds, wider than the laws' largest gap (~30%): add seeds
    (note,) = advice.add_seeds(_opt(0.667e-3, 1.5e-3, 3), _fits(1.0))
    need = interval.seeds_for(3, np.log(1.5), gap, 0.95)
    assert 3 < need and f"add seeds: about {need} seeds (sweep.seeds={need} resume=true)" in note
    assert note.startswith("mlp+adam: the power law and") and "(ΔAIC 1.0)" in note
    assert advice.add_seeds(_opt(0.667e-3, 1.5e-3, 3), _fits(5.0)) == []  # separated by AIC
    assert advice.add_seeds(_opt(0.98e-3, 1.02e-3, 3), _fits(1.0)) == []  # narrow enough

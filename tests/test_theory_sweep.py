"""The exact theory across the data budget: against the engine's curves, and its eta*(B, D)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.load import load, load_curves
from analysis.theory import expected_loss, optimal_lr
from analysis.theory_sweep import optimal_across_data, theory_curves, uncovered
from lrscale.config import settings
from sweeps import engine
from sweeps.sweep import run_sweep
from tasks.regression import spectrum
from tests.conftest import SMALL, make_config


def settings_of(cfg) -> pd.DataFrame:
    """A results table's settings columns for cfg, one row per batch size."""
    return pd.DataFrame([{**settings(cfg), "batch_size": b} for b in cfg.sweep.batch_sizes])


def points_of(cfg) -> pd.DataFrame:
    """The curve points of every batch size of cfg, as the curves table records them."""
    parts = []
    for b in cfg.sweep.batch_sizes:
        steps, grid = engine.curve_points(cfg, b)
        parts.append(pd.DataFrame({"batch_size": b, "step": steps, "grid": grid}))
    return pd.concat(parts, ignore_index=True)


def test_theory_curves_match_the_engine(tmp_path):
    # lrs up to ~0.4 of the divergence edge at B=1 (0.144 at dim 4): light tails, no divergence
    over = ["sweep.seeds=512", "task.dim=4", "sweep.batch_sizes=[1,4]", "sweep.lr.num=3"]
    over += ["sweep.lr.min=0.01", "sweep.lr.max=0.06", "sweep.budget.samples=64"]
    run_sweep(make_config(*SMALL, *over, "sweep.curve_points=8"), tmp_path)
    curves = load_curves(tmp_path)
    th = theory_curves(load(tmp_path), curves, np.sort(curves["lr"].unique()))  # the tables alone
    keys = ["batch_size", "lr", "step"]
    meas = curves.groupby(keys)["eval_loss"].agg(["mean", "sem"]).reset_index()
    both = meas.merge(th, on=keys, validate="one_to_one")
    assert len(both) == len(meas) == len(th) and (th["seed"] == 0).all()
    np.testing.assert_array_equal(both["grid"], curves.groupby(keys)["grid"].first().to_numpy())
    z = (both["mean"] - both["eval_loss"]) / both["sem"]
    assert np.abs(z).max() < 4, both.assign(z=z)
    # the check has teeth: the curves fall by many standard errors over the budget
    ends = both.groupby(["batch_size", "lr"]).agg(
        first=("eval_loss", "first"), last=("eval_loss", "last"), sem=("sem", "last")
    )
    assert (ends["first"] - ends["last"] > 20 * ends["sem"]).all(), ends


def test_theory_curves_layout_and_divergence():
    cfg = make_config("task.dim=8", "sweep.batch_sizes=[1,16]", "sweep.budget.samples=256")
    pts = points_of(cfg)
    lrs = np.array([1e-3, 1e-1, 10.0])  # the last is past every divergence edge
    th = theory_curves(settings_of(cfg), pd.concat([pts, pts]).sample(frac=1, random_state=0), lrs)
    assert list(th.columns) == ["batch_size", "lr", "seed", "step", "grid", "eval_loss"]
    assert len(th) == len(pts) * lrs.size and not th["eval_loss"].isna().any()
    assert th[th["step"] == 0]["eval_loss"].to_numpy() == pytest.approx(1 + cfg.task.noise_std**2)
    last = th[
        (th["lr"] == 10.0) & (th["step"] == th.groupby("batch_size")["step"].transform("max"))
    ]
    # past the edge the expected loss explodes; it overflows to +inf, never NaN, at B=1's 256 steps
    assert (last["eval_loss"] > 1e6).all() and np.isinf(last["eval_loss"].iloc[0])


@pytest.mark.parametrize("opt, points", [("sgd", 6), ("nesterov", 3)])  # a 3 dim x 3 dim map
def test_optimum_at_the_budget_is_todays(opt, points):
    over = ["task.dim=8", "sweep.batch_sizes=[1,8,64]", "sweep.budget.samples=512"]
    cfg = make_config(f"optimizer={opt}", *over, f"sweep.curve_points={points}")
    t, o = cfg.task, cfg.optimizer
    mom = {"momentum": o.momentum, "nesterov": opt == "nesterov"}
    lam_D = spectrum(t.dim, t.spectrum_decay)
    res = optimal_across_data(settings_of(cfg), points_of(cfg))
    assert list(res.columns) == ["batch_size", "grid", "step", "lr_opt", "loss_opt"]
    assert (res["grid"] > 0).all() and res["lr_opt"].notna().all()
    final = res.loc[res.groupby("batch_size")["grid"].idxmax()]
    B = final["batch_size"].to_numpy()
    np.testing.assert_array_equal(final["grid"], 512.0)
    eta = optimal_lr(B, lam_D, t.noise_std, samples=512, **mom)
    np.testing.assert_allclose(final["lr_opt"], eta, rtol=1e-12)
    loss = expected_loss(eta, B, 512 // B, lam_D, t.noise_std, **mom)
    np.testing.assert_allclose(final["loss_opt"], loss, rtol=1e-12)


def test_optimum_at_every_point_minimises_the_curves():
    over = ["task.dim=8", "sweep.batch_sizes=[1,8,64]", "sweep.budget.samples=1024"]
    cfg = make_config(*over, "sweep.curve_points=10")
    pts = points_of(cfg)
    res = optimal_across_data(settings_of(cfg), pts)
    assert res.groupby("batch_size")["step"].apply(lambda s: s.is_monotonic_increasing).all()
    fine = np.geomspace(1e-4, 2.0, 241)  # 1.5% apart
    th = theory_curves(settings_of(cfg), pts, fine)
    best = th.loc[th.groupby(["batch_size", "step"])["eval_loss"].idxmin()]
    got = res.merge(best, on=["batch_size", "step", "grid"], validate="one_to_one")
    assert len(got) == len(res)
    i = np.searchsorted(fine, got["lr"])
    lo, hi = fine[np.maximum(i - 1, 0)], fine[np.minimum(i + 1, fine.size - 1)]
    assert ((got["lr_opt"] >= lo) & (got["lr_opt"] <= hi)).all(), got
    assert (got["loss_opt"] <= got["eval_loss"] * (1 + 1e-12)).all()


@pytest.mark.parametrize(
    "over, why",
    [
        (["model=mlp"], "linear model"),
        (["optimizer=adam"], "SGD"),
        (["task=mnist1d", "model=linear"], "regression task"),
        (["task.n_train=128"], "online data"),
    ],
)
def test_uncovered_configs_are_refused(over, why):
    res = settings_of(make_config(*over))
    pts = pd.DataFrame({"batch_size": [1], "step": [1], "grid": [1.0]})
    assert why in uncovered(res)
    with pytest.raises(ValueError, match=why):
        theory_curves(res, pts, [0.01])
    with pytest.raises(ValueError, match=why):
        optimal_across_data(res, pts)


def test_a_results_table_written_by_an_earlier_version_is_still_covered():
    """The theory reads the settings columns every results table has, so the committed
    reference's linear+SGD sweep is covered whatever config its metadata stored."""
    ref = Path(__file__).resolve().parents[1] / "outputs" / "homework" / "0"
    res = load(ref)
    assert (res["model"].iloc[0], res["optimizer"].iloc[0]) == ("linear", "sgd")
    assert uncovered(res) == ""

"""Scaling across data: the shared curve grid, eta*(B | D) read off one sweep, B_opt(D), B_crit(D),
the laws in D and the tables they are written to."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import across, across_laws, tables
from analysis.load import load, load_curves
from sweeps import engine
from sweeps.sweep import run_sweep
from tests.conftest import SMALL, make_config


@pytest.mark.parametrize("budget", ["sweep.budget.samples=16384", "sweep.budget.samples=3000"])
def test_every_batch_size_evaluates_on_one_shared_grid_of_sample_counts(budget):
    cfg = make_config("sweep=homework", budget)
    grid = engine.curve_grid(cfg)
    for B in cfg.sweep.batch_sizes:
        steps, g = engine.curve_points(cfg, B)
        assert steps[0] == 0 and steps[-1] == cfg.sweep.budget.steps_for(B)
        assert len(steps) <= cfg.sweep.curve_points and np.all(np.diff(steps) > 0)
        assert set(g[1:]) <= set(grid) and g[-1] == grid[-1]  # the same values for every B
        inner = slice(1, -1)  # each point at the step whose samples are nearest its grid value
        assert np.all(np.abs(steps[inner] * B - g[inner]) <= B / 2 + 1e-9)


def test_a_sweep_read_at_d_equals_a_sweep_with_budget_d(tmp_path):
    """The lr is constant: a lane's loss after D samples is the run with budget D."""
    common = [*SMALL, "sweep.batch_sizes=[1,4,16]", "sweep.seeds=2", "sweep.lr.num=5"]
    # 14 points: the grid 1, 2, 4, ..., 4096 holds D = 256 exactly for every batch size
    long = run_sweep(make_config(*common, "sweep.budget.samples=4096", "sweep.curve_points=14"),
                     tmp_path / "long")  # fmt: skip
    short = run_sweep(make_config(*common, "sweep.budget.samples=256"), tmp_path / "short")
    c = load_curves(tmp_path / "long")
    at = c[c["grid"] == 256].sort_values(["batch_size", "seed", "lr"])
    s = short.sort_values(["batch_size", "seed", "lr"])
    assert len(at) == len(s) == 3 * 2 * 5
    np.testing.assert_array_equal(at["step"] * at["batch_size"], 256)
    np.testing.assert_allclose(at["eval_loss"], s["final_eval_loss"], rtol=1e-6)
    # and eta*(B | D=256) of the long sweep is eta*(B) of the short one
    opt = across.optima_by_data(load(tmp_path / "long"), c, n_boot=50)
    from analysis.optimum import optima

    direct = optima(load(tmp_path / "short"), n_boot=50)
    mine = opt[opt["samples"] == 256].set_index("batch_size")["eta"]
    np.testing.assert_allclose(mine.loc[direct["batch_size"]], direct["eta"], rtol=1e-5)
    del long


def _curves(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["batch_size", "lr", "seed", "step", "grid", "eval_loss"])
    return df.assign(sweep_id="s", budget_kind="samples")


def test_b_crit_of_curves_with_a_known_trade_off():
    """L_B(t) = L0 (t / tau_B)^-1 with tau_B = 10 (1 + Bc / B): every target needs steps in
    proportion to 1 + Bc / B, so the S-E fit gives Bc and the 20% rule 1.2 B0 + 0.2 Bc."""
    Bc, Bs, lrs = 40.0, [1, 2, 4, 8, 16, 32, 64, 128, 256], [0.1, 0.2]
    grid = np.geomspace(1, 2**16, 33)
    rows = []
    for B in Bs:
        steps, g = np.round(grid[grid >= B] / B), grid[grid >= B]
        steps, first = np.unique(steps, return_index=True)
        for lr in lrs:
            worse = 1.0 if lr == 0.1 else 1.5
            for seed in range(3):
                rows += [(B, lr, seed, 0, 0.0, 1e3)]
                tau = 10 * (1 + Bc / B)
                rows += [
                    (B, lr, seed, t, gv, worse * 5.0 * tau / t)
                    for t, gv in zip(steps, g[first], strict=True)
                ]
    rep = across.replicates(_curves(rows), n_boot=0)
    # where at least three batch sizes reach the target and B_crit lies within reach of them
    fitted = rep[np.isfinite(rep["B_crit_se"])]
    assert len(fitted) >= 20
    np.testing.assert_allclose(fitted["B_crit_se"], Bc, rtol=1e-6)
    # B0 = 1 reaches every target: the samples ratio (B + Bc) / (1 + Bc) passes 1.2 at B = 9.2,
    # once batch sizes beyond it reach D (before, B_crit lies above them: +inf), and while
    # batch sizes beyond it reach the target within the budget
    z = rep.set_index("samples")["B_crit_zhang"]
    assert np.isinf(z[z.index < 9]).all()
    mid = z[(z.index > 20) & (z.index < 30000)]
    assert len(mid) >= 18
    np.testing.assert_allclose(mid, 1.2 + 0.2 * Bc, rtol=0.05)


def test_a_target_met_before_any_step_says_nothing_about_b_crit():
    rows = [(B, 0.1, s, t, float(t * B), 1.0 / (1 + t)) for B in (1, 2, 4, 8) for s in (0, 1)
            for t in (0, 1, 2, 4, 8, 16)]  # fmt: skip
    rows = [(B, lr, s, t, g, 1e-9 if t == 0 else v) for B, lr, s, t, g, v in rows]
    rep = across.replicates(_curves(rows), n_boot=0)
    assert len(rep) and rep["B_crit_zhang"].isna().all() and rep["B_crit_se"].isna().all()


def test_b_opt_of_curves_with_a_known_optimum_and_its_exponent():
    """log10 L(B, D) = log10 L0 + 0.3 (log10 B - log10 B_opt(D))^2 with B_opt = 2^0.1 D^0.5
    (never within a tenth of a factor 2 of a midpoint between batch sizes)."""
    Bs = [2**k for k in range(11)]
    grid = 2.0 ** np.arange(21)  # every D a multiple of every batch size below it
    rows = []
    for B in Bs:
        g = grid[grid >= B]
        steps, first = np.unique(np.round(g / B), return_index=True)
        for t, D in zip(steps, g[first], strict=True):
            opt = 2**0.1 * D**0.5
            loss = 0.2 * 10 ** (0.3 * (np.log10(B) - np.log10(opt)) ** 2)
            rows += [
                (B, lr, s, t, D, loss * f) for lr, f in ((0.1, 1.0), (0.3, 2.0)) for s in (0, 1)
            ]
    curves = _curves(rows)
    rep = across.replicates(curves, n_boot=0)
    interior = rep[rep["B_opt_edge"].eq("")]
    assert len(interior) >= 10
    # the parabola through three batch sizes a factor 2 apart recovers the vertex exactly
    D = interior["grid"].to_numpy(float)
    np.testing.assert_allclose(interior["B_opt"], 2**0.1 * D**0.5, rtol=1e-6)
    # a seed kept at one batch size only (an earlier sweep's) is left out, not counted diverged
    extra = curves[curves["batch_size"] == 64].assign(seed=7, eval_loss=np.inf)
    uneven = across.replicates(pd.concat([curves, extra]), n_boot=0)
    pd.testing.assert_series_equal(uneven["B_opt"], rep["B_opt"])
    law = pd.DataFrame(across_laws.exponent_boot("s", "B_opt ~ D^gamma", rep, "B_opt"))
    gamma = law.set_index("parameter")["value"]
    assert gamma["exponent"] == pytest.approx(0.5, abs=1e-6)
    assert gamma["prefactor"] == pytest.approx(2**0.1, rel=1e-5)


def test_mccandlish_parameters_as_power_laws_of_d_are_recovered():
    rows = []
    for D in np.geomspace(1e3, 1e6, 7):
        eta_max, Bn = 0.1 * D**0.3, 2 * D**0.5
        for B in 2.0 ** np.arange(12):
            eta = eta_max / (1 + Bn / B)
            rows.append(dict(sweep_id="s", batch_size=B, samples=int(round(D)), eta=eta,
                             eta_lo=eta * 0.95, eta_hi=eta * 1.05, usable=True,
                             lr_lo=1e-4, lr_hi=10.0, n_lr=41))  # fmt: skip
    L = pd.DataFrame(across_laws.eta_laws(pd.DataFrame(rows), "s")).set_index(["law", "parameter"])
    assert L.loc[("eta_max ~ D^k", "exponent"), "value"] == pytest.approx(0.3, abs=0.01)
    assert L.loc[("B_noise ~ D^k", "exponent"), "value"] == pytest.approx(0.5, abs=0.01)
    # on McCandlish data below the knee the per-D family beats the joint power law by AIC
    assert L.loc[("saturating family", "laws"), "aic"] < L.loc[("joint power law", "a"), "aic"]


def test_joint_power_law_recovers_its_exponents():
    rng = np.random.default_rng(0)
    B, D = np.meshgrid(2.0 ** np.arange(8), np.geomspace(1e3, 1e6, 6))
    y = np.log(0.01) + 0.8 * np.log(B) - 0.2 * np.log(D) + rng.normal(0, 0.01, B.shape)
    X = np.column_stack([np.ones(B.size), np.log(B).ravel(), np.log(D).ravel()])
    b, lo, hi, _ = across_laws.wls(X, y.ravel())
    assert b[1] == pytest.approx(0.8, abs=0.01) and b[2] == pytest.approx(-0.2, abs=0.01)
    assert lo[1] < 0.8 < hi[1] and lo[2] < -0.2 < hi[2]


def test_the_three_tables_and_the_report_across_data(tmp_path):
    from analysis.pipeline import analyse, write_tables

    run_sweep(make_config(*SMALL, "sweep.batch_sizes=[1,2,4,8]", "sweep.seeds=3"), tmp_path)
    a = analyse([tmp_path], n_boot=50)
    paths = write_tables(a, [tmp_path])
    names = sorted(p.name for p in paths)
    every = [tables.SWEEPS, tables.BUDGET, tables.THEORY, tables.CRITICAL, tables.STEPS]
    assert names == sorted([*every, tables.NOISE, tables.OPTIMA, tables.LAWS, tables.ACROSS])
    opt = pd.read_parquet(tmp_path / "_analysis" / tables.OPTIMA)
    assert list(opt.columns) == tables.OPTIMA_COLUMNS
    # the rows at the budget are eta*(B) at the budget
    at_budget = opt[opt["samples"] == opt["budget"]].set_index("batch_size")
    today = a.opt.set_index("batch_size")
    np.testing.assert_allclose(at_budget["eta"], today.loc[at_budget.index, "eta"], rtol=1e-12)
    laws_t = pd.read_parquet(tmp_path / "_analysis" / tables.LAWS)
    assert list(laws_t.columns) == across_laws.COLUMNS
    assert {"saturating", "B_opt ~ D^gamma"} <= set(laws_t["law"])
    acr = pd.read_parquet(tmp_path / "_analysis" / tables.ACROSS)
    for col in ("B_opt", "B_opt_lo", "B_opt_hi", "B_crit_se", "B_crit_zhang", "B_opt_theory"):
        assert col in acr.columns
    # the B_crit target's margin is an analysis option (--crit-margin), recorded in the table
    wider = analyse([tmp_path], n_boot=50, margin=0.2).data.table
    assert (acr["margin"] == 0.05).all() and (wider["margin"] == 0.2).all()
    np.testing.assert_allclose(wider["target"], acr["target"] / 1.05 * 1.2)
    assert (wider["B_crit_se_theory"] != acr["B_crit_se_theory"]).any()  # the theory's too
    for df in (opt, laws_t, acr):  # no table holds NaN (null where a quantity is missing)
        num = df.select_dtypes("number")
        assert not np.isnan(num.to_numpy(float, na_value=0.0)).any()


def test_a_step_budget_puts_the_data_axis_in_steps(tmp_path):
    from analysis.pipeline import analyse

    cfg = make_config(*SMALL, "sweep.batch_sizes=[1,2,4,8]", "sweep.seeds=3",
                      "sweep.budget.samples=null", "sweep.budget.steps=64")  # fmt: skip
    run_sweep(cfg, tmp_path)
    d = analyse([tmp_path], n_boot=50).data
    steps = set(engine.curve_points(cfg, 1)[0][1:])
    assert set(d.table["samples"]) <= steps  # every batch size shares the steps axis
    assert set(d.optima["samples"]) == {int(round(g)) * b for g, b in zip(
        d.optima["grid"], d.optima["batch_size"], strict=True)}  # D = steps x B  # fmt: skip
    assert "saturating" in set(d.laws["law"])

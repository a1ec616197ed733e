"""Gradient noise scale: closed forms of the linear task against per-example gradients."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import tasks
from lrscale.config import ModelConfig
from lrscale.results import NOISE_SCALE
from models import mlp
from models.linear import linear
from sweeps.noise_measure import lane_params, measure
from sweeps.noise_scale import main
from tasks import regression as task
from tasks.regression import linear_noise_scale, linear_noise_scale_init, spectrum

S = 0.5


def task_batch(lam_D, w_star_D, N, rng):
    x_NxD = rng.standard_normal((N, lam_D.size)) * np.sqrt(lam_D)
    y_N = x_NxD @ w_star_D + S * rng.standard_normal(N)
    return x_NxD.astype(np.float32), y_N.astype(np.float32)


@pytest.mark.parametrize("offset", [0.0, 0.3])  # at init (w = 0) and at a partly trained w
def test_measurement_matches_closed_form(offset):
    lam_D, rng = spectrum(16, 1.0), np.random.default_rng(1)
    w_star_D = rng.standard_normal(16) / 4
    w_D = w_star_D + offset * rng.standard_normal(16) / 4 if offset else np.zeros(16)
    x_NxD, y_N = task_batch(lam_D, w_star_D, 1 << 16, rng)
    got = measure(linear(8, 1, regression=True).apply, jnp.asarray(w_D, jnp.float32), x_NxD, y_N)
    want = linear_noise_scale(w_D, w_star_D, lam_D, S)
    for k in ("B_simple", "B_noise", "G2", "trS", "GHG", "trHS"):
        assert getattr(got, k) == pytest.approx(getattr(want, k), rel=0.07), k


def test_init_formula_is_the_teacher_average():
    lam_D, D = spectrum(32, 1.0), 32
    w_star_KxD = np.random.default_rng(2).standard_normal((20000, D)) / np.sqrt(D)
    per = [linear_noise_scale(np.zeros(D), w, lam_D, S) for w in w_star_KxD[:2000]]
    init = linear_noise_scale_init(lam_D, S)
    # tr(H) = D: B_simple = 1 + (1 + s^2) D^2 / tr(H^2), B_noise = 1 + (1 + s^2) D tr(H^2) / tr(H^3)
    assert init.B_simple == pytest.approx(1 + (1 + S**2) * D**2 / (lam_D**2).sum(), rel=1e-12)
    t2, t3 = (lam_D**2).sum(), (lam_D**3).sum()
    assert init.B_noise == pytest.approx(1 + (1 + S**2) * D * t2 / t3, rel=1e-12)
    for k in ("G2", "trS", "GHG", "trHS"):
        assert np.mean([getattr(p, k) for p in per]) == pytest.approx(getattr(init, k), rel=0.1)
    # and the pooled measurement over teachers agrees: numerators and denominators averaged
    d2_KxD = w_star_KxD**2
    Hd2 = 4 * d2_KxD @ lam_D**2
    L = d2_KxD @ lam_D + S**2
    trS = Hd2 + 4 * L * lam_D.sum()
    assert trS.mean() / Hd2.mean() == pytest.approx(init.B_simple, rel=0.03)


def test_hvp_path_equals_dense_path():
    lam_D, rng = spectrum(8, 1.0), np.random.default_rng(3)
    w_star_D = rng.standard_normal(8) / np.sqrt(8)
    x_NxD, y_N = task_batch(lam_D, w_star_D, 256, rng)
    w_D = jnp.asarray(rng.standard_normal(8) * 0.1, jnp.float32)
    dense = measure(linear(8, 1, regression=True).apply, w_D, x_NxD, y_N)
    hvp = measure(linear(8, 1, regression=True).apply, w_D, x_NxD, y_N, max_dense=0, n_hvp=256)
    np.testing.assert_allclose(np.array(hvp), np.array(dense), rtol=1e-4)


def test_measure_takes_any_model():
    lam_D, rng = spectrum(8, 1.0), np.random.default_rng(4)
    x_NxD, y_N = task_batch(lam_D, rng.standard_normal(8) / np.sqrt(8), 256, rng)
    task = SimpleNamespace(n_features=8, n_out=1, kind="regression")
    model = mlp.build(ModelConfig(name="mlp", width=8, depth=1, activation="tanh"), task, "", ())
    ns = measure(model.apply, model.init(jax.random.key(0), jnp.float32), x_NxD, y_N)
    assert all(np.isfinite(ns)) and ns.B_simple > 1 and ns.trS > 0 and ns.trHS > 0


def test_cli_on_a_linear_sweep(tmp_path):
    from lrscale.results import RESULTS
    from sweeps.sweep import run_sweep
    from tests.conftest import SMALL, make_config

    cfg = make_config(*SMALL, "sweep.batch_sizes=[4]", "sweep.lr.num=4", "sweep.lr.max=0.1")
    res = run_sweep(cfg, tmp_path)
    main([str(tmp_path), "--n", "8192"])
    out = pd.read_parquet(tmp_path / NOISE_SCALE)
    rows = out[out["seed"].notna()]
    assert set(rows.point) == {"init", "end"} and set(rows.seed) == set(range(cfg.sweep.seeds))
    best = res.groupby("lr")["final_eval_loss"].mean().idxmin()
    assert (out["batch_size"] == 4).all() and (out["lr"] == best).all()
    assert set(out["step"]) == {0, int(res.steps.iloc[0])} and out["seed"].isna().sum() == 2
    # the replayed lane ends where the engine's lane ended
    t = cfg.task
    lam_D = spectrum(t.dim, t.spectrum_decay)
    end = lane_params(cfg, 4, best, [0, 1], int(res.steps.iloc[0]))
    for seed in (0, 1):
        k = tasks.seed_keys(seed)
        w_star_D = np.asarray(task.teacher(k.teacher, t.dim), np.float64)
        d = np.asarray(end[seed], np.float64) - w_star_D
        got = res[(res.lr == best) & (res.seed == seed)].final_eval_loss.item()
        assert d @ (lam_D * d) + t.noise_std**2 == pytest.approx(got, rel=1e-4)
    for k in ("B_simple", "B_noise"):
        np.testing.assert_allclose(rows[k], rows[f"{k}_theory"], rtol=0.2)
    assert (tmp_path / RESULTS).exists()

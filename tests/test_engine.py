"""The sweep engine: tables, the pinned SGD update, convergence, divergence, determinism."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import tasks
from lrscale.results import (
    CURVE_COLUMNS,
    CURVE_METRIC_COLUMNS,
    CURVES,
    RESULT_COLUMNS,
    RESULTS,
    read_meta,
)
from sweeps import engine
from sweeps.sweep import run_sweep
from tasks import regression as task
from tests.conftest import CONF, program


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    from tests.conftest import SMALL, make_config

    cfg = make_config(*SMALL, "model=mlp", "optimizer=adam")
    out = tmp_path_factory.mktemp("smoke")
    return cfg, out, run_sweep(cfg, out)


def test_smoke_sweep_tables(smoke):
    cfg, out, df = smoke
    s = cfg.sweep
    assert len(df) == len(s.batch_sizes) * s.lr.num * s.seeds
    disk = pd.read_parquet(out / RESULTS)
    for col, dtype in RESULT_COLUMNS.items():
        assert str(disk[col].dtype) == dtype, col
    assert {"model", "optimizer", "task", "budget_kind", "task_dim"} <= set(disk.columns)
    assert disk[["batch_size", "lr", "seed"]].drop_duplicates().shape[0] == len(disk)
    floats = disk.select_dtypes("float").drop(columns="final_eval_accuracy")
    assert not floats.isna().to_numpy().any()
    # Regression has no accuracy: null, in a nullable column (never NaN).
    assert str(disk["final_eval_accuracy"].dtype) == "Float64"
    assert disk["final_eval_accuracy"].isna().all() and (disk["loss"] == "mse").all()
    assert disk["diverged_step"].notna().equals(disk["diverged"])
    assert (disk["samples"] == disk["steps"] * disk["batch_size"]).all()
    assert (disk["steps"] == s.budget.samples // disk["batch_size"]).all()
    curves = pd.read_parquet(out / CURVES)
    assert list(curves.columns) == [*CURVE_COLUMNS, *CURVE_METRIC_COLUMNS]
    assert not curves[["train_loss", "eval_loss"]].isna().to_numpy().any()
    n_points = curves.groupby(["batch_size", "lr", "seed"]).size()
    assert n_points.max() <= s.curve_points and n_points.min() >= 2
    last = curves.loc[curves.groupby(["batch_size", "lr", "seed"])["step"].idxmax()]
    merged = last.merge(disk, on=["batch_size", "lr", "seed"])
    np.testing.assert_array_equal(merged["eval_loss"], merged["final_eval_loss"])
    meta = read_meta(out / RESULTS)
    assert meta["device_count"] >= 1 and meta["versions"]["jax"]
    assert [t["batch_size"] for t in meta["timings"]] == list(s.batch_sizes)


def test_every_lane_of_a_batch_size_compiles_once(small):
    cfg = small()
    prob = engine.build(cfg)
    prog = engine.program(cfg, prob, 4, engine.curve_steps(8, 4))
    lrs, seeds = engine.lr_grid(cfg), np.arange(2, dtype=np.uint32)
    prog(lrs, seeds, prob.task.data)
    prog(lrs * 0.5, seeds + 7, prob.task.data)
    assert prog._cache_size() == 1


def _linear(small, lrs, batch_size, steps, *extra):
    """Final lanes of the linear model, online data, a fixed step budget."""
    cfg = small("sweep.budget.samples=null", f"sweep.budget.steps={steps}", *extra)
    points = engine.curve_steps(steps, 8)
    seeds = np.arange(cfg.sweep.seeds, dtype=np.uint32)
    return cfg, program(cfg, batch_size, points)(np.asarray(lrs), seeds)


def test_one_sgd_step_is_the_closed_form_update(small):
    B, lr = 4, 0.05
    cfg, out = _linear(small, [lr], B, 1)
    t = cfg.task
    lam = task.spectrum(t.dim, t.spectrum_decay)
    for seed in range(cfg.sweep.seeds):
        k = tasks.seed_keys(seed)
        w_star = task.teacher(k.teacher, t.dim)
        batch = task.sample(
            jax.random.fold_in(k.data, 0), B, jnp.asarray(lam, "float32"), w_star, t.noise_std
        )
        x, y, w_star = (np.asarray(a, np.float64) for a in (*batch, w_star))
        # w0 = 0; loss = mean (x.w - y)^2, so grad = (2/B) X^T (X w - y).
        w1 = -lr * (2 / B) * x.T @ (x @ np.zeros(t.dim) - y)
        d = w1 - w_star
        expected = d @ (lam * d) + t.noise_std**2
        np.testing.assert_allclose(out.final_eval_loss[seed, 0], expected, rtol=1e-5)


def test_tiny_lr_stays_put_and_a_good_lr_reaches_the_noise_floor(small):
    cfg, out = _linear(small, [1e-7, 0.1], 16, 400, "task.noise_std=0.1")
    t = cfg.task
    init = out.curve_eval[:, 0, 0]
    np.testing.assert_allclose(out.final_eval_loss[:, 0], init, rtol=2e-3)
    assert (init > 0.3).all()
    # Constant-lr SGD keeps an excess of order lr * noise^2 * tr(H) / B above the floor.
    assert (out.final_eval_loss[:, 1] >= t.noise_std**2).all()
    np.testing.assert_allclose(out.final_eval_loss[:, 1], t.noise_std**2, rtol=0.25)


@pytest.mark.parametrize(
    "model, opt, lrs",
    [("linear", "sgd", [0.01, 0.05, 50.0]), ("mlp", "adam", [1e-3, 1e-2, 50.0])],
)
def test_diverging_lane_is_flagged_and_leaves_the_others_alone(small, model, opt, lrs):
    """Adam's state of a diverged lane runs on (inf or nan): its neighbours and its own frozen
    parameters must not see it. The reference is the same program with a tame third lane."""
    cfg = small(
        "sweep.budget.samples=null", "sweep.budget.steps=64", f"model={model}", f"optimizer={opt}"
    )
    points, seeds = engine.curve_steps(64, 8), np.arange(cfg.sweep.seeds, dtype=np.uint32)
    prog = program(cfg, 8, points, keep_params=True)
    out, params = prog(np.asarray(lrs), seeds)
    ref, _ = prog(np.asarray(lrs[:2] + lrs[:1]), seeds)
    assert out.diverged[:, 2].all() and not out.diverged[:, :2].any()
    assert (out.diverged_step[:, 2] >= 0).all() and (out.diverged_step[:, :2] == -1).all()
    assert np.isinf(out.final_eval_loss[:, 2]).all() and np.isinf(out.final_train_loss[:, 2]).all()
    assert all(np.isfinite(p).all() for p in jax.tree.leaves(params))
    np.testing.assert_array_equal(out.final_eval_loss[:, :2], ref.final_eval_loss[:, :2])
    np.testing.assert_array_equal(out.curve_eval[:, :2], ref.curve_eval[:, :2])


def test_divergence_factor_is_the_threshold(small):
    # lr 0.3 at B=8 on this task grows the loss steadily: it trips a low factor, not a huge one.
    _, low = _linear(small, [0.3], 8, 64, "sweep.divergence_factor=2")
    _, high = _linear(small, [0.3], 8, 64, "sweep.divergence_factor=1e30")
    assert low.diverged.all()
    assert not high.diverged.any() and np.isfinite(high.final_eval_loss).all()


@pytest.mark.parametrize("epochs_per_batch", [1, 2])
def test_fixed_training_set_is_reshuffled_each_epoch(small, epochs_per_batch):
    """With task.n_train set, minibatches walk a fresh permutation of one fixed set each epoch."""
    B, lr, T = 8, 0.05, 12
    n = B * epochs_per_batch
    cfg, out = _linear(small, [lr], B, T, f"task.n_train={n}")
    t = cfg.task
    lam = task.spectrum(t.dim, t.spectrum_decay)
    for seed in range(cfg.sweep.seeds):
        k = tasks.seed_keys(seed)
        w_star = task.teacher(k.teacher, t.dim)
        x, y = task.sample(k.data, n, jnp.asarray(lam, "float32"), w_star, t.noise_std)
        x, y, w_star = (np.asarray(a, np.float64) for a in (x, y, w_star))
        w = np.zeros(t.dim)
        for step in range(T):
            epoch, i = divmod(step, n // B)
            perm = np.asarray(jax.random.permutation(jax.random.fold_in(k.data, epoch), n))
            idx = perm[i * B : (i + 1) * B]
            w = w - lr * (2 / B) * x[idx].T @ (x[idx] @ w - y[idx])
        d = w - w_star
        np.testing.assert_allclose(
            out.final_eval_loss[seed, 0], d @ (lam * d) + t.noise_std**2, rtol=1e-4
        )


def test_same_config_same_tables(small, tmp_path):
    cfg = small("sweep.batch_sizes=[2,8]")
    a = run_sweep(cfg, tmp_path / "a")
    b = run_sweep(cfg, tmp_path / "b")
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "a" / CURVES), pd.read_parquet(tmp_path / "b" / CURVES)
    )


OPTIMIZERS = sorted(p.stem for p in (CONF / "optimizer").glob("*.yaml"))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_trains_the_smoke_sweep_without_nan(small, tmp_path, name):
    df = run_sweep(small(f"optimizer={name}", "sweep.batch_sizes=[4]"), tmp_path)
    assert not np.isnan(df[["final_train_loss", "final_eval_loss"]].to_numpy()).any()
    ok = df[~df["diverged"]]
    init = pd.read_parquet(tmp_path / CURVES).query("step == 0")["eval_loss"].min()
    assert len(ok) and ok["final_eval_loss"].min() < 0.9 * init  # some learning rate made progress


def test_sqrt_scaling_rule_rescales_adam_with_batch_size(small):
    cfg = small("optimizer=adam", "optimizer.scaling_rule=sqrt", "optimizer.base_batch_size=4")
    h = engine.hyperparams(cfg, 16)
    assert h["b1"] == pytest.approx(1 - 0.1 * 4) and h["b2"] == pytest.approx(1 - 0.001 * 4)
    assert h["eps"] == pytest.approx(1e-8 / 2)
    assert engine.hyperparams(cfg, 4) == pytest.approx({"b1": 0.9, "b2": 0.999, "eps": 1e-8})


@pytest.mark.parametrize("steps,points", [(1, 2), (64, 2), (64, 3), (5, 64), (16384, 64)])
def test_curve_points_start_at_zero_end_at_the_last_step(steps, points):
    s = engine.curve_steps(steps, points)
    assert s[0] == 0 and s[-1] == steps and len(s) <= points
    assert (np.diff(s) > 0).all()

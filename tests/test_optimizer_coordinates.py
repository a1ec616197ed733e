"""Optimizer coordinates: beta half-lives in samples and the AdamW timescale tau."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest

from lrscale.checks import validate
from lrscale.config import ConfigError
from lrscale.results import RESULTS
from sweeps import engine
from sweeps.options import unused
from sweeps.sweep import run_sweep
from tests.conftest import SMALL, make_config, sweep_id

PARAMS = {"w": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array(0.3)}
# Two steps of different gradients: after one step Adam's direction is g / |g| whatever the betas.
GRADS = [
    {"w": jnp.array([0.2, -1.0, 3.0]), "b": jnp.array(-0.4)},
    {"w": jnp.array([-0.5, 0.1, 1.0]), "b": jnp.array(0.9)},
]


def train(tx: optax.GradientTransformation, params=PARAMS, grads=GRADS):
    """The parameters after applying tx to each gradient in turn."""
    opt = tx.init(params)
    for g in grads:
        updates, opt = tx.update(g, opt, params)
        params = optax.apply_updates(params, updates)
    return params


def assert_tree_close(a, b, **kw):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, **kw), a, b)


def tree_differs(a, b) -> bool:
    return any(
        not np.allclose(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def test_half_lives_set_the_betas_from_the_batch_size():
    cfg = make_config(
        *SMALL, "optimizer=adam", "optimizer.b1_halflife=64", "optimizer.b2_halflife=8"
    )
    h = engine.hyperparams(cfg, 16)
    assert h["b1"] == pytest.approx(0.5 ** (16 / 64)) and h["b2"] == pytest.approx(0.5**2)
    assert h["eps"] == cfg.optimizer.eps
    assert engine.hyperparams(cfg, 64)["b1"] == pytest.approx(0.5)  # B = half-life: beta = 1/2
    fixed = engine.hyperparams(make_config(*SMALL, "optimizer=adam"), 16)
    assert (fixed["b1"], fixed["b2"]) == (0.9, 0.999)


@pytest.mark.parametrize("key", ["b1", "b2"])
def test_adam_with_a_half_life_steps_like_optax_adam_with_that_beta(key):
    B, half_life, lr = 16, 40.0, 0.05
    o = make_config(*SMALL, "optimizer=adam").optimizer
    cfg = make_config(*SMALL, "optimizer=adam", f"optimizer.{key}_halflife={half_life}")
    betas = {"b1": o.b1, "b2": o.b2, key: 0.5 ** (B / half_life)}
    ours = train(engine.optimizer(cfg, B, jnp.asarray(lr)))
    by_hand = train(optax.adam(lr, betas["b1"], betas["b2"], o.eps))
    fixed = train(optax.adam(lr, o.b1, o.b2, o.eps))
    assert_tree_close(ours, by_hand, rtol=1e-6, atol=1e-7)
    assert tree_differs(ours, fixed)


def test_rmsprop_decays_with_the_b2_half_life():
    B, half_life, lr = 8, 4.0, 0.01
    cfg = make_config(*SMALL, "optimizer=rmsprop", f"optimizer.b2_halflife={half_life}")
    ours = train(engine.optimizer(cfg, B, jnp.asarray(lr)))
    by_hand = train(optax.rmsprop(lr, decay=0.5 ** (B / half_life), eps=cfg.optimizer.eps))
    assert_tree_close(ours, by_hand, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "budget,D", [([], 256), (["sweep.budget.samples=null", "sweep.budget.steps=10"], 10 * 4)]
)
def test_adamw_tau_gives_each_lane_the_weight_decay_of_its_own_lr(budget, D):
    B, tau = 4, 0.5
    cfg = make_config(*SMALL, *budget, "optimizer=adamw", f"optimizer.tau={tau}")
    o, g = cfg.optimizer, GRADS[0]
    lrs = jnp.array([0.1, 0.01])

    @jax.jit
    def one_step(lrs):
        return jax.vmap(lambda lr: train(engine.optimizer(cfg, B, lr), grads=[g]))(lrs)

    got = one_step(lrs)
    for i, lr in enumerate(np.asarray(lrs, np.float64)):
        lam = B / (lr * tau * D)
        for k, p in PARAMS.items():
            want = p - lr * (g[k] / (np.abs(g[k]) + o.eps) + lam * p)
            np.testing.assert_allclose(got[k][i], want, rtol=1e-5, atol=1e-6)
    fixed = train(optax.adamw(0.1, o.b1, o.b2, o.eps, weight_decay=o.weight_decay), grads=[g])
    assert tree_differs({k: v[0] for k, v in got.items()}, fixed)


BAD = [
    ("optimizer.b1_halflife=0", "optimizer.b1_halflife must be null (the fixed b1) or > 0"),
    ("optimizer.b2_halflife=-3", "optimizer.b2_halflife must be null (the fixed b2) or > 0"),
    ("optimizer.tau=0", "optimizer.tau must be null (the fixed weight_decay) or > 0"),
    ("optimizer.tau=-1", "optimizer.tau"),
    ("optimizer.b2_halflife=inf", "optimizer.b2_halflife must be a finite number"),
    ("optimizer.b2_halflife=1e12", "optimizer.b2_halflife must be short enough that b2 < 1"),
]


@pytest.mark.parametrize("override,message", BAD)
def test_bad_coordinates_are_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(make_config(*SMALL, "optimizer=adamw", override))


@pytest.mark.parametrize("key", ["b1_halflife", "b2_halflife"])
def test_a_half_life_under_the_sqrt_rule_is_refused(key):
    cfg = make_config(
        *SMALL, "optimizer=adam", "optimizer.scaling_rule=sqrt", f"optimizer.{key}=64"
    )
    with pytest.raises(ConfigError, match=rf"optimizer\.{key} must be null under .*sqrt"):
        validate(cfg)


def test_valid_coordinates_pass():
    halflives = ["optimizer.b1_halflife=50", "optimizer.b2_halflife=5e3"]
    cfg = make_config(*SMALL, "optimizer=adamw", *halflives, "optimizer.tau=0.2")
    assert validate(cfg) is cfg
    assert not any(n.startswith("optimizer") for n in unused(cfg))


def test_coordinates_an_optimizer_ignores_are_noted():
    cfg = make_config("optimizer=sgd", "optimizer.tau=0.3", "optimizer.b1_halflife=10")
    assert unused(cfg)[0].startswith(
        "optimizer.b1_halflife, optimizer.tau: ignored by optimizer=sgd"
    )
    halflives = ["optimizer.b1_halflife=10", "optimizer.b2_halflife=10"]
    notes = unused(make_config("optimizer=rmsprop", *halflives))
    assert notes[0].startswith("optimizer.b1_halflife: ignored by optimizer=rmsprop")
    assert unused(make_config("optimizer=adam", "optimizer.tau=0.3"))[0].startswith(
        "optimizer.tau: ignored by optimizer=adam"
    )
    assert unused(make_config("optimizer=lion", "optimizer.b2_halflife=10")) == []


def test_a_tau_sweep_records_tau_and_is_another_sweep(tmp_path):
    cfg = make_config(*SMALL, "optimizer=adamw", "optimizer.tau=0.5", "sweep.batch_sizes=[4]")
    run_sweep(cfg, tmp_path)
    df = pd.read_parquet(tmp_path / RESULTS)
    assert (df["optimizer_tau"] == 0.5).all()
    assert df["optimizer_b1_halflife"].isna().all() and df["optimizer_b2_halflife"].isna().all()
    assert np.isfinite(df["final_eval_loss"]).any()
    without = make_config(*SMALL, "optimizer=adamw", "sweep.batch_sizes=[4]")
    assert (df["sweep_id"] == sweep_id(cfg)).all() and sweep_id(cfg) != sweep_id(without)
    with_b2 = make_config(*SMALL, "optimizer=adamw", "optimizer.b2_halflife=100")
    assert len({sweep_id(cfg), sweep_id(without), sweep_id(with_b2)}) == 3

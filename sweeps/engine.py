"""The sweep engine: for one batch size, one jitted program trains every (lr, seed) lane.

Layout of a program: `vmap` over seeds (outer) of `vmap` over learning rates (inner) of one lane,
a `lax.scan` over curve segments with a `fori_loop` over the steps inside each. The minibatch and
the initial parameters depend on the seed alone, so under the inner vmap they stay unbatched:
every learning rate of a seed sees the same data, and the lane axis of the linear model becomes
a matrix product X_BxD @ W_DxL rather than L matrix-vector products.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import models
from sweeps import task
from sweeps.config import Config


class Lanes(NamedTuple):
    """Per-lane outputs, arrays of shape (seeds, lrs[, points])."""

    final_train_loss: jax.Array
    final_eval_loss: jax.Array
    diverged: jax.Array
    diverged_step: jax.Array  # -1 where the lane never diverged
    curve_train: jax.Array  # (S, L, P): mean minibatch loss over the segment ending at each point
    curve_eval: jax.Array  # (S, L, P)


def lr_grid(cfg: Config) -> np.ndarray:
    g = cfg.sweep.lr
    return np.logspace(np.log10(g.min), np.log10(g.max), g.num)


def curve_steps(steps: int, points: int) -> np.ndarray:
    """Step 0 and up to points - 1 log-spaced steps in [1, steps], ending at `steps`."""
    n = points - 1
    s = np.unique(np.round(np.geomspace(1, steps, n) if n > 1 else [steps]).astype(np.int64))
    return np.concatenate([[0], s])


def hyperparams(cfg: Config, batch_size: int) -> dict:
    """b1, b2, eps of the optimizer at this batch size (rescaled under the sqrt rule)."""
    o = cfg.optimizer
    if o.scaling_rule == "none":
        return {"b1": o.b1, "b2": o.b2, "eps": o.eps}
    k = batch_size / o.base_batch_size
    return {
        "b1": max(0.0, 1 - (1 - o.b1) * k),
        "b2": max(0.0, 1 - (1 - o.b2) * k),
        "eps": o.eps / k**0.5,
    }


def optimizer(cfg: Config, batch_size: int, lr: jax.Array) -> optax.GradientTransformation:
    """The optax transformation of one lane; lr is traced, so it never triggers a recompile."""
    o, h = cfg.optimizer, hyperparams(cfg, batch_size)
    wd = o.weight_decay
    make = {
        "sgd": lambda lr: optax.sgd(lr, o.momentum or None, o.nesterov),
        "momentum": lambda lr: optax.sgd(lr, o.momentum),
        "nesterov": lambda lr: optax.sgd(lr, o.momentum, nesterov=True),
        "adam": lambda lr: optax.adam(lr, h["b1"], h["b2"], h["eps"]),
        "adamw": lambda lr: optax.adamw(lr, h["b1"], h["b2"], h["eps"], weight_decay=wd),
        "rmsprop": lambda lr: optax.rmsprop(lr, decay=h["b2"], eps=h["eps"]),
        "lion": lambda lr: optax.lion(lr, h["b1"], h["b2"], weight_decay=wd),
        "signsgd": optax.sign_sgd,
        "adafactor": optax.adafactor,
    }[o.name]
    # inject_hyperparams keeps lr in the optimizer state as an array (never a static constant).
    return optax.inject_hyperparams(lambda learning_rate: make(learning_rate))(learning_rate=lr)


class Keys(NamedTuple):
    teacher: jax.Array
    init: jax.Array
    data: jax.Array  # minibatch t of the online stream uses fold_in(data, t)
    eval: jax.Array


def seed_keys(seed) -> Keys:
    """The random streams of one seed, shared by every learning rate of that seed."""
    return Keys(*jax.random.split(jax.random.key(seed), 4))


def _tree_where(c, new, old):
    return jax.tree.map(lambda n, o: jnp.where(c, n, o), new, old)


def train_lane(cfg: Config, batch_size: int, points: np.ndarray, lr, seed, keep_params=False):
    """Train one lane; vmapped over (seed, lr) by `program`. Lanes, or (Lanes, final params)."""
    t_cfg, dtype = cfg.task, jnp.dtype(cfg.sweep.dtype)
    model = models.build(cfg.model)
    k_teacher, k_init, k_data, k_eval = seed_keys(seed)
    lam_D = jnp.asarray(task.spectrum(t_cfg.dim, t_cfg.spectrum_decay), dtype)
    w_star_D = task.teacher(k_teacher, t_cfg.dim, dtype)
    noise = t_cfg.noise_std

    if t_cfg.n_train is None:

        def batch(t, _):
            return task.sample(jax.random.fold_in(k_data, t), batch_size, lam_D, w_star_D, noise)

    else:
        x_NxD, y_N = task.sample(k_data, t_cfg.n_train, lam_D, w_star_D, noise)
        per_epoch = t_cfg.n_train // batch_size

        def batch(t, perm):
            idx = jax.lax.dynamic_slice_in_dim(perm, (t % per_epoch) * batch_size, batch_size)
            return x_NxD[idx], y_N[idx]

    def reshuffle(t, perm):
        if t_cfg.n_train is None:
            return perm
        key = jax.random.fold_in(k_data, t // per_epoch)
        new_epoch = t % per_epoch == 0
        return jax.lax.cond(
            new_epoch, lambda: jax.random.permutation(key, t_cfg.n_train), lambda: perm
        )

    if model.linear:

        def eval_loss(w_D):
            return task.population_loss(w_D, w_star_D, lam_D, noise)

    else:
        xe_NxD, ye_N = task.sample(k_eval, t_cfg.n_eval, lam_D, w_star_D, noise)

        def eval_loss(params):
            return task.mse(model.apply(params, xe_NxD), ye_N)

    def loss_fn(params, x_BxD, y_B):
        return task.mse(model.apply(params, x_BxD), y_B)

    tx = optimizer(cfg, batch_size, lr)
    params = model.init(k_init, t_cfg.dim, dtype)
    loss0 = eval_loss(params)
    limit = cfg.sweep.divergence_factor * loss0

    def step(t, c):
        params, opt, perm, div, div_step, acc = c
        perm = reshuffle(t, perm)
        loss, g = jax.value_and_grad(loss_fn)(params, *batch(t, perm))
        bad = ~jnp.isfinite(loss) | (loss > limit)
        div_step = jnp.where(bad & ~div, t, div_step)
        div = div | bad
        updates, new_opt = tx.update(g, opt, params)
        # A diverged lane freezes: its parameters stop moving, its neighbours are untouched.
        params = _tree_where(div, params, optax.apply_updates(params, updates))
        opt = _tree_where(div, opt, new_opt)
        return params, opt, perm, div, div_step, acc + jnp.where(div, 0.0, loss)

    def segment(c, bounds):
        lo, hi = bounds
        c = jax.lax.fori_loop(lo, hi, step, c[:-1] + (jnp.zeros((), dtype),))
        train = c[-1] / jnp.maximum(hi - lo, 1).astype(dtype)
        div = c[3]
        inf = jnp.asarray(jnp.inf, dtype)
        return c, (jnp.where(div, inf, train), jnp.where(div, inf, eval_loss(c[0])))

    perm0 = jnp.arange(t_cfg.n_train or 1)
    c0 = (params, tx.init(params), perm0, jnp.bool_(False), jnp.int32(-1), jnp.zeros((), dtype))
    bounds = (jnp.asarray(points[:-1], jnp.int32), jnp.asarray(points[1:], jnp.int32))
    c, (train_P, eval_P) = jax.lax.scan(segment, c0, bounds)
    div, div_step = c[3], c[4]
    train_P = jnp.concatenate([loss0[None], train_P])
    eval_P = jnp.concatenate([loss0[None], eval_P])
    lanes = Lanes(train_P[-1], eval_P[-1], div, div_step, train_P, eval_P)
    return (lanes, c[0]) if keep_params else lanes


def program(cfg: Config, batch_size: int, points: np.ndarray, keep_params: bool = False):
    """The jitted (lrs_L, seeds_S) -> Lanes program of one batch size (and the final params)."""
    lane = functools.partial(train_lane, cfg, batch_size, points, keep_params=keep_params)
    return jax.jit(jax.vmap(jax.vmap(lane, in_axes=(0, None)), in_axes=(None, 0)))

"""The baseline of the benchmark: a user's training script without vmap, one (lr, seed) run at
a time with one jitted step per call, timed on a few lanes and scaled to the grid."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import tasks
from lrscale.config import Config
from sweeps import engine
from tasks import regression
from tasks.base import mse


def loop_fns(cfg: Config, B: int):
    """A user's training script without vmap: jitted (init, step, eval) of ONE (lr, seed) run."""
    t, dtype = cfg.task, jnp.dtype(cfg.sweep.dtype)
    model = engine.build(cfg).model
    lam_D = jnp.asarray(regression.spectrum(t.dim, t.spectrum_decay), dtype)
    # inject_hyperparams keeps lr in the optimizer state, so a new lr needs no new step.
    tx = engine.optimizer(cfg, B, jnp.zeros((), dtype))

    def init(lr, seed):
        k = tasks.seed_keys(seed)
        w_star_D = regression.teacher(k.teacher, t.dim, dtype)
        params = model.init(k.init, dtype)
        opt = engine.optimizer(cfg, B, lr).init(params)
        held_out = regression.sample(k.eval, t.n_eval, lam_D, w_star_D, t.noise_std)
        return params, opt, (k.data, w_star_D, held_out)

    def step(params, opt, data, i):
        k_data, w_star_D, _ = data
        key = jax.random.fold_in(k_data, i)
        x_BxD, y_B = regression.sample(key, B, lam_D, w_star_D, t.noise_std)
        loss, g = jax.value_and_grad(lambda p: mse(model.apply(p, x_BxD), y_B))(params)
        updates, opt = tx.update(g, opt, params)
        return jax.tree.map(jnp.add, params, updates), opt, loss

    def evaluate(params, data):
        _, w_star_D, (xe_NxD, ye_N) = data
        if model.linear:
            return regression.population_loss(params, w_star_D, lam_D, t.noise_std)
        return mse(model.apply(params, xe_NxD), ye_N)

    return jax.jit(init), jax.jit(step), jax.jit(evaluate)


def time_loop(cfg: Config, B: int, points: np.ndarray, lanes: int, cap: int):
    """(compile seconds of one run, run seconds of the whole grid) of the per-run loop.

    A few lanes run min(steps, cap) steps each; a lane's time is scaled to its full step count
    plus one eval (read back to the host, as a logging script does) per curve point.
    """
    steps = cfg.sweep.budget.steps_for(B)
    lrs = engine.lr_grid(cfg).astype(cfg.sweep.dtype)
    init, step, evaluate = loop_fns(cfg, B)
    lane_s, compile_s = [], 0.0
    for j in range(lanes):
        lr, seed = lrs[(j * 11 + len(lrs) // 2) % len(lrs)], np.uint32(j % cfg.sweep.seeds)
        params, opt, data = init(lr, seed)
        if j == 0:  # later lanes would find the programs in the cache
            t0 = time.perf_counter()
            step.lower(params, opt, data, 0).compile()
            evaluate.lower(params, data).compile()
            compile_s = time.perf_counter() - t0
        for i in range(3):  # the jit call path a user takes; first calls compile and warm up
            params, opt, _ = step(params, opt, data, i)
        float(evaluate(params, data))
        n = min(steps, cap)
        t0 = time.perf_counter()
        for i in range(n):
            params, opt, loss = step(params, opt, data, i)
        jax.block_until_ready(params)
        t1 = time.perf_counter()
        for _ in range(len(points)):
            float(evaluate(params, data))
        t2 = time.perf_counter()
        lane_s.append((t1 - t0) / n * steps + (t2 - t1))
    L = cfg.sweep.lr.num * cfg.sweep.seeds
    return compile_s, float(np.mean(lane_s)) * L

"""The sweep engine: for one batch size, one jitted program trains every (lr, seed) lane.

Layout of a program: `vmap` over seeds (outer) of `vmap` over learning rates (inner) of one lane,
a `lax.scan` over curve segments with a `fori_loop` over the steps inside each. The minibatch and
the initial parameters depend on the seed alone, so under the inner vmap they stay unbatched:
every learning rate of a seed sees the same data, and the lane axis of the linear model becomes
a matrix product X_BxD @ W_DxL rather than L matrix-vector products. The engine knows a task
only through `tasks.Task` (data, loss, metrics) and a model only through init/apply.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import models
import tasks
from lrscale import optimizers
from lrscale.config import Config, ConfigError


class Lanes(NamedTuple):
    """Per-lane outputs, arrays of shape (seeds, lrs[, points])."""

    final_train_loss: jax.Array
    final_eval_loss: jax.Array
    final_eval_accuracy: jax.Array  # 0 where the task has no accuracy, or the lane diverged
    diverged: jax.Array
    diverged_step: jax.Array  # -1 where the lane never diverged
    curve_train: jax.Array  # (S, L, P): mean minibatch loss over the segment ending at each point
    curve_eval: jax.Array  # (S, L, P)
    curve_accuracy: jax.Array  # (S, L, P)


def lr_grid(cfg: Config) -> np.ndarray:
    g = cfg.sweep.lr
    return np.logspace(np.log10(g.min), np.log10(g.max), g.num)


def curve_steps(steps: int, points: int) -> np.ndarray:
    """Step 0 and up to points - 1 log-spaced steps in [1, steps], ending at `steps`."""
    n = points - 1
    s = np.unique(np.round(np.geomspace(1, steps, n) if n > 1 else [steps]).astype(np.int64))
    return np.concatenate([[0], s])


def curve_grid(cfg: Config) -> np.ndarray:
    """The geometric grid of curve points shared by every batch size: sample counts 1 .. budget
    under a sample budget, steps 1 .. budget under a step budget (points - 1 of them)."""
    b, n = cfg.sweep.budget, cfg.sweep.curve_points - 1
    top = b.samples if b.kind == "samples" else b.steps
    return np.geomspace(1, top, n) if n > 1 else np.array([float(top)])


def curve_points(cfg: Config, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(steps, grid values) at which the lanes of a batch size are evaluated: step 0, then each
    grid point it can reach (>= B samples) at the step whose samples are nearest, ending at the
    budget. Losses of different batch sizes at one grid value are thus at the same data budget.
    """
    steps = cfg.sweep.budget.steps_for(batch_size)
    grid = curve_grid(cfg)
    per_step = batch_size if cfg.sweep.budget.kind == "samples" else 1
    grid = grid[grid >= per_step]
    t = np.clip(np.round(grid / per_step), 1, steps).astype(np.int64)
    t[-1] = steps  # the final point is the budget
    # grid values that round to one step: that step stands for the nearest of them
    order = np.lexsort((np.abs(grid - t * per_step), t))
    t, first = np.unique(t[order], return_index=True)
    g = grid[order][first]
    g[-1] = grid[-1]
    return np.concatenate([[0], t]), np.concatenate([[0.0], g])


def hyperparams(cfg: Config, batch_size: int) -> dict:
    """b1, b2, eps of the optimizer at this batch size (rescaled under the sqrt rule, or set by the
    half-lives in samples: beta = 0.5 ** (B / half-life))."""
    o = cfg.optimizer
    if o.scaling_rule == "none":
        h = {"b1": o.b1, "b2": o.b2, "eps": o.eps}
        for key, half_life in (("b1", o.b1_halflife), ("b2", o.b2_halflife)):
            if half_life is not None:
                h[key] = 0.5 ** (batch_size / half_life)
        return h
    k = batch_size / o.base_batch_size
    return {
        "b1": max(0.0, 1 - (1 - o.b1) * k),
        "b2": max(0.0, 1 - (1 - o.b2) * k),
        "eps": o.eps / k**0.5,
    }


def optimizer(cfg: Config, batch_size: int, lr: jax.Array) -> optax.GradientTransformation:
    """The optax transformation of one lane; lr is traced, so it never triggers a recompile."""
    o, h = cfg.optimizer, hyperparams(cfg, batch_size)
    b = cfg.sweep.budget
    samples = b.samples if b.kind == "samples" else b.steps * batch_size  # D, the data budget

    def wd(lr):
        """adamw's weight decay: the fixed one, or under `tau` the one that holds the AdamW
        timescale tau = B / (lr * wd * D): it follows each lane's own (injected, traced) lr."""
        return o.weight_decay if o.tau is None else batch_size / (lr * o.tau * samples)

    make = optimizers.REGISTRY[o.name].make
    # inject_hyperparams keeps lr in the optimizer state as an array (never a static constant).
    return optax.inject_hyperparams(lambda learning_rate: make(o, h, learning_rate, wd))(
        learning_rate=lr
    )


class Problem(NamedTuple):
    """The task and the model of a sweep, built once and shared by its programs."""

    task: tasks.Task
    model: models.Model


def build(cfg: Config) -> Problem:
    """Load and check the task's data and the model; ConfigError names the key or file at fault."""
    task = tasks.build(cfg)
    return Problem(task, models.build(cfg.model, task, cfg.sweep.dtype, cfg.sweep.batch_sizes))


def check_first_outputs(cfg: Config, prob: Problem, n: int = 8) -> None:
    """Refuse a user's model whose outputs at initialisation (seed 0) are not finite on the first
    training examples: every lane would diverge at step 0, whatever its learning rate."""
    if cfg.model.name != "custom" or "x_train" not in prob.task.data:
        return
    dtype = jnp.dtype(cfg.sweep.dtype)
    x = jnp.asarray(prob.task.data["x_train"][:n])
    out = prob.model.apply(prob.model.init(tasks.seed_keys(0).init, dtype), x)
    if not bool(jnp.all(jnp.isfinite(out))):
        raise ConfigError(
            f"model.target: {cfg.model.target} returns non-finite outputs (NaN or inf) at "
            f"initialisation on the first {len(x)} training examples: every lane would diverge "
            "before its first step"
        )


def _tree_where(c, new, old):
    return jax.tree.map(lambda n, o: jnp.where(c, n, o), new, old)


class Carry(NamedTuple):
    params: object
    opt: object
    perm: jax.Array  # this epoch's order of the training set
    div: jax.Array
    div_step: jax.Array
    acc: jax.Array  # sum of minibatch losses over the segment


def train_lane(cfg: Config, prob: Problem, batch_size: int, points, data, lr, seed, keep_params):
    """Train one lane; vmapped over (seed, lr) by `program`. Lanes, or (Lanes, final params)."""
    task, model, dtype = prob.task, prob.model, jnp.dtype(cfg.sweep.dtype)
    keys = tasks.seed_keys(seed)
    d = task.seed_data(data, keys, dtype)
    loss_of = tasks.LOSSES[task.loss]

    if d.train is None:

        def batch(t, _):
            return d.sample(jax.random.fold_in(keys.data, t), batch_size)

        def reshuffle(t, perm):
            return perm

    else:
        x_NxF, y_N = d.train
        n_train = x_NxF.shape[0]
        per_epoch = n_train // batch_size

        def batch(t, perm):
            idx = jax.lax.dynamic_slice_in_dim(perm, (t % per_epoch) * batch_size, batch_size)
            return x_NxF[idx], y_N[idx]

        def reshuffle(t, perm):
            key = jax.random.fold_in(keys.data, t // per_epoch)
            new_epoch = t % per_epoch == 0
            return jax.lax.cond(
                new_epoch, lambda: jax.random.permutation(key, n_train), lambda: perm
            )

    def evaluate(params):
        """(eval loss, eval accuracy); accuracy is 0 where the task has none."""
        if d.exact_loss is not None:
            return d.exact_loss(params), jnp.zeros((), dtype)
        xe, ye = d.eval
        out = model.apply(params, xe)
        acc = tasks.accuracy(out, ye) if task.kind == "classification" else 0.0
        return loss_of(out, ye), jnp.asarray(acc, dtype)

    def loss_fn(params, x_BxF, y_B):
        return loss_of(model.apply(params, x_BxF), y_B)

    tx = optimizer(cfg, batch_size, lr)
    params = model.init(keys.init, dtype)
    loss0, acc0 = evaluate(params)
    limit = cfg.sweep.divergence_factor * loss0

    def step(t, c: Carry) -> Carry:
        perm = reshuffle(t, c.perm)
        loss, g = jax.value_and_grad(loss_fn)(c.params, *batch(t, perm))
        bad = ~jnp.isfinite(loss) | (loss > limit)
        div_step = jnp.where(bad & ~c.div, t, c.div_step)
        div = c.div | bad
        updates, opt = tx.update(g, c.opt, c.params)
        # A diverged lane freezes: its parameters stop moving, its neighbours are untouched.
        # Its optimizer state runs on (nothing reads it once the parameters are frozen): a
        # frozen state would make XLA copy every parameter-sized piece of it each step.
        params = _tree_where(div, c.params, optax.apply_updates(c.params, updates))
        return Carry(params, opt, perm, div, div_step, c.acc + jnp.where(div, 0.0, loss))

    def segment(c: Carry, bounds):
        lo, hi = bounds
        c = jax.lax.fori_loop(lo, hi, step, c._replace(acc=jnp.zeros((), dtype)))
        train = c.acc / jnp.maximum(hi - lo, 1).astype(dtype)
        inf = jnp.asarray(jnp.inf, dtype)
        loss, acc = evaluate(c.params)
        out = (jnp.where(c.div, inf, train), jnp.where(c.div, inf, loss), jnp.where(c.div, 0, acc))
        return c, out

    perm0 = jnp.arange(task.n_train or 1)
    zero = jnp.zeros((), dtype)
    c0 = Carry(params, tx.init(params), perm0, jnp.bool_(False), jnp.int32(-1), zero)
    bounds = (jnp.asarray(points[:-1], jnp.int32), jnp.asarray(points[1:], jnp.int32))
    c, (train_P, eval_P, acc_P) = jax.lax.scan(segment, c0, bounds)
    train_P = jnp.concatenate([loss0[None], train_P])
    eval_P = jnp.concatenate([loss0[None], eval_P])
    acc_P = jnp.concatenate([acc0[None], acc_P])
    lanes = Lanes(train_P[-1], eval_P[-1], acc_P[-1], c.div, c.div_step, train_P, eval_P, acc_P)
    return (lanes, c.params) if keep_params else lanes


def compiler_options() -> dict:
    """XLA options of every sweep program: on CPU, LLVM's -O1 instead of -O2 halves the compile;
    eval losses stay bit for bit, a segment's mean train loss may move by an ulp, run times by
    0-4% (docs/performance.md, "Cold compile")."""
    return {"xla_backend_optimization_level": 1} if jax.default_backend() == "cpu" else {}


def compile_program(lowered):
    """The executable of a lowered sweep program, with `compiler_options`."""
    return lowered.compile(compiler_options())


def program(
    cfg: Config, prob: Problem, batch_size: int, points, keep_params: bool = False, tag: str = ""
):
    """The jitted (lrs_L, seeds_S, data) -> Lanes program of one batch size (+ final params).

    `data` is the task's arrays, placed on the device once and shared by every lane. A `tag`
    joins the program's name (`sweeps.executables` names programs by their key).
    """
    lane = functools.partial(train_lane, cfg, prob, batch_size, points)

    def lanes(lrs_L, seeds_S, data):
        def one(lr, seed):
            return lane(data, lr, seed, keep_params)

        return jax.vmap(jax.vmap(one, in_axes=(0, None)), in_axes=(None, 0))(lrs_L, seeds_S)

    lanes.__name__ = lanes.__qualname__ = f"lanes_{tag}" if tag else "lanes"
    return jax.jit(lanes)

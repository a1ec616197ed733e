r"""The gradient noise scale of a saved sweep, measured (McCandlish et al. 2018): B_simple and
B_noise at initialisation and after one lane's training, per seed and pooled over seeds
(`python -m sweeps.noise_scale RUN_DIR`). The closed forms of the linear task are in
tasks.regression; the analysis reads the table this writes beside the results.

Measurement. From N per-example gradients g_n (vmap of grad), with the batch mean G_hat and the
centred u_n = g_n - G_hat: tr(Sigma) ~ sum |u_n|^2 / (N-1), |G|^2 ~ |G_hat|^2 - tr(Sigma)/N
(unbiased), and with Hl the Hessian of the mean loss over the batch (or its first n_hess
examples), applied through Hessian-vector products (jvp of grad): tr(Hl Sigma) ~
sum u_n^T Hl u_n / (N-1) and G^T Hl G ~ G_hat^T Hl G_hat - tr(Hl Sigma)/N. With few parameters Hl
is formed densely and the sums are exact; otherwise tr(Hl Sigma) is averaged over the first n_hvp
examples. Where G is small against the noise (near a minimum) G^T Hl G is tiny and its unbiased
estimate can come out negative: B_noise is then not resolved by N examples.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.flatten_util import ravel_pytree
from omegaconf import OmegaConf

from lrscale.config import to_config
from lrscale.results import NOISE_SCALE, RESULTS, read_meta, write_table
from sweeps import engine
from tasks import regression, seed_keys
from tasks.regression import NoiseScale, linear_noise_scale, noise_scale


class MeasureError(ValueError):
    """A run directory or a flag the measurement cannot use; the message names it."""


def measure(
    apply: Callable,
    params: Any,
    x_NxD,
    y_N,
    n_hvp: int = 1024,
    n_hess: int | None = None,
    max_dense: int = 2048,
    chunk: int = 256,
) -> NoiseScale:
    """Noise scales from per-example gradients of the squared error at params on (x, y).

    n_hvp: examples whose centred gradients estimate tr(Hl Sigma) when Hl is too large to form
    (more than max_dense parameters); n_hess: examples whose loss defines Hl (default all).
    """
    P = ravel_pytree(params)[0].size
    return noise_scale(
        *_moments(
            apply,
            params,
            x_NxD,
            y_N,
            dense=P <= max_dense,
            n=min(n_hvp, np.shape(x_NxD)[0]),
            n_hess=min(n_hess or np.shape(x_NxD)[0], np.shape(x_NxD)[0]),
            chunk=chunk,
        )
    )


@partial(jax.jit, static_argnames=("apply", "dense", "n", "n_hess", "chunk"))
def _moments(apply, params, x_NxD, y_N, *, dense: bool, n: int, n_hess: int, chunk: int):
    """Unbiased (|G|^2, tr Sigma, G^T Hl G, tr Hl Sigma) from one batch; one compiled program."""
    flat_P, unravel = ravel_pytree(params)
    x_NxD, y_N = x_NxD.astype(flat_P.dtype), y_N.astype(flat_P.dtype)
    N = x_NxD.shape[0]

    def f(p_P, x_NxD):
        return apply(unravel(p_P), x_NxD)

    def loss1(p_P, x_D, y):
        return (f(p_P, x_D[None])[0, 0] - y) ** 2

    g_NxP = jax.lax.map(lambda xy: jax.grad(loss1)(flat_P, *xy), (x_NxD, y_N), batch_size=chunk)
    G_P = g_NxP.mean(0)
    u_NxP = g_NxP - G_P
    trS = jnp.sum(u_NxP**2) / (N - 1)
    # the mean of N gradients carries tr(Sigma)/N of noise in its square norm
    G2 = G_P @ G_P - trS / N
    xh_NxD, yh_N = x_NxD[:n_hess], y_N[:n_hess]
    grad_L = jax.grad(lambda p_P: jnp.mean((f(p_P, xh_NxD) - yh_N) ** 2))

    def hvp(v_P):
        return jax.jvp(grad_L, (flat_P,), (v_P,))[1]

    if dense:
        Hl_PxP = jax.lax.map(hvp, jnp.eye(flat_P.size, dtype=flat_P.dtype), batch_size=chunk)
        trHS = jnp.sum(Hl_PxP * (u_NxP.T @ u_NxP)) / (N - 1)
        GHG = G_P @ Hl_PxP @ G_P
    else:
        Hu_nxP = jax.lax.map(hvp, u_NxP[:n], batch_size=chunk)
        trHS = jnp.sum(Hu_nxP * u_NxP[:n]) / n * N / (N - 1)
        GHG = G_P @ hvp(G_P)
    return G2, trS, GHG - trHS / N, trHS


def lane_params(cfg, batch_size: int, lr: float, seeds, steps: int):
    """Parameters of one lane of a sweep after `steps` steps, stacked over `seeds`.

    The engine's own program under a step budget: same keys, minibatches and updates.
    """
    cfg = copy.deepcopy(cfg)
    cfg.sweep.budget.samples, cfg.sweep.budget.steps = None, steps
    prob = engine.build(cfg)
    prog = engine.program(cfg, prob, batch_size, engine.curve_steps(steps, 2), keep_params=True)
    lrs = np.asarray([lr], cfg.sweep.dtype)
    args = (lrs, np.asarray(seeds, np.uint32), prob.task.data)
    _, params = engine.compile_program(prog.lower(*args))(*args)
    return jax.tree.map(lambda a: a[:, 0], params)


def results_file(run_dir) -> Path:
    """The results.parquet of one sweep: run_dir's own (or run_dir, a results file), or the one
    below it; MeasureError where there is none or several (a multirun: one job at a time)."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        return run_dir
    if not run_dir.is_dir():
        raise MeasureError(f"{run_dir}: no such file or directory")
    files = sorted(p for p in run_dir.rglob(RESULTS) if not p.parent.name.startswith("."))
    if not files:
        raise MeasureError(f"{run_dir}: no {RESULTS} found in this directory or below it")
    if len(files) > 1:
        jobs = [str(f.parent.relative_to(run_dir)) for f in files]
        shown = ", ".join(jobs[:8]) + (f", ... ({len(jobs) - 8} more)" if len(jobs) > 8 else "")
        raise MeasureError(
            f"{run_dir}: a multirun directory with {len(files)} sweeps; the noise scale is "
            f"measured one sweep at a time: give one of its job folders: {shown}"
        )
    return files[0]


def check_args(batch_size=None, lr=None, seeds=None, n: int = 4096) -> None:
    """MeasureError naming the flag whose value cannot give a measurement."""
    if n < 2:
        raise MeasureError(
            f"--n must be at least 2 (got {n}): the noise scale needs the spread of two or more "
            "examples' gradients"
        )
    if seeds is not None and seeds < 1:
        raise MeasureError(f"--seeds must be at least 1 (got {seeds})")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise MeasureError(f"--lr must be a positive finite number (got {lr})")


def _stored(path: Path):
    """The results of path and the config stored with them; MeasureError naming the file."""
    try:
        res = pd.read_parquet(path)
        stored = read_meta(path).get("config")
    except Exception as e:  # noqa: BLE001 - pyarrow raises many kinds on a damaged file
        why = " ".join(str(e).split())
        raise MeasureError(f"{path}: not a readable parquet file ({why})") from None
    if not isinstance(stored, dict) or not {"batch_size", "lr", "final_eval_loss"} <= set(res):
        raise MeasureError(
            f"{path}: no sweep config in its metadata (the measurement replays the sweep from "
            "it; tables written by lrscale's sweeps have one)"
        )
    try:
        return res, to_config(OmegaConf.create(stored))
    except Exception as e:  # a config from another version: any error of the schema
        raise MeasureError(f"{path}: its stored sweep config is not usable ({e})") from None


def sweep_noise_scales(
    run_dir,
    batch_size: int | None = None,
    lr: float | None = None,
    seeds: int | None = None,
    n: int = 4096,
) -> tuple[pd.DataFrame, Path]:
    """(table, where it was written): per seed and pooled over seeds, the noise scales at init
    and after one lane of a saved sweep (+ the linear model's closed forms at each point).

    The lane defaults to the best learning rate of the smallest batch size. run_dir: a run
    directory or its results file. The table is written beside the results (NOISE_SCALE).
    Raises MeasureError, naming the file or the flag, for input it cannot measure.
    """
    check_args(batch_size, lr, seeds, n)
    path = results_file(run_dir)
    res, cfg = _stored(path)
    try:
        with jax.enable_x64(cfg.sweep.dtype == "float64"):
            table = _sweep_noise_scales(cfg, res, batch_size, lr, seeds, n, path)
    except jax.errors.JaxRuntimeError as e:
        if "RESOURCE_EXHAUSTED" not in str(e):
            raise
        raise MeasureError(
            f"--n {n}: the measurement ran out of memory ({str(e).splitlines()[0][:160]}): use a "
            "smaller --n"
        ) from None
    table.insert(0, "sweep_id", str(res["sweep_id"].iloc[0]))
    out = path.parent / NOISE_SCALE
    try:
        write_table(table, out, {"sweep_id": str(res["sweep_id"].iloc[0]), "n": n})
    except OSError as e:
        if out.is_dir():
            raise MeasureError(
                f"{out}: is a directory; cannot write the measurement there"
            ) from None
        raise MeasureError(f"{out}: cannot write the measurement ({e.strerror or e})") from None
    return table, out


def _sweep_noise_scales(cfg, res: pd.DataFrame, batch_size, lr, seeds, n, path) -> pd.DataFrame:
    if cfg.task.name != "regression":
        raise MeasureError(
            f"{path}: the noise-scale measurement covers the regression task, not "
            f"task={cfg.task.name}"
        )
    B = int(batch_size or res["batch_size"].min())
    at_B = res[res["batch_size"] == B]
    if at_B.empty:
        have = ", ".join(str(b) for b in sorted(res["batch_size"].unique()))
        raise MeasureError(
            f"--batch-size {B}: not a batch size of the sweep in {path} (it has {have})"
        )
    if lr is None:
        lr = float(at_B.groupby("lr")["final_eval_loss"].mean().idxmin())
    steps = int(at_B["steps"].iloc[0])
    t, dtype = cfg.task, jnp.dtype(cfg.sweep.dtype)
    lam = regression.spectrum(t.dim, t.spectrum_decay)
    model = engine.build(cfg).model
    seed_S = np.arange(seeds or cfg.sweep.seeds)
    end_S = lane_params(cfg, B, lr, seed_S, steps) if t.n_train is None else None
    rows = []
    for s, seed in enumerate(seed_S):
        k = seed_keys(seed)
        w_star_D = regression.teacher(k.teacher, t.dim, dtype)
        # examples for the measurement: a stream no run trains or evaluates on
        x_NxD, y_N = regression.sample(
            jax.random.fold_in(k.eval, 1), n, jnp.asarray(lam, dtype), w_star_D, t.noise_std
        )
        init = model.init(k.init, dtype)
        end = None if end_S is None else jax.tree.map(lambda a, s=s: a[s], end_S)
        for point, params, step in (("init", init, 0), ("end", end, steps)):
            if params is None:
                continue
            ns = measure(model.apply, params, x_NxD, y_N, n_hvp=256, n_hess=1024)
            row = dict(point=point, seed=int(seed), batch_size=B, lr=lr, step=step)
            row |= ns._asdict()
            if model.linear:
                th = linear_noise_scale(np.asarray(params), np.asarray(w_star_D), lam, t.noise_std)
                row |= {"B_simple_theory": th.B_simple, "B_noise_theory": th.B_noise}
            rows.append(row)
    table = pd.DataFrame(rows)
    return pd.concat([table, pooled(table)], ignore_index=True).astype({"seed": "Int64"})


def pooled(table: pd.DataFrame) -> pd.DataFrame:
    """Per point (init, end): B_simple and B_noise from the moments pooled over seeds (rows of
    the table with a null seed)."""
    moments = ["G2", "trS", "GHG", "trHS"]
    p = table.groupby("point", sort=False)[[*moments, "batch_size", "lr", "step"]].mean()
    p = p.assign(B_simple=p["trS"] / p["G2"], B_noise=p["trHS"] / p["GHG"], seed=None)
    return p.reset_index().astype({"batch_size": "int64", "step": "int64"})

r"""Gradient noise scale (McCandlish et al. 2018): closed forms for the linear task; measurement.

Definitions, with G the full-batch gradient, Sigma the covariance of one example's gradient and
Hl the Hessian of the loss:

    B_simple = tr(Sigma) / |G|^2,        B_noise = tr(Hl Sigma) / (G^T Hl G).

Linear task (shared design notes). At w, with d = w - w*, H = diag(lam) and one example's loss
(x.w - y)^2 = (x.d - s eps)^2, the example gradient is g = 2 x (x.d - s eps). By Isserlis,

    G = E[g] = 2 H d,     Hl = 2 H,
    E[g g^T] = 4 (2 H d d^T H + (d^T H d) H) + 4 s^2 H,
    Sigma = E[g g^T] - G G^T = 4 H d d^T H + 4 L H,     L = d^T H d + s^2 (the population loss).

Hence

    tr(Sigma) = 4 |H d|^2 + 4 L tr(H),          |G|^2 = 4 |H d|^2,
    tr(Hl Sigma) = 8 d^T H^3 d + 8 L tr(H^2),   G^T Hl G = 8 d^T H^3 d,
    B_simple = 1 + L tr(H) / |H d|^2,           B_noise = 1 + L tr(H^2) / (d^T H^3 d).

(The 1 is the rank-one part of Sigma, the fourth moment of a Gaussian.) At initialisation w = 0,
d = -w* with E[w* w*^T] = I/D, so E[|H d|^2] = tr(H^2)/D, E[d^T H^3 d] = tr(H^3)/D and
E[L] = tr(H)/D + s^2; taking expectations of numerator and denominator separately (as a
measurement pooled over seeds does),

    B_simple(0) = 1 + (tr(H)/D + s^2) D tr(H) / tr(H^2),
    B_noise(0)  = 1 + (tr(H)/D + s^2) D tr(H^2) / tr(H^3),

which with tr(H) = D read 1 + (1 + s^2) D^2 / tr(H^2) and 1 + (1 + s^2) D tr(H^2) / tr(H^3).

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
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.flatten_util import ravel_pytree
from omegaconf import OmegaConf

from analysis import output
from analysis.load import REQUIRED, AnalysisError, find, read_table
from lrscale import interrupts
from lrscale.config import to_config
from lrscale.results import RESULTS, read_meta
from sweeps import engine
from tasks import regression, seed_keys

# Underscored, like the curves: pandas.read_parquet(<run dir>) then still reads the results alone.
NOISE_SCALE = "_noise_scale.json"


class NoiseScale(NamedTuple):
    B_simple: float
    B_noise: float
    G2: float  # |G|^2
    trS: float  # tr(Sigma)
    GHG: float  # G^T Hl G
    trHS: float  # tr(Hl Sigma)


def _scale(G2, trS, GHG, trHS) -> NoiseScale:
    G2, trS, GHG, trHS = (float(v) for v in (G2, trS, GHG, trHS))
    return NoiseScale(trS / G2, trHS / GHG, G2, trS, GHG, trHS)


def linear_noise_scale(w, w_star, lam, noise_std: float) -> NoiseScale:
    """Closed-form noise scales of the linear task at w for teacher w_star."""
    lam_D = np.asarray(lam, np.float64)
    d2_D = (np.asarray(w, np.float64) - np.asarray(w_star, np.float64)) ** 2
    L = lam_D @ d2_D + noise_std**2
    Hd2, H3d = lam_D**2 @ d2_D, lam_D**3 @ d2_D
    trS = 4 * Hd2 + 4 * L * lam_D.sum()
    return _scale(4 * Hd2, trS, 8 * H3d, 8 * H3d + 8 * L * (lam_D**2).sum())


def linear_noise_scale_init(lam, noise_std: float) -> NoiseScale:
    """Noise scales at w = 0, numerator and denominator averaged over teachers w* ~ N(0, I/D)."""
    lam_D = np.asarray(lam, np.float64)
    D = lam_D.size
    # every term is linear in d^2 and E[d_i^2] = 1/D: a w* with w*_i^2 = 1/D gives the expectations
    return linear_noise_scale(np.zeros(D), np.full(D, 1 / np.sqrt(D)), lam_D, noise_std)


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
    return _scale(
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
    below it; AnalysisError where there is none or several (a multirun: one job at a time)."""
    run_dir = Path(run_dir)
    files = find([run_dir])
    if len(files) > 1:
        jobs = [str(f.parent.relative_to(run_dir)) for f in files]
        shown = ", ".join(jobs[:8]) + (f", ... ({len(jobs) - 8} more)" if len(jobs) > 8 else "")
        raise AnalysisError(
            f"{run_dir}: a multirun directory with {len(files)} sweeps; the noise scale is "
            f"measured one sweep at a time: give one of its job folders: {shown}"
        )
    return files[0]


def check_args(batch_size=None, lr=None, seeds=None, n: int = 4096) -> None:
    """AnalysisError naming the flag whose value cannot give a measurement."""
    if n < 2:
        raise AnalysisError(
            f"--n must be at least 2 (got {n}): the noise scale needs the spread of two or more "
            "examples' gradients"
        )
    if seeds is not None and seeds < 1:
        raise AnalysisError(f"--seeds must be at least 1 (got {seeds})")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise AnalysisError(f"--lr must be a positive finite number (got {lr})")


def sweep_noise_scales(
    run_dir,
    batch_size: int | None = None,
    lr: float | None = None,
    seeds: int | None = None,
    n: int = 4096,
):
    """Per-seed noise scales at init and after one lane of a saved sweep (+ linear closed forms).

    The lane defaults to the best learning rate of the smallest batch size. run_dir: a run
    directory or its results file. Raises analysis.load.AnalysisError, naming the file or the
    flag, for input it cannot measure.
    """
    check_args(batch_size, lr, seeds, n)
    path = results_file(run_dir)
    res = read_table(path, REQUIRED)
    stored = read_meta(path).get("config")
    if not isinstance(stored, dict):
        raise AnalysisError(
            f"{path}: no sweep config in its metadata (the measurement replays the sweep from "
            "it; tables written by lrscale's sweeps have one)"
        )
    try:
        cfg = to_config(OmegaConf.create(stored))
    except Exception as e:  # a config from another version: any error of the schema
        raise AnalysisError(f"{path}: its stored sweep config is not usable ({e})") from None
    with jax.enable_x64(cfg.sweep.dtype == "float64"):
        table = _sweep_noise_scales(cfg, res, batch_size, lr, seeds, n, path)
    table.attrs["results"] = str(path)
    return table


def _sweep_noise_scales(
    cfg, res: pd.DataFrame, batch_size, lr, seeds, n, path=RESULTS
) -> pd.DataFrame:
    if cfg.task.name != "regression":
        raise AnalysisError(
            f"{path}: the noise-scale measurement covers the regression task, not "
            f"task={cfg.task.name}"
        )
    B = int(batch_size or res["batch_size"].min())
    at_B = res[res["batch_size"] == B]
    if at_B.empty:
        have = ", ".join(str(b) for b in sorted(res["batch_size"].unique()))
        raise AnalysisError(
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
    if model.linear:
        avg = linear_noise_scale_init(lam, t.noise_std)
        table.attrs["init_teacher_average"] = {"B_simple": avg.B_simple, "B_noise": avg.B_noise}
    return table


def summary(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """B_simple and B_noise at init and at the end, from moments pooled over seeds."""
    pooled = table.groupby("point")[["G2", "trS", "GHG", "trHS"]].mean()
    return {
        point: {"B_simple": float(r.trS / r.G2), "B_noise": float(r.trHS / r.GHG)}
        for point, r in pooled.loc[[p for p in ("init", "end") if p in pooled.index]].iterrows()
    }


def main(argv=None) -> int:
    import argparse
    import json

    prog = "analysis.noise_scale"
    p = argparse.ArgumentParser(
        prog=f"python -m {prog}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Gradient noise scale B_simple, B_noise of a sweep at init and after training.",
        epilog="example: python -m analysis.noise_scale outputs/homework/0 --n 4096   "
        "(installed as lrscale-noise-scale)",
    )
    p.add_argument("run_dir", help="one sweep: its run directory or its results.parquet")
    p.add_argument("--batch-size", type=int, default=None, help="lane batch size (default: min)")
    p.add_argument("--lr", type=float, default=None, help="lane lr (default: best at that B)")
    p.add_argument("--seeds", type=int, default=None, help="seeds to measure (default: all)")
    p.add_argument("--n", type=int, default=4096, help="examples per measurement (at least 2)")
    a = p.parse_args(argv)
    try:
        table = sweep_noise_scales(a.run_dir, a.batch_size, a.lr, a.seeds, a.n)
        pooled = summary(table)
        out = {
            "lane": {"batch_size": int(table["batch_size"].iloc[0])}
            | {"lr": float(table["lr"].iloc[0]), "steps": int(table["step"].max())},
            "pooled_over_seeds": pooled,
            "linear_theory_init_teacher_average": table.attrs.get("init_teacher_average"),
            "rows": table.to_dict("records"),
        }
        path = Path(table.attrs["results"]).parent / NOISE_SCALE
        output.write_text(path, json.dumps(out, indent=1, default=float), "the measurement")
    except AnalysisError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    print(table.drop(columns=["G2", "trS", "GHG", "trHS"]).to_string(index=False))
    said = "; ".join(
        f"{k} B_simple = {v['B_simple']:.4g}, B_noise = {v['B_noise']:.4g}"
        for k, v in pooled.items()
    )
    print(f"pooled over seeds: {said}\nwrote {path}")
    return 0


def cli() -> int:
    """The `lrscale-noise-scale` console entry point; an interrupt is one line (exit 130/143)."""
    return interrupts.run("analysis.noise_scale", main, lambda: "nothing was written")


if __name__ == "__main__":
    sys.exit(cli())

r"""Scaling across data: eta*(B | D), B_opt(D) and B_crit(D) from one sweep.

The learning rate is constant, so a lane's loss after D samples is the loss of the run with
budget D; the curves of one sweep, recorded on one grid of sample counts shared by every batch
size, give the whole eta*(B, D) surface.

- eta*(B | D): the estimator of eta*(B) (`optimum.optima`) on the losses read off the curves at
  each grid value D. At the budget it is eta*(B) itself.
- B_opt(D): the batch size with the lowest seed-mean loss at its best grid lr for budget D,
  refined by a parabola in (log B, log loss); "edge" when that is the smallest or largest batch
  size that reaches D.
- B_crit(D): the target is the best loss any batch size reaches at D, times (1 + EPS); S(B) is
  the number of steps batch size B needs to reach it at its best lr (read off its whole curve).
  B_crit is fitted from S(B) = S_min (1 + B_crit / B) (McCandlish et al. 2018), and read as the
  batch size where the samples B S(B) first exceed those of the smallest batch size by ZHANG,
  i.e. the steps exceed perfect linear scaling by 20% (Zhang et al. 2024), interpolated in log B.

Intervals are percentiles over one bootstrap of the seeds shared by every D and batch size
(a seed is one teacher and one initialisation at every batch size), so the laws in D
(`analysis.across_laws`) get their intervals from the very same resamples.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd

from analysis import critical, estimator, optimum, resample
from analysis.load import KEYS, LABEL_COLUMNS

EPS = 0.05  # B_crit target: the best loss at D times (1 + EPS)
ZHANG = 1.2  # Zhang et al. 2024: steps 20% above perfect linear scaling
MIN_BATCHES = 3  # batch sizes that must reach D for B_opt(D) and B_crit(D)
SPAN = 10.0  # a fitted B_crit further than this beyond the batch sizes is only a bound


def with_grid(curves: pd.DataFrame) -> pd.DataFrame:
    """curves with `grid` filled where a table predates it (step x batch size, or step) and
    `samples`, the data budget of each point: the grid value under a sample budget (every
    batch size shares it), step x batch size under a step budget."""
    c = curves
    per_step = np.where(c["budget_kind"].eq("samples"), c["batch_size"], 1)
    grid = c["grid"].fillna(pd.Series(c["step"] * per_step, index=c.index))
    samples = np.where(c["budget_kind"].eq("samples"), grid, c["step"] * c["batch_size"])
    return c.assign(grid=grid.astype(float), samples=np.round(samples).astype(np.int64))


def d_axis(df: pd.DataFrame) -> str:
    """The column that is the data axis of a table: `samples` under a sample budget; under a
    step budget the grid is in steps (`grid`), D = steps x B differing between batch sizes."""
    steps = "budget_kind" in df and len(df) and df["budget_kind"].iloc[0] == "steps"
    return "grid" if steps else "samples"


def aligned(curves: pd.DataFrame) -> pd.DataFrame:
    """with_grid(curves) with a row for every batch size at every grid value D of its sweep
    that it reaches: the point at the step nearest D (one step stands for several grid values
    where they round to it, so its rows repeat with each of them). Step 0 stays as it is."""
    c = with_grid(curves)
    parts = [c[c["step"] == 0]]
    for _, s in c[c["step"] > 0].groupby("sweep_id", sort=False):
        Ds = np.unique(s["grid"])
        samples = dict(zip(s["grid"], s["samples"], strict=False))
        by_samples = s["budget_kind"].iloc[0] == "samples"
        for B, g in s.groupby("batch_size", sort=False):
            per = B if by_samples else 1
            D = Ds[Ds >= per]
            top = g["step"].max()
            steps = np.clip(np.round(D / per), 1, top).astype(np.int64)
            steps[D >= Ds.max()] = top  # the budget
            m = pd.DataFrame({"step": steps, "grid": D})
            m["samples"] = [samples.get(d, round(d)) for d in D] if by_samples else steps * B
            parts.append(g.drop(columns=["grid", "samples"]).merge(m, on="step", how="inner"))
    return pd.concat(parts, ignore_index=True)


def at_data(results: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """Results-like rows read off the curves: one per lane and grid point after step 0, with
    the loss (and accuracy) at that point as the final ones and `samples` its data budget."""
    c = aligned(curves)
    c = c[c["step"] > 0]
    lane = ["final_eval_loss", "final_eval_accuracy", "final_train_loss", "diverged"]
    drop = [*lane, "diverged_step", "steps", "samples"]
    base = results.drop(columns=[k for k in drop if k in results.columns])
    keep = [*KEYS, "step", "grid", "samples", "eval_loss", "eval_accuracy"]
    df = c[keep].merge(base, on=KEYS, how="inner")
    df = df.rename(
        columns={
            "eval_loss": "final_eval_loss",
            "eval_accuracy": "final_eval_accuracy",
            "step": "steps",
        }
    )
    df["diverged"] = ~np.isfinite(df["final_eval_loss"].to_numpy(float))
    df["diverged_step"] = pd.array([pd.NA] * len(df), dtype="Int64")
    return df


def optima_by_data(
    results: pd.DataFrame,
    curves: pd.DataFrame,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    by: str = "loss",
) -> pd.DataFrame:
    """eta*(B | D): one row per sweep x batch size x grid value D (`samples`, `grid`)."""
    df = at_data(results, curves)
    parts = []
    for g_val, g in df.groupby("grid", sort=True):
        o = optimum.optima(g, n_boot, level, seed, by)
        s = g.groupby(["sweep_id", "batch_size"])["samples"].first()
        o["samples"] = [s[(i, b)] for i, b in zip(o["sweep_id"], o["batch_size"], strict=True)]
        o["grid"] = g_val
        parts.append(o)
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["sweep_id", "batch_size", "grid"], kind="stable", ignore_index=True)


class Cube(NamedTuple):
    """One sweep's eval-loss curves as arrays, per batch size: (seeds, lrs, points)."""

    B: np.ndarray  # batch sizes, ascending
    lr: np.ndarray
    steps: list  # per batch size: steps of its points
    grid: list  # per batch size: grid values of its points
    X: list  # per batch size: eval loss (S, L, P), +inf once diverged
    samples: dict  # grid value -> data budget (samples)


def cube(curves: pd.DataFrame) -> Cube:
    """The curves as arrays, over the seeds that every batch size has (a seed kept from an
    earlier sweep at some batch sizes only would otherwise count as diverged elsewhere)."""
    c = aligned(curves)
    common = set.intersection(*(set(g["seed"]) for _, g in c.groupby("batch_size")))
    c = c[c["seed"].isin(common)]
    seeds, lrs = np.array(sorted(common)), np.unique(c["lr"])
    B, steps, grid, X = [], [], [], []
    for b, g in c.groupby("batch_size", sort=True):
        u = g.set_index(["seed", "lr", "grid"])["eval_loss"]
        u = u[~u.index.duplicated()].unstack("grid")
        u = u.reindex(pd.MultiIndex.from_product([seeds, lrs], names=["seed", "lr"]))
        pts = g.drop_duplicates("grid").set_index("grid")["step"].reindex(u.columns)
        X.append(np.nan_to_num(u.to_numpy(float), nan=np.inf).reshape(seeds.size, lrs.size, -1))
        B.append(b)
        steps.append(pts.to_numpy(float))
        grid.append(u.columns.to_numpy(float))
    samples = c[c["step"] > 0].groupby("grid")[d_axis(c)].first().round().astype(int).to_dict()
    return Cube(np.asarray(B, float), lrs, steps, grid, X, samples)


def _zhang(B: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Per row of S (R, K): the B where B S(B) / (B0 S(B0)) first exceeds ZHANG, B0 the smallest
    batch size that reaches the target; log-interpolated; +inf if it never does within the
    batch sizes (B_crit lies above them), nan if fewer than two reach the target."""
    R, K = S.shape
    out = np.full(R, np.nan)
    for r in range(R):
        ok = np.isfinite(S[r])
        if ok.sum() < 2:
            continue
        b, e = B[ok], B[ok] * S[r, ok]
        if e[0] <= 0:
            continue
        ratio = e / e[0]
        k = np.flatnonzero(ratio > ZHANG)
        if k.size == 0:
            out[r] = np.inf
            continue
        j = k[0]
        f = np.log(ZHANG / ratio[j - 1]) / np.log(ratio[j] / ratio[j - 1])
        out[r] = np.exp(np.log(b[j - 1]) + f * np.log(b[j] / b[j - 1]))
    return out


def _se(B: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Per row of S: B_crit of the S-E trade-off fit (nan where it cannot be fitted); beyond
    SPAN times the batch sizes it is only a bound: 0 below them, +inf above."""
    out = np.full(S.shape[0], np.nan)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for r in range(S.shape[0]):
            try:
                out[r] = critical.fit_tradeoff(B, S[r]).B_crit
            except (ValueError, RuntimeError):
                pass
    out = np.where(out > SPAN * B.max(), np.inf, out)
    return np.where(out < B.min() / SPAN, 0.0, out)


def replicates(
    curves: pd.DataFrame, n_boot: int = 200, seed: int = 0, margin: float = EPS
) -> pd.DataFrame:
    """B_opt(D) and B_crit(D) of one sweep for the data (r = 0) and n_boot resamples of seeds:
    one row per resample and grid value D."""
    cb = cube(curves)
    S = cb.X[0].shape[0]
    rng = resample.rng(seed, curves["sweep_id"].iloc[0] if "sweep_id" in curves else "")
    W = np.vstack([np.ones(S), resample.weights(rng, S, n_boot)])
    M = [critical.weighted_means(X, W) for X in cb.X]  # per batch size: (R, L, P)
    rows = []
    for D in sorted(cb.samples):
        have = [k for k in range(len(cb.B)) if np.any(cb.grid[k] == D)]
        if len(have) < MIN_BATCHES:
            continue
        B = cb.B[have]
        best = np.stack(
            [M[k][:, :, np.flatnonzero(cb.grid[k] == D)[0]].min(axis=1) for k in have], axis=1
        )  # (R, K): each batch size's loss at its best grid lr
        i, xv, _ = estimator.argmin_refined(np.log10(B), best)
        target = critical.target_margin(best.min(axis=1), margin)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample reaching nothing
            steps = np.stack(
                [
                    np.nanmin(critical.crossings(cb.steps[k], M[k], target[:, None]), axis=1)
                    for k in have
                ],
                axis=1,
            )  # (R, K): steps to the target at the best lr
        steps[steps <= 0] = np.nan  # met before any step: says nothing about the batch size
        edge = np.where(i == 0, "low", np.where(i == len(B) - 1, "high", ""))
        rows.append(
            pd.DataFrame(
                {
                    "r": np.arange(len(W)),
                    "grid": D,
                    "samples": cb.samples[D],
                    "batches": len(B),
                    "B_opt": 10**xv,
                    "B_opt_edge": edge,
                    "target": target,
                    "B_crit_se": _se(B, steps),
                    "B_crit_zhang": _zhang(B, steps),
                }
            )
        )
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def percentiles(v: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap values without interpolation: a bound (+inf) stays one."""
    return resample.percentile_interval(v, level, method="inverted_cdf")


def across_data(
    results: pd.DataFrame, curves: pd.DataFrame, n_boot=200, level=0.95, margin=EPS, seed=0
):
    """Per sweep and D: B_opt and B_crit (both ways) with intervals, and the bootstrap
    replicates they come from (for the laws in D). Returns (table, replicates)."""
    labels = results.drop_duplicates("sweep_id").set_index("sweep_id")[LABEL_COLUMNS[1:]]
    tables, reps = [], []
    for sid, c in curves.groupby("sweep_id", sort=True):
        rep = replicates(c, n_boot, seed, margin)
        if rep.empty:
            continue
        rep.insert(0, "sweep_id", sid)
        reps.append(rep)
        point = rep[rep["r"] == 0].set_index("grid")
        boot = rep[rep["r"] > 0]
        t = point[["sweep_id", "samples", "batches", "target", "B_opt_edge"]].copy()
        t["margin"] = margin
        for col in ("B_opt", "B_crit_se", "B_crit_zhang"):
            t[col] = point[col]
            iv = {d: percentiles(v.to_numpy(float), level) for d, v in boot.groupby("grid")[col]}
            t[f"{col}_lo"] = [iv.get(d, (np.nan, np.nan))[0] for d in t.index]
            t[f"{col}_hi"] = [iv.get(d, (np.nan, np.nan))[1] for d in t.index]
        for k, v in labels.loc[sid].items():
            t[k] = v
        tables.append(t.reset_index())
    if not tables:
        return pd.DataFrame(), pd.DataFrame()
    return pd.concat(tables, ignore_index=True), pd.concat(reps, ignore_index=True)

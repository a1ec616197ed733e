"""The optimal learning rate per sweep and batch size, with a bootstrap interval over seeds."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from analysis import metric
from analysis.interval import METHOD, bounds
from analysis.load import LABEL_COLUMNS, labels, with_defaults

GROUP = [*LABEL_COLUMNS, "batch_size"]
# A neighbour rising this many times more than the other is a divergence cliff, not the flank of
# a parabola: the vertex would sit half a step toward the gentle side whatever the truth. (On
# the exact SGD theory curves of the linear task, refining only below this ratio is never worse
# than the grid argmin, and refining always is, at 4-8 lrs per decade.)
CLIFF = 30.0
# A seed-mean curve whose rise across the lrs without a diverged seed is within the seed spread
# (the median over those lrs of the seeds' standard deviation), or within this floor where there
# is no spread (one seed): relative for a loss, absolute for an accuracy, is flat in the lr:
# eta* is not identified, wherever its argmin falls.
FLAT_FLOOR = 1e-4
# A lane that diverged at step 0 did so on its first minibatch before any update: at every lr
# alike (the loss of step 0 does not depend on the lr).
OVERFLOW_WHY = (
    "the loss at initialisation is non-finite or past the divergence limit, whatever the lr: "
    "check the task's scale (e.g. task.noise_std, the data) or sweep.dtype; a lower lr grid "
    "would not help"
)
OVERFLOW = "every lane diverged at step 0, before any update; " + OVERFLOW_WHY


def _labelled(df: pd.DataFrame) -> pd.DataFrame:
    """df with a sweep label and the optional columns (load() adds them; hand-built tables may
    lack them)."""
    df = with_defaults(df)
    return df if "label" in df.columns else df.assign(label=labels(df))


def curve(df: pd.DataFrame) -> pd.DataFrame:
    """Loss vs lr per sweep and batch size: mean, median and spread over seeds (diverged = +inf),
    with the seed-mean accuracy (nan without one) and the loss's name."""
    df = _labelled(df)
    by = df.groupby([*GROUP, "lr"], sort=True)
    out = by["final_eval_loss"].agg(["mean", "median", "std", "min", "max", "size"])
    out = out.rename(columns={"size": "seeds"})
    out["diverged"] = by["diverged"].sum()
    # inf - inf in std is NaN; a spread over diverged lanes is meaningless anyway.
    out["std"] = out["std"].where(np.isfinite(out["mean"]), np.inf)
    out["accuracy"] = by["final_eval_accuracy"].mean().to_numpy(float, na_value=np.nan)
    out["loss_name"] = by["loss"].first()
    return out.reset_index()


def vertex(x: np.ndarray, y: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertex of the parabola through the points i-1, i, i+1 of each row of y; else the grid point.

    x: (n,) increasing; y: (..., n); i: (...,) index of the minimum of each row.
    """
    n = x.shape[0]
    i = np.asarray(i)
    j = np.clip(i, 1, n - 2) if n >= 3 else np.zeros_like(i)
    take = lambda k: np.take_along_axis(y, np.clip(k, 0, n - 1)[..., None], -1)[..., 0]  # noqa: E731
    x0, x1, x2 = x[np.clip(j - 1, 0, n - 1)], x[j], x[np.clip(j + 1, 0, n - 1)]
    y0, y1, y2 = take(j - 1), take(j), take(j + 1)
    with np.errstate(all="ignore"):
        d1 = (y1 - y0) / (x1 - x0)
        a = ((y2 - y1) / (x2 - x1) - d1) / (x2 - x0)
        xv = 0.5 * (x0 + x1) - d1 / (2 * a)
        d0, d2 = y0 - y1, y2 - y1
        ok = (n >= 3) & (i == j) & np.isfinite(y0) & np.isfinite(y1) & np.isfinite(y2) & (a > 0)
        ok &= np.maximum(d0, d2) <= CLIFF * np.minimum(d0, d2)
        xv = np.clip(np.where(ok, xv, x[i]), x0, x2)
        yv = np.where(ok, y0 + d1 * (xv - x0) + a * (xv - x0) * (xv - x1), take(i))
    return xv, yv


def argmin_refined(
    x: np.ndarray, L: np.ndarray, log: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid argmin of each row of L (..., n) and its parabola refinement in (x, log10 L), or in
    (x, L) without log (then yv is in L's units, else in log10 L)."""
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.log10(np.where(L > 0, L, np.nan))
    else:
        y = np.asarray(L, float)
    y = np.where(np.isnan(y), np.inf, y)  # missing (or, in log, non-positive) cells never win
    i = np.argmin(y, axis=-1)
    xv, yv = vertex(x, y, i)
    none = ~np.isfinite(y).any(axis=-1)
    return i, np.where(none, np.nan, xv), np.where(none, np.nan, yv)


def boot_means(L: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means over seeds resampled with replacement: (n_boot, n_lr) from L (n_lr, n_seed).

    Seeds are resampled as units: lanes with one seed share data and init across lrs.
    """
    idx = rng.integers(0, L.shape[1], size=(n_boot, L.shape[1]))
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(L[:, idx], axis=-1).T


def one(
    lr: np.ndarray,
    L: np.ndarray,
    n_boot: int,
    level: float,
    rng,
    m=metric.METRICS["loss"],
    method: str = METHOD,
) -> dict:
    """eta* of one batch size from losses L (n_lr, n_seed); lr sorted ascending.

    L is whatever metric m minimises; the "loss" entries of the result are in its units.
    """
    x = np.log10(lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(L, axis=1)
        med = np.nanmedian(L, axis=1)
    out = dict(n_lr=len(lr), lr_lo=lr[0], lr_hi=lr[-1])
    if not np.isfinite(mean).any():
        return out | dict(status="diverged", edge="", note="every lr has a diverged seed")
    i, xv, yv = argmin_refined(x, mean, m.log)
    edge = "low" if i == 0 else "high" if i == len(lr) - 1 else ""
    if len(lr) == 1:
        edge = ""
    fit = 10**yv if m.log else yv
    out |= dict(
        eta=10**xv, eta_grid=lr[i], loss=mean[i], loss_median=med[i], loss_fit=fit, edge=edge
    )
    if L.shape[1] >= 2 and n_boot > 0:
        _, xb, _ = argmin_refined(x, boot_means(L, n_boot, rng), m.log)
        step = (x[-1] - x[0]) / max(len(x) - 1, 1)
        lo, hi = bounds(xv, xb, L.shape[1], level, step, method)
        out |= dict(eta_lo=10**lo, eta_hi=10**hi)
    out["finite_lrs"] = n_ok = int(np.isfinite(mean).sum())
    why = unidentified(lr, L, mean, m)
    if why:
        # a lone finite lr on the edge is still an edge (not fitted), but no call to extend
        out |= dict(status="edge" if edge and n_ok == 1 else "unidentified", note=why)
    elif edge:
        way = "down" if edge == "low" else "up"
        out |= dict(
            status="edge",
            note=f"{m.best} at the {'lowest' if edge == 'low' else 'highest'} "
            f"lr {lr[i]:.3g}: extend the grid {way}",
        )
    else:
        out |= dict(status="ok", note="")
    return out


def unidentified(lr: np.ndarray, L: np.ndarray, mean: np.ndarray, m) -> str:
    """Why the lr grid does not identify eta* ('' when it does): a single lr, a single lr
    without a diverged seed, or a seed-mean curve flat in the lr within its seed spread.

    L (n_lr, n_seed) and its seed mean are in the units of the minimised number of metric m.
    """
    if len(lr) == 1:
        return f"the grid has one lr ({lr[0]:.3g}), which does not locate eta*; sweep several"
    ok = np.isfinite(mean)
    if ok.sum() == 1:
        (i,) = np.flatnonzero(ok)
        below = f"{lr[i - 1]:.3g}" if i > 0 else ""
        above = f"{lr[i + 1]:.3g}" if i < len(lr) - 1 else ""
        where = (
            f"between {below} and {above}"
            if below and above
            else f"below {above}"
            if above
            else f"above {below}"
        )
        return (
            f"only lr {lr[i]:.3g} is free of diverged seeds, and one point does not locate "
            f"eta*: it lies {where}, where seeds diverge; a finer grid there would locate it"
        )
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if m.log:
            y = np.log10(np.where(L > 0, L, np.nan)[ok])
            ym = np.log10(np.where(mean > 0, mean, np.nan)[ok])
            floor = np.log10(1 + FLAT_FLOOR)
        else:
            y, ym, floor = L[ok], mean[ok], FLAT_FLOOR
        y = np.where(np.isfinite(y), y, np.nan)
        spread = np.nanmedian(np.nanstd(y, axis=1, ddof=1)) if L.shape[1] >= 2 else np.nan
        rise = np.nanmax(ym) - np.nanmin(ym)
    if not rise <= max(floor, spread if np.isfinite(spread) else 0.0):
        return ""
    if m.log:
        size = lambda v: f"{100 * (10**v - 1):.2g}%"  # noqa: E731
    else:
        size = lambda v: f"{v:.2g}"  # noqa: E731
    within = f"the seed spread ({size(spread)})" if spread > floor else size(floor)
    span = lr[ok]
    rest = f" (the other {(~ok).sum()} lrs have a diverged seed)" if (~ok).any() else ""
    what = "loss" if m.name == "loss" else m.name
    return (
        f"the {what} does not depend on the lr across the grid: its seed mean varies by "
        f"{size(rise)} over lrs {span[0]:.3g} to {span[-1]:.3g}{rest}, within {within}; eta* "
        "is not identified"
    )


def _at_grid(g: pd.DataFrame, row: dict, m) -> dict:
    """Seed-mean accuracy at the chosen grid lr; under the accuracy metric, the loss there too."""
    at = g[g["lr"] == row.get("eta_grid", np.nan)]
    acc = pd.Series(at["final_eval_accuracy"].to_numpy(float, na_value=np.nan)).mean()
    out = dict(accuracy=acc, loss_name=g["loss"].iloc[0], metric=m.name)
    if m.name != "loss":  # one() reported the minimised error: report the loss instead
        L = at["final_eval_loss"]
        out |= dict(loss=L.mean(), loss_median=L.median(), loss_fit=np.nan)
    return out


def optima(
    df: pd.DataFrame,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    by: str = "loss",
    method: str = METHOD,
) -> pd.DataFrame:
    """eta* per sweep and batch size: refined optimum of the seed-mean metric `by` (loss or
    accuracy), bootstrap interval over seeds (see bounds)."""
    rng = np.random.default_rng(seed)
    m = metric.get(by)
    df = _labelled(df)
    df = df.assign(_y=metric.objective(df, m))
    rows = []
    for key, g in df.groupby(GROUP, sort=True, dropna=False):
        P = g.set_index(["lr", "seed"])["_y"]
        P = P[~P.index.duplicated()].unstack("seed").sort_index()
        row = dict(zip(GROUP, key, strict=True))
        row |= one(P.index.to_numpy(float), P.to_numpy(float), n_boot, level, rng, m, method)
        row |= _at_grid(g, row, m)
        at0 = _at_step0(g)
        row |= dict(seeds=P.shape[1], lanes=len(g), diverged=int(g["diverged"].sum()))
        row["diverged_at_step0"] = int(at0.sum())
        if row["diverged"] == row["lanes"]:
            row["note"] = (
                OVERFLOW
                if row["diverged_at_step0"] == row["lanes"]
                else f"all lanes diverged, even at the smallest lr {row['lr_lo']:.3g}: "
                "lower the lr grid"
            )
        elif row["status"] == "diverged" and at0.any():
            seeds = sorted(int(s) for s in g.loc[at0, "seed"].unique())
            who = f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
            row["note"] = (
                f"every lr has a diverged seed: {who} diverged at step 0, before any update; "
                f"{OVERFLOW_WHY}"
            )
        rows.append(row)
    cols = [
        *GROUP,
        "eta",
        "eta_lo",
        "eta_hi",
        "eta_grid",
        "loss",
        "loss_median",
        "loss_fit",
        "accuracy",
        "loss_name",
        "metric",
        "status",
        "edge",
        "note",
        "n_lr",
        "finite_lrs",
        "lr_lo",
        "lr_hi",
        "seeds",
        "lanes",
        "diverged",
        "diverged_at_step0",
    ]
    out = pd.DataFrame(rows).reindex(columns=cols)
    out["usable"] = out["status"].eq("ok")
    out["level"] = level  # of eta_lo, eta_hi
    return out


def problems(opt: pd.DataFrame) -> list[str]:
    """One line per sweep that cannot show a batch-size dependence at all."""
    out = []
    for label, g in opt.groupby("label", sort=True):
        if g["batch_size"].nunique() < 2:
            out.append(
                f"{label}: only one batch size (B={g['batch_size'].iloc[0]}); "
                "a scaling law needs several"
            )
        elif g["status"].eq("diverged").all():
            every = g["diverged"].sum() == g["lanes"].sum()
            at0 = g["diverged_at_step0"] if "diverged_at_step0" in g else pd.Series(0, g.index)
            if every and at0.eq(g["lanes"]).all():
                out.append(
                    f"{label}: every lane diverged at every batch size, at step 0 before any "
                    f"update: {OVERFLOW_WHY}"
                )
            elif every:
                out.append(f"{label}: every lane diverged at every batch size; lower the lr grid")
            elif at0.gt(0).all():
                out.append(
                    f"{label}: at every batch size every lr has a diverged seed, some at step 0 "
                    f"before any update: {OVERFLOW_WHY}"
                )
            else:
                out.append(
                    f"{label}: at every batch size every lr has a diverged seed; lower the lr grid"
                )
    return out


def _at_step0(g: pd.DataFrame) -> np.ndarray:
    """Which lanes of g diverged at step 0, before any update (False where not recorded)."""
    if "diverged_step" not in g.columns:
        return np.zeros(len(g), bool)
    step = g["diverged_step"].to_numpy(float, na_value=np.nan)
    return g["diverged"].to_numpy(bool) & (step == 0)

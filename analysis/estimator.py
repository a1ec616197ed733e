"""The estimator of eta* at one batch size: the seed-mean metric's grid argmin, refined by a
parabola through its neighbours, with a bootstrap interval over seeds."""

from __future__ import annotations

import warnings

import numpy as np

from analysis import metric, resample
from analysis.interval import METHOD, bounds

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
    if log:  # a loss of exactly 0 is the best there is: -inf, never refined through
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.log10(np.where(L >= 0, L, np.nan))
    else:
        y = np.asarray(L, float)
    y = np.where(np.isnan(y), np.inf, y)  # missing cells never win
    i = np.argmin(y, axis=-1)
    xv, yv = vertex(x, y, i)
    none = (y == np.inf).all(axis=-1)
    return i, np.where(none, np.nan, xv), np.where(none, np.nan, yv)


def boot_means(L: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means over seeds resampled with replacement: (n_boot, n_lr) from L (n_lr, n_seed).

    Seeds are resampled as units: lanes with one seed share data and init across lrs.
    """
    idx = resample.draws(rng, L.shape[1], n_boot)
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
        if m.log and (mean[ok] <= 0).any():  # a loss of 0: flat only where every lr has it
            y, ym, floor = L[ok], mean[ok], 0.0
        elif m.log:
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
    what = "loss" if m.name == "loss" else m.name
    span = lr[ok]
    if rise == 0 and m.name == "loss":
        return (
            f"the {what} is {mean[ok][0]:.3g} at every lr from {span[0]:.3g} to {span[-1]:.3g}: "
            "eta* is not identified"
        )
    if m.log:
        size = lambda v: f"{100 * (10**v - 1):.2g}%"  # noqa: E731
    else:
        size = lambda v: f"{v:.2g}"  # noqa: E731
    within = f"the seed spread ({size(spread)})" if spread > floor else size(floor)
    rest = f" (the other {(~ok).sum()} lrs have a diverged seed)" if (~ok).any() else ""
    return (
        f"the {what} does not depend on the lr across the grid: its seed mean varies by "
        f"{size(rise)} over lrs {span[0]:.3g} to {span[-1]:.3g}{rest}, within {within}; eta* "
        "is not identified"
    )

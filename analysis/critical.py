r"""Critical batch size from loss curves (McCandlish et al. 2018; Shallue et al. 2019).

For a target loss, S(B) is the number of steps batch size B needs to reach it at its best learning
rate (the one that gets there first), and E(B) = B S(B) the number of samples. The empirical model
of large-batch training says the two trade off along

    (S / S_min - 1) (E / E_min - 1) = 1,   i.e.   S(B) = S_min (1 + B_crit / B),
                                                  E(B) = E_min (1 + B / B_crit),

with B_crit = E_min / S_min: below B_crit doubling the batch nearly halves the steps (perfect
scaling), above it the steps approach S_min (maximal data parallelism) while the samples grow.
S(B) = S_min + E_min / B is fitted in log space (relative errors) by least squares; confidence
intervals come from the fit's covariance and, when there are several seeds, from a bootstrap over
seeds.

Steps to target are read from the curves by linear interpolation of log loss in log step between
the two recorded points that bracket the target (exact for a power-law segment).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.optimize import curve_fit

from analysis import resample

Z95 = 1.959964


class Tradeoff(NamedTuple):
    S_min: float
    E_min: float
    B_crit: float
    S_min_ci: tuple[float, float]
    E_min_ci: tuple[float, float]
    B_crit_ci: tuple[float, float]


class Critical(NamedTuple):
    target: float
    table: pd.DataFrame  # batch_size, lr, steps, samples (+ fitted steps_fit, samples_fit)
    fit: Tradeoff
    boot: pd.DataFrame | None  # S_min, E_min, B_crit per bootstrap resample of seeds


def crossing(step_K: np.ndarray, loss_K: np.ndarray, target: float) -> float:
    """First step at which the curve reaches target (log-log interpolation); nan if never."""
    below = np.flatnonzero(loss_K <= target)
    if below.size == 0:
        return np.nan
    k = below[0]
    if k == 0:
        return float(step_K[0])
    s0, s1, l0, l1 = step_K[k - 1], step_K[k], loss_K[k - 1], loss_K[k]
    if not np.isfinite(l0):
        return float(s1)
    f = (np.log(l0) - np.log(target)) / (np.log(l0) - np.log(l1))
    if s0 <= 0:  # no log at step 0
        return float(s0 + f * (s1 - s0))
    return float(np.exp(np.log(s0) + f * (np.log(s1) - np.log(s0))))


def crossings(step_P: np.ndarray, L_xP: np.ndarray, target: float) -> np.ndarray:
    """`crossing` of every curve in the last axis of L_xP at once; target is a number or an
    array that broadcasts against L_xP's leading axes (one target per curve)."""
    target = np.asarray(target, np.float64)
    hit = L_xP <= target[..., None]
    k = hit.argmax(-1)
    j = np.maximum(k - 1, 0)
    s0, s1 = step_P[j], step_P[k]
    l0 = np.take_along_axis(L_xP, j[..., None], -1)[..., 0]
    l1 = np.take_along_axis(L_xP, k[..., None], -1)[..., 0]
    with np.errstate(all="ignore"):
        f = (np.log(l0) - np.log(target)) / (np.log(l0) - np.log(l1))
        lin = s0 + f * (s1 - s0)
        log = np.exp(np.log(s0) + f * (np.log(s1) - np.log(s0)))
    out = np.where(s0 <= 0, lin, log)
    out = np.where(np.isfinite(l0), out, s1)
    out = np.where(k == 0, step_P[0], out)
    return np.where(hit.any(-1), out, np.nan)


BIG = 1e300  # a diverged (inf) point, finite so that a zero bootstrap weight removes it


def weighted_means(X_SxLxP: np.ndarray, W_RxS: np.ndarray) -> np.ndarray:
    """Seed means of the curves (R, L, P) for each row of seed weights W (a bootstrap resample
    counts each seed as often as it was drawn); a diverged (inf) point that any drawn seed has
    stays inf."""
    n = X_SxLxP.shape[0]
    M = np.einsum("rs,slp->rlp", W_RxS, np.where(np.isfinite(X_SxLxP), X_SxLxP, BIG)) / n
    return np.where(M >= BIG / (n + 1), np.inf, M)


def boot_steps(curves: pd.DataFrame, target: float, n_boot: int, rng) -> tuple:
    """(B_K, S_RxK): steps to target per batch size for n_boot resamples of the seeds.

    A resample weights each seed by how often it was drawn; a missing point counts as diverged.
    """
    seeds = np.unique(curves["seed"])
    n = seeds.size
    W_RxS = resample.weights(rng, n, n_boot)
    B_K, cols = [], []
    for B, g in curves.groupby("batch_size", sort=True):
        lrs = np.unique(g["lr"])
        u = g.set_index(["seed", "lr", "step"])["eval_loss"]
        u = u[~u.index.duplicated()].unstack("step")
        u = u.reindex(pd.MultiIndex.from_product([seeds, lrs], names=["seed", "lr"]))
        M_RxLxP = weighted_means(u.to_numpy(np.float64).reshape(n, lrs.size, -1), W_RxS)
        st_RxL = crossings(u.columns.to_numpy(np.float64), M_RxLxP, target)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample reaching nothing
            cols.append(np.nanmin(st_RxL, axis=1))
        B_K.append(B)
    return np.asarray(B_K), np.stack(cols, 1)


def _mean_curves(curves: pd.DataFrame) -> pd.DataFrame:
    # inf (diverged) stays inf in the mean, as it should
    return curves.groupby(["batch_size", "lr", "step"], as_index=False)["eval_loss"].mean()


def steps_to_target(curves: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per batch size: the lr that reaches target first (seed-mean curve), its steps and samples."""
    mean = _mean_curves(curves).sort_values(["batch_size", "lr", "step"])
    rows = [
        (B, lr, crossing(g["step"].to_numpy(float), g["eval_loss"].to_numpy(float), target))
        for (B, lr), g in mean.groupby(["batch_size", "lr"], sort=True)
    ]
    lanes = pd.DataFrame(rows, columns=["batch_size", "lr", "steps"]).dropna(subset=["steps"])
    best = lanes.loc[lanes.groupby("batch_size")["steps"].idxmin()].reset_index(drop=True)
    best["samples"] = best["batch_size"] * best["steps"]
    return best


def tradeoff_curve(S_min: float, E_min: float, B) -> tuple[np.ndarray, np.ndarray]:
    """(S(B), E(B)) on the fitted trade-off S = S_min (1 + B_crit/B), E = E_min (1 + B/B_crit)."""
    B = np.asarray(B, np.float64)
    S = S_min + E_min / B
    return S, B * S


def _logS(B, a, b):
    return np.log(np.exp(a) + np.exp(b) / B)


def fit_tradeoff(B, S) -> Tradeoff:
    """Fit S(B) = S_min + E_min / B in log space; 95% intervals from the fit covariance."""
    B, S = np.asarray(B, np.float64), np.asarray(S, np.float64)
    ok = np.isfinite(S) & (S > 0)
    B, S = B[ok], S[ok]
    if B.size < 3:
        raise ValueError(f"need at least 3 batch sizes that reach the target, got {B.size}")
    p0 = (np.log(S.min()), np.log((B * S).min()))
    (a, b), cov = curve_fit(_logS, B, np.log(S), p0=p0, maxfev=20000)
    cov = np.where(np.isfinite(cov), cov, np.inf)
    # log B_crit = b - a
    sd = np.sqrt(np.maximum([cov[0, 0], cov[1, 1], cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]], 0))

    def ci(x, s):
        return (float(np.exp(x - Z95 * s)), float(np.exp(x + Z95 * s)))

    return Tradeoff(
        float(np.exp(a)),
        float(np.exp(b)),
        float(np.exp(b - a)),
        ci(a, sd[0]),
        ci(b, sd[1]),
        ci(b - a, sd[2]),
    )


# The target loss that steps are counted to, by one of two named rules:
#   "reachable" (the critical batch size of a whole sweep): a tenth of the way, in log loss,
#       from the lowest loss every batch size reaches up to the initial loss;
#   "margin" (B_crit(D), across the data budget): (1 + margin) times the best loss at D
#       (analysis.across).
# Both then fit S(B) = S_min + E_min / B (fit_tradeoff) to the steps at each batch size's best lr.


def target_reachable(curves: pd.DataFrame) -> float:
    """The "reachable" rule's target of a sweep's curves."""
    floor = reachable_target(curves)
    init = _mean_curves(curves).sort_values("step").groupby("batch_size")["eval_loss"].first()
    return float(np.exp(np.log(floor) + 0.1 * (np.log(init.min()) - np.log(floor))))


def target_margin(best: np.ndarray, margin: float) -> np.ndarray:
    """The "margin" rule's target: (1 + margin) times the best loss (per resample, at one D)."""
    return best * (1 + margin)


def reachable_target(curves: pd.DataFrame, min_batches: int | None = None) -> float:
    """The lowest seed-mean loss that at least min_batches batch sizes (default all) reach."""
    best_B = _mean_curves(curves).groupby("batch_size")["eval_loss"].min().sort_values()
    best_B = best_B[np.isfinite(best_B)]  # a batch size whose every lane diverged reaches nothing
    k = len(best_B) if min_batches is None else min_batches
    return float(best_B.iloc[k - 1])


def critical_batch(
    curves: pd.DataFrame, target: float | None = None, n_boot: int = 200, seed: int = 0
) -> Critical:
    """Steps and samples to target per batch size, the S-E trade-off fit and its bootstrap."""
    if target is None:  # a little above what the slowest batch size reaches: every one counts
        target = target_reachable(curves)
    table = steps_to_target(curves, target)
    fit = fit_tradeoff(table["batch_size"], table["steps"])
    table["steps_fit"], table["samples_fit"] = tradeoff_curve(
        fit.S_min, fit.E_min, table["batch_size"]
    )
    seeds = np.unique(curves["seed"])
    boot = None
    if n_boot > 0 and seeds.size > 1:
        rows = []
        sweep_id = curves["sweep_id"].iloc[0] if "sweep_id" in curves else ""
        B_K, S_RxK = boot_steps(curves, target, n_boot, resample.rng(seed, sweep_id))
        for S_K in S_RxK:
            try:
                f = fit_tradeoff(B_K, S_K)
            except (ValueError, RuntimeError):
                continue
            rows.append((f.S_min, f.E_min, f.B_crit))
        boot = pd.DataFrame(rows, columns=["S_min", "E_min", "B_crit"])
    return Critical(target, table, fit, boot)


def boot_ci(boot: pd.DataFrame, level: float = 0.95) -> dict[str, tuple[float, float]]:
    """Percentile intervals of the bootstrap columns."""
    return {c: resample.percentile_interval(boot[c].to_numpy(), level) for c in boot.columns}


def sweep_critical(curves: pd.DataFrame, n_boot: int = 200, seed: int = 0) -> Critical | str:
    """critical_batch of one sweep's curves at the default target, or why it cannot be had."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            # a resample with a degenerate fit is dropped or its interval is unbounded anyway
            warnings.simplefilter("ignore")
            return critical_batch(curves, n_boot=n_boot, seed=seed)
    except (ValueError, RuntimeError, IndexError) as e:
        return " ".join(str(e).split()) or type(e).__name__


FIT = ("S_min", "E_min", "B_crit")


def tables(crit: dict, level: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The critical batch size of every sweep as tables: (per sweep: target, the fit's S_min,
    E_min, B_crit with their 95% intervals (`_lo`, `_hi`) and at `level` over resamples of seeds
    (`_boot_lo`, `_boot_hi`), or why there is none; per sweep and batch size: the best lr, the
    steps and samples to the target, measured and fitted). crit: {sweep_id: Critical or why}."""
    fits, steps = [], []
    for sid, c in crit.items():
        if isinstance(c, str):
            fits.append({"sweep_id": sid, "why": c})
            continue
        row = {"sweep_id": sid, "why": "", "target": c.target}
        boot = boot_ci(c.boot, level) if c.boot is not None and len(c.boot) else {}
        for name, ci in zip(FIT, (c.fit.S_min_ci, c.fit.E_min_ci, c.fit.B_crit_ci), strict=True):
            lo, hi = boot.get(name, (np.nan, np.nan))
            row |= {name: getattr(c.fit, name), f"{name}_lo": ci[0], f"{name}_hi": ci[1]}
            row |= {f"{name}_boot_lo": lo, f"{name}_boot_hi": hi}
        fits.append(row)
        steps.append(c.table.assign(sweep_id=sid, target=c.target))
    cols = ["sweep_id", "target", "batch_size", "lr", "steps", "samples", "steps_fit"]
    steps_df = pd.concat(steps, ignore_index=True) if steps else pd.DataFrame(columns=cols)
    return pd.DataFrame(fits), steps_df


def view(fit: pd.Series, steps: pd.DataFrame) -> Critical:
    """One sweep's Critical from its rows of the tables (no bootstrap replicates)."""
    f = Tradeoff(
        *(float(fit[n]) for n in FIT),
        *((float(fit[f"{n}_lo"]), float(fit[f"{n}_hi"])) for n in FIT),
    )
    return Critical(float(fit["target"]), steps.reset_index(drop=True), f, None)

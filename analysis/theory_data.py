"""The exact SGD theory across the data budget D, at the curve points of a sweep.

A lane's learning rate is constant, so its loss after the T steps of a curve point is exactly the
loss of a run whose budget is that point (the design notes). The theory of analysis.theory thus
gives, at every point of the grid a sweep's curves share: the expected loss of each (B, lr),
in the layout of the curves table, and eta*(B, D) with the expected loss there.

Coverage is that of `analysis.theory.sweep_theory`: the pinned regression task, the linear model,
SGD (plain, heavy-ball or Nesterov momentum), online data. The config of a sweep is stored in the
metadata of its tables (`stored_config`), so the analysis needs nothing but the tables.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis import theory

POINT_COLUMNS = ["batch_size", "step", "grid"]
COVERED = ("sgd", "momentum", "nesterov")


def stored_config(path):
    """The sweep config stored in the metadata of a results or curves file (ValueError if none)."""
    from omegaconf import OmegaConf

    from lrscale.config import to_config
    from lrscale.results import read_meta

    stored = read_meta(Path(path)).get("config")
    if not isinstance(stored, dict):
        raise ValueError(f"{path}: no sweep config in its metadata")
    return to_config(OmegaConf.create(stored))


def uncovered(cfg) -> str:
    """Why the exact theory does not cover this config ('' when it does)."""
    t, m, o = cfg.task, cfg.model, cfg.optimizer
    if t.name != "regression":
        return f"the exact theory covers the pinned regression task, not task={t.name}"
    if m.name != "linear":
        return f"the exact theory is for the linear model, not model={m.name}"
    if o.name not in COVERED:
        return f"the exact theory is for SGD (+ momentum), not optimizer={o.name}"
    if t.n_train is not None:
        return (
            f"the exact theory is for online data, not a fixed training set (n_train={t.n_train})"
        )
    return ""


def _inputs(cfg) -> tuple[np.ndarray, float, dict]:
    """(lam_D, noise_std, momentum kwargs) of a covered config; ValueError with the reason."""
    if why := uncovered(cfg):
        raise ValueError(why)
    from tasks.regression import spectrum  # the pinned task's one definition

    t, o = cfg.task, cfg.optimizer
    nesterov = o.name == "nesterov" or (o.name == "sgd" and bool(o.nesterov))
    mom = {"momentum": float(o.momentum or 0.0), "nesterov": nesterov}
    return spectrum(t.dim, t.spectrum_decay), float(t.noise_std), mom


def _points(cfg, points: pd.DataFrame) -> pd.DataFrame:
    """One row per (batch size, step), sorted; a missing grid value is the step's data budget."""
    if missing := [c for c in POINT_COLUMNS if c not in points.columns]:
        raise ValueError(f"the curve points lack column {', '.join(missing)}")
    p = points[POINT_COLUMNS].drop_duplicates(["batch_size", "step"])
    p = p.astype({"batch_size": np.int64, "step": np.int64, "grid": np.float64})
    if (p["step"] < 0).any() or (p["batch_size"] < 1).any():
        raise ValueError("curve points need steps >= 0 and batch sizes >= 1")
    # tables from before the shared grid have no grid values
    per_step = p["batch_size"] if cfg.sweep.budget.kind == "samples" else 1
    p["grid"] = p["grid"].fillna(p["step"] * per_step)
    return p.sort_values(["batch_size", "step"]).reset_index(drop=True)


def _finite_or_inf(L: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(L), np.inf, L)


def theory_curves(cfg, points: pd.DataFrame, lrs) -> pd.DataFrame:
    """Expected eval loss of every (batch size, lr) at the curve points, as a curves table.

    points: columns batch_size, step, grid (a measured curves table will do). Columns of the
    result: batch_size, lr, seed (0), step, grid, eval_loss (+inf where the mean-square dynamics
    diverges and the value overflows; never NaN).
    """
    lam_D, s, mom = _inputs(cfg)
    lrs_L = np.asarray(lrs, np.float64).ravel()
    if not np.all(np.isfinite(lrs_L) & (lrs_L > 0)):
        raise ValueError("learning rates must be positive and finite")
    p = _points(cfg, points).assign(seed=np.int64(0))
    out = p.merge(pd.DataFrame({"lr": lrs_L}), how="cross")
    out = out.sort_values(["batch_size", "lr", "step"], kind="stable", ignore_index=True)
    out = out[["batch_size", "lr", "seed", "step", "grid"]]
    # one eigendecomposition per distinct (lr, B) gives every step (analysis.theory)
    args = (out[c].to_numpy() for c in ("lr", "batch_size", "step"))
    L_K = theory.expected_loss(*args, lam_D, s, **mom) if len(out) else np.empty(0)
    out["eval_loss"] = _finite_or_inf(L_K)
    return out


def optimal_across_data(cfg, points: pd.DataFrame) -> pd.DataFrame:
    """eta*(B, D) and the expected loss there, per batch size and grid point > 0.

    eta* minimises the expected loss after the point's steps (analysis.theory.optimal_lr with
    steps=T), so at the final point it is the eta*(B) of the sweep's budget. Columns:
    batch_size, grid, step, lr_opt, loss_opt.
    """
    lam_D, s, mom = _inputs(cfg)
    p = _points(cfg, points)
    p = p[(p["grid"] > 0) & (p["step"] > 0)].reset_index(drop=True)
    B_K, T_K = p["batch_size"].to_numpy(), p["step"].to_numpy()
    eta_K = np.array(
        [
            float(theory.optimal_lr(b, lam_D, s, steps=int(T), **mom))
            for b, T in zip(B_K, T_K, strict=True)
        ]
    )
    loss_K = theory.expected_loss(eta_K, B_K, T_K, lam_D, s, **mom) if len(p) else np.empty(0)
    return pd.DataFrame(
        {
            "batch_size": B_K,
            "grid": p["grid"].to_numpy(),
            "step": T_K,
            "lr_opt": eta_K,
            "loss_opt": _finite_or_inf(np.asarray(loss_K, np.float64)),
        }
    )

"""The exact SGD theory of one sweep, read from its settings columns: whether it applies (one
rule), eta*(B) and the divergence edge per batch size, and the expected-loss curves and
eta*(B, D) at the sweep's own curve points.

The theory (analysis.theory) covers the pinned regression task with the linear model trained by
SGD, heavy-ball or Nesterov momentum on online data (a linear model on a classification task is
softmax regression: no theory). A lane's learning rate is constant, so its loss after the T steps
of a curve point is exactly the loss of a run whose budget is that point (the design notes).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from analysis import theory

POINT_COLUMNS = ["batch_size", "step", "grid"]
COVERED = ("sgd", "momentum", "nesterov")
# one eigendecomposition per (lr, B) of a dim x dim map (3 dim x 3 dim with momentum): tens of
# seconds per sweep at these sizes
MAX_DIM, MAX_DIM_MOMENTUM = 512, 128
FACTOR = 1.5  # measured and predicted eta* "agree" within this factor
TABLE_COLUMNS = ["sweep_id", "label", "why", "batch_size", "steps", "eta", "eta_lo", "eta_hi"]
TABLE_COLUMNS += ["status", "usable", "lr_opt", "lr_edge", "loss_opt", "ratio", "agrees"]


def uncovered(res: pd.DataFrame) -> str:
    """Why the exact theory does not cover this sweep ('' when it does)."""
    r = res.iloc[0]
    if r["task"] != "regression":  # before the settings: other tasks have none of them
        return f"the exact theory covers the pinned regression task, not {r['task']}"
    need = ["task_dim", "task_spectrum_decay", "task_noise_std", "task_n_train"]
    need += ["optimizer_momentum", "budget_kind", "budget"]
    if missing := [c for c in need if c not in res.columns]:
        return f"the results lack {', '.join(missing)}"
    if r["model"] != "linear":
        return f"the theory is for the linear model, not {r['model']}"
    if r["optimizer"] not in COVERED:
        return f"the theory is for SGD (+ momentum), not {r['optimizer']}"
    if not pd.isna(r["task_n_train"]):
        return "the theory is for online data, not a fixed training set"
    mom = r["optimizer"] != "sgd" or float(r["optimizer_momentum"] or 0.0) > 0
    top = MAX_DIM_MOMENTUM if mom else MAX_DIM
    if int(r["task_dim"]) > top:
        return f"the exact theory is skipped above dim {top} (its cost grows as dim^3 per lr)"
    return ""


def inputs(res: pd.DataFrame) -> tuple:
    """The theory's inputs from a sweep's settings columns (hashable; the cache key)."""
    r = res.iloc[0]
    nest = r["optimizer"] == "nesterov" or (
        r["optimizer"] == "sgd" and bool(r.get("optimizer_nesterov", False))
    )
    return (
        int(r["task_dim"]),
        float(r["task_spectrum_decay"]),
        float(r["task_noise_std"]),
        str(r["budget_kind"]),
        int(r["budget"]),
        float(r["optimizer_momentum"] or 0.0),
        bool(nest),
        tuple(int(b) for b in sorted(res["batch_size"].unique())),
    )


@functools.cache  # per process: the figures of a sweep and its report share it
def compute(key: tuple) -> pd.DataFrame:
    """Per batch size: steps, lr_opt, lr_edge, loss_opt (analysis.theory.batch_theory)."""
    dim, decay, s, kind, budget, mom, nest, B = key
    per = {"samples": budget} if kind == "samples" else {"steps": budget}
    from tasks.regression import spectrum  # the pinned task's one definition

    lam_D = spectrum(dim, decay)
    return theory.batch_theory(np.array(B), lam_D, s, momentum=mom, nesterov=nest, **per)


def predicted(res: pd.DataFrame) -> pd.DataFrame | None:
    """The theory of one sweep's results per batch size (steps, lr_opt, lr_edge, loss_opt), or
    None where the theory does not cover it."""
    return None if uncovered(res) else compute(inputs(res))


def versus(opt: pd.DataFrame, th: pd.DataFrame) -> pd.DataFrame:
    """Measured eta* (with interval) beside the theory's, per batch size, with their ratio."""
    o = opt[["batch_size", "eta", "eta_lo", "eta_hi", "status", "usable"]]
    t = th[["batch_size", "steps", "lr_opt", "lr_edge", "loss_opt"]]
    out = o.merge(t, on="batch_size", how="left").sort_values("batch_size")
    out["ratio"] = out["eta"] / out["lr_opt"]
    return out.reset_index(drop=True)


def agrees(v: pd.DataFrame, factor: float = FACTOR) -> pd.Series:
    """Whether each usable batch size's measured eta* is within `factor` of the theory's."""
    return np.abs(np.log(v["ratio"])) <= np.log(factor)


def verdict(v: pd.DataFrame, factor: float = FACTOR) -> str:
    """One line: theory and measurement agree within `factor` at every usable B, or where not."""
    u = v[v["usable"]]
    if not len(u):
        return "No usable batch size to compare with the theory."
    ok = agrees(u, factor)
    r = u["ratio"]
    span = f"measured/theory from {r.min():.2f} to {r.max():.2f}"
    if ok.all():
        return (
            f"**Theory and measurement agree within a factor {factor:g} at every usable batch "
            f"size** ({len(u)} of {len(v)}; {span})."
        )
    bad = ", ".join(f"{b} ({x:.2f}x)" for b, x in zip(u["batch_size"][~ok], r[~ok], strict=True))
    return (
        f"**Theory and measurement differ by more than a factor {factor:g} at B = {bad}**; "
        f"{int(ok.sum())} of {len(u)} usable batch sizes agree ({span})."
    )


def table(res: pd.DataFrame, opt: pd.DataFrame) -> pd.DataFrame:
    """Per sweep the theory covers and batch size: the theory's steps, lr_opt, lr_edge and
    loss_opt beside the measured eta* (interval, usable), their ratio and whether they agree
    within FACTOR. One row per sweep it does not cover, saying why (`why`)."""
    parts = []
    for sid, r in res.groupby("sweep_id", sort=True):
        o = opt[opt["sweep_id"] == sid]
        th = predicted(r)
        if th is None:
            parts.append(pd.DataFrame({"sweep_id": [sid], "why": [uncovered(r)]}))
            continue
        v = versus(o, th).assign(sweep_id=sid, why="")
        parts.append(v.assign(agrees=agrees(v)))
    out = pd.concat(parts, ignore_index=True)
    labels = opt.drop_duplicates("sweep_id").set_index("sweep_id")["label"]
    out = out.assign(label=out["sweep_id"].map(labels)).reindex(columns=TABLE_COLUMNS)
    kinds = {"batch_size": "Int64", "steps": "Int64", "usable": "boolean", "agrees": "boolean"}
    return out.astype(kinds)


def _spectrum_and_momentum(res: pd.DataFrame) -> tuple[np.ndarray, float, dict]:
    """(lam_D, noise_std, momentum kwargs) of a covered sweep; ValueError with the reason."""
    if why := uncovered(res):
        raise ValueError(why)
    from tasks.regression import spectrum  # the pinned task's one definition

    dim, decay, s, _, _, mom, nest, _ = inputs(res)
    return spectrum(dim, decay), s, {"momentum": mom, "nesterov": nest}


def _points(res: pd.DataFrame, points: pd.DataFrame) -> pd.DataFrame:
    """One row per (batch size, step), sorted; a missing grid value is the step's data budget."""
    if missing := [c for c in POINT_COLUMNS if c not in points.columns]:
        raise ValueError(f"the curve points lack column {', '.join(missing)}")
    p = points[POINT_COLUMNS].drop_duplicates(["batch_size", "step"])
    p = p.astype({"batch_size": np.int64, "step": np.int64, "grid": np.float64})
    if (p["step"] < 0).any() or (p["batch_size"] < 1).any():
        raise ValueError("curve points need steps >= 0 and batch sizes >= 1")
    # tables from before the shared grid have no grid values
    per_step = p["batch_size"] if res["budget_kind"].iloc[0] == "samples" else 1
    p["grid"] = p["grid"].fillna(p["step"] * per_step)
    return p.sort_values(["batch_size", "step"]).reset_index(drop=True)


def _finite_or_inf(L: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(L), np.inf, L)


def theory_curves(res: pd.DataFrame, points: pd.DataFrame, lrs) -> pd.DataFrame:
    """Expected eval loss of every (batch size, lr) at the curve points, as a curves table.

    res: the sweep's results (its settings columns); points: columns batch_size, step, grid (a
    measured curves table will do). Columns of the
    result: batch_size, lr, seed (0), step, grid, eval_loss (+inf where the mean-square dynamics
    diverges and the value overflows; never NaN).
    """
    lam_D, s, mom = _spectrum_and_momentum(res)
    lrs_L = np.asarray(lrs, np.float64).ravel()
    if not np.all(np.isfinite(lrs_L) & (lrs_L > 0)):
        raise ValueError("learning rates must be positive and finite")
    p = _points(res, points).assign(seed=np.int64(0))
    out = p.merge(pd.DataFrame({"lr": lrs_L}), how="cross")
    out = out.sort_values(["batch_size", "lr", "step"], kind="stable", ignore_index=True)
    out = out[["batch_size", "lr", "seed", "step", "grid"]]
    # one eigendecomposition per distinct (lr, B) gives every step (analysis.theory)
    args = (out[c].to_numpy() for c in ("lr", "batch_size", "step"))
    L_K = theory.expected_loss(*args, lam_D, s, **mom) if len(out) else np.empty(0)
    out["eval_loss"] = _finite_or_inf(L_K)
    return out


def optimal_across_data(res: pd.DataFrame, points: pd.DataFrame) -> pd.DataFrame:
    """eta*(B, D) and the expected loss there, per batch size and grid point > 0.

    eta* minimises the expected loss after the point's steps (analysis.theory.optimal_lr with
    steps=T), so at the final point it is the eta*(B) of the sweep's budget. Columns:
    batch_size, grid, step, lr_opt, loss_opt.
    """
    lam_D, s, mom = _spectrum_and_momentum(res)
    p = _points(res, points)
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

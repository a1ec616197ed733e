"""Exact theory beside measurement for the sweeps it covers: tables, verdicts, figure overlays.

The exact SGD theory (analysis.theory) covers the pinned regression task with the linear model
trained by SGD, heavy-ball or Nesterov momentum on online data (a linear model on a
classification task is softmax regression: no theory). Its inputs are read from a sweep's
settings columns, so any results table carries what it needs; the result is cached in memory
and beside the results (`<run dir>/_analysis/theory.json`, keyed by those inputs), since eta*(B)
costs seconds. Importing this module registers the overlays: the theory line and the divergence
edge on the eta*-vs-B figure, a tick at the divergence edge of each batch size on the
loss-vs-lr figure.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import figures_base, output, theory
from analysis.output import OutputError

COVERED = ("sgd", "momentum", "nesterov")
FACTOR = 1.5  # measured and predicted eta* "agree" within this factor
THEORY = "tab:red"
# one eigendecomposition per (lr, B) of a dim x dim map (3 dim x 3 dim with momentum): tens of
# seconds per sweep at these sizes
MAX_DIM, MAX_DIM_MOMENTUM = 512, 128
_MEMO: dict[tuple, pd.DataFrame] = {}
# the columns of analysis.theory.batch_theory, as the cache stores them
CACHED = {
    "batch_size": "int64",
    "steps": "int64",
    "lr_opt": "float64",
    "lr_edge": "float64",
    "loss_opt": "float64",
}


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


def compute(key: tuple) -> pd.DataFrame:
    """Per batch size: steps, lr_opt, lr_edge, loss_opt (analysis.theory.batch_theory)."""
    dim, decay, s, kind, budget, mom, nest, B = key
    per = {"samples": budget} if kind == "samples" else {"steps": budget}
    from tasks.regression import spectrum  # the pinned task's one definition

    lam_D = spectrum(dim, decay)
    return theory.batch_theory(np.array(B), lam_D, s, momentum=mom, nesterov=nest, **per)


def _disk(res: pd.DataFrame) -> Path | None:
    src = res["source"].iloc[0] if "source" in res.columns else None
    return Path(src) / "_analysis" / "theory.json" if isinstance(src, str) else None


def predicted(res: pd.DataFrame) -> pd.DataFrame | None:
    """The theory table of one sweep's results, or None where the theory does not cover it."""
    if uncovered(res):
        return None
    key = inputs(res)
    if key in _MEMO:
        return _MEMO[key]
    path = _disk(res)
    table = _cached(path, key) if path else None
    if table is None:
        table = compute(key)
        if path:
            try:  # a read-only results dir just means recomputing next time
                output.make_dir(path.parent, "the theory cache")
                text = json.dumps({"key": list(key), "table": table.to_dict("list")})
                output.write_text(path, text, "the theory cache")
            except OutputError:
                pass
    _MEMO[key] = table
    return table


def _cached(path: Path, key: tuple) -> pd.DataFrame | None:
    """The theory table saved at path for these inputs; None where the file is absent, is not
    JSON, holds other inputs or is not a table of every batch size (then it is recomputed)."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("key") != [*key[:-1], list(key[-1])]:
        return None
    table = saved.get("table")
    if not isinstance(table, dict) or set(table) != set(CACHED):
        return None
    try:
        table = pd.DataFrame(table)[list(CACHED)].astype(CACHED)
    except (TypeError, ValueError):
        return None
    return table if table["batch_size"].tolist() == list(key[-1]) else None


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


def _theory(ctx: dict) -> pd.DataFrame | None:
    res = ctx.get("res")
    return None if res is None or not len(res) else predicted(res)


def eta_overlay(ax, ctx: dict) -> None:
    """Theory eta*(B) and the divergence edge on the eta*-vs-B figure."""
    th = _theory(ctx)
    if th is None:
        return
    th = th[np.isfinite(th["lr_opt"])]
    ax.plot(
        th["batch_size"],
        th["lr_opt"],
        color=THEORY,
        lw=1.8,
        marker="_",
        ms=10,
        zorder=3.5,
        label="exact SGD theory η*(B), same budget",
    )
    ax.plot(
        th["batch_size"],
        th["lr_edge"],
        color=THEORY,
        lw=1.2,
        ls=(0, (4, 2)),
        alpha=0.8,
        zorder=3.4,
        label="divergence edge η_max(B) (exact theory)",
    )


def edge_overlay(ax, ctx: dict) -> None:
    """A tick at each batch size's divergence edge, in its colour, along the lr axis."""
    th = _theory(ctx)
    if th is None:
        return
    col = figures_base.colors(th["batch_size"])
    tr = ax.get_xaxis_transform()
    for b, e in zip(th["batch_size"], th["lr_edge"], strict=True):
        ax.plot([e, e], [0.0, 0.07], color=col[int(b)], lw=2.2, transform=tr, zorder=6)
    ax.plot([], [], color="0.3", lw=2.2, label="divergence edge η_max(B),\nexact theory (tick)")


figures_base.register_overlay("eta_vs_batch", eta_overlay)
figures_base.register_overlay("loss_vs_lr", edge_overlay)

"""The rows of the results and curves tables from a program's outputs; the closing summary."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lrscale import results
from lrscale.config import Config
from sweeps import engine
from sweeps.identity import Identity


def lane_rows(
    cfg: Config,
    ident: Identity,
    task,
    batch_size: int,
    lrs: np.ndarray,
    seeds: np.ndarray,
    out: engine.Lanes,
) -> pd.DataFrame:
    """One row per (seed, lr) lane of one batch size (the sweep's settings in every row);
    diverged lanes carry +inf losses."""
    S, L = len(seeds), len(lrs)
    steps = cfg.sweep.budget.steps_for(batch_size)
    div = np.asarray(out.diverged).reshape(-1)
    df = pd.DataFrame(
        {
            "sweep_id": ident.sweep_id,
            **ident.settings,
            **task.columns,
            "batch_size": batch_size,
            "lr": np.tile(lrs, S),
            "lr_index": np.tile(np.arange(L), S),
            "seed": np.repeat(seeds, L),
            "steps": steps,
            "samples": steps * batch_size,
            "final_train_loss": np.asarray(out.final_train_loss, np.float64).reshape(-1),
            "final_eval_loss": np.asarray(out.final_eval_loss, np.float64).reshape(-1),
            "final_eval_accuracy": _accuracy(task, out.final_eval_accuracy),
            "diverged": div,
            "diverged_step": pd.array(
                np.where(div, np.asarray(out.diverged_step).reshape(-1), 0), dtype="Int64"
            ),
        }
    )
    if "tokens_per_example" in task.columns:  # a language task: tokens per step and seen
        df["tokens_per_step"] = batch_size * task.columns["tokens_per_example"]
        df["tokens"] = df["samples"] * task.columns["tokens_per_example"]
    df.loc[~df["diverged"], "diverged_step"] = pd.NA
    # A finite-but-huge lane that never tripped the divergence rule can still overflow to inf;
    # NaN must never reach a table.
    for c in ("final_train_loss", "final_eval_loss"):
        df[c] = df[c].fillna(np.inf)
    nullable = [c for c in ("task_n_train", "train_size", "eval_size") if c in df]
    return df.astype({**dict.fromkeys(nullable, "Int64"), "sweep_id": "string"})


def _accuracy(task, acc) -> pd.array:
    """Accuracy as a nullable column: null where the task has none (regression), never NaN."""
    a = np.asarray(acc, np.float64).reshape(-1)
    if task.kind != "classification":
        return pd.array([pd.NA] * len(a), dtype="Float64")
    return pd.array(np.nan_to_num(a, nan=0.0), dtype="Float64")


def curve_rows(rows: pd.DataFrame, task, points, out: engine.Lanes) -> pd.DataFrame:
    """Long table of the loss curves: one row per lane and curve point.

    points: (steps, grid values) of `engine.curve_points`.
    """
    steps, grid = points
    P = len(steps)
    keys = rows[[c for c in results.CURVE_COLUMNS if c in rows]]
    df = keys.loc[keys.index.repeat(P)].reset_index(drop=True)
    df["step"] = np.tile(steps, len(rows))
    df["grid"] = np.tile(np.asarray(grid, np.float64), len(rows))
    df["train_loss"] = np.asarray(out.curve_train, np.float64).reshape(-1)
    df["eval_loss"] = np.asarray(out.curve_eval, np.float64).reshape(-1)
    df["eval_accuracy"] = _accuracy(task, out.curve_accuracy)
    return df.fillna({"train_loss": np.inf, "eval_loss": np.inf})


TIMING = ["batch_size", "compile_s", "run_s"]


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per batch size: best lr on the grid (mean eval loss over seeds; NaN where every lr has a
    diverged seed), its loss, diverged lanes."""
    mean = df.groupby(["batch_size", "lr"])["final_eval_loss"].mean().reset_index()
    best = mean.loc[mean.groupby("batch_size")["final_eval_loss"].idxmin()].set_index("batch_size")
    best.loc[np.isinf(best["final_eval_loss"]), "lr"] = np.nan  # every lr diverged: no best
    # a batch size resumed with more seeds has one timing per part
    t = (
        pd.DataFrame(df.attrs["timings"], columns=TIMING)
        .groupby("batch_size")[["compile_s", "run_s"]]
        .sum()
    )
    return pd.DataFrame(
        {
            "best_lr": best["lr"],
            "best_loss": best["final_eval_loss"],
            "diverged": df.groupby("batch_size")["diverged"].sum().astype(str)
            + "/"
            + df.groupby("batch_size").size().astype(str),
            "steps": df.groupby("batch_size")["steps"].first(),
            "compile_s": t["compile_s"],
            "run_s": t["run_s"],
        }
    )

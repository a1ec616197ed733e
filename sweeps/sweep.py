"""Run a whole sweep: batch sizes in a Python loop, one compiled program each; rows to parquet."""

from __future__ import annotations

import importlib.metadata
import subprocess
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd
from omegaconf import OmegaConf
from tqdm.auto import tqdm

from sweeps import engine, results
from sweeps.config import Config, settings, sweep_id, validate

PACKAGES = ("jax", "jaxlib", "optax", "flax", "hydra-core", "numpy", "pandas", "pyarrow")


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def _versions() -> dict:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = None
    return out


def run_metadata(cfg: Config) -> dict:
    devices = jax.devices()
    return {
        "sweep_id": sweep_id(cfg),
        "config": OmegaConf.to_container(OmegaConf.structured(cfg)),
        "versions": _versions(),
        "device_kind": devices[0].device_kind,
        "platform": devices[0].platform,
        "device_count": len(devices),
        "git_commit": _git_commit(),
        "timings": [],
    }


def lane_rows(cfg: Config, batch_size: int, lrs: np.ndarray, out: engine.Lanes) -> pd.DataFrame:
    """One row per (seed, lr) lane of one batch size; diverged lanes carry +inf losses."""
    seeds = np.arange(cfg.sweep.seeds)
    S, L = len(seeds), len(lrs)
    steps = cfg.sweep.budget.steps_for(batch_size)
    div = np.asarray(out.diverged).reshape(-1)
    df = pd.DataFrame(
        {
            "sweep_id": sweep_id(cfg),
            **settings(cfg),
            "batch_size": batch_size,
            "lr": np.tile(lrs, S),
            "lr_index": np.tile(np.arange(L), S),
            "seed": np.repeat(seeds, L),
            "steps": steps,
            "samples": steps * batch_size,
            "final_train_loss": np.asarray(out.final_train_loss, np.float64).reshape(-1),
            "final_eval_loss": np.asarray(out.final_eval_loss, np.float64).reshape(-1),
            "diverged": div,
            "diverged_step": pd.array(
                np.where(div, np.asarray(out.diverged_step).reshape(-1), 0), dtype="Int64"
            ),
        }
    )
    df.loc[~df["diverged"], "diverged_step"] = pd.NA
    # A finite-but-huge lane that never tripped the divergence rule can still overflow to inf;
    # NaN must never reach a table.
    for c in ("final_train_loss", "final_eval_loss"):
        df[c] = df[c].fillna(np.inf)
    return df.astype({"task_n_train": "Int64", "sweep_id": "string"})


def curve_rows(rows: pd.DataFrame, points: np.ndarray, out: engine.Lanes) -> pd.DataFrame:
    """Long table of the loss curves: one row per lane and curve point."""
    P = len(points)
    keys = rows[list(results.CURVE_COLUMNS)[:8]]
    df = keys.loc[keys.index.repeat(P)].reset_index(drop=True)
    df["step"] = np.tile(points, len(rows))
    df["train_loss"] = np.asarray(out.curve_train, np.float64).reshape(-1)
    df["eval_loss"] = np.asarray(out.curve_eval, np.float64).reshape(-1)
    return df.fillna({"train_loss": np.inf, "eval_loss": np.inf})


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per batch size: best lr on the grid (mean eval loss over seeds), its loss, diverged lanes."""
    mean = df.groupby(["batch_size", "lr"])["final_eval_loss"].mean().reset_index()
    best = mean.loc[mean.groupby("batch_size")["final_eval_loss"].idxmin()].set_index("batch_size")
    t = pd.DataFrame(df.attrs["timings"]).set_index("batch_size")
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


def run_sweep(cfg: Config, out_dir: str | Path) -> pd.DataFrame:
    """Train every batch size x lr x seed of cfg; write the tables into out_dir; return results.

    The compile and run seconds of each batch size are in the returned frame's attrs["timings"].
    """
    validate(cfg)
    if cfg.sweep.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lrs = engine.lr_grid(cfg)
    seeds = np.arange(cfg.sweep.seeds, dtype=np.uint32)
    meta = run_metadata(cfg)
    batch_sizes = list(cfg.sweep.batch_sizes)
    total = sum(cfg.sweep.budget.steps_for(b) for b in batch_sizes)
    bar = tqdm(total=total, unit="step", disable=not cfg.progress, dynamic_ncols=True)
    tables, curves = [], []
    for b in batch_sizes:
        steps = cfg.sweep.budget.steps_for(b)
        points = engine.curve_steps(steps, cfg.sweep.curve_points)
        bar.set_postfix_str(f"B={b} lanes={len(lrs) * len(seeds)} steps={steps}")
        t0 = time.perf_counter()
        compiled = engine.program(cfg, b, points).lower(lrs, seeds).compile()
        t1 = time.perf_counter()
        out = jax.block_until_ready(compiled(lrs, seeds))
        t2 = time.perf_counter()
        rows = lane_rows(cfg, b, lrs, out)
        tables.append(rows)
        curves.append(curve_rows(rows, points, out))
        meta["timings"].append({"batch_size": b, "compile_s": t1 - t0, "run_s": t2 - t1})
        # Rewritten after every batch size so an interrupted sweep keeps what it finished.
        results.write_table(pd.concat(tables, ignore_index=True), out_dir / results.RESULTS, meta)
        results.write_table(pd.concat(curves, ignore_index=True), out_dir / results.CURVES, meta)
        bar.update(steps)
    bar.close()
    df = pd.concat(tables, ignore_index=True)
    df.attrs["timings"] = meta["timings"]
    return df

"""Synthetic sweep results in the engine's exact schema, with a known eta*(B)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sweeps.config import Config, ModelConfig, OptimizerConfig, settings, sweep_id
from sweeps.results import CURVES, RESULTS, write_table


def config(model="linear", optimizer="sgd", samples=4096, lrs=(1e-4, 10.0, 31)) -> Config:
    cfg = Config(model=ModelConfig(name=model), optimizer=OptimizerConfig(name=optimizer))
    cfg.sweep.budget.samples = samples
    cfg.sweep.lr.min, cfg.sweep.lr.max, cfg.sweep.lr.num = lrs
    return cfg


def results(
    eta,
    model="linear",
    optimizer="sgd",
    batch_sizes=(1, 4, 16, 64, 256),
    lrs=(1e-4, 10.0, 31),
    seeds=3,
    noise=0.02,
    curv=1.0,
    wall=3.0,
    seed=0,
    samples=4096,
) -> pd.DataFrame:
    """log10 loss = log10 L0 + curv * (log10 lr/eta(B))^2 + noise; diverged past wall * eta."""
    rng = np.random.default_rng(seed)
    cfg = config(model, optimizer, samples, lrs)
    lr = np.geomspace(*lrs[:2], lrs[2])
    rows = []
    for B in batch_sizes:
        e = eta(B) if callable(eta) else eta[B]
        for s in range(seeds):
            y = np.log10(0.3 + 0.2 / B) + curv * (np.log10(lr) - np.log10(e)) ** 2
            y = y + noise * rng.standard_normal(len(lr))
            div = lr > wall * e
            loss = np.where(div, np.inf, 10**y)
            for k in range(len(lr)):
                rows.append(
                    dict(
                        batch_size=B,
                        lr=lr[k],
                        lr_index=k,
                        seed=s,
                        steps=max(samples // B, 1),
                        samples=samples,
                        final_train_loss=loss[k],
                        final_eval_loss=loss[k],
                        diverged=bool(div[k]),
                        diverged_step=5 if div[k] else None,
                    )
                )
    df = pd.DataFrame(rows)
    df["diverged_step"] = df["diverged_step"].astype("Int64")
    head = pd.DataFrame([{"sweep_id": sweep_id(cfg), **settings(cfg)}] * len(df))
    head["task_n_train"] = head["task_n_train"].astype("Int64")
    return pd.concat([head, df], axis=1)


def curves(df: pd.DataFrame) -> pd.DataFrame:
    """Three points per lane, ending at the final eval loss."""
    keys = ["sweep_id", "model", "optimizer", "task", "budget_kind", "batch_size", "lr", "seed"]
    c = df[keys + ["steps", "final_eval_loss"]].loc[df.index.repeat(3)].copy()
    c["step"] = np.tile([0, 1, 2], len(df)) * c["steps"] // 2
    c["eval_loss"] = c["final_eval_loss"] * (1 + (2 - np.tile([0, 1, 2], len(df))))
    c["train_loss"] = c["eval_loss"]
    return c[keys + ["step", "train_loss", "eval_loss"]].reset_index(drop=True)


def write(d: Path, df: pd.DataFrame) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    meta = {"sweep_id": df["sweep_id"].iloc[0]}
    write_table(df, d / RESULTS, meta)
    write_table(curves(df), d / CURVES, meta)
    return d

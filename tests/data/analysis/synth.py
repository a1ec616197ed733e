"""Synthetic sweep results in the engine's exact schema, with a known eta*(B).

Regression tables are written as before classification arrived (no loss, task_kind or accuracy
column) unless asked for the new columns; classification tables always have them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lrscale.config import TASK_SCHEMAS, Config, ModelConfig, OptimizerConfig, settings
from lrscale.results import CURVES, RESULTS, write_table
from sweeps.identity import digest


def config(
    model="linear", optimizer="sgd", samples=4096, lrs=(1e-4, 10.0, 31), task="regression"
) -> Config:
    cfg = Config(
        model=ModelConfig(name=model),
        optimizer=OptimizerConfig(name=optimizer),
        task=TASK_SCHEMAS[task](),
    )
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
    task="regression",
    acc_eta=None,
    new_columns=False,
) -> pd.DataFrame:
    """log10 loss = log10 L0 + curv * (log10 lr/eta(B))^2 + noise; diverged past wall * eta.

    A task other than regression is classification (cross-entropy) with accuracy
    0.95 - 0.25 (log10 lr/acc_eta(B))^2 (+ noise, within [0.05, 1]; 0 where diverged), its
    optimum at acc_eta (default: eta). new_columns: give a regression table the new columns too.
    """
    rng = np.random.default_rng(seed)
    cfg = config(model, optimizer, samples, lrs, task)
    classify = task != "regression"
    acc_eta = acc_eta or eta
    lr = np.geomspace(*lrs[:2], lrs[2])
    rows = []
    for B in batch_sizes:
        e = eta(B) if callable(eta) else eta[B]
        for s in range(seeds):
            y = np.log10(0.3 + 0.2 / B) + curv * (np.log10(lr) - np.log10(e)) ** 2
            y = y + noise * rng.standard_normal(len(lr))
            div = lr > wall * e
            loss = np.where(div, np.inf, 10**y)
            acc = np.full(len(lr), None)
            if classify:  # drawn after the loss noise: regression tables stay as they were
                a = acc_eta(B) if callable(acc_eta) else acc_eta[B]
                acc = 0.95 - 0.25 * (np.log10(lr) - np.log10(a)) ** 2
                acc = acc + noise * rng.standard_normal(len(lr))
                acc = np.where(div, 0.0, np.clip(acc, 0.05, 1))
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
                        final_eval_accuracy=acc[k],
                    )
                )
    df = pd.DataFrame(rows)
    df["diverged_step"] = df["diverged_step"].astype("Int64")
    df["final_eval_accuracy"] = df["final_eval_accuracy"].astype("Float64")
    if classify or new_columns:
        df.insert(0, "loss", "cross_entropy" if classify else "mse")
        df.insert(1, "task_kind", "classification" if classify else "regression")
    else:
        df = df.drop(columns="final_eval_accuracy")
    head = pd.DataFrame([{"sweep_id": digest(settings(cfg)), **settings(cfg)}] * len(df))
    if not classify:
        head["task_n_train"] = head["task_n_train"].astype("Int64")
    return pd.concat([head, df], axis=1)


def curves(df: pd.DataFrame) -> pd.DataFrame:
    """Three points per lane, ending at the final eval loss (and accuracy, where there is one)."""
    keys = ["sweep_id", "model", "optimizer", "task", "budget_kind", "batch_size", "lr", "seed"]
    acc = ["final_eval_accuracy"] if "final_eval_accuracy" in df.columns else []
    c = df[keys + ["steps", "final_eval_loss", *acc]].loc[df.index.repeat(3)].copy()
    k = np.tile([0, 1, 2], len(df))
    c["step"] = k * c["steps"] // 2
    c["eval_loss"] = c["final_eval_loss"] * (1 + (2 - k))
    c["train_loss"] = c["eval_loss"]
    if acc:
        c["eval_accuracy"] = c["final_eval_accuracy"] * (0.5 + 0.25 * k)
    out = keys + ["step", "train_loss", "eval_loss"] + (["eval_accuracy"] if acc else [])
    return c[out].reset_index(drop=True)


def write(d: Path, df: pd.DataFrame) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    meta = {"sweep_id": df["sweep_id"].iloc[0]}
    write_table(df, d / RESULTS, meta)
    write_table(curves(df), d / CURVES, meta)
    return d

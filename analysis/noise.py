"""The gradient noise scale of every sweep, each way lrscale has it, as one table: the B_noise
of the fitted eta* law (the saturating law's parameter, with its interval), the measurement at
initialisation and after one lane (sweeps.noise_scale's table beside the results, pooled over
seeds) and, for the linear model on the regression task, the closed form at initialisation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lrscale.results import NOISE_SCALE

COLUMNS = ["sweep_id", "source", "B_noise", "B_noise_lo", "B_noise_hi", "B_simple"]
COLUMNS += ["batch_size", "lr", "steps"]


def _measured(res: pd.DataFrame) -> list[dict]:
    """The pooled rows of the measurement beside one sweep's results (none if absent)."""
    src = res["source"].iloc[0] if "source" in res.columns else None
    try:
        m = pd.read_parquet(Path(src) / NOISE_SCALE) if isinstance(src, str) else None
    except (OSError, ValueError):
        return []  # absent, or not the measurement's file: as if not measured
    if m is None or not {"point", "seed", "B_noise", "B_simple"} <= set(m.columns):
        return []
    pooled = m[m["seed"].isna()]
    return [
        dict(
            source=f"measured at {'initialisation' if r.point == 'init' else 'the end'}",
            B_noise=r.B_noise,
            B_simple=r.B_simple,
            batch_size=r.batch_size,
            lr=r.lr,
            steps=r.step,
        )
        for r in pooled.itertuples()
    ]


def _closed_form(res: pd.DataFrame) -> list[dict]:
    """The linear task's closed form at initialisation, for the linear model on it."""
    r = res.iloc[0]
    if r["task"] != "regression" or r["model"] != "linear" or "task_dim" not in res:
        return []
    from tasks.regression import linear_noise_scale_init, spectrum

    lam = spectrum(int(r["task_dim"]), float(r["task_spectrum_decay"]))
    th = linear_noise_scale_init(lam, float(r["task_noise_std"]))
    return [dict(source="closed form at initialisation", B_noise=th.B_noise, B_simple=th.B_simple)]


def table(res: pd.DataFrame, fits: pd.DataFrame) -> pd.DataFrame:
    """One row per sweep and source of B_noise (COLUMNS)."""
    rows = []
    for sid, r in res.groupby("sweep_id", sort=True):
        f = fits[(fits["sweep_id"] == sid) & (fits["law"] == "saturating")] if len(fits) else fits
        found = []
        if len(f):
            x = f.iloc[0]
            found.append(
                dict(
                    source="fitted eta* law",
                    B_noise=x["B_noise"],
                    B_noise_lo=x["B_noise_lo"],
                    B_noise_hi=x["B_noise_hi"],
                )
            )
        found += _measured(r) + _closed_form(r)
        rows += [{"sweep_id": sid, **row} for row in found]
    return pd.DataFrame(rows).reindex(columns=COLUMNS)

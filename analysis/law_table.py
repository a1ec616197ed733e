"""The laws of every sweep: each law fitted to the sweep's usable eta*(B) (analysis.laws), the
best one in words, the small-batch slope, or why nothing was fitted."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.laws import GRID_FRACTION, MIN_POINTS, fit_all, grid_step, slope, weights
from analysis.load import LABEL_COLUMNS
from lrscale.optimizers import NAMES as OPTIMIZERS

MODELS = ("linear", "mlp")  # the homework's models come first, the others by name


def fits(opt: pd.DataFrame, n_boot: int = 500, level: float = 0.95, seed: int = 0):
    """Per sweep: every law fitted to its usable eta*(B) (one row per sweep x law)."""
    rows = []
    for key, g in opt[opt["usable"]].groupby(LABEL_COLUMNS, sort=True, dropna=False):
        if g["batch_size"].nunique() < MIN_POINTS:
            continue
        w = weights(g["eta_lo"], g["eta_hi"], level, GRID_FRACTION * grid_step(g))
        df = fit_all(g["batch_size"], g["eta"], w, n_boot, level, seed)
        for k, v in zip(LABEL_COLUMNS, key, strict=True):
            df[k] = v
        rows.append(df)
    head = ["law", "best", "aic", "delta_aic", "n", "k", "wrss", "at_bound", "shape", "words"]
    params = [f"{p}{s}" for p in ("c", "alpha", "eta_max", "B_noise") for s in ("", "_lo", "_hi")]
    cols = [*LABEL_COLUMNS, *head, "formula", *params]
    if not rows:
        return pd.DataFrame(columns=cols)
    return order(pd.concat(rows, ignore_index=True).reindex(columns=cols))


def order(df: pd.DataFrame) -> pd.DataFrame:
    """Sweeps in the order the questions ask about them: SGD before Adam, linear before MLP."""
    rank = lambda c, names: df[c].map({n: i for i, n in enumerate(names)}).fillna(len(names))  # noqa: E731
    key = pd.DataFrame({"o": rank("optimizer", OPTIMIZERS), "m": rank("model", MODELS)})
    idx = key.assign(label=df["label"]).sort_values(["o", "m", "label"], kind="stable").index
    return df.loc[idx].reset_index(drop=True)


def summary(opt: pd.DataFrame, fitted: pd.DataFrame, level: float = 0.95, k: int = 4):
    """Per sweep: the best law in words, the small-batch slope, or why nothing was fitted."""
    rows = []
    for key, g in opt.groupby(LABEL_COLUMNS, sort=True, dropna=False):
        row = dict(zip(LABEL_COLUMNS, key, strict=True))
        u = g[g["usable"]].sort_values("batch_size")
        row |= dict(
            batch_sizes=g["batch_size"].nunique(),
            usable=len(u),
            B_min=u["batch_size"].min(),
            B_max=u["batch_size"].max(),
        )
        w = weights(u["eta_lo"], u["eta_hi"], level, GRID_FRACTION * grid_step(u))
        has_ci = np.isfinite(u["eta_lo"]).any()
        row |= slope(
            u["batch_size"].to_numpy(), u["eta"].to_numpy(), w if has_ci else None, k, level
        )
        f = fitted[(fitted["sweep_id"] == row["sweep_id"]) & fitted["best"].astype(bool)]
        if len(f):
            b = f.iloc[0]
            row |= dict(
                law=b["law"], shape=b["shape"], words=b["words"], formula=b["formula"], reason=""
            )
        else:
            row |= dict(law=None, shape="", words="", formula="", reason=_reason(g))
        rows.append(row)
    return order(pd.DataFrame(rows))


def _reason(g: pd.DataFrame) -> str:
    """Why a sweep has no fitted law."""
    n = int(g["usable"].sum())
    said = {"edge": "at the grid edge", "unidentified": "with eta* not identified"}
    why = [
        f"{len(s)} {said.get(st, 'with all lanes diverged')}"
        for st, s in g.groupby("status")
        if st != "ok"
    ]
    extra = f" ({', '.join(why)})" if why else ""
    return (
        f"only {n} usable batch size{'s' if n != 1 else ''} of {g['batch_size'].nunique()}"
        f"{extra}; a law needs at least {MIN_POINTS}"
    )

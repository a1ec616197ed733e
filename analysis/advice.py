"""What a user should know and do about an analysis: notes on edge minima, diverged batch sizes
and missing fits, and the seeds to add where the best laws are not told apart."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import interval, laws


def add_seeds(opt: pd.DataFrame, fits: pd.DataFrame, tie: float = 2.0) -> list[str]:
    """'Add seeds' per sweep whose best two laws are within `tie` in AIC while its eta* intervals
    are wider than the gap between their predictions at every usable batch size: the seeds that
    would narrow the interval to that gap where the gap is widest relative to it."""
    out = []
    for sid, f in fits.groupby("sweep_id", sort=False):
        f = f.sort_values("aic")
        u = opt[(opt["sweep_id"] == sid) & opt["usable"] & opt["eta_lo"].notna()]
        if len(f) < 2 or f["delta_aic"].iloc[1] >= tie or not len(u):
            continue
        one, two = (f.iloc[k] for k in (0, 1))
        B = u["batch_size"].to_numpy(float)
        gap = np.abs(np.log(laws.predict(one["law"], one, B) / laws.predict(two["law"], two, B)))
        half = np.log(u["eta_hi"] / u["eta_lo"]).to_numpy(float) / 2
        k = int(np.nanargmax(gap / half))
        if not gap[k] < half[k]:
            continue
        n, level = int(u["seeds"].iloc[k]), float(u["level"].iloc[k])
        need = interval.seeds_for(n, half[k], gap[k], level)
        what = f"about {need} seeds (sweep.seeds={need} resume=true)" if need else "a finer grid"
        out.append(
            f"{u['label'].iloc[0]}: the {laws.TITLES[one['law']]} and {laws.TITLES[two['law']]} "
            f"laws are not separated (ΔAIC {two['delta_aic']:.1f}): their eta* differ by at "
            f"most {100 * np.expm1(gap[k]):.0f}% relative to the {level:.0%} intervals, at "
            f"B={int(B[k])} (interval ±{100 * np.expm1(half[k]):.0f}% from {n} seeds); add "
            f"seeds: {what} would narrow it to the gap"
        )
    return out


def notes(a) -> list[str]:
    """One line per thing a user should know about the analysis `a` (analysis.pipeline.Analysis):
    edge minima, diverged batch sizes, missing fits."""
    out = []
    if n := a.res.attrs.get("dropped_nan_rows"):
        out.append(f"{n} rows with a NaN loss were dropped (--skip-bad): lrscale never writes NaN")
    for r in a.opt[a.opt["note"].fillna("").ne("")].itertuples():
        out.append(f"{r.label}, B={r.batch_size}: {r.note}")
    for r in a.summary[a.summary["reason"].fillna("").ne("")].itertuples():
        out.append(f"{r.label}: no law fitted: {r.reason}")
    return out

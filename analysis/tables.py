"""The machine-readable tables of an analysis, beside its figures and report in `_analysis/`:

sweeps.parquet           per sweep: its best law in words, the small-batch slope, why no law
optima_budget.parquet    eta*(B) at the budget per sweep x batch size: interval, grid argmin, the
                         loss (and accuracy) there, diverged lanes, status and note
theory.parquet           the exact SGD theory beside the measured eta*(B), where it applies
critical.parquet         per sweep: the critical batch size's fit (target, S_min, E_min, B_crit)
steps_to_target.parquet  per sweep x batch size: steps and samples to that target
noise.parquet            per sweep: B_noise fitted, measured and in closed form
optima.parquet           eta* per sweep x batch size x data budget D (`samples`); the rows with
                         samples equal to the budget are eta*(B) at the budget
laws.parquet             every fitted law, one row per parameter: today's laws of eta*(B) at the
                         budget, the McCandlish law per D, the laws in D and the joint power law
across_data.parquet      per sweep and D: B_opt and B_crit (S-E fit and Zhang et al.'s 20% rule)
                         with intervals, and the exact theory's where it applies

The last three need the loss curves. The report's numbers are formatted from these very frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from analysis import across, across_laws, estimator, laws, output, theory_sweep

OPTIMA = "optima.parquet"
LAWS = "laws.parquet"
ACROSS = "across_data.parquet"
SWEEPS = "sweeps.parquet"
BUDGET = "optima_budget.parquet"
THEORY = "theory.parquet"
CRITICAL = "critical.parquet"
STEPS = "steps_to_target.parquet"
NOISE = "noise.parquet"
OPTIMA_COLUMNS = [
    "sweep_id",
    "label",
    "model",
    "optimizer",
    "task",
    "budget_kind",
    "budget",
    "batch_size",
    "samples",
    "eta",
    "eta_lo",
    "eta_hi",
    "best_loss",
    "edge",
    "status",
    "usable",
    "metric",
    "eta_theory",  # the exact theory's eta*(B | D), where it applies
]


class Across(NamedTuple):
    """The analysis across the data budget of every sweep with loss curves."""

    optima: pd.DataFrame  # eta*(B | D), OPTIMA_COLUMNS
    table: pd.DataFrame  # across_data: per sweep and D
    laws: pd.DataFrame  # every law, in the long layout of laws.parquet
    reps: pd.DataFrame  # bootstrap replicates of B_opt(D), B_crit(D)

    def of(self, sweep_id: str) -> Across:
        """The part of one sweep."""
        return Across(*(f[f["sweep_id"] == sweep_id] if len(f) else f for f in self))


def budget_laws(fits: pd.DataFrame) -> pd.DataFrame:
    """Today's laws of eta*(B) at the budget in the long layout of laws.parquet."""
    rows = []
    for r in fits.itertuples(index=False):
        for p in laws.PARAMS[r.law]:
            rows.append(
                dict(
                    sweep_id=r.sweep_id,
                    law=r.law,
                    samples=r.budget if r.budget_kind == "samples" else None,
                    parameter=p,
                    value=getattr(r, p),
                    lo=getattr(r, f"{p}_lo"),
                    hi=getattr(r, f"{p}_hi"),
                    aic=r.aic,
                )
            )
    return pd.DataFrame(rows, columns=across_laws.COLUMNS)


PER_DECADE = 16  # lrs per decade of the exact theory's curves


def theory(res: pd.DataFrame, curves: pd.DataFrame, margin: float = across.EPS):
    """The exact theory across D of one sweep it covers, read off its expected-loss curves at
    the sweep's own points with the estimators of the measurements: (eta*(B, D), B_opt and
    B_crit per D), or None for a sweep the theory does not cover."""
    if theory_sweep.uncovered(res):
        return None
    lo, hi = np.log10(res["lr"].min()), np.log10(res["lr"].max())
    lrs = np.logspace(lo, hi, int(PER_DECADE * (hi - lo)) + 1)
    tc = theory_sweep.theory_curves(res, curves, lrs)
    tc = tc.assign(budget_kind=res["budget_kind"].iloc[0], sweep_id=res["sweep_id"].iloc[0])
    tc = across.with_grid(tc)
    L = tc[tc["step"] > 0].pivot_table(
        index=["batch_size", "samples"], columns="lr", values="eval_loss", aggfunc="first"
    )
    _, xv, _ = estimator.argmin_refined(np.log10(L.columns.to_numpy(float)), L.to_numpy(float))
    eta = pd.DataFrame({"eta_theory": 10**xv}, index=L.index).reset_index()
    per_d = across.replicates(tc, n_boot=0, margin=margin)
    return eta, per_d.drop(columns=["r", "target", "batches"], errors="ignore")


def analyse(res, curves, fits, n_boot=1000, level=0.95, seed=0, by="loss", margin=across.EPS):
    """Across for the sweeps of res that have curves (None without curves)."""
    if curves is None or curves.empty:
        return None
    res = res[res["sweep_id"].isin(curves["sweep_id"].unique())]
    opt_d = across.optima_by_data(res, curves, n_boot, level, seed, by)
    if opt_d.empty:
        return None
    opt_d = opt_d.rename(columns={"loss": "best_loss"})
    # B_crit refits the trade-off per resample: a hundred resamples is plenty
    table, reps = across.across_data(res, curves, min(n_boot, 100), level, margin, seed)
    etas, per_ds = [], []
    for sid, r in res.groupby("sweep_id", sort=True):
        th = theory(r, curves[curves["sweep_id"] == sid], margin)
        if th is not None:
            etas.append(th[0].assign(sweep_id=sid))
            per_ds.append(th[1].assign(sweep_id=sid))
    if etas:
        opt_d = opt_d.merge(pd.concat(etas), on=["sweep_id", "batch_size", "samples"], how="left")
        per_d = pd.concat(per_ds).rename(
            columns={c: f"{c}_theory" for c in ("B_opt", "B_opt_edge", "B_crit_se", "B_crit_zhang")}
        )
        if len(table) and len(per_d):
            table = table.merge(per_d.drop(columns="grid"), on=["sweep_id", "samples"], how="left")
    fitted = across_laws.laws_table(opt_d, table, reps, level)
    if etas and len(table):
        fitted = pd.concat([fitted, across_laws.theory_laws(table, level)], ignore_index=True)
    all_laws = pd.concat([budget_laws(fits), fitted], ignore_index=True)
    return Across(opt_d, table, all_laws.astype(across_laws.DTYPES), reps)


def _clean(df: pd.DataFrame) -> pd.DataFrame:
    """NaN (a quantity that could not be had) as null: no table holds NaN."""
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]) and out[c].isna().any():
            out[c] = pd.array(out[c].to_numpy(float), dtype="Float64")
            out.loc[np.isnan(df[c].to_numpy(float)), c] = pd.NA
    return out


def frames(a) -> dict[str, pd.DataFrame]:
    """{file name: table} of the analysis `a` (analysis.pipeline.Analysis)."""
    out = {
        SWEEPS: a.summary,
        BUDGET: a.opt,
        THEORY: a.theory,
        CRITICAL: a.critical,
        STEPS: a.steps,
        NOISE: a.noise,
    }
    if a.data is not None:
        d = a.data
        out |= {OPTIMA: d.optima.reindex(columns=OPTIMA_COLUMNS), LAWS: d.laws, ACROSS: d.table}
    return out


def check(a, out: Path, what: str) -> None:
    """Refuse out as the folder of the analysis' outputs (`what` beside the tables) before
    anything is written: a folder holding a sweep's results, or files of the tables' names that
    the analysis did not write (OutputError naming them)."""
    output.folder_for_tables(Path(out), what)
    for name in frames(a):
        output.own(Path(out) / name)


def write(a, out: Path) -> list[Path]:
    """Every table of the analysis `a` (analysis.pipeline.Analysis) into out (made if needed);
    OutputError naming the path otherwise."""
    check(a, out, "the figures")
    out = output.make_dir(Path(out), "the analysis tables")
    paths = []
    for name, df in frames(a).items():
        path = out / name
        output.replace(path, lambda tmp, df=df: _to_parquet(df, tmp), name)
        paths.append(path)
    return paths


def _to_parquet(df: pd.DataFrame, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(_clean(df), preserve_index=False)
    meta = {**(table.schema.metadata or {}), output.MARK: b"1"}
    pq.write_table(table.replace_schema_metadata(meta), path)

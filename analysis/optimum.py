"""The optimal learning rate per sweep and batch size, with a bootstrap interval over seeds."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd

from analysis import metric, resample
from analysis.estimator import one
from analysis.interval import METHOD
from analysis.load import LABEL_COLUMNS, labels, with_defaults

GROUP = [*LABEL_COLUMNS, "batch_size"]
# A lane that diverged at step 0 did so on its first minibatch before any update: at every lr
# alike (the loss of step 0 does not depend on the lr).
OVERFLOW_WHY = (
    "the loss at initialisation is non-finite or past the divergence limit, whatever the lr: "
    "check the task's scale (e.g. task.noise_std, the data) or sweep.dtype; a lower lr grid "
    "would not help"
)
OVERFLOW = "every lane diverged at step 0, before any update; " + OVERFLOW_WHY


def overflow_why(model: str) -> str:
    """OVERFLOW_WHY for a sweep of this model: a user's model is the likelier cause."""
    if model != "custom":
        return OVERFLOW_WHY
    return OVERFLOW_WHY.replace(
        "the task's scale (e.g. task.noise_std, the data)",
        "that model.target's outputs are finite at initialisation, the data's scale",
    )


def _labelled(df: pd.DataFrame) -> pd.DataFrame:
    """df with a sweep label and the optional columns (load() adds them; hand-built tables may
    lack them)."""
    df = with_defaults(df)
    return df if "label" in df.columns else df.assign(label=labels(df))


def curve(df: pd.DataFrame) -> pd.DataFrame:
    """Loss vs lr per sweep and batch size: mean, median and spread over seeds (diverged = +inf),
    with the seed-mean accuracy (nan without one) and the loss's name."""
    df = _labelled(df)
    by = df.groupby([*GROUP, "lr"], sort=True)
    out = by["final_eval_loss"].agg(["mean", "median", "std", "min", "max", "size"])
    out = out.rename(columns={"size": "seeds"})
    out["diverged"] = by["diverged"].sum()
    # inf - inf in std is NaN; a spread over diverged lanes is meaningless anyway.
    out["std"] = out["std"].where(np.isfinite(out["mean"]), np.inf)
    out["accuracy"] = by["final_eval_accuracy"].mean().to_numpy(float, na_value=np.nan)
    out["loss_name"] = by["loss"].first()
    return out.reset_index()


class _Group(NamedTuple):
    """The columns optima reads of one sweep and batch size, as arrays in table order."""

    lr: np.ndarray
    seed: np.ndarray
    y: np.ndarray  # the objective of the metric
    accuracy: np.ndarray
    loss: np.ndarray
    diverged: np.ndarray
    at0: np.ndarray  # diverged at step 0, before any update (False where not recorded)
    loss_name: np.ndarray

    @classmethod
    def columns(cls, df: pd.DataFrame) -> _Group:
        def col(name):
            return df[name].to_numpy(float, na_value=np.nan)

        div = df["diverged"].to_numpy(bool, na_value=False)
        step = col("diverged_step") if "diverged_step" in df.columns else np.full(len(df), -1.0)
        acc, loss = col("final_eval_accuracy"), col("final_eval_loss")
        at0 = div & (step == 0)
        return cls(col("lr"), col("seed"), col("_y"), acc, loss, div, at0, df["loss"].to_numpy())

    def pivot(self) -> tuple[np.ndarray, np.ndarray]:
        """(ascending lrs, the objective (n_lr, n_seed) over ascending seeds), NaN where a lane is
        missing; of a repeated (lr, seed) the first row counts."""
        lrs, i = np.unique(self.lr, return_inverse=True)
        seeds, j = np.unique(self.seed, return_inverse=True)
        _, first = np.unique(i * len(seeds) + j, return_index=True)
        P = np.full((len(lrs), len(seeds)), np.nan)
        P[i[first], j[first]] = self.y[first]
        return lrs, P


def _at_grid(g: _Group, row: dict, m) -> dict:
    """Seed-mean accuracy at the chosen grid lr; under the accuracy metric, the loss there too."""
    at = g.lr == row.get("eta_grid", np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the mean of nothing is NaN
        out = dict(accuracy=np.nanmean(g.accuracy[at]), loss_name=g.loss_name[0], metric=m.name)
        if m.name != "loss":  # one() reported the minimised error: report the loss instead
            L = g.loss[at]
            out |= dict(loss=np.nanmean(L), loss_median=np.nanmedian(L), loss_fit=np.nan)
    return out


def optima(
    df: pd.DataFrame,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    by: str = "loss",
    method: str = METHOD,
) -> pd.DataFrame:
    """eta* per sweep and batch size: refined optimum of the seed-mean metric `by` (loss or
    accuracy), bootstrap interval over seeds (analysis.interval.bounds)."""
    m = metric.get(by)
    df = _labelled(df)
    df = df.assign(_y=metric.objective(df, m))
    # one pass over the table's columns, then each group's rows by position: pandas' own
    # per-group frames cost ~10 ms a group, and the data-budget analysis has hundreds
    groups = df.groupby(GROUP, sort=True, dropna=False)
    codes = groups.ngroup().to_numpy()
    order = np.argsort(codes, kind="stable")
    ends = np.searchsorted(codes[order], np.arange(groups.ngroups + 1))
    columns = _Group.columns(df)
    samples = df["samples"].to_numpy() if "samples" in df else np.zeros(len(df), int)
    rows = []
    for n, key in enumerate(groups.size().index):
        g = _Group(*(c[order[ends[n] : ends[n + 1]]] for c in columns))
        lrs, P = g.pivot()
        row = dict(zip(GROUP, key, strict=True))
        # the cell's own stream: its sweep, batch size and data budget
        rng = resample.rng(seed, row["sweep_id"], row["batch_size"], samples[order[ends[n]]])
        row |= one(lrs, P, n_boot, level, rng, m, method)
        row |= _at_grid(g, row, m)
        row |= dict(seeds=P.shape[1], lanes=len(g.lr), diverged=int(g.diverged.sum()))
        row["diverged_at_step0"] = int(g.at0.sum())
        if row["diverged"] == row["lanes"]:
            row["note"] = (
                OVERFLOW.replace(OVERFLOW_WHY, overflow_why(row["model"]))
                if row["diverged_at_step0"] == row["lanes"]
                else f"all lanes diverged, even at the smallest lr {row['lr_lo']:.3g}: "
                "lower the lr grid"
            )
        elif row["status"] == "diverged" and g.at0.any():
            seeds = sorted(int(s) for s in np.unique(g.seed[g.at0]))
            who = f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
            row["note"] = (
                f"every lr has a diverged seed: {who} diverged at step 0, before any update; "
                f"{overflow_why(row['model'])}"
            )
        rows.append(row)
    cols = [
        *GROUP,
        "eta",
        "eta_lo",
        "eta_hi",
        "eta_grid",
        "loss",
        "loss_median",
        "loss_fit",
        "accuracy",
        "loss_name",
        "metric",
        "status",
        "edge",
        "note",
        "n_lr",
        "finite_lrs",
        "lr_lo",
        "lr_hi",
        "seeds",
        "lanes",
        "diverged",
        "diverged_at_step0",
    ]
    out = pd.DataFrame(rows).reindex(columns=cols)
    out["usable"] = out["status"].eq("ok")
    out["level"] = level  # of eta_lo, eta_hi
    return out


def problems(opt: pd.DataFrame) -> list[str]:
    """One line per sweep that cannot show a batch-size dependence at all."""
    out = []
    for label, g in opt.groupby("label", sort=True):
        if g["batch_size"].nunique() < 2:
            out.append(
                f"{label}: only one batch size (B={g['batch_size'].iloc[0]}); "
                "a scaling law needs several"
            )
        elif g["status"].eq("diverged").all():
            every = g["diverged"].sum() == g["lanes"].sum()
            at0 = g["diverged_at_step0"] if "diverged_at_step0" in g else pd.Series(0, g.index)
            if every and at0.eq(g["lanes"]).all():
                out.append(
                    f"{label}: every lane diverged at every batch size, at step 0 before any "
                    f"update: {overflow_why(g['model'].iloc[0])}"
                )
            elif every:
                out.append(f"{label}: every lane diverged at every batch size; lower the lr grid")
            elif at0.gt(0).all():
                out.append(
                    f"{label}: at every batch size every lr has a diverged seed, some at step 0 "
                    f"before any update: {overflow_why(g['model'].iloc[0])}"
                )
            else:
                out.append(
                    f"{label}: at every batch size every lr has a diverged seed; lower the lr grid"
                )
    return out

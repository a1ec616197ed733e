"""What eta* optimises (the final eval loss, or the accuracy) and how the loss is named.

The estimator (analysis.estimator) minimises one number per lane. For accuracy that number is the
error 1 - accuracy, +inf on a diverged lane so that, as with the loss, an lr where any seed
diverged never wins the seed mean; it is refined on a linear scale, since an error of 0 (every
held-out example right) is a legitimate optimum that a log scale would throw away.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from analysis.load import LOSSES, AnalysisError


class Metric(NamedTuple):
    name: str
    log: bool  # refine the optimum in the log of the minimised number
    best: str  # the optimum's name in notes: "minimum at the lowest lr ..."
    star: str  # legend entry of the eta* marker
    method: str  # the report's sentence on how eta* is chosen


METRICS = {
    "loss": Metric(
        "loss",
        True,
        "minimum",
        "η* (refined argmin)",
        "eta* is the argmin over the lr grid of the seed-mean final eval loss (a diverged lane "
        "counts as +inf), refined by a parabola in (log lr, log loss)",
    ),
    "accuracy": Metric(
        "accuracy",
        False,
        "maximum",
        "η* (refined accuracy argmax)",
        "eta* is the argmax over the lr grid of the seed-mean final eval accuracy (an lr where a "
        "seed diverged counts as worst), refined by a parabola in (log lr, accuracy)",
    ),
}


def get(name: str) -> Metric:
    if name not in METRICS:
        raise AnalysisError(f"unknown metric {name!r} (known: {', '.join(METRICS)})")
    return METRICS[name]


def of(opt: pd.DataFrame) -> Metric:
    """The metric an optima table's eta* was chosen by (loss for a table without the column)."""
    return get(opt["metric"].iloc[0] if "metric" in opt.columns and len(opt) else "loss")


def objective(df: pd.DataFrame, m: Metric) -> np.ndarray:
    """The number per lane that eta* minimises (nan where a lane has none)."""
    loss = df["final_eval_loss"].to_numpy(float)
    if m.name == "loss":
        return loss
    acc = df["final_eval_accuracy"].to_numpy(float, na_value=np.nan)
    return np.where(np.isinf(loss) | df["diverged"].to_numpy(bool), np.inf, 1.0 - acc)


def require(df: pd.DataFrame, m: Metric) -> None:
    """Refuse an accuracy metric for sweeps that have no accuracy, naming them."""
    if m.name != "accuracy":
        return
    has = df["final_eval_accuracy"].notna().groupby(df["label"]).any()
    if not has.all():
        kind = df.groupby("label")["task_kind"].first()
        none = ", ".join(f"{lab} ({kind[lab]})" for lab in has.index[~has])
        raise AnalysisError(
            f"--metric accuracy: no accuracy in {none}: only classification has one; use "
            "--metric loss"
        )


def loss_words(df: pd.DataFrame) -> str:
    """How labels name the loss of a sweep's table: 'MSE' or 'cross-entropy, nats'."""
    col = (
        "loss_name" if "loss_name" in df.columns else "loss"
    )  # an optima table's "loss" is a value
    name = df[col].iloc[0] if col in df.columns and len(df) else "mse"
    return LOSSES.get(name, LOSSES["mse"])


def loss_label(df: pd.DataFrame, what: str = "final eval loss") -> str:
    """An axis label that names the loss: 'final eval loss (cross-entropy, nats)'."""
    return f"{what} ({loss_words(df)})"


def loss_value(df: pd.DataFrame, v: float) -> str:
    """A loss value in words: 'MSE 0.0123', 'cross-entropy 0.35 nats'."""
    name, *unit = loss_words(df).split(", ")
    return " ".join([name, f"{v:.3g}", *unit])

"""The homework's three answers in words (eta*(B) of linear regression and of an MLP, under SGD
and Adam), from the fitted laws; and the words for sweeps of other tasks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import laws
from analysis.prose import fitted, interval, rule_text, slope_text


def rows_of(summary: pd.DataFrame, model: str | None, optimizer: str) -> pd.DataFrame:
    """The sweeps of the regression task a homework question asks about."""
    s = summary[(summary["optimizer"] == optimizer) & (summary["task"] == "regression")]
    return s if model is None else s[s["model"] == model]


def _one(r, fits: pd.DataFrame) -> str:
    """One sweep's law in a sentence, or why there is none."""
    if not fitted(r):
        return f"no law could be fitted to {r['label']}: {r['reason']}."
    f = fits[fits["sweep_id"] == r["sweep_id"]].sort_values("aic")
    close = [
        f"the {laws.TITLES[x.law]} fits about as well, ΔAIC = {x.delta_aic:.1f}"
        for x in f.iloc[1:].itertuples()
        if x.delta_aic < 2
    ]
    return (
        f"eta*(B) resembles **{r['shape']}** ({laws.SHAPES[r['shape']]}): {r['words']}; "
        f"best law by AIC: {laws.TITLES[r['law']]}, `{r['formula']}`"
        + "".join(f"; {c}" for c in close)
        + f". At the smallest batch sizes, {slope_text(r)}{rule_text(r)}."
    )


def _overlap(a, b) -> bool | None:
    if not all(np.isfinite([a["slope_lo"], a["slope_hi"], b["slope_lo"], b["slope_hi"]])):
        return None
    return a["slope_lo"] <= b["slope_hi"] and b["slope_lo"] <= a["slope_hi"]


def _saturation(fits: pd.DataFrame, sid: str) -> tuple[float, float]:
    """(B_noise, eta_max) of a sweep's linear-then-saturating fit."""
    f = fits[(fits["sweep_id"] == sid) & (fits["law"] == "saturating")]
    return (float(f["B_noise"].iloc[0]), float(f["eta_max"].iloc[0])) if len(f) else (np.nan,) * 2


def _versus(r, base, fits: pd.DataFrame, what: str) -> str:
    """How sweep r differs from sweep base, from the fitted numbers."""
    if not (fitted(r) and fitted(base)):
        return (
            f" No comparison with {what}: {'it' if fitted(r) else 'this sweep'} has no fitted law."
        )
    out = []
    if r["shape"] == base["shape"]:
        out.append(f"the shape is the same ({r['shape']})")
    else:
        out.append(f"the shape differs ({r['shape']} vs {base['shape']})")
    ov = _overlap(r, base)
    if ov is not None:
        if ov:
            out.append(
                f"the small-batch slopes agree within their intervals ({r['slope']:.2f} vs "
                f"{base['slope']:.2f})"
            )
        else:
            way = "steeper" if r["slope"] > base["slope"] else "shallower"
            out.append(
                f"the small-batch slope is {way}: {r['slope']:.2f} "
                f"{interval(r['slope_lo'], r['slope_hi'], '.2f')} vs {base['slope']:.2f} "
                f"{interval(base['slope_lo'], base['slope_hi'], '.2f')}"
            )
    if r["shape"] == base["shape"] == "linear-then-saturating":
        (b1, e1), (b0, e0) = _saturation(fits, r["sweep_id"]), _saturation(fits, base["sweep_id"])
        k = b1 / b0
        out.append(
            f"saturation sets in at B ~ {b1:.3g} instead of ~ {b0:.3g} "
            f"({max(k, 1 / k):.2g}x {'later' if k > 1 else 'earlier'}), at eta ~ {e1:.3g} "
            f"instead of ~ {e0:.3g}"
        )
    return f" Compared with {what}: " + "; ".join(out) + "."


def _unanswered(what: str) -> str:
    return (
        f"No {what} sweep of the regression task is among the results, so this question "
        "cannot be answered."
    )


def answers(summary: pd.DataFrame, fits: pd.DataFrame) -> dict[str, str]:
    """The three homework answers, each derived from the fitted numbers."""
    ans = {}
    lin = rows_of(summary, "linear", "sgd")
    ans["a"] = " ".join(_one(r, fits) for _, r in lin.iterrows()) or _unanswered("linear+SGD")
    mlp = rows_of(summary, "mlp", "sgd")
    if not len(mlp):
        ans["b"] = _unanswered("MLP+SGD")
    else:
        parts = []
        for _, r in mlp.iterrows():
            base = lin.iloc[0] if len(lin) else None
            vs = (
                _versus(r, base, fits, base["label"])
                if base is not None
                else " There is no linear+SGD sweep to compare with."
            )
            parts.append(_one(r, fits) + vs)
        ans["b"] = " ".join(parts)
    adam = rows_of(summary, None, "adam")
    if not len(adam):
        ans["c"] = _unanswered("Adam")
    else:
        parts = []
        for _, r in adam.iterrows():
            sgd = rows_of(summary, r["model"], "sgd")
            if not len(sgd):
                parts.append(
                    f"*{r['label']}*: {_one(r, fits)} "
                    f"There is no {r['model']}+SGD sweep to compare with."
                )
                continue
            base = sgd.iloc[0]
            parts.append(
                f"*{r['label']}*: {_one(r, fits)}{_versus(r, base, fits, base['label'])} "
                f"{_verdict(r, base)}"
            )
        ans["c"] = " ".join(parts)
    return ans


def _verdict(r, base) -> str:
    """Whether Adam changes the scaling relative to SGD on the same model."""
    ov = _overlap(r, base)
    if not (fitted(r) and fitted(base)) or ov is None:
        return "Whether the scaling changes cannot be decided from these numbers."
    slopes = f"small-batch slope {r['slope']:.2f} vs {base['slope']:.2f}"
    if not ov:
        way = "more weakly" if r["slope"] < base["slope"] else "more strongly"
        return f"**The scaling changes: eta* grows {way} with B under Adam** ({slopes})."
    wide = max(r["slope_hi"] - r["slope_lo"], base["slope_hi"] - base["slope_lo"]) > 0.5
    hint = (
        " The intervals are wide; more seeds or a finer lr grid would sharpen this." if wide else ""
    )
    if r["shape"] == base["shape"]:
        return f"**No significant change in the scaling with Adam** ({slopes}).{hint}"
    return (
        f"**The small-batch scaling does not change significantly with Adam ({slopes}), but the "
        f"shape of eta*(B) does: {r['shape']} vs {base['shape']}.**{hint}"
    )


def other_tasks(s: pd.DataFrame) -> list[str]:
    """One line on the sweeps the answers leave out because they are of another task."""
    o = s[s["task"] != "regression"]
    if not len(o):
        return []
    tasks = ", ".join(sorted(o["task"].unique()))
    return [
        "The homework's three questions (eta*(B) of linear regression and of an MLP, under SGD "
        f"and Adam) are about the pinned regression task, so the sweeps of {tasks} "
        f"({', '.join(o['label'])}) answer none of them; their laws are in their sections below.",
        "",
    ]

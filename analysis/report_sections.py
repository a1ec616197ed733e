"""The report's per-sweep sections on the exact theory, the critical batch size and the gradient
noise scale, formatted from the analysis tables, and the markdown helpers every section uses."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from analysis import theory_sweep
from analysis.homework import rows_of
from analysis.prose import fmt, interval, link, table

if TYPE_CHECKING:
    from analysis.pipeline import Analysis


def theory_answer(a: Analysis) -> str:
    """The theory verdict of each linear+SGD sweep, for answer (a)."""
    out = []
    for _, r in rows_of(a.summary, "linear", "sgd").iterrows():
        v = a.theory[a.theory["sweep_id"] == r["sweep_id"]]
        if len(v) and not v["why"].iloc[0]:
            out.append(f" Against the exact SGD theory ({r['label']}): {theory_sweep.verdict(v)}")
    return "".join(out)


def theory(v: pd.DataFrame, res: pd.DataFrame, level: float) -> list[str]:
    """Measured eta* beside the exact SGD theory (the sweep's rows of the theory table)."""
    if not len(v) or v["why"].iloc[0]:
        r = res.iloc[0]
        near = r["model"] == "linear" and r["optimizer"] in theory_sweep.COVERED
        why = v["why"].iloc[0] if len(v) else "not computed"
        return ["### Theory vs measurement", "", f"Not computed: {why}.", ""] if near else []
    rows = [
        [
            x.batch_size,
            x.steps,
            fmt(x.eta),
            interval(x.eta_lo, x.eta_hi),
            fmt(x.lr_opt),
            fmt(x.ratio, ".2f"),
            fmt(x.lr_edge),
            ("yes" if x.agrees else "**no**") if x.usable else f"({x.status})",
        ]
        for x in v.itertuples()
    ]
    head = ["B", "steps", "eta* measured", f"{level:.0%} interval", "eta* theory"]
    head += ["measured / theory", "divergence edge eta_max", f"within {theory_sweep.FACTOR:g}x"]
    return [
        "### Theory vs measurement",
        "",
        "The exact expected loss of minibatch SGD on this task (analysis.theory), minimised "
        "over the learning rate under the same budget, and the mean-square divergence edge.",
        "",
        table(head, rows),
        "",
        theory_sweep.verdict(v),
        "",
    ]


def critical_batch(fit: pd.DataFrame, steps: pd.DataFrame, level, figs, base, s, lab, loss):
    """Target loss, S_min, E_min and B_crit of one sweep (its rows of the critical tables), with
    intervals, and the two figures."""
    out = ["### Critical batch size", ""]
    if not len(fit) or fit["why"].iloc[0]:
        why = fit["why"].iloc[0] if len(fit) else "not computed"
        return out + [f"Not available: {why}.", ""]
    f = fit.iloc[0]
    rows = []
    for name, unit in (
        ("S_min", "steps"),
        ("E_min", "samples"),
        ("B_crit", "samples per step"),
    ):
        blo, bhi = f[f"{name}_boot_lo"], f[f"{name}_boot_hi"]
        boot = "–" if pd.isna(blo) else interval(blo, bhi)
        shown_name = "B_crit = E_min / S_min" if name == "B_crit" else name
        rows.append(
            [shown_name, fmt(f[name]), unit, interval(f[f"{name}_lo"], f[f"{name}_hi"]), boot]
        )
    out += [
        f"Steps S(B) to reach eval loss **{f['target']:.3g}** ({loss}; seed-mean curves, best lr "
        "per batch size), fitted by S(B) = S_min + E_min / B, i.e. (S/S_min - 1)(E/E_min - 1) = 1 "
        "(McCandlish et al. 2018). Below B_crit a larger batch buys fewer steps almost for free "
        "(perfect scaling), above it each doubling costs more samples for fewer saved steps "
        "(diminishing returns, then maximal data parallelism; Shallue et al. 2019).",
        "",
        table(
            ["quantity", "value", "unit", "95% interval (fit)", f"{level:.0%} interval (seeds)"],
            rows,
        ),
        "",
        table(
            ["B", "best lr", "steps to target", "samples to target", "steps (fit)"],
            [
                [x.batch_size, fmt(x.lr), fmt(x.steps), fmt(x.samples), fmt(x.steps_fit)]
                for x in steps.itertuples()
            ],
        ),
        "",
    ]
    for name, alt in (("steps_vs_batch", "steps to target"), ("tradeoff", "S-E trade-off")):
        if f"{s}_{name}" in figs:
            out += [link(figs[f"{s}_{name}"], base, f"{lab}: {alt}"), ""]
    return out


def noise(rows: pd.DataFrame, res: pd.DataFrame) -> list[str]:
    """The gradient noise scale of one sweep, each way it is had (its rows of the noise table)."""
    parts = []
    for x in rows.itertuples():
        if x.source == "fitted eta* law":
            parts.append(
                f"fitted from eta*(B) (the saturating law's parameter): B_noise = "
                f"{fmt(x.B_noise)} {interval(x.B_noise_lo, x.B_noise_hi)}"
            )
    measured = rows[rows["source"].str.startswith("measured")]
    if len(measured):
        x = measured.iloc[0]
        said = ", ".join(
            f"{'init' if 'initialisation' in m.source else 'end'} B_noise = {fmt(m.B_noise)} "
            f"(B_simple = {fmt(m.B_simple)})"
            for m in measured.itertuples()
        )
        parts.append(
            f"measured from per-example gradients, pooled over seeds (lane B = "
            f"{int(x['batch_size'])}, lr = {fmt(x['lr'])}, {int(x['steps'])} steps): {said}"
        )
    for x in rows[rows["source"] == "closed form at initialisation"].itertuples():
        parts.append(
            f"closed form of the linear task at initialisation: B_noise = {fmt(x.B_noise)} "
            f"(B_simple = {fmt(x.B_simple)})"
        )
    r = res.iloc[0]
    if not len(measured) and r["task"] != "regression":
        parts.append(f"not measured: the measurement covers the regression task, not {r['task']}")
    elif not len(measured):
        parts.append(
            f"not measured: `python -m sweeps.noise_scale {shown(res['source'].iloc[0])}` "
            "measures it"
            if "source" in res
            else "not measured"
        )
    return ["### Gradient noise scale", ""] + [f"- {p_}" for p_ in parts] + [""]


def shown(p) -> str:
    """A path as the report names it: relative to the working directory when below it."""
    p = Path(p).resolve()
    return str(p.relative_to(Path.cwd())) if p.is_relative_to(Path.cwd()) else str(p)

"""The report's per-sweep sections on the exact theory, the critical batch size and the gradient
noise scale, and the markdown helpers every section uses."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from analysis import compare, critical
from analysis.answers import fmt, interval, level_of, rows_of
from analysis.pipeline import Analysis


def table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)


def link(files: list[Path], base: Path, alt: str) -> str:
    png = next((f for f in files if f.suffix == ".png"), files[0])
    return f"![{alt}]({Path(os.path.relpath(png, base)).as_posix()})"


def theory_answer(a: Analysis) -> str:
    """The theory verdict of each linear+SGD sweep, for answer (a)."""
    out = []
    for _, r in rows_of(a.summary, "linear", "sgd").iterrows():
        sid = r["sweep_id"]
        th = compare.predicted(a.res[a.res["sweep_id"] == sid])
        if th is not None:
            v = compare.versus(a.opt[a.opt["sweep_id"] == sid], th)
            out.append(f" Against the exact SGD theory ({r['label']}): {compare.verdict(v)}")
    return "".join(out)


def theory(o: pd.DataFrame, res: pd.DataFrame) -> list[str]:
    """Measured eta* beside the exact SGD theory, for the sweeps the theory covers."""
    th = compare.predicted(res)
    if th is None:
        r = res.iloc[0]
        near = r["model"] == "linear" and r["optimizer"] in compare.COVERED
        why = compare.uncovered(res)
        return ["### Theory vs measurement", "", f"Not computed: {why}.", ""] if near else []
    v = compare.versus(o, th)
    ok = compare.agrees(v)
    rows = [
        [
            x.batch_size,
            x.steps,
            fmt(x.eta),
            interval(x.eta_lo, x.eta_hi),
            fmt(x.lr_opt),
            fmt(x.ratio, ".2f"),
            fmt(x.lr_edge),
            ("yes" if k else "**no**") if x.usable else f"({x.status})",
        ]
        for x, k in zip(v.itertuples(), ok, strict=True)
    ]
    head = ["B", "steps", "eta* measured", f"{level_of(o):.0%} interval", "eta* theory"]
    head += ["measured / theory", "divergence edge eta_max", f"within {compare.FACTOR:g}x"]
    return [
        "### Theory vs measurement",
        "",
        "The exact expected loss of minibatch SGD on this task (analysis.theory), minimised "
        "over the learning rate under the same budget, and the mean-square divergence edge.",
        "",
        table(head, rows),
        "",
        compare.verdict(v),
        "",
    ]


def critical_batch(c, level: float, figs, base, s: str, lab: str, loss: str) -> list[str]:
    """Target loss, S_min, E_min and B_crit of one sweep, with intervals and the two figures."""
    out = ["### Critical batch size", ""]
    if isinstance(c, str):
        return out + [f"Not available: {c}.", ""]
    f = c.fit
    boot = critical.boot_ci(c.boot, level) if c.boot is not None and len(c.boot) else {}
    rows = []
    for name, v, ci, unit in (
        ("S_min", f.S_min, f.S_min_ci, "steps"),
        ("E_min", f.E_min, f.E_min_ci, "samples"),
        ("B_crit = E_min / S_min", f.B_crit, f.B_crit_ci, "samples per step"),
    ):
        b = boot.get(name.split()[0])
        rows.append([name, fmt(v), unit, interval(*ci), interval(*b) if b else "–"])
    out += [
        f"Steps S(B) to reach eval loss **{c.target:.3g}** ({loss}; seed-mean curves, best lr per "
        "batch size), fitted by S(B) = S_min + E_min / B, i.e. (S/S_min - 1)(E/E_min - 1) = 1 "
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
                for x in c.table.itertuples()
            ],
        ),
        "",
    ]
    for name, alt in (("steps_vs_batch", "steps to target"), ("tradeoff", "S-E trade-off")):
        if f"{s}_{name}" in figs:
            out += [link(figs[f"{s}_{name}"], base, f"{lab}: {alt}"), ""]
    return out


def noise(res: pd.DataFrame, fits: pd.DataFrame) -> list[str]:
    """Measured gradient noise scale (analysis.noise_scale's file) beside the fitted one."""
    from analysis.noise_scale import NOISE_SCALE, linear_noise_scale_init
    from tasks.regression import spectrum

    parts = []
    f = fits[fits["law"] == "saturating"] if len(fits) else fits
    if len(f):
        x = f.iloc[0]
        parts.append(
            f"fitted from eta*(B) (the saturating law's parameter): B_noise = "
            f"{fmt(x['B_noise'])} {interval(x['B_noise_lo'], x['B_noise_hi'])}"
        )
    path = Path(res["source"].iloc[0]) / NOISE_SCALE if "source" in res else None
    try:
        m = json.loads(path.read_text()) if path else None
        p, lane = m.get("pooled_over_seeds", {}), m.get("lane", {})
        meas = ", ".join(
            f"{k} B_noise = {fmt(p[k]['B_noise'])} (B_simple = {fmt(p[k]['B_simple'])})"
            for k in ("init", "end")
            if k in p
        )
        parts.append(
            f"measured from per-example gradients, pooled over seeds (lane B = "
            f"{lane.get('batch_size')}, lr = {fmt(lane.get('lr'))}, {lane.get('steps')} steps): "
            f"{meas}"
        )
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        m = None  # absent, or not the measurement's file: as if not measured
    r = res.iloc[0]
    regression = r["task"] == "regression"
    if regression and r["model"] == "linear" and "task_dim" in res:
        th = linear_noise_scale_init(
            spectrum(int(r["task_dim"]), float(r["task_spectrum_decay"])),
            float(r["task_noise_std"]),
        )
        parts.append(
            f"closed form of the linear task at initialisation: B_noise = {fmt(th.B_noise)} "
            f"(B_simple = {fmt(th.B_simple)})"
        )
    if not m and not regression:
        parts.append(f"not measured: the measurement covers the regression task, not {r['task']}")
    elif not m:
        parts.append(
            f"not measured: `python -m analysis.noise_scale {shown(res['source'].iloc[0])}` "
            "measures it"
            if "source" in res
            else "not measured"
        )
    return ["### Gradient noise scale", ""] + [f"- {p_}" for p_ in parts] + [""]


def shown(p) -> str:
    """A path as the report names it: relative to the working directory when below it."""
    p = Path(p).resolve()
    return str(p.relative_to(Path.cwd())) if p.is_relative_to(Path.cwd()) else str(p)

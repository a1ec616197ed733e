"""The text of report.md: per-batch-size optima, fitted laws, figures, the three answers.

The homework's questions are about the pinned regression task; sweeps of other tasks (classification
on mnist1d, digits, a user's file) get their own sections and laws but answer none of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from analysis import laws, metric, report_data
from analysis.advice import add_seeds, notes
from analysis.homework import answers, other_tasks
from analysis.interval import GRID_SD
from analysis.prose import fitted, fmt, interval, level_of, link, rule_text, slope_text, slug, table
from analysis.report_sections import critical_batch, noise, theory, theory_answer
from lrscale.config import ModelConfig, OptimizerConfig
from lrscale.results import RESULTS, read_meta

if TYPE_CHECKING:
    from analysis.pipeline import Analysis

TITLE = "# Optimal learning rate vs batch size"  # the report's first line


def _params(f) -> str:
    names = laws.PARAMS[f["law"]]
    return "; ".join(f"{n} = {fmt(f[n])} {interval(f[n + '_lo'], f[n + '_hi'])}" for n in names) + (
        " (B_noise at the edge of its search range)" if f["at_bound"] else ""
    )


def _reads(res: pd.DataFrame) -> dict[str, list[str]]:
    """The keys the sweep's model and optimizer read, from its run metadata; for tables written
    before it was recorded, the keys set away from the schema's defaults."""
    r = res.iloc[0]
    try:
        return read_meta(Path(r["source"]) / RESULTS)["reads"]
    except (KeyError, OSError, ValueError, TypeError):
        default = {"model": ModelConfig(name=""), "optimizer": OptimizerConfig(name="")}

        def set_(g, k, v):  # a table cell set away from the default v (lists as JSON text)
            cell = r.get(f"{g}_{k}")
            v = json.dumps(v) if isinstance(v, list | dict) else v
            return cell is not None and not pd.isna(cell) and cell != v

        return {g: [k for k, v in vars(d).items() if set_(g, k, v)] for g, d in default.items()}


def _settings(res: pd.DataFrame) -> str:
    """The settings of a sweep: its task's, and those its model and optimizer read."""
    r = res.iloc[0]
    # task_kind is a result column (the task name says it), not a setting
    cols = [c for c in res.columns if c.startswith("task_") and c != "task_kind"]
    cols += [f"{g}_{k}" for g, keys in _reads(res).items() for k in keys if f"{g}_{k}" in res]
    cols += ["budget_kind", "budget", "lr_min", "lr_max", "lr_num", "dtype", "sweep_id"]
    return ", ".join(f"{c}={r[c]}" for c in cols if not pd.isna(r[c]))


def render(a: Analysis, figs: dict[str, list[Path]], base: Path, sources: list[str]) -> str:
    """The report as markdown; figure links relative to base."""
    s = a.summary
    out = [TITLE, ""]
    out += [
        f"{len(s)} sweep(s), {len(a.res):,} lanes, read from "
        + ", ".join(f"`{p}`" for p in sources)
        + f". {metric.get(a.metric).method} through the three grid points around it (unless a "
        "neighbour sits on a divergence cliff or has diverged); intervals "
        f"are {level_of(a):.0%}: for eta*, a bootstrap over seeds widened for the number of "
        f"seeds (Student's t) and combined with {GRID_SD:g} lr grid steps of refinement error, "
        "calibrated against the exact theory (python -m sweeps.coverage); for law "
        "parameters, a bootstrap over residuals. Laws are fitted to log eta* weighted by the "
        "eta* intervals (each at least "
        f"{laws.GRID_FRACTION:g} of an lr grid step wide); minima on "
        "the edge of the lr grid are left out of the fits.",
        "",
    ]
    out += ["## Answers", ""]
    if (s["task"] == "regression").any():
        ans = answers(s, a.fits)
        for k, q in (
            ("a", "Linear regression + SGD: what function is eta*(B)?"),
            ("b", "MLP + SGD: how does the law differ?"),
            ("c", "Adam: does the scaling change?"),
        ):
            extra = theory_answer(a) if k == "a" else ""
            out += [f"**({k}) {q}** {ans[k]}{extra}", ""]
    out += other_tasks(s)
    if "comparison" in figs:
        out += [link(figs["comparison"], base, "eta* relative to the smallest batch size"), ""]
    out += ["## Sweeps", ""]
    rows = []
    for _, r in s.iterrows():
        ls = a.res[a.res["sweep_id"] == r["sweep_id"]]
        rows.append(
            [
                r["label"],
                f"{r['budget_kind']} {r['budget']:,}",
                f"{ls['batch_size'].min()}..{ls['batch_size'].max()} "
                f"({r['batch_sizes']}, {r['usable']} usable)",
                ls["lr"].nunique(),
                ls["seed"].nunique(),
                laws.TITLES[r["law"]] if fitted(r) else "none",
                fmt(r["slope"], ".2f") + " " + interval(r["slope_lo"], r["slope_hi"], ".2f"),
            ]
        )
    out += [
        table(
            ["sweep", "budget", "batch sizes", "lrs", "seeds", "best law", "small-batch slope"],
            rows,
        ),
        "",
    ]
    out += report_data.comparison(a.data, dict(zip(s["sweep_id"], s["label"], strict=True)))
    if len(s) > 4:
        out += _zoo(s)
    for _, r in s.iterrows():
        out += _section(a, r, figs, base)
    extra = notes(a) + a.problems + add_seeds(a.opt, a.fits)
    if extra:
        out += ["## Notes", ""] + [f"- {n}" for n in extra] + [""]
    return "\n".join(out)


def _optimatable(o: pd.DataFrame, level: float) -> str:
    """eta* per batch size with its interval, the loss (and accuracy, where there is one) there."""
    words, by_acc = metric.loss_words(o), metric.of(o).name == "accuracy"
    acc = o["accuracy"].notna().any()
    head = ["B", "eta*", f"{level:.0%} interval", "grid argmax" if by_acc else "grid argmin"]
    if by_acc:
        head += ["best accuracy (mean)", f"loss there (mean, {words})", "median loss there"]
    else:
        head += [f"best loss (mean, {words})", "median loss there"]
        head += ["accuracy there (mean)"] if acc else []
    rows = []
    for x in o.itertuples():
        row = [x.batch_size, fmt(x.eta), interval(x.eta_lo, x.eta_hi), fmt(x.eta_grid)]
        row += [fmt(x.accuracy, ".3f")] if by_acc else []
        row += [fmt(x.loss), fmt(x.loss_median)]
        row += [fmt(x.accuracy, ".3f")] if acc and not by_acc else []
        rows.append(row + [f"{x.diverged}/{x.lanes}", x.note or ("fitted" if x.usable else "")])
    return table([*head, "diverged lanes", "note"], rows)


def _section(a: Analysis, r, figs, base) -> list[str]:
    sid, lab = r["sweep_id"], r["label"]
    o = a.opt[a.opt["sweep_id"] == sid]
    out = [f"## {lab}", "", f"Settings: {_settings(a.res[a.res['sweep_id'] == sid])}.", ""]
    out += ["### Optimal learning rate per batch size", "", _optimatable(o, level_of(a)), ""]
    out += ["### Fitted laws", ""]
    f = a.fits[a.fits["sweep_id"] == sid]
    if len(f):
        rows = [
            [
                ("**" + laws.TITLES[x["law"]] + "**") if x["best"] else laws.TITLES[x["law"]],
                f"`{x['formula']}`",
                _params(x),
                f"{x['aic']:.1f}",
                f"{x['delta_aic']:.1f}",
            ]
            for _, x in f.iterrows()
        ]
        out += [
            table(["law", "fit", f"parameters ({level_of(a):.0%} interval)", "AIC", "ΔAIC"], rows),
            "",
        ]
        out += [f"Best by AIC: {r['words']}. Small-batch slope: {slope_text(r)}.", ""]
    else:
        out += [f"No law fitted: {r['reason']}.", ""]
    s = slug(lab)
    for name, alt in (
        ("eta_vs_batch", "eta* vs batch size"),
        ("loss_vs_lr", "loss vs lr"),
        ("heatmap", "loss heatmap"),
        ("accuracy_vs_lr", "accuracy vs lr"),
    ):
        if f"{s}_{name}" in figs:
            out += [link(figs[f"{s}_{name}"], base, f"{lab}: {alt}"), ""]
    res = a.res[a.res["sweep_id"] == sid]
    out += theory(a.theory[a.theory["sweep_id"] == sid], res, level_of(a))
    fit, steps = (t[t["sweep_id"] == sid] if len(t) else t for t in (a.critical, a.steps))
    out += critical_batch(fit, steps, level_of(a), figs, base, s, lab, metric.loss_words(o))
    out += report_data.section(a.data.of(sid) if a.data else None, lab, figs, base, level_of(a))
    out += noise(a.noise[a.noise["sweep_id"] == sid], res)
    return out


def _zoo(s: pd.DataFrame) -> list[str]:
    """Every sweep's small-batch exponent and best law, in one table."""
    rows = [
        [
            r["optimizer"],
            r["model"],
            r["label"],
            fmt(r["slope"], ".2f") + " " + interval(r["slope_lo"], r["slope_hi"], ".2f"),
            rule_text(r).removeprefix("; ") or "–",
            (f"{laws.TITLES[r['law']]}: {r['words']}" if fitted(r) else f"none: {r['reason']}"),
        ]
        for _, r in s.iterrows()
    ]
    return [
        "## Optimizer zoo",
        "",
        "Small-batch exponent: the slope of log eta* on log B over the smallest usable batch "
        "sizes, with its interval.",
        "",
        table(["optimizer", "model", "sweep", "small-B exponent", "reads as", "best law"], rows),
        "",
    ]

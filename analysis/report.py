"""report.md from saved results: per-batch-size optima, fitted laws, figures, the three answers.

python -m analysis.report DIR... [--out DIR/_analysis/report.md] [--skip-bad]
                         [--metric loss|accuracy]

The homework's questions are about the pinned regression task; sweeps of other tasks (classification
on mnist1d, digits, a user's file) get their own sections and laws but answer none of them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pandas as pd

from analysis import (
    compare,
    critical,
    figures,
    laws,
    metric,
    output,
    report_data,
    seeds,
    tables,
)
from analysis.answers import (
    answers,
    fitted,
    fmt,
    interval,
    level_of,
    other_tasks,
    rows_of,
    rule_text,
    slope_text,
)
from analysis.interval import GRID_SD
from analysis.output import OutputError
from analysis.plot import REPORT, Analysis, analyse, notes, out_dir, run
from sweeps.checks import USES


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)


def _params(f) -> str:
    names = laws.PARAMS[f["law"]]
    return "; ".join(f"{n} = {fmt(f[n])} {interval(f[n + '_lo'], f[n + '_hi'])}" for n in names) + (
        " (B_noise at the edge of its search range)" if f["at_bound"] else ""
    )


def _settings(res: pd.DataFrame) -> str:
    """The settings of a sweep that its model and optimizer read (sweeps.checks.USES)."""
    r = res.iloc[0]
    uses = {group: [f"{group}_{k}" for k in USES[group].get(r[group], [])] for group in USES}
    # task_kind is a result column (the task name says it), not a setting
    cols = [c for c in res.columns if c.startswith("task_") and c != "task_kind"]
    cols += [c for c in uses["model"] + uses["optimizer"] if c in res.columns]
    cols += ["budget_kind", "budget", "lr_min", "lr_max", "lr_num", "dtype", "sweep_id"]
    return ", ".join(f"{c}={r[c]}" for c in cols if not pd.isna(r[c]))


def _link(files: list[Path], base: Path, alt: str) -> str:
    png = next((f for f in files if f.suffix == ".png"), files[0])
    return f"![{alt}]({Path(os.path.relpath(png, base)).as_posix()})"


def render(a: Analysis, figs: dict[str, list[Path]], base: Path, sources: list[str]) -> str:
    """The report as markdown; figure links relative to base."""
    s = a.summary
    out = ["# Optimal learning rate vs batch size", ""]
    out += [
        f"{len(s)} sweep(s), {len(a.res):,} lanes, read from "
        + ", ".join(f"`{p}`" for p in sources)
        + f". {metric.get(a.metric).method} through the three grid points around it (unless a "
        "neighbour sits on a divergence cliff or has diverged); intervals "
        f"are {level_of(a):.0%}: for eta*, a bootstrap over seeds widened for the number of "
        f"seeds (Student's t) and combined with {GRID_SD:g} lr grid steps of refinement error, "
        "calibrated against the exact theory (python -m analysis.coverage); for law "
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
            extra = _theory_answer(a) if k == "a" else ""
            out += [f"**({k}) {q}** {ans[k]}{extra}", ""]
    out += other_tasks(s)
    if "comparison" in figs:
        out += [_link(figs["comparison"], base, "eta* relative to the smallest batch size"), ""]
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
        _table(
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
    extra = notes(a) + a.problems + seeds.add_seeds(a.opt, a.fits)
    if extra:
        out += ["## Notes", ""] + [f"- {n}" for n in extra] + [""]
    return "\n".join(out)


def _optima_table(o: pd.DataFrame, level: float) -> str:
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
    return _table([*head, "diverged lanes", "note"], rows)


def _section(a: Analysis, r, figs, base) -> list[str]:
    sid, lab = r["sweep_id"], r["label"]
    o = a.opt[a.opt["sweep_id"] == sid]
    out = [f"## {lab}", "", f"Settings: {_settings(a.res[a.res['sweep_id'] == sid])}.", ""]
    out += ["### Optimal learning rate per batch size", "", _optima_table(o, level_of(a)), ""]
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
            _table(["law", "fit", f"parameters ({level_of(a):.0%} interval)", "AIC", "ΔAIC"], rows),
            "",
        ]
        out += [f"Best by AIC: {r['words']}. Small-batch slope: {slope_text(r)}.", ""]
    else:
        out += [f"No law fitted: {r['reason']}.", ""]
    s = figures.slug(lab)
    for name, alt in (
        ("eta_vs_batch", "eta* vs batch size"),
        ("loss_vs_lr", "loss vs lr"),
        ("heatmap", "loss heatmap"),
        ("accuracy_vs_lr", "accuracy vs lr"),
    ):
        if f"{s}_{name}" in figs:
            out += [_link(figs[f"{s}_{name}"], base, f"{lab}: {alt}"), ""]
    res = a.res[a.res["sweep_id"] == sid]
    out += _theory(o, res)
    crit = a.crit.get(sid, "not computed")
    out += _critical(crit, level_of(a), figs, base, s, lab, metric.loss_words(o))
    out += report_data.section(a.data.of(sid) if a.data else None, lab, figs, base, level_of(a))
    out += _noise(res, f)
    return out


def _theory_answer(a: Analysis) -> str:
    """The theory verdict of each linear+SGD sweep, for answer (a)."""
    out = []
    for _, r in rows_of(a.summary, "linear", "sgd").iterrows():
        sid = r["sweep_id"]
        th = compare.predicted(a.res[a.res["sweep_id"] == sid])
        if th is not None:
            v = compare.versus(a.opt[a.opt["sweep_id"] == sid], th)
            out.append(f" Against the exact SGD theory ({r['label']}): {compare.verdict(v)}")
    return "".join(out)


def _theory(o: pd.DataFrame, res: pd.DataFrame) -> list[str]:
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
        _table(head, rows),
        "",
        compare.verdict(v),
        "",
    ]


def _critical(c, level: float, figs, base, s: str, lab: str, loss: str) -> list[str]:
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
        _table(
            ["quantity", "value", "unit", "95% interval (fit)", f"{level:.0%} interval (seeds)"],
            rows,
        ),
        "",
        _table(
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
            out += [_link(figs[f"{s}_{name}"], base, f"{lab}: {alt}"), ""]
    return out


def _noise(res: pd.DataFrame, fits: pd.DataFrame) -> list[str]:
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
            f"not measured: `python -m analysis.noise_scale {_shown(res['source'].iloc[0])}` "
            "measures it"
            if "source" in res
            else "not measured"
        )
    return ["### Gradient noise scale", ""] + [f"- {p_}" for p_ in parts] + [""]


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
        _table(["optimizer", "model", "sweep", "small-B exponent", "reads as", "best law"], rows),
        "",
    ]


def write_report(
    paths,
    out: str | Path | None = None,
    skip_bad: bool = False,
    n_boot: int = 1000,
    formats=figures.FORMATS,
    by: str = "loss",
) -> Path:
    """Draw the figures and write report.md (default: <common dir of paths>/_analysis/report.md)."""
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    return _write(analyse(paths, skip_bad=skip_bad, n_boot=n_boot, by=by), paths, out, formats)


def _shown(p) -> str:
    """A path as the report names it: relative to the working directory when below it."""
    p = Path(p).resolve()
    return str(p.relative_to(Path.cwd())) if p.is_relative_to(Path.cwd()) else str(p)


def _write(a: Analysis, paths, out, formats=figures.FORMATS) -> Path:
    """The figures beside the report, then the report itself, written whole or not at all
    (analysis.output.OutputError naming the path where either cannot be written)."""
    path = Path(out) if out else out_dir(paths, REPORT)
    if path.is_dir():
        raise OutputError(
            f"{path}: is a directory; --out names the report file, e.g. {path / 'report.md'}"
        )
    figs = figures.draw(
        a.res, a.curve, a.opt, a.fits, path.parent / "figures", formats, crit=a.crit, data=a.data
    )
    if a.data is not None:  # the tables the section across the data budget is written from
        tables.write(a.data, path.parent)
    text = render(a, figs, path.parent, [_shown(p) for p in paths])
    return output.write_text(path, text, "the report")


def main(argv=None) -> int:
    def body(args, a):
        out = args.out or out_dir(args.paths, REPORT)
        print(f"wrote {_write(a, args.paths, out, args.format.split(','))}")

    return run(
        argv,
        "analysis.report",
        "Write report.md (tables, fitted laws, figures, answers) for the given results.",
        body,
        "report file (default: <common dir of the inputs>/_analysis/report.md)",
    )


if __name__ == "__main__":
    sys.exit(main())

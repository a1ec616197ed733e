"""The analysis of the sweeps below some paths, in one pass: results -> every table (optima,
laws, theory, critical batch, noise scale, across the data budget) -> figures. The report and
the figures read these tables alone, and they are written beside them (analysis.tables).
`python -m analysis.plot` and `analysis.report` front it."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis import (
    across,
    critical,
    figures,
    figures_base,
    law_table,
    metric,
    noise,
    optimum,
    tables,
    theory_sweep,
)
from analysis.load import AnalysisError, load, load_curves


@dataclass(frozen=True)
class Analysis:
    """Every table the figures and the report are drawn from."""

    res: pd.DataFrame  # the results, one row per lane
    curve: pd.DataFrame  # seed-mean final loss per sweep, batch size and lr
    opt: pd.DataFrame  # eta*(B) at the budget, with its interval
    fits: pd.DataFrame  # every law fitted to eta*(B)
    summary: pd.DataFrame  # per sweep: the best law in words, the small-batch slope
    problems: list[str]
    theory: pd.DataFrame = field(default_factory=pd.DataFrame)  # analysis.theory_sweep.table
    critical: pd.DataFrame = field(default_factory=pd.DataFrame)  # per sweep: S_min, B_crit..
    steps: pd.DataFrame = field(default_factory=pd.DataFrame)  # per sweep and B: steps to target
    noise: pd.DataFrame = field(default_factory=pd.DataFrame)  # analysis.noise.table
    metric: str = "loss"  # what eta* optimises (analysis.metric)
    data: tables.Across | None = None  # across the data budget (sweeps with loss curves)


def warm_up(settings: dict | None = None, batch_sizes=()) -> None:
    """Do ahead, while a sweep trains, what the first figures of a process would wait for:
    matplotlib's mathtext parser, built on first use (0.25 s), and the exact theory (0.3 s) of
    the sweep with these settings columns and batch sizes, where the theory covers it."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.mathtext import MathTextParser

    MathTextParser("agg").parse(r"$10^{-1}$", 100, FontProperties())
    if settings is not None:
        theory_sweep.predicted(pd.DataFrame([{**settings, "batch_size": b} for b in batch_sizes]))


def curves_of(paths, skip_bad: bool) -> pd.DataFrame | str:
    """The loss curves below paths, or why there are none."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # load() already warned about skipped files
            return load_curves(paths, skip_bad=skip_bad)
    except AnalysisError as e:
        return f"no loss curves ({e})"


def criticals(cur: pd.DataFrame | str, res: pd.DataFrame, n_boot: int, seed: int) -> dict:
    """Critical batch size of every sweep from its loss curves, or why there is none."""
    ids = res["sweep_id"].unique()
    if isinstance(cur, str):
        return dict.fromkeys(ids, cur)
    by = dict(tuple(cur.groupby("sweep_id")))
    return {
        sid: critical.sweep_critical(by[sid], n_boot, seed) if sid in by else "no loss curves"
        for sid in ids
    }


def analyse(
    paths,
    skip_bad: bool = False,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    by: str = "loss",
    margin: float = across.EPS,
    curves: bool = True,
) -> Analysis:
    """Load the results below paths and compute optima (eta* by the metric `by`, loss or
    accuracy), fits, their summary, and from the loss curves (unless `curves` is false) the
    critical batch and the analysis across the data budget."""
    res = load(paths, skip_bad=skip_bad)
    metric.require(res, metric.get(by))
    opt = optimum.optima(res, n_boot=n_boot, level=level, seed=seed, by=by)
    fitted = law_table.fits(opt, n_boot=max(n_boot // 2, 1), level=level, seed=seed)
    cur = curves_of(paths, skip_bad) if curves else "not analysed"
    # the trade-off bootstrap refits every curve: a couple of hundred resamples is plenty
    crit, steps = critical.tables(criticals(cur, res, min(n_boot, 200), seed), level)
    data = (
        None
        if isinstance(cur, str)
        else tables.analyse(res, cur, fitted, n_boot, level, seed, by, margin)
    )
    return Analysis(
        res,
        optimum.curve(res),
        opt,
        fitted,
        law_table.summary(opt, fitted, level),
        optimum.problems(opt),
        theory_sweep.table(res, opt),
        crit,
        steps,
        noise.table(res, fitted),
        by,
        data,
    )


# Beside the results, under a name pyarrow's dataset discovery skips (a leading underscore), so
# pandas.read_parquet(<sweep dir>) still reads the results alone.
ANALYSIS = "_analysis"
FIGURES = f"{ANALYSIS}/figures"
REPORT = f"{ANALYSIS}/report.md"


def out_dir(paths: Iterable[str | Path], sub: str = "") -> Path:
    """The directory the inputs share (a file's own directory), joined with sub.

    Inputs that share nothing below the filesystem root write beside the first of them.
    """
    dirs = [(Path(p) if Path(p).is_dir() else Path(p).parent).resolve() for p in paths]
    common = Path(os.path.commonpath(dirs))
    return (dirs[0] if common == Path(common.anchor) else common) / sub


def plot_dirs(
    paths: Iterable[str | Path],
    out: str | Path | None = None,
    formats=figures_base.FORMATS,
    skip_bad: bool = False,
    by: str = "loss",
    main_only: bool = False,
) -> list[Path]:
    """Draw all figures of the sweeps below paths and write the analysis tables, into out or by
    default <common dir>/FIGURES and <common dir>/ANALYSIS; main_only: the figures of
    figures_base.MAIN alone, without the tables."""
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    a = analyse(paths, skip_bad=skip_bad, by=by, curves=not main_only)
    for p in a.problems:
        warnings.warn(p, stacklevel=2)
    only = figures_base.MAIN if main_only else None
    files = figures.draw(a, Path(out or out_dir(paths, FIGURES)), formats, only=only)
    if not main_only:
        write_tables(a, paths, out)
    return [f for fs in files.values() for f in fs]


def write_tables(a: Analysis, paths, out: str | Path | None = None) -> list[Path]:
    """The analysis tables (analysis.tables) into out, by default <common dir>/_analysis."""
    return tables.write(a, Path(out or out_dir(paths, ANALYSIS)))

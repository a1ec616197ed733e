"""Figures across the data budget D of each sweep (`analysis.tables.Across`):

<sweep>_eta_vs_batch_by_data  eta*(B | D), one line per D, coloured by D, log-log
<sweep>_eta_map               eta* over (B, D) as a heatmap
<sweep>_batch_vs_data         B_opt(D) and B_crit(D) with intervals and fitted power laws, the
                              exact theory where it applies, the literature's exponents
"""

from __future__ import annotations

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis import across, across_laws, figures_base


def _d_norm(D) -> mcolors.LogNorm:
    D = np.asarray(D, float)
    return mcolors.LogNorm(vmin=D.min(), vmax=max(D.max(), D.min() * 1.01))


def _units(o: pd.DataFrame) -> str:
    return "samples" if o["budget_kind"].iloc[0] == "samples" else "steps; D = steps x B"


def eta_by_data(o: pd.DataFrame, label: str, ax=None, overlays=(), ctx=None):
    """eta*(B | D): the usable optima of every D as one line, coloured by D."""
    ax = figures_base.new_axes(ax)
    u = o[o["usable"]]
    key = across.d_axis(o)
    norm, cmap = _d_norm(o[key]), plt.get_cmap("viridis")
    for D, g in u.groupby(key, sort=True):
        g = g.sort_values("batch_size")
        ax.plot(g["batch_size"], g["eta"], "o-", ms=3, lw=1, color=cmap(norm(D)), alpha=0.85)
    budget = u[u[key] == u[key].max()].sort_values("batch_size")
    ax.plot(budget["batch_size"], budget["eta"], "k-", lw=2, label="at the budget (eta*(B))")
    ax.set(xscale="log", yscale="log", xlabel="batch size B", ylabel="optimal learning rate η*")
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    ax.figure.colorbar(sm, ax=ax, label=f"data budget D ({_units(o)})")
    ax.set_title(f"{label}: η*(B) at every data budget D\n(usable optima; one line per D)")
    ax.legend(loc="best", fontsize=8)
    figures_base.overlay(ax, ctx, overlays)
    return ax


def eta_map(o: pd.DataFrame, label: str, ax=None, overlays=(), ctx=None):
    """eta* over (B, D) as a heatmap; cells without a located eta* are blank."""
    ax = figures_base.new_axes(ax)
    u = o[o["usable"]]
    key = across.d_axis(o)
    grid = u.pivot_table(index=key, columns="batch_size", values="eta", aggfunc="first")
    grid = grid.reindex(index=sorted(o[key].unique()), columns=sorted(o["batch_size"].unique()))
    Z = np.log10(grid.to_numpy(float))
    im = ax.imshow(Z, origin="lower", aspect="auto", cmap="magma")
    ax.figure.colorbar(im, ax=ax, label="log10 η*")
    step = max(1, len(grid.index) // 10)
    ax.set_yticks(range(0, len(grid.index), step))
    ax.set_yticklabels([f"{d:.3g}" for d in grid.index[::step]])
    ax.set_xticks(range(len(grid.columns)))
    ax.set_xticklabels([str(b) for b in grid.columns], rotation=45)
    ax.set(xlabel="batch size B", ylabel=f"data budget D ({_units(o)})")
    ax.grid(False)
    ax.set_title(f"{label}: η* over batch size and data budget\n(blank: η* not located)")
    figures_base.overlay(ax, ctx, overlays)
    return ax


SERIES = [
    ("B_opt", "B_opt (lowest loss at D)", "C0", "B_opt ~ D^gamma"),
    ("B_crit_se", "B_crit (S-E fit)", "C3", "B_crit (S-E fit) ~ D^k"),
    ("B_crit_zhang", "B_crit (steps 20% over linear)", "C2", "B_crit (Zhang 20%) ~ D^k"),
]


def batch_vs_data(t: pd.DataFrame, fits: pd.DataFrame, label: str, ax=None, overlays=(), ctx=None):
    """B_opt(D) and B_crit(D) with intervals, their power laws, theory and the literature."""
    ax = figures_base.new_axes(ax, size=(11.5, 5.2))
    D = t["samples"].to_numpy(float)
    for col, name, c, law in SERIES:
        y = t[col].to_numpy(float)
        ok = np.isfinite(y) & (y > 0)
        if col == "B_opt":
            ok &= t["B_opt_edge"].fillna("").eq("").to_numpy()
        lo = t[f"{col}_lo"].to_numpy(float, na_value=np.nan)
        hi = t[f"{col}_hi"].to_numpy(float, na_value=np.nan)
        # an unbounded end (+inf: beyond the batch sizes) is drawn to the point
        lo, hi = np.where(np.isfinite(lo), lo, y), np.where(np.isfinite(hi), hi, y)
        yerr = np.abs(np.vstack([y[ok] - lo[ok], hi[ok] - y[ok]]))
        ax.errorbar(D[ok], y[ok], yerr=yerr, fmt="o", ms=4, color=c, capsize=2, label=name)
        p = fits[(fits["law"] == law)].set_index("parameter")["value"]
        if {"prefactor", "exponent"} <= set(p.index) and ok.any():
            xs = np.geomspace(D[ok].min(), D[ok].max(), 50)
            k = p["exponent"]
            ax.plot(
                xs,
                p["prefactor"] * xs**k,
                "-",
                color=c,
                lw=1.2,
                label=f"{name.split(' (')[0]} fit: ∝ D^{k:.2f}",
            )
        th = f"{col}_theory"
        if th in t and np.isfinite(t[th].to_numpy(float)).any():
            ax.plot(D, t[th], ":", color=c, lw=1.5, label=f"{name}, exact theory")
    ok = t["B_opt"].gt(0) & np.isfinite(t["B_opt"].to_numpy(float))
    if ok.any():  # literature exponents, anchored at the geometric middle of the measurements
        d0 = float(np.exp(np.log(D[ok]).mean()))
        b0 = float(np.exp(np.log(t.loc[ok, "B_opt"]).mean()))
        xs = np.geomspace(D.min(), D.max(), 20)
        refs = [(k, src) for q, k, src in across_laws.LITERATURE if q == "B_opt"]
        for (k, src), ls in zip(refs, ["--", "-.", ":"], strict=False):
            ax.plot(xs, b0 * (xs / d0) ** k, ls, color="0.5", lw=1, label=f"B_opt ∝ D^{k} ({src})")
    ax.set(xscale="log", yscale="log", xlabel=f"data budget D ({_units(t)})", ylabel="batch size")
    ax.set_title(
        f"{label}: best and critical batch size vs data budget\n(intervals: bootstrap over seeds)"
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, borderaxespad=0)
    figures_base.overlay(ax, ctx, overlays)
    return ax


def _of_data(fn):
    def draw(ctx: dict, overlays):
        d = ctx.get("data")
        if d is None or not d.optima["usable"].any():
            return None  # nothing located: nothing to draw on log axes
        return fn(d, ctx, overlays)

    return draw


def _eta_by_data(d, ctx, overlays):
    return eta_by_data(d.optima, ctx["label"], overlays=overlays, ctx=ctx)


def _eta_map(d, ctx, overlays):
    return eta_map(d.optima, ctx["label"], overlays=overlays, ctx=ctx)


def _batch_vs_data(d, ctx, overlays):
    t = d.table
    cols = [c for c, *_ in SERIES]
    if t.empty or not (t[cols].to_numpy(float, na_value=np.nan) > 0).any(axis=None):
        return None
    return batch_vs_data(d.table, d.laws, ctx["label"], overlays=overlays, ctx=ctx)


# name -> draw(ctx, overlays), an Axes or None: the figures across the data budget of a sweep
FIGURES = {
    "eta_vs_batch_by_data": _of_data(_eta_by_data),
    "eta_map": _of_data(_eta_map),
    "batch_vs_data": _of_data(_batch_vs_data),
}

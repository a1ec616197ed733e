"""The two critical-batch figures of a sweep (`analysis.critical`): steps to the target loss vs
batch size, and the samples-vs-steps trade-off.

`figures.draw` draws them for every sweep whose critical batch size could be had.
"""

from __future__ import annotations

import numpy as np

from analysis import critical, figures_base, metric


def _critical_title(label: str, crit, what: str, ctx: dict | None) -> str:
    named = ctx and "opt" in ctx
    target = metric.loss_value(ctx["opt"], crit.target) if named else f"loss {crit.target:.3g}"
    return f"{label}: {what}\n(to eval {target}, at the best lr of each batch size)"


def steps_vs_batch(crit, label: str, ax=None, overlays=(), ctx=None):
    """Steps to the target loss vs B (log-log) with the fitted S(B) and perfect scaling."""
    ax = figures_base.new_axes(ax, (7.5, 5))
    t, f = crit.table, crit.fit
    B, S = t["batch_size"].to_numpy(float), t["steps"].to_numpy(float)
    g = np.geomspace(B.min() / 1.3, B.max() * 1.3, 200)
    ax.plot(g, S[0] * B[0] / g, color="0.5", ls=":", lw=1.4, label="perfect scaling S ∝ 1/B")
    ax.axhline(f.S_min, color="tab:green", ls="--", lw=1.2, label=f"S_min = {f.S_min:.3g} steps")
    lo, hi = f.B_crit_ci
    # a fit that leaves B_crit unconstrained has the interval (0, inf), or none at all
    band = 0 < lo and hi < np.inf
    if band:
        ax.axvspan(lo, hi, color="tab:orange", alpha=0.12, lw=0)
    ax.axvline(
        f.B_crit,
        color="tab:orange",
        lw=1.4,
        label=f"B_crit = E_min/S_min = {f.B_crit:.3g} "
        + ("(band: 95% interval)" if band else "(95% interval unbounded)"),
    )
    ax.plot(
        g,
        f.S_min + f.E_min / g,
        color="tab:blue",
        lw=2,
        label="fit S = S_min (1 + B_crit/B)",
    )
    ax.plot(B, S, "o", color="k", ms=5, zorder=4, label="measured (seed-mean curves)")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="batch size B (samples per step)",
        ylabel="steps to target S (optimizer steps)",
    )
    figures_base.batch_axis(ax, B)
    ax.set_ylim(min(S.min(), f.S_min) / 2.5, S.max() * 1.6)  # the 1/B line would run off
    # Shallue et al. 2019's three regimes, where the range shows them
    tr = ax.get_xaxis_transform()
    for x, text in (
        (f.B_crit / 8, "perfect\nscaling"),
        (f.B_crit, "diminishing\nreturns"),
        (f.B_crit * 8, "maximal data\nparallelism"),
    ):
        if B.min() <= x <= B.max():
            ax.text(x, 0.03, text, transform=tr, ha="center", va="bottom", fontsize="small")
    ax.set_title(_critical_title(label, crit, "steps to target vs batch size", ctx))
    figures_base.overlay(ax, ctx, overlays)
    ax.legend(loc="upper right", fontsize="small", frameon=False)
    return ax


def tradeoff(crit, label: str, ax=None, overlays=(), ctx=None):
    """Samples vs steps to the target loss: the measured points and the fitted hyperbola."""
    ax = figures_base.new_axes(ax, (7.5, 5))
    t, f = crit.table, crit.fit
    B = t["batch_size"].to_numpy(float)
    g = np.geomspace(B.min() / 2, B.max() * 2, 300)
    S, E = critical.tradeoff_curve(f.S_min, f.E_min, g)
    ax.plot(S, E, color="tab:blue", lw=2, label="fit (S/S_min − 1)(E/E_min − 1) = 1")
    ax.axvline(f.S_min, color="tab:green", ls="--", lw=1.2, label=f"S_min = {f.S_min:.3g} steps")
    ax.axhline(f.E_min, color="tab:purple", ls="--", lw=1.2, label=f"E_min = {f.E_min:.3g} samples")
    col = figures_base.colors(B)
    for b, s_, e in zip(B, t["steps"], t["samples"], strict=True):
        ax.scatter(s_, e, color=col[int(b)], edgecolors="k", linewidths=0.5, s=40, zorder=4)
        ax.annotate(
            f"{int(b)}", (s_, e), xytext=(4, 3), textcoords="offset points", fontsize="x-small"
        )
    ax.scatter([], [], color="0.6", edgecolors="k", s=40, label="measured, labelled by B")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="steps to target S (optimizer steps)",
        ylabel="samples to target E = B·S",
    )
    ax.set_title(_critical_title(label, crit, "samples vs steps trade-off", ctx))
    figures_base.overlay(ax, ctx, overlays)
    ax.legend(loc="upper right", fontsize="small", frameon=False)
    return ax


def _of_critical(fn):
    def draw(ctx: dict, overlays):
        crit = ctx.get("crit")
        return None if crit is None else fn(crit, ctx["label"], None, overlays, ctx)

    return draw


# name -> draw(ctx, overlays): the critical-batch figures of a sweep (ctx["crit"])
FIGURES = {"steps_vs_batch": _of_critical(steps_vs_batch), "tradeoff": _of_critical(tradeoff)}

"""The figures of one sweep (loss vs lr, eta* vs B, heatmap), one across sweeps (comparison), and
`draw`, which draws them and the accuracy, critical-batch and data-budget figures: every figure
lrscale draws is listed in `draw`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import (
    critical,
    figures_accuracy,
    figures_critical,
    figures_data,
    figures_theory,
    laws,
    metric,
    output,
)
from analysis.figures_base import (
    COLORBLIND,
    DIVERGED,
    FORMATS,
    MARKERS,
    batch_axis,
    lr_legend,
    new_axes,
    overlay,
    per_lr,
    save,
    subtitle,
)
from analysis.prose import slug


def loss_vs_lr(curve: pd.DataFrame, opt: pd.DataFrame, ax=None, overlays=(), ctx=None):
    """Seed-mean final eval loss vs lr, one line per batch size; eta* starred; divergence shaded."""
    ax = new_axes(ax)
    col = per_lr(ax, curve, opt, "mean", "loss")
    ax.set(yscale="log", xlabel="learning rate η", ylabel=metric.loss_label(curve))
    ax.set_title(f"{opt['label'].iloc[0]}: loss vs learning rate\n({subtitle(opt)})")
    overlay(ax, ctx, overlays)  # before the legend, so labelled lines join it
    lr_legend(ax, curve, col, metric.of(opt).star)
    return ax


def _unlocated(opt: pd.DataFrame) -> pd.Series:
    """Rows whose grid does not locate eta*: a flat curve, or one lr without a diverged seed."""
    one = opt["finite_lrs"].eq(1) if "finite_lrs" in opt.columns else False
    return opt["status"].eq("unidentified") | (opt["status"].eq("edge") & one)


def eta_vs_batch(opt: pd.DataFrame, fitted: pd.DataFrame, ax=None, overlays=(), ctx=None):
    """eta* vs B with bootstrap intervals and every fitted law; the AIC-best one emphasised."""
    ax = new_axes(ax, (7, 5.6))
    u = opt[opt["usable"]]
    lo = (u["eta"] - u["eta_lo"]).fillna(0).clip(lower=0)
    hi = (u["eta_hi"] - u["eta"]).fillna(0).clip(lower=0)
    ax.errorbar(
        u["batch_size"],
        u["eta"],
        yerr=[lo, hi],
        fmt="o",
        color="k",
        ms=5,
        capsize=3,
        zorder=4,
        label=f"η* with {opt['level'].iloc[0]:.0%} bootstrap interval",
    )
    for edge, mk, way in (("low", "v", "below"), ("high", "^", "above")):
        e = opt[opt["edge"].eq(edge) & opt["status"].eq("edge") & ~_unlocated(opt)]
        if len(e):
            ax.scatter(
                e["batch_size"],
                e["eta"],
                marker=mk,
                s=50,
                facecolors="none",
                edgecolors="tab:red",
                zorder=4,
                label=f"minimum at the grid edge (true η* {way}; not fitted)",
            )
    # the grid's argmin where it says nothing about eta*
    u = opt[_unlocated(opt) & np.isfinite(opt["eta"])]
    if len(u):
        ax.scatter(
            u["batch_size"],
            u["eta"],
            marker="x",
            s=40,
            color="0.45",
            zorder=4,
            label="η* not identified by the grid (not fitted)",
        )
    B = opt["batch_size"][np.isfinite(opt["eta"])]
    if len(fitted) and len(B):
        grid = np.geomspace(B.min() / 1.4, B.max() * 1.4, 200)
        pal = dict(zip(laws.LAWS, COLORBLIND, strict=True))
        for r in fitted.sort_values("aic").itertuples():
            p = r._asdict()
            if r.best:
                name = f"best by AIC: {laws.TITLES[r.law]}\n{laws.formula(r.law, p)}"
                ax.plot(
                    grid,
                    laws.predict(r.law, p, grid),
                    color=pal[r.law],
                    lw=2.6,
                    zorder=3,
                    label=name,
                )
            else:
                ax.plot(
                    grid,
                    laws.predict(r.law, p, grid),
                    color=pal[r.law],
                    lw=1.2,
                    ls="--",
                    alpha=0.85,
                    label=f"{laws.TITLES[r.law]}, ΔAIC = {r.delta_aic:.1f}",
                )
    elif len(opt):
        n = int(opt["usable"].sum())
        ax.text(
            0.02,
            0.04,
            f"no law fitted: {n} usable batch size(s), 3 needed",
            transform=ax.transAxes,
            fontsize="small",
            color="tab:red",
        )
    dead = opt[opt["status"].eq("diverged")]["batch_size"]
    if len(dead):
        ax.text(
            0.98,
            0.04,
            "all lanes diverged at B = " + ", ".join(map(str, dead)),
            transform=ax.transAxes,
            ha="right",
            fontsize="small",
            color="tab:red",
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="batch size B (samples per step)",
        ylabel="optimal learning rate η*",
    )
    batch_axis(ax, opt["batch_size"])
    ax.set_title(f"{opt['label'].iloc[0]}: optimal learning rate vs batch size\n({subtitle(opt)})")
    overlay(ax, ctx, overlays)  # before the legend, so labelled lines join it
    ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize="small", ncol=2, frameon=False
    )
    return ax


def comparison(opt: pd.DataFrame, ax=None, overlays=(), ctx=None):
    """eta*(B) / eta*(smallest usable B) of every sweep, so slopes compare on one plot."""
    import seaborn as sns

    labels = sorted(opt["label"].unique())
    ax = new_axes(ax, (9.5, 4.8 + 0.2 * max(0, len(labels) - 6)))
    # many sweeps (an optimizer zoo): a distinct colour and marker each, dashes for the MLP
    pal = dict(
        zip(
            labels,
            sns.color_palette("colorblind" if len(labels) <= 10 else "husl", len(labels)),
            strict=True,
        )
    )
    mk = dict(zip(labels, [MARKERS[i % len(MARKERS)] for i in range(len(labels))], strict=True))
    model = opt.drop_duplicates("label").set_index("label")["model"]
    Bs = []
    for lab in labels:
        u = opt[(opt["label"] == lab) & opt["usable"]].sort_values("batch_size")
        if not len(u):
            continue
        ref, b_ref = u["eta"].iloc[0], u["batch_size"].iloc[0]
        y = u["eta"] / ref
        err = [
            (u["eta"] - u["eta_lo"]).fillna(0).clip(lower=0) / ref,
            (u["eta_hi"] - u["eta"]).fillna(0).clip(lower=0) / ref,
        ]
        ax.errorbar(
            u["batch_size"],
            y,
            yerr=err,
            marker=mk[lab],
            ms=5,
            capsize=2,
            elinewidth=0.8,
            lw=1.6 if len(labels) <= 6 else 1.2,
            ls="--" if model[lab] == "mlp" else "-",
            alpha=0.9,
            color=pal[lab],
            label=f"{lab} (η* = {ref:.3g} at B = {b_ref})",
        )
        Bs += list(u["batch_size"])
    if Bs:
        b0, b1 = min(Bs), max(Bs)
        g = np.geomspace(b0, b1, 50)
        for p, name, ls in ((1.0, "∝ B", ":"), (0.5, "∝ √B", "-.")):
            ax.plot(g, (g / b0) ** p, color="0.55", ls=ls, lw=1.2, label=f"reference {name}")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="batch size B (samples per step)",
        ylabel="η*(B) / η*(smallest B)",
    )
    batch_axis(ax, Bs)
    by = " (η* maximises accuracy)" if metric.of(opt).name == "accuracy" else ""
    ax.set_title(f"Optimal learning rate vs batch size, relative to the smallest batch size{by}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small", frameon=False)
    overlay(ax, ctx, overlays)
    return ax


def heatmap(curve: pd.DataFrame, opt: pd.DataFrame, ax=None, overlays=(), ctx=None):
    """log10 seed-mean loss over (batch size, lr); diverged cells dark; eta* marked per row."""
    import seaborn as sns

    ax = new_axes(ax, (8, 4.8))
    P = curve.pivot_table(index="batch_size", columns="lr", values="mean", aggfunc="first")
    P = P.sort_index(ascending=False)  # small batches at the bottom, like the other figures
    with np.errstate(divide="ignore", invalid="ignore"):
        Z = np.log10(P.where(np.isfinite(P)))
    sns.heatmap(
        Z,
        ax=ax,
        cmap="rocket_r",
        mask=Z.isna(),
        cbar_kws={"label": f"log10 {metric.loss_label(curve)}, seed mean"},
    )
    ax.set_facecolor(DIVERGED)
    ax.grid(False)
    lrs = P.columns.to_numpy(float)
    step = max(1, len(lrs) // 8)
    ax.set_xticks(
        np.arange(0, len(lrs), step) + 0.5,
        [f"{v:.2g}" for v in lrs[::step]],
        rotation=45,
        ha="right",
    )
    ax.set_yticks(np.arange(len(P)) + 0.5, [str(b) for b in P.index], rotation=0)
    rows = {b: i for i, b in enumerate(P.index)}
    e = opt[np.isfinite(opt["eta"])]
    if len(e) and len(lrs) > 1:
        xs = np.interp(np.log10(e["eta"]), np.log10(lrs), np.arange(len(lrs))) + 0.5
        ys = [rows[b] + 0.5 for b in e["batch_size"]]
        ax.scatter(xs, ys, marker="*", s=90, c="w", edgecolors="k", linewidths=0.6, zorder=3)
    # the key goes in the x label: a legend below rotated tick labels gets clipped
    ax.set(
        xlabel=f"learning rate η\n☆ {metric.of(opt).star}"
        "    dark grey: a seed diverged, or not run",
        ylabel="batch size B (samples per step)",
    )
    ax.set_title(
        f"{opt['label'].iloc[0]}: loss over batch size and learning rate\n({subtitle(opt)})"
    )
    overlay(ax, ctx, overlays)
    return ax


def draw(a, out: Path, formats: Sequence[str] = FORMATS, only: Sequence[str] | None = None):
    """Every figure of every sweep of the analysis `a` (analysis.pipeline.Analysis), plus the
    comparison, into out/; {figure name: files}.

    only: the kinds to draw (MAIN: what a user looks at first), None for every one. A sweep
    without a single finite seed-mean loss gets no figures (optimum.problems says why).
    Raises analysis.output.OutputError where out or a figure in it cannot be written.
    """
    output.make_dir(out, "the figures")
    theory = {"loss_vs_lr": (figures_theory.edge_overlay,)}
    theory["eta_vs_batch"] = (figures_theory.eta_overlay,)
    files: dict[str, list[Path]] = {}

    def want(name: str) -> bool:
        return only is None or name in only

    for sid, o in a.opt.groupby("sweep_id", sort=True):
        lab = o["label"].iloc[0]
        c = a.curve[a.curve["sweep_id"] == sid]
        if not np.isfinite(c["mean"]).any():
            continue  # every lr diverged for a seed at every B: nothing to draw on log axes
        f = a.fits[a.fits["sweep_id"] == sid] if len(a.fits) else a.fits
        ctx = dict(res=a.res[a.res["sweep_id"] == sid], curve=c, opt=o, fits=f, label=lab)
        ctx["theory"] = a.theory[a.theory["sweep_id"] == sid]
        ctx["data"] = a.data.of(sid) if a.data is not None else None
        ctx["crit"] = _critical(a, sid)
        part = functools.partial
        kinds = {  # drawn and saved one at a time, in this order
            "loss_vs_lr": part(loss_vs_lr, c, o, overlays=theory["loss_vs_lr"], ctx=ctx),
            "eta_vs_batch": part(eta_vs_batch, o, f, overlays=theory["eta_vs_batch"], ctx=ctx),
            "heatmap": part(heatmap, c, o, ctx=ctx),
            "accuracy_vs_lr": part(figures_accuracy.draw, ctx, ()),
            **{name: part(fn, ctx, ()) for name, fn in figures_data.FIGURES.items()},
            **{name: part(fn, ctx, ()) for name, fn in figures_critical.FIGURES.items()},
        }
        for name, draw_one in kinds.items():
            ax = draw_one() if want(name) else None
            if ax is not None:
                files[f"{slug(lab)}_{name}"] = save(ax, out / f"{slug(lab)}_{name}", formats)
    several = a.opt["sweep_id"].nunique() > 1
    if a.opt["usable"].any() and (only is None or ("comparison" in only and several)):
        ctx = dict(res=a.res, curve=a.curve, opt=a.opt, fits=a.fits, label="all sweeps")
        files["comparison"] = save(comparison(a.opt, ctx=ctx), out / "comparison", formats)
    return files


def _critical(a, sweep_id: str):
    """The sweep's critical batch size (analysis.critical.Critical) from the tables, or None."""
    fit = a.critical[a.critical["sweep_id"] == sweep_id] if len(a.critical) else a.critical
    if not len(fit) or fit["why"].iloc[0]:
        return None
    return critical.view(fit.iloc[0], a.steps[a.steps["sweep_id"] == sweep_id])

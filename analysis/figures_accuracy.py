"""The accuracy-vs-learning-rate figure of each sweep that has an accuracy (classification).

`figures.draw` adds <sweep>_accuracy_vs_lr beside the loss figures.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import figures_base, metric


def accuracy_vs_lr(curve: pd.DataFrame, opt: pd.DataFrame, ax=None, overlays=(), ctx=None):
    """Seed-mean final eval accuracy vs lr, one line per batch size; eta* starred; divergence
    shaded (a diverged lane's accuracy is 0, so it pulls the seed mean down)."""
    ax = figures_base.new_axes(ax)
    col = figures_base.per_lr(ax, curve, opt, "accuracy", "accuracy")
    ax.set(xlabel="learning rate η", ylabel="final eval accuracy (seed mean)")
    top = np.nanmax(curve["accuracy"].to_numpy(float))
    ax.set_ylim(0, min(1.0, top + 0.05) if np.isfinite(top) else 1.0)
    sub = figures_base.subtitle(opt)
    ax.set_title(f"{opt['label'].iloc[0]}: accuracy vs learning rate\n({sub})")
    figures_base.overlay(ax, ctx, overlays)
    figures_base.lr_legend(ax, curve, col, metric.of(opt).star)
    return ax


def draw(ctx: dict, overlays):
    c = ctx["curve"]
    if not np.isfinite(c["accuracy"].to_numpy(float)).any():
        return None  # a regression sweep
    return accuracy_vs_lr(c, ctx["opt"], overlays=overlays, ctx=ctx)

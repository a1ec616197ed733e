"""The exact theory on the figures of a sweep it covers (analysis.theory_sweep's table): the
theory line and the divergence edge on the eta*-vs-B figure, a tick at each batch size's
divergence edge on the loss-vs-lr figure."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import figures_base

THEORY = "tab:red"


def _theory(ctx: dict) -> pd.DataFrame | None:
    """The theory rows of the sweep drawn (ctx["theory"]), or None where it has none."""
    th = ctx.get("theory")
    return None if th is None or not len(th) or th["why"].ne("").all() else th


def eta_overlay(ax, ctx: dict) -> None:
    """Theory eta*(B) and the divergence edge on the eta*-vs-B figure."""
    th = _theory(ctx)
    if th is None:
        return
    th = th[np.isfinite(th["lr_opt"].to_numpy(float))]
    ax.plot(
        th["batch_size"],
        th["lr_opt"],
        color=THEORY,
        lw=1.8,
        marker="_",
        ms=10,
        zorder=3.5,
        label="exact SGD theory η*(B), same budget",
    )
    ax.plot(
        th["batch_size"],
        th["lr_edge"],
        color=THEORY,
        lw=1.2,
        ls=(0, (4, 2)),
        alpha=0.8,
        zorder=3.4,
        label="divergence edge η_max(B) (exact theory)",
    )


def edge_overlay(ax, ctx: dict) -> None:
    """A tick at each batch size's divergence edge, in its colour, along the lr axis."""
    th = _theory(ctx)
    if th is None:
        return
    col = figures_base.colors(th["batch_size"])
    tr = ax.get_xaxis_transform()
    for b, e in zip(th["batch_size"], th["lr_edge"], strict=True):
        ax.plot([e, e], [0.0, 0.07], color=col[int(b)], lw=2.2, transform=tr, zorder=6)
    ax.plot([], [], color="0.3", lw=2.2, label="divergence edge η_max(B),\nexact theory (tick)")

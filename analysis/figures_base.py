"""What every figure shares: the style, the axes helpers (batch-size axis, colours, the per-lr
curves and their legend), overlays and saving.

Every figure function draws on `ax` (a new figure from `new_axes` when None), returns the Axes,
and calls each overlay `fn(ax, ctx)` it is given once the data, axes and title are drawn but
before the legend (so an overlay's labelled lines join it), so that other modules can add lines
(a theory curve, a divergence edge) without touching the figure. `ctx` holds the sweep's tables:
"res" (results rows), "curve", "opt", "fits", "theory", "label". `analysis.figures` lists every
figure and overlay it draws.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullLocator  # noqa: E402

from analysis import metric, output  # noqa: E402

Overlay = Callable[[plt.Axes, dict], None]
FORMATS = ("png", "svg")
MAIN = ("loss_vs_lr", "eta_vs_batch", "comparison")  # the comparison where there are several
# seaborn's "whitegrid" look from matplotlib's own copy of it: importing seaborn costs a second,
# so only the heatmap and the comparison of many sweeps, which need it, import it
STYLE = ["seaborn-v0_8-whitegrid", {"axes.edgecolor": "0.3", "legend.frameon": True}]
COLORBLIND = ("#0173b2", "#de8f05", "#029e73")  # the first three of seaborn's "colorblind"
DIVERGED = "0.3"
MARKERS = "osD^vP*Xh<>p"


def overlay(ax, ctx: dict | None, overlays: Iterable[Overlay]) -> None:
    for fn in overlays:
        fn(ax, ctx or {})


def new_axes(ax, size=(7.5, 4.8)):
    if ax is not None:
        return ax
    with plt.style.context(STYLE):
        _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def colors(batch_sizes) -> dict:
    """A sequential colour per batch size, evenly spaced in log B."""
    bs = sorted(set(int(b) for b in batch_sizes))
    cmap = matplotlib.colormaps["viridis"]
    norm = LogNorm(min(bs), max(bs)) if len(bs) > 1 and min(bs) > 0 else (lambda b: 0.5)
    return {b: cmap(0.9 * float(norm(b))) for b in bs}  # stop short of the palest yellow


def batch_axis(ax, batch_sizes) -> None:
    """Log x axis ticked at the batch sizes themselves, at most about 12 of them."""
    bs = np.unique(np.asarray(batch_sizes, float))
    ax.set_xscale("log")
    if len(bs):
        ax.set_xticks(bs[:: max(1, -(-len(bs) // 12))])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())


def subtitle(opt: pd.DataFrame) -> str:
    r = opt.iloc[0]
    by = ", η* maximises accuracy" if metric.of(opt).name == "accuracy" else ""
    return (
        f"{r['budget_kind']} budget {r['budget']:,}, mean over {int(opt['seeds'].max())} seeds{by}"
    )


def per_lr(ax, curve: pd.DataFrame, opt: pd.DataFrame, y: str, y_star: str) -> dict:
    """Seed-mean curve[y] vs lr, a line per batch size, and eta* starred at opt[y_star]
    (hollow where not usable); returns the colour per batch size."""
    col = colors(curve["batch_size"])
    for b, g in curve.groupby("batch_size", sort=True):
        ok = np.isfinite(g[y].to_numpy(float))
        ax.plot(g["lr"][ok], g[y][ok], color=col[b], marker=".", ms=4, lw=1.4, label=f"{b}")
    for r in opt.itertuples():
        if np.isfinite(r.eta):
            hollow = r.status != "ok"
            ax.scatter(
                r.eta,
                getattr(r, y_star),
                marker="*",
                s=150,
                zorder=5,
                linewidths=0.8,
                edgecolors=col[r.batch_size] if hollow else "k",
                facecolors="none" if hollow else col[r.batch_size],
            )
    ax.set_xscale("log")
    ax.set_xlim(curve["lr"].min() / 1.25, curve["lr"].max() * 1.25)
    return col


def lr_legend(ax, curve: pd.DataFrame, col: dict, star: str) -> None:
    """Shade the lrs where a seed diverged, mark each batch size's first, and draw the legend."""
    handles, names = ax.get_legend_handles_labels()
    div = curve[~np.isfinite(curve["mean"].to_numpy(float))]
    first_div = div.groupby("batch_size", sort=True)["lr"].min().to_dict()
    if first_div:
        lo, hi = min(first_div.values()), max(first_div.values())
        right = curve["lr"].max() * 1.25
        ax.axvspan(lo, right, color="tab:red", alpha=0.07, lw=0)
        ax.axvspan(hi, right, color="tab:red", alpha=0.12, lw=0)
        tr = ax.get_xaxis_transform()
        for b, x in first_div.items():
            ax.plot([x], [0.97], marker="x", color=col[b], transform=tr, ms=7, mew=1.8)
        handles += [
            Patch(color="tab:red", alpha=0.1),
            Line2D([], [], marker="x", color="0.3", ls="", mew=1.8),
        ]
        names += ["diverged (a seed, some B)", "first diverged lr"]
    handles += [Line2D([], [], marker="*", color="0.5", mec="k", ls="", ms=11)]
    names += [star]
    ax.legend(
        handles,
        names,
        title="batch size B",
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
        fontsize="small",
        title_fontsize="small",
        frameon=False,
    )


def supported_formats() -> list[str]:
    """Image formats matplotlib can write."""
    return sorted(Figure().canvas.get_supported_filetypes())


_NO_DATE = {"svg": {"Date": None}, "pdf": {"CreationDate": None}, "ps": {"CreationDate": None}}


def drop_hidden_minor_ticks(fig) -> None:
    """Remove the minor ticks of log axes that draw nothing: no mark, no grid line (as STYLE has
    them) and no label (matplotlib labels them only where at most one power of the base is in
    view). Laying out ticks that draw nothing is most of the time a figure takes to save."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() != "log":
                continue
            tick = axis.get_minor_ticks(1)[0]
            marks = [line for line in (tick.tick1line, tick.tick2line) if line.get_visible()]
            if any(line.get_markersize() > 0 for line in marks) or tick.gridline.get_visible():
                continue
            f = axis.get_minor_formatter()
            if not any(f.format_ticks(axis.get_minorticklocs())):
                axis.set_minor_locator(NullLocator())


def save(ax, stem: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write the figure of ax as stem.<fmt> for each format and close it (OutputError, naming
    the file, where one cannot be written)."""
    fig = ax.figure
    drop_hidden_minor_ticks(fig)
    out = []
    try:
        for fmt in formats:
            p = stem.with_name(f"{stem.name}.{fmt}")

            def write(tmp, fmt=fmt):
                # constrained layout already fits the outside legends; no date or random ids,
                # so figures redrawn from the same results are the same files
                with plt.rc_context({"svg.hashsalt": "lrscale"}):
                    fig.savefig(tmp, format=fmt, dpi=130, metadata=_NO_DATE.get(fmt))

            # whole or not at all: a full disk leaves no half-written figure behind
            out.append(output.replace(p, write, "the figure"))
            fig.set_layout_engine("none")  # the layout is done; later formats reuse it
    finally:
        plt.close(fig)
    return out

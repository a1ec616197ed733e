"""The scaling scan of the benchmark: run time of one program as lanes, batch size, steps and
width each grow alone (python -m sweeps.bench --scan FIGURE)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sweeps import engine
from sweeps.bench_measure import WORKLOADS, config, lane_flops, time_program

SCAN = {
    "lanes": (["linear-sgd", "mlp-adam"], [2, 8, 32, 128], "sweep.lr.num={}"),
    "batch size": (["linear-sgd", "mlp-adam"], [1, 16, 256, 1024], None),
    "steps": (["linear-sgd", "mlp-adam"], [16, 64, 256, 1024], None),
    "width": (["mlp-adam"], [16, 64, 256], "model.width={}"),
}


def scan(B: int = 64, steps: int = 64) -> pd.DataFrame:
    """Run seconds of one program as lanes, batch size, steps and width each grow alone."""
    rows = []
    for factor, (workloads, values, over) in SCAN.items():
        for w in workloads:
            for v in values:
                st, b = (v if factor == "steps" else steps), (v if factor == "batch size" else B)
                cfg = config(w, st, *([over.format(v)] if over else []))
                points = engine.curve_steps(st, cfg.sweep.curve_points)
                t = time_program(cfg, b, points, warm=False)
                L = cfg.sweep.lr.num * cfg.sweep.seeds
                x = {"lanes": L}.get(factor, v)
                rows.append(dict(
                    factor=factor, x=x, workload=w, batch_size=b, lanes=L, steps=st,
                    width=cfg.model.width, compile_s=t["compile_s"], run_s=t["run_s"],
                    gflops=L * lane_flops(cfg, b, points) / t["run_s"] / 1e9, peak_gflops=t["peak"],
                ))  # fmt: skip
                print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def plot_scan(df: pd.DataFrame, path: Path) -> None:
    """Log-log panels of run time against each factor, one colour per workload."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    units = {"lanes": "lanes (lr x seed)", "batch size": "batch size B", "steps": "steps",
             "width": "MLP width (2 hidden layers)"}  # fmt: skip
    colour = {w: f"C{i}" for i, w in enumerate(WORKLOADS)}
    fig, axes = plt.subplots(2, 2, figsize=(9, 7.5))
    for ax, (factor, g) in zip(axes.flat, df.groupby("factor", sort=False), strict=True):
        for w, h in g.groupby("workload"):
            ax.plot(h["x"], h["run_s"], "o-", color=colour[w], label=w)
        x = np.array([g["x"].min(), g["x"].max()], float)
        y0 = g.loc[g["x"] == g["x"].min(), "run_s"].max()
        ax.plot(x, y0 * x / x[0], "k--", lw=0.8, label="slope 1 (linear cost)")
        ax.set(xscale="log", yscale="log", xlabel=units[factor], ylabel="run time (s)")
        ax.set_title(f"run time vs {factor}")
        ticks = sorted(g["x"].unique())
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    held = "B=64, 32 lrs x 4 seeds, 64 steps, width 64"
    fig.suptitle(f"Run time of one compiled sweep program, 2-core CPU\n(one factor varied; {held})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)

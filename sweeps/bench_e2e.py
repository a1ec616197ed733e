"""End to end: the command line, process start and figures included, against a PyTorch loop.

    python -m sweeps.bench --e2e [--e2e-runs 16] [--out outputs/bench/bench.parquet]

(rows appended to e2e.parquet beside --out)

Each workload runs `python -m sweeps.run` in a fresh process twice: with an empty compile cache
(cold), then again into a new directory (warm). The baseline is `sweeps.bench_torch`, the same
sweep as a per-run PyTorch loop, in a fresh process of its own: it trains --e2e-runs of the
128 (lr, seed) runs of every batch size (spread over the grid) and its wall time is scaled to all
128 (start-up counted once). The default sweep (`python -m sweeps.run`) runs cold too, for the
share of its wall time spent waiting for compiles. PyTorch is optional (the `bench` extra):
without it the speed-ups are NaN.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lrscale.results import RESULTS, read_meta
from sweeps import engine
from sweeps.bench_measure import config, overrides

BATCH_SIZES = "[1,4,16,64,256]"
# workload -> (steps, overrides), each 32 lrs x 4 seeds at the batch sizes above
E2E = {
    "linear-sgd": (1000, ["task.dim=100"]),
    "mlp-adam": (500, ["task.dim=64", "model.width=64"]),
}
# workload -> (cold, warm) speed-up over the PyTorch loop that counts as fast enough
TARGETS = {"linear-sgd": (10.0, 20.0), "mlp-adam": (5.0, 8.0)}
COMPILE_SHARE = 0.25  # at most this share of a cold default sweep waits for compiles


def sweep_cli(args: list[str], out: Path, cache: Path) -> dict:
    """Wall seconds of `python -m sweeps.run args` in a fresh process, and where they went."""
    env = {**os.environ, "LRSCALE_CACHE_DIR": str(cache)}
    cmd = [sys.executable, "-m", "sweeps.run", *args, f"hydra.run.dir={out}"]
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    timings = read_meta(out / RESULTS)["timings"]
    figures = re.search(r"^figures: .* \(([\d.]+) s\)$", r.stdout, re.M)
    return dict(
        lrscale_s=wall,
        compile_s=sum(t["compile_s"] for t in timings),
        wait_s=sum(t["wait_s"] for t in timings),
        run_s=sum(t["run_s"] for t in timings),
        figures_s=float(figures.group(1)) if figures else np.nan,
    )


def spec(cfg, runs: list[tuple[float, int]]) -> dict:
    """What `sweeps.bench_torch` trains: cfg's task, model, optimizer and steps, these runs."""
    t, m, sizes = cfg.task, cfg.model, list(cfg.sweep.batch_sizes)
    return dict(
        model=m.name, dim=t.dim, width=m.width, depth=m.depth, optimizer=cfg.optimizer.name,
        noise_std=t.noise_std, spectrum_decay=t.spectrum_decay, n_eval=t.n_eval,
        steps=cfg.sweep.budget.steps, batch_sizes=sizes, runs=runs,
        curve_steps={str(B): engine.curve_points(cfg, B)[0].tolist() for B in sizes},
    )  # fmt: skip


def torch_loop(workload: str, runs: int) -> dict:
    """Seconds of the PyTorch loop over the whole grid, scaled from `runs` runs per batch size
    (start-up counted once), and the seconds it measured."""
    steps, extra = E2E[workload]
    cfg = config(workload, steps, *extra, f"sweep.batch_sizes={BATCH_SIZES}")
    grid = [(float(lr), s) for lr in engine.lr_grid(cfg) for s in range(cfg.sweep.seeds)]
    pick = [grid[i] for i in np.linspace(0, len(grid) - 1, min(runs, len(grid))).astype(int)]
    cmd = [sys.executable, "-m", "sweeps.bench_torch", json.dumps(spec(cfg, pick))]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    out = json.loads(r.stdout)
    trained = sum(sum(v["seconds"]) for v in out["runs"].values())
    full = sum(np.mean(v["seconds"]) * len(grid) for v in out["runs"].values())
    return dict(torch_s=wall - trained + full, torch_measured_s=wall, torch_runs=len(pick))


def e2e(runs: int = 16, workloads=tuple(E2E)) -> pd.DataFrame:
    """The end-to-end table: one row per workload and cache state, one for the default sweep."""
    have_torch = importlib.util.find_spec("torch") is not None
    rows = []
    with tempfile.TemporaryDirectory(prefix="lrscale-e2e-") as d:
        d = Path(d)
        r = sweep_cli([], d / "default", d / "cache-default")
        rows.append(dict(workload="default", cache="cold", **r))
        for w in workloads:
            steps, extra = E2E[w]
            args = [*overrides(w, steps, *extra), f"sweep.batch_sizes={BATCH_SIZES}"]
            base = torch_loop(w, runs) if have_torch else dict(torch_s=np.nan)
            for i, cache in enumerate(("cold", "warm")):
                r = sweep_cli(args, d / f"{w}-{cache}", d / f"cache-{w}")
                target = TARGETS[w][i]
                rows.append(dict(workload=w, cache=cache, **r, **base, target=target))
    return judge(pd.DataFrame(rows))


def judge(df: pd.DataFrame) -> pd.DataFrame:
    """Add the compile share, the speed-up over the PyTorch loop and whether its target is met."""
    df = df.copy()
    df["compile_share"] = df["wait_s"] / df["lrscale_s"]
    df["speedup"] = df["torch_s"] / df["lrscale_s"]
    df["met"] = np.where(
        df["workload"] == "default",
        df["compile_share"] <= COMPILE_SHARE,
        df["speedup"] >= df["target"],
    )
    return df


def table(df: pd.DataFrame) -> str:
    cols = [
        "workload", "cache", "lrscale_s", "wait_s", "compile_s", "run_s", "figures_s",
        "compile_share", "torch_s", "speedup", "target", "met",
    ]  # fmt: skip
    fmt = {c: "{:.1f}".format for c in ("lrscale_s", "wait_s", "compile_s", "run_s", "torch_s")}
    fmt.update(
        figures_s="{:.1f}".format,
        compile_share="{:.0%}".format,
        speedup="{:.1f}x".format,
        target=lambda v: "" if pd.isna(v) else f">= {v:g}x",
    )
    t = df[cols].copy()
    t.loc[t["workload"] == "default", "target"] = np.nan
    return t.to_string(index=False, formatters=fmt, na_rep="")

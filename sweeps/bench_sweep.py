"""The benchmark's sweep workloads: each batch size's vmapped program timed against a per-run
loop, its FLOP/s against the matmul peak (`python -m sweeps.bench` runs it)."""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from lrscale.config import Config
from sweeps import engine
from sweeps.bench_loop import time_loop
from sweeps.bench_measure import (
    WORKLOADS,
    config,
    lane_flops,
    lane_traffic,
    spanning,
    time_program,
)

BATCH_SIZES = [2**k for k in range(11)]
QUICK_BATCH_SIZES = [1, 256]
COLUMNS = [
    "workload", "devices", "batch_size", "lanes", "steps", "compile_s", "compile_warm_s", "run_s",
    "lane_steps_per_s", "gflops", "peak_gflops", "util", "lane_dot_gflops", "gbs", "stream_gbs",
    "base_compile_s", "base_run_s",
    "speedup_cold", "speedup_warm", "speedup_run",
]  # fmt: skip


def bench_batch(cfg: Config, B: int, loop_lanes: int, cap: int) -> dict:
    """One row of the table: the vmapped program of batch size B against the per-run loop."""
    steps = cfg.sweep.budget.steps_for(B)
    points = engine.curve_steps(steps, cfg.sweep.curve_points)
    L = cfg.sweep.lr.num * cfg.sweep.seeds
    t = time_program(cfg, B, points)
    flop, traffic = L * lane_flops(cfg, B, points), L * lane_traffic(cfg, B, points)
    gflops = flop / t["run_s"] / 1e9
    row = dict(
        devices=jax.device_count(), batch_size=B, lanes=L, steps=steps,
        compile_s=t["compile_s"], compile_warm_s=t["compile_warm_s"], run_s=t["run_s"],
        lane_steps_per_s=L * steps / t["run_s"], gflops=gflops, peak_gflops=t["peak"],
        util=gflops / t["peak"], flop=flop, lane_dot_gflops=t["lane_dot"], traffic=traffic,
        gbs=traffic / t["run_s"] / 1e9, stream_gbs=t["stream"],
        lane_dots=" ".join("x".join(map(str, d)) for d, _ in spanning(t["hlo"], cfg, B)),
    )  # fmt: skip
    if loop_lanes:
        base_compile_s, base_run_s = time_loop(cfg, B, points, loop_lanes, cap)
        row.update(base_compile_s=base_compile_s, base_run_s=base_run_s)
    return row


def totals(rows: pd.DataFrame) -> dict:
    """The whole sweep of one workload: every batch size of rows summed."""
    summed = ["compile_s", "compile_warm_s", "run_s", "flop", "traffic"]
    s = rows[[*summed, "base_compile_s", "base_run_s"]].sum(min_count=1)
    t = s["run_s"]
    # time-weighted: what the device offered while each batch size ran
    peak, stream = ((rows[k] * rows["run_s"]).sum() / t for k in ("peak_gflops", "stream_gbs"))
    L = rows["lanes"].iloc[0]
    return dict(
        devices=rows["devices"].iloc[0], batch_size=pd.NA, lanes=L, steps=rows["steps"].sum(),
        compile_s=s["compile_s"], compile_warm_s=s["compile_warm_s"], run_s=t,
        lane_steps_per_s=L * rows["steps"].sum() / t, gflops=s["flop"] / t / 1e9,
        peak_gflops=peak, util=s["flop"] / t / 1e9 / peak, flop=s["flop"],
        lane_dot_gflops=np.nan, traffic=s["traffic"], gbs=s["traffic"] / t / 1e9,
        stream_gbs=stream, base_compile_s=s["base_compile_s"], base_run_s=s["base_run_s"],
    )  # fmt: skip


def speedups(df: pd.DataFrame) -> pd.DataFrame:
    """Cold: each loop run compiles its own step; warm: only the sweep compiles; run: no compile."""
    cold = df["lanes"] * df["base_compile_s"] + df["base_run_s"]
    df["speedup_cold"] = cold / (df["compile_s"] + df["run_s"])
    df["speedup_warm"] = df["base_run_s"] / (df["compile_warm_s"] + df["run_s"])
    df["speedup_run"] = df["base_run_s"] / df["run_s"]
    return df


def bench(workloads, batch_sizes, steps: int, loop_lanes: int, cap: int, over=()) -> pd.DataFrame:
    """The table of every workload and batch size in this process, whole-sweep rows included."""
    out = []
    for w in workloads:
        cfg, work = config(w, steps, *over), WORKLOADS[w]
        sizes = sorted({min(B, work.max_batch or B) for B in batch_sizes})
        lanes = loop_lanes if work.loop else 0
        rows = pd.DataFrame([bench_batch(cfg, B, lanes, cap) for B in sizes])
        if "base_run_s" not in rows:
            rows["base_compile_s"] = rows["base_run_s"] = np.nan
        rows = pd.concat([rows, pd.DataFrame([totals(rows)])], ignore_index=True)
        rows.insert(0, "workload", w)
        out.append(rows)
    df = speedups(pd.concat(out, ignore_index=True))
    return df.astype({"batch_size": "Int64", "devices": "int64", "steps": "int64"})


# Each factor varied alone around B=64, 32 lrs x 4 seeds, 64 steps, width 64.


def on_devices(n: int, argv: list[str]) -> pd.DataFrame:
    """The same benchmark in a fresh process whose CPU is split into n XLA devices."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "child.parquet"
        flags = os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={n}"
        env = {**os.environ, "XLA_FLAGS": flags.strip()}
        cmd = [sys.executable, "-m", "sweeps.bench", *argv, "--devices", "1", "--child"]
        subprocess.run([*cmd, "--out", str(out)], env=env, check=True, stdout=subprocess.DEVNULL)
        return pd.read_parquet(out)


def stamp(df: pd.DataFrame, quick: bool) -> pd.DataFrame:
    """Add what the numbers were measured on."""
    return df.assign(
        device_kind=jax.devices()[0].device_kind,
        platform=jax.devices()[0].platform,
        cpu_count=os.cpu_count(),
        jax_version=jax.__version__,
        quick=quick,
        timestamp=pd.Timestamp(datetime.datetime.now(datetime.UTC)),
    )


def append(df: pd.DataFrame, path: Path) -> None:
    """Add rows to the parquet file at path, creating it if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        df = pd.concat([pd.read_parquet(path), df], ignore_index=True)
    df.to_parquet(path, index=False)


def without(argv: list[str], *flags: str) -> list[str]:
    """argv less the given flags and their values."""
    out, skip = [], False
    for x in argv:
        if not skip and x not in flags:
            out.append(x)
        skip = x in flags
    return out


def run(a: argparse.Namespace, argv: list[str]) -> pd.DataFrame:
    """The benchmark table: 1 device here, more in subprocesses; printed unless in a child."""
    steps = a.steps or (32 if a.quick else 256)
    batch_sizes = a.batch_sizes or (QUICK_BATCH_SIZES if a.quick else BATCH_SIZES)
    counts = [int(n) for n in (a.devices or ("1" if a.quick else "1,2")).split(",")]
    parts = []
    if 1 in counts:
        lanes = 0 if a.child else a.loop_lanes
        cap = min(a.loop_steps, steps)
        parts.append(bench(a.workloads, batch_sizes, steps, lanes, cap, a.override))
    parts += [on_devices(n, without(argv, "--devices", "--out")) for n in counts if n > 1]
    if a.child:
        return parts[0]
    df = stamp(pd.concat(parts, ignore_index=True), a.quick)
    print(table(df))
    for (w, n), g in df.dropna(subset="batch_size").groupby(["workload", "devices"]):
        last = g.iloc[-1]
        found = last["lane_dots"] or "none"
        print(f"{w}, devices={n}, B={last['batch_size']}: dots over lanes x batch: {found}")
    return df


def table(df: pd.DataFrame) -> str:
    """The columns of COLUMNS, batch sizes as numbers and the whole sweep as 'all'."""
    t = df[COLUMNS].astype({"batch_size": "object"}).fillna({"batch_size": "all"})
    fmt = {
        "compile_s": "{:.2f}", "compile_warm_s": "{:.2f}", "run_s": "{:.3f}",
        "lane_steps_per_s": "{:.3g}", "gflops": "{:.2f}", "peak_gflops": "{:.1f}",
        "util": "{:.1%}", "lane_dot_gflops": "{:.1f}", "gbs": "{:.1f}", "stream_gbs": "{:.1f}",
        "base_compile_s": "{:.2f}", "base_run_s": "{:.1f}",
        "speedup_cold": "{:.1f}x", "speedup_warm": "{:.1f}x", "speedup_run": "{:.0f}x",
    }  # fmt: skip
    return t.to_string(index=False, formatters={k: v.format for k, v in fmt.items()})

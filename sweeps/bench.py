"""Benchmark: the vmapped sweep against a per-run loop, and its FLOP/s against the matmul peak.

    python -m sweeps.bench [--quick] [--out outputs/bench/bench.parquet] [--devices 1,2]
    python -m sweeps.bench --scan docs/perf_scaling.png    # cost vs lanes, B, steps, width

For linear+SGD and mlp+Adam, every batch size 1..1024 trains 32 learning rates x 4 seeds for a
fixed number of steps in one compiled program (as `sweeps.sweep` does); a byte-level transformer
with Adam (task=text) trains 8 x 2 lanes for an eighth of the steps at batch sizes up to 64
sequences, with no per-run loop to compare. Per batch size: compile
seconds from a cold and from a warm persistent cache, run seconds, lane-steps per second, achieved
GFLOP/s from the analytic count of `step_flops` and `eval_flops`, utilisation of the float32
matmul peak measured in the same process, and the speed-up over `loop_fns`, the same training
written without vmap (one jitted step per call, one (lr, seed) run at a time), timed on a few
lanes and scaled to the grid. Rows with batch_size <NA> total the whole sweep.

Speed-ups: cold = every run of the loop compiles its own step (a script launched per (lr, seed),
e.g. by a Hydra multirun over lr and seed), the vmapped sweep compiles once per batch size with an
empty cache; warm = both read their programs from a warm cache, so the loop pays no compile and
the vmapped sweep pays its warm-cache compile (tracing and lowering are not cached); run = run
seconds only. Device counts > 1 split the CPU with XLA_FLAGS, which must be set before JAX
starts, so they run in a subprocess. The scan writes scan.parquet beside --out.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import tasks
from sweeps import engine
from sweeps.checks import validate
from sweeps.config import Config, register, to_config
from tasks import regression
from tasks.base import mse

CONF = Path(__file__).resolve().parent / "conf"


class Workload(NamedTuple):
    overrides: list[str]  # after the benchmark's own (32 lrs x 4 seeds, a step budget)
    loop: bool = True  # timed against `loop_fns`, the per-run loop on the regression task
    max_batch: int | None = None  # larger batch sizes of the grid are replaced by this one
    step_div: int = 1  # trains steps // step_div steps (at least 1)


WORKLOADS = {
    "linear-sgd": Workload(["model=linear", "optimizer=sgd"]),
    "mlp-adam": Workload(["model=mlp", "optimizer=adam"]),
    # a step costs ~1e4 of linear-sgd's: 8 lrs x 2 seeds, an eighth of the steps, B <= 64,
    # two evaluations on 16 held-out windows
    "transformer-adam": Workload(
        [
            "task=text",
            "model=transformer",
            "optimizer=adam",
            "sweep.lr.num=8",
            "sweep.seeds=2",
            "sweep.curve_points=2",
            "task.eval_windows=16",
        ],
        loop=False,
        max_batch=64,
        step_div=8,
    ),  # fmt: skip
}
BATCH_SIZES = [2**k for k in range(11)]
QUICK_BATCH_SIZES = [1, 256]
COLUMNS = [
    "workload", "devices", "batch_size", "lanes", "steps", "compile_s", "compile_warm_s", "run_s",
    "lane_steps_per_s", "gflops", "peak_gflops", "util", "base_compile_s", "base_run_s",
    "speedup_cold", "speedup_warm", "speedup_run",
]  # fmt: skip


def config(workload: str, steps: int, *extra: str) -> Config:
    """The real config of a workload: 32 learning rates x 4 seeds, a fixed step budget."""
    register()
    w = WORKLOADS[workload]
    over = [
        "sweep.lr.num=32",
        "sweep.seeds=4",
        "sweep.budget.samples=null",
        f"sweep.budget.steps={max(1, steps // w.step_div)}",
        "progress=false",
        *w.overrides,
        *extra,
    ]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return validate(to_config(compose("config", overrides=over)))


def matmul_peak(sizes=(1024, 2048), reps: int = 5) -> float:
    """float32 matmul GFLOP/s of this device: best of reps, over square sizes."""
    best = 0.0
    for n in sizes:
        a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
        f = jax.jit(jnp.matmul).lower(a, a).compile()
        f(a, a).block_until_ready()
        for _ in range(reps):
            t0 = time.perf_counter()
            f(a, a).block_until_ready()
            best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def step_flops(cfg: Config, B: int) -> float:
    """FLOPs of one training step of one lane: forward, backward and the optimizer update.

    The model's own count of matrix-product FLOPs per example (`models.Model.train_flops`: the
    usual 6 per weight, less the input gradient of the data, which is never formed) times B, and
    per parameter 2 for the SGD update (+2 with momentum) or ~12 for Adam (two moments, bias
    corrections, sqrt, divide, step).
    """
    m, o = engine.build(cfg).model, cfg.optimizer
    per_param = 12 if o.name == "adam" else (4 if o.momentum else 2)
    return B * m.train_flops + per_param * m.n_params


def eval_flops(cfg: Config) -> float:
    """FLOPs of one eval of one lane: 4D (exact population loss) or a forward pass on n_eval."""
    prob = engine.build(cfg)
    n_eval = prob.task.columns["eval_size"]
    return n_eval * prob.model.flops if n_eval else 2 * prob.model.flops


def lane_flops(cfg: Config, B: int, points: np.ndarray) -> float:
    """FLOPs of one whole lane: every step plus an eval at every curve point."""
    return cfg.sweep.budget.steps_for(B) * step_flops(cfg, B) + len(points) * eval_flops(cfg)


def place(lrs: np.ndarray, seeds: np.ndarray, data: dict):
    """Inputs of a program as `sweeps.sweep` places them: lrs sharded over every local device."""
    mesh = Mesh(np.array(jax.devices()), ("lanes",))
    return (
        jax.device_put(lrs, NamedSharding(mesh, PartitionSpec("lanes"))),
        jax.device_put(seeds, NamedSharding(mesh, PartitionSpec())),
        jax.device_put(data, NamedSharding(mesh, PartitionSpec())),
    )


def time_program(cfg: Config, B: int, points: np.ndarray, warm: bool = True) -> dict:
    """Cold compile, warm-cache compile and run seconds, the peak around the run, the HLO.

    Short runs are repeated (best of up to 3) and the peak is measured just before and just
    after the run: other processes take a share of the cores that drifts within seconds, and
    utilisation should compare like with like.
    """
    lrs = engine.lr_grid(cfg).astype(cfg.sweep.dtype)
    prob = engine.build(cfg)
    args = place(lrs, np.arange(cfg.sweep.seeds, dtype=np.uint32), prob.task.data)
    t0 = time.perf_counter()
    compiled = engine.program(cfg, prob, B, points).lower(*args).compile()
    out = dict(compile_s=time.perf_counter() - t0, hlo=compiled.as_text())
    before, runs = matmul_peak(reps=3), []
    while not runs or (len(runs) < 3 and sum(runs) < 2.0):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        runs.append(time.perf_counter() - t0)
    out.update(run_s=min(runs), peak=(before + matmul_peak(reps=3)) / 2, compile_warm_s=np.nan)
    if warm:
        jax.clear_caches()  # the next compile can only come from the persistent cache
        t0 = time.perf_counter()
        engine.program(cfg, prob, B, points).lower(*args).compile()
        out["compile_warm_s"] = time.perf_counter() - t0
    return out


def dots(hlo: str) -> list[tuple[tuple[int, ...], int]]:
    """(result shape, number of batch dimensions) of every dot in HLO text."""
    out = []
    for line in hlo.splitlines():
        m = re.search(r"= \w+\[([\d,]*)\]\S* dot\(", line)
        if m:
            batch = re.search(r"lhs_batch_dims=\{([\d,]*)\}", line)
            n = len(batch.group(1).split(",")) if batch and batch.group(1) else 0
            out.append((tuple(int(d) for d in m.group(1).split(",") if d), n))
    return out


def lane_matmuls(cfg: Config, B: int) -> list[tuple[tuple[int, ...], int]]:
    """Dots of the compiled program whose result spans the lrs and the batch: X_BxD @ W_DxL.

    L lanes done as L matrix-vector products would show the lr axis as a batch dimension of
    the dot instead (two batch dimensions: seed and lr).
    """
    lrs = engine.lr_grid(cfg).astype(cfg.sweep.dtype)
    seeds = np.arange(cfg.sweep.seeds, dtype=np.uint32)
    points = engine.curve_steps(cfg.sweep.budget.steps_for(B), cfg.sweep.curve_points)
    prob = engine.build(cfg)
    prog = engine.program(cfg, prob, B, points).lower(lrs, seeds, prob.task.data)
    return spanning(prog.compile().as_text(), cfg, B)


def spanning(hlo: str, cfg: Config, B: int) -> list[tuple[tuple[int, ...], int]]:
    """Dots of hlo whose result spans the batch and the lrs, with at most the seed batched.

    The lr axis is the device's share of the lrs, or that times the width where it merges with
    a layer's outputs (the MLP's first layer: X_BxD @ W_Dx(L*W)).
    """
    L = cfg.sweep.lr.num // jax.device_count()
    lanes = {L, L * cfg.model.width} if cfg.model.name != "linear" else {L}

    def spans(s):
        rest = list(s)
        rest.remove(B)
        return bool(lanes & set(rest))

    return [(s, n) for s, n in dots(hlo) if B in s and n <= 1 and len(s) - n >= 2 and spans(s)]


def loop_fns(cfg: Config, B: int):
    """A user's training script without vmap: jitted (init, step, eval) of ONE (lr, seed) run."""
    t, dtype = cfg.task, jnp.dtype(cfg.sweep.dtype)
    model = engine.build(cfg).model
    lam_D = jnp.asarray(regression.spectrum(t.dim, t.spectrum_decay), dtype)
    # inject_hyperparams keeps lr in the optimizer state, so a new lr needs no new step.
    tx = engine.optimizer(cfg, B, jnp.zeros((), dtype))

    def init(lr, seed):
        k = tasks.seed_keys(seed)
        w_star_D = regression.teacher(k.teacher, t.dim, dtype)
        params = model.init(k.init, dtype)
        opt = engine.optimizer(cfg, B, lr).init(params)
        held_out = regression.sample(k.eval, t.n_eval, lam_D, w_star_D, t.noise_std)
        return params, opt, (k.data, w_star_D, held_out)

    def step(params, opt, data, i):
        k_data, w_star_D, _ = data
        key = jax.random.fold_in(k_data, i)
        x_BxD, y_B = regression.sample(key, B, lam_D, w_star_D, t.noise_std)
        loss, g = jax.value_and_grad(lambda p: mse(model.apply(p, x_BxD), y_B))(params)
        updates, opt = tx.update(g, opt, params)
        return jax.tree.map(jnp.add, params, updates), opt, loss

    def evaluate(params, data):
        _, w_star_D, (xe_NxD, ye_N) = data
        if model.linear:
            return regression.population_loss(params, w_star_D, lam_D, t.noise_std)
        return mse(model.apply(params, xe_NxD), ye_N)

    return jax.jit(init), jax.jit(step), jax.jit(evaluate)


def time_loop(cfg: Config, B: int, points: np.ndarray, lanes: int, cap: int):
    """(compile seconds of one run, run seconds of the whole grid) of the per-run loop.

    A few lanes run min(steps, cap) steps each; a lane's time is scaled to its full step count
    plus one eval (read back to the host, as a logging script does) per curve point.
    """
    steps = cfg.sweep.budget.steps_for(B)
    lrs = engine.lr_grid(cfg).astype(cfg.sweep.dtype)
    init, step, evaluate = loop_fns(cfg, B)
    lane_s, compile_s = [], 0.0
    for j in range(lanes):
        lr, seed = lrs[(j * 11 + len(lrs) // 2) % len(lrs)], np.uint32(j % cfg.sweep.seeds)
        params, opt, data = init(lr, seed)
        if j == 0:  # later lanes would find the programs in the cache
            t0 = time.perf_counter()
            step.lower(params, opt, data, 0).compile()
            evaluate.lower(params, data).compile()
            compile_s = time.perf_counter() - t0
        for i in range(3):  # the jit call path a user takes; first calls compile and warm up
            params, opt, _ = step(params, opt, data, i)
        float(evaluate(params, data))
        n = min(steps, cap)
        t0 = time.perf_counter()
        for i in range(n):
            params, opt, loss = step(params, opt, data, i)
        jax.block_until_ready(params)
        t1 = time.perf_counter()
        for _ in range(len(points)):
            float(evaluate(params, data))
        t2 = time.perf_counter()
        lane_s.append((t1 - t0) / n * steps + (t2 - t1))
    L = cfg.sweep.lr.num * cfg.sweep.seeds
    return compile_s, float(np.mean(lane_s)) * L


def bench_batch(cfg: Config, B: int, loop_lanes: int, cap: int) -> dict:
    """One row of the table: the vmapped program of batch size B against the per-run loop."""
    steps = cfg.sweep.budget.steps_for(B)
    points = engine.curve_steps(steps, cfg.sweep.curve_points)
    L = cfg.sweep.lr.num * cfg.sweep.seeds
    t = time_program(cfg, B, points)
    flop = L * lane_flops(cfg, B, points)
    gflops = flop / t["run_s"] / 1e9
    row = dict(
        devices=jax.device_count(), batch_size=B, lanes=L, steps=steps,
        compile_s=t["compile_s"], compile_warm_s=t["compile_warm_s"], run_s=t["run_s"],
        lane_steps_per_s=L * steps / t["run_s"], gflops=gflops, peak_gflops=t["peak"],
        util=gflops / t["peak"], flop=flop,
        lane_dots=" ".join("x".join(map(str, d)) for d, _ in spanning(t["hlo"], cfg, B)),
    )  # fmt: skip
    if loop_lanes:
        base_compile_s, base_run_s = time_loop(cfg, B, points, loop_lanes, cap)
        row.update(base_compile_s=base_compile_s, base_run_s=base_run_s)
    return row


def totals(rows: pd.DataFrame) -> dict:
    """The whole sweep of one workload: every batch size of rows summed."""
    s = rows[["compile_s", "compile_warm_s", "run_s", "flop", "base_compile_s", "base_run_s"]]
    s = s.sum(min_count=1)
    peak = (rows["peak_gflops"] * rows["run_s"]).sum() / s["run_s"]  # time-weighted
    L = rows["lanes"].iloc[0]
    return dict(
        devices=rows["devices"].iloc[0], batch_size=pd.NA, lanes=L, steps=rows["steps"].sum(),
        compile_s=s["compile_s"], compile_warm_s=s["compile_warm_s"], run_s=s["run_s"],
        lane_steps_per_s=L * rows["steps"].sum() / s["run_s"], gflops=s["flop"] / s["run_s"] / 1e9,
        peak_gflops=peak, util=s["flop"] / s["run_s"] / 1e9 / peak, flop=s["flop"],
        base_compile_s=s["base_compile_s"], base_run_s=s["base_run_s"],
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


def parse(argv):
    p = argparse.ArgumentParser(
        prog="python -m sweeps.bench",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n")[0],
        epilog="example: python -m sweeps.bench --quick   (installed as lrscale-bench)",
    )
    p.add_argument("--quick", action="store_true", help="2 batch sizes, 32 steps: under a minute")
    p.add_argument("--scan", type=Path, help="instead: the scaling scan, its figure to this path")
    p.add_argument("--out", type=Path, default=Path("outputs/bench/bench.parquet"))
    p.add_argument("--steps", type=int, help="steps per lane (default 256, quick 32)")
    p.add_argument("--batch-sizes", type=lambda s: [int(b) for b in s.split(",")])
    p.add_argument("--workloads", type=lambda s: s.split(","), default=list(WORKLOADS))
    p.add_argument(
        "--devices",
        help="XLA device counts to split the CPU into (default 1,2; quick 1); >1 runs a subprocess",
    )
    p.add_argument("--loop-lanes", type=int, default=2, help="lanes the per-run loop is timed on")
    p.add_argument("--loop-steps", type=int, default=200, help="steps per timed loop lane (cap)")
    p.add_argument(
        "--override", action="append", default=[], help="a Hydra override for every workload"
    )
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


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


def main(argv: list[str] | None = None) -> pd.DataFrame:
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parse(argv)
    # A private, empty persistent cache: compiles are cold first, then warm, never the user's.
    with tempfile.TemporaryDirectory(prefix="lrscale-bench-") as cache:
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        if a.scan:
            df = stamp(scan(), a.quick)
            plot_scan(df, a.scan)
            print(df.to_string(index=False))
            append(df, a.out.with_name("scan.parquet"))
        else:
            df = run(a, argv)
            append(df, a.out)
    return df


def table(df: pd.DataFrame) -> str:
    """The columns of COLUMNS, batch sizes as numbers and the whole sweep as 'all'."""
    t = df[COLUMNS].astype({"batch_size": "object"}).fillna({"batch_size": "all"})
    fmt = {
        "compile_s": "{:.2f}", "compile_warm_s": "{:.2f}", "run_s": "{:.3f}",
        "lane_steps_per_s": "{:.3g}", "gflops": "{:.2f}", "peak_gflops": "{:.1f}",
        "util": "{:.1%}", "base_compile_s": "{:.2f}", "base_run_s": "{:.1f}",
        "speedup_cold": "{:.1f}x", "speedup_warm": "{:.1f}x", "speedup_run": "{:.0f}x",
    }  # fmt: skip
    return t.to_string(index=False, formatters={k: v.format for k, v in fmt.items()})


def cli() -> None:
    """The `lrscale-bench` console entry point."""
    main()


if __name__ == "__main__":
    cli()

"""What one compiled sweep program costs: the benchmark's workloads and configs, FLOP counts and
least memory traffic, the matmul peak and STREAM bandwidth, compile and run timing, and the dots
of its HLO."""

from __future__ import annotations

import re
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lrscale import optimizers
from lrscale.checks import validate
from lrscale.config import Config
from sweeps import engine
from sweeps.compose import compose


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


def overrides(workload: str, steps: int, *extra: str) -> list[str]:
    """The overrides of a workload: 32 learning rates x 4 seeds, a fixed step budget."""
    w = WORKLOADS[workload]
    return [
        "sweep.lr.num=32",
        "sweep.seeds=4",
        "sweep.budget.samples=null",
        f"sweep.budget.steps={max(1, steps // w.step_div)}",
        *w.overrides,
        *extra,
    ]


def config(workload: str, steps: int, *extra: str) -> Config:
    """The real config of a workload (`overrides`), without a progress bar."""
    return validate(compose([*overrides(workload, steps, *extra), "progress=false"]))


def best_rate(fn, args: tuple, work: float, reps: int = 5) -> float:
    """work / seconds of the best of reps calls of jitted fn(*args), after one untimed call."""
    f = jax.jit(fn).lower(*args).compile()
    f(*args).block_until_ready()
    best = 0.0
    for _ in range(reps):
        t0 = time.perf_counter()
        f(*args).block_until_ready()
        best = max(best, work / (time.perf_counter() - t0))
    return best


def matmul_peak(sizes=(1024, 2048), reps: int = 5) -> float:
    """float32 matmul GFLOP/s of this device: best of reps, over square sizes."""
    mats = [jax.random.normal(jax.random.key(0), (n, n), jnp.float32) for n in sizes]
    return max(best_rate(jnp.matmul, (a, a), 2 * a.shape[0] ** 3 / 1e9, reps) for a in mats)


def stream_gbs(n: int = 2**24, reps: int = 5) -> float:
    """Memory bandwidth of this device in GB/s: a STREAM triad a + 3 b over float32 arrays far
    larger than the caches (two read and one written per call), best of reps."""
    a, b = jnp.ones(n, jnp.float32), jnp.full(n, 2.0, jnp.float32)
    return best_rate(lambda a, b: a + 3.0 * b, (a, b), 3 * 4 * n / 1e9, reps)


def lane_dot_gflops(cfg: Config, B: int, reps: int = 5) -> float:
    """GFLOP/s of the MLP's hidden-layer product on its own: every lane's (B x W) @ (W x W),
    batched over the lanes as the sweep program does; the ceiling XLA reaches for the product
    that dominates an MLP step (NaN for other models)."""
    W, L = cfg.model.width, cfg.sweep.lr.num * cfg.sweep.seeds
    if cfg.model.name != "mlp" or cfg.model.depth < 2:
        return float("nan")
    k1, k2 = jax.random.split(jax.random.key(0))
    x, w = jax.random.normal(k1, (L, B, W)), jax.random.normal(k2, (L, W, W))
    product = lambda x, w: jnp.einsum("lbi,lio->lbo", x, w)  # noqa: E731
    return best_rate(product, (x, w), 2 * L * B * W * W / 1e9, reps)


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


def lane_traffic(cfg: Config, B: int, points: np.ndarray) -> float:
    """The least memory traffic of one whole lane in bytes, were nothing kept in cache between
    passes: per step, the weights read forward and backward, the gradient written, and the
    update reading gradient, parameters and moments and writing parameters and moments (6
    passes over the parameters, 2 more per array of `moments`: 10 with Adam), and each
    example's activations written forward and read backward, their gradients likewise (4
    passes); per eval, the weights read and each held-out example's activations written and
    read."""
    prob = engine.build(cfg)
    m, n_eval = prob.model, prob.task.columns["eval_size"] or 0
    moments = optimizers.REGISTRY[cfg.optimizer.name].moments(cfg.optimizer)
    step = (6 + 2 * moments) * m.n_params + 4 * B * m.activations
    evals = m.n_params + 2 * n_eval * m.activations
    size = jnp.dtype(cfg.sweep.dtype).itemsize
    return size * (cfg.sweep.budget.steps_for(B) * step + len(points) * evals)


def place(lrs: np.ndarray, seeds: np.ndarray, data: dict):
    """Inputs of a program as `sweeps.sweep` places them: lrs sharded over every local device."""
    mesh = Mesh(np.array(jax.devices()), ("lanes",))
    return (
        jax.device_put(lrs, NamedSharding(mesh, PartitionSpec("lanes"))),
        jax.device_put(seeds, NamedSharding(mesh, PartitionSpec())),
        jax.device_put(data, NamedSharding(mesh, PartitionSpec())),
    )


def time_program(cfg: Config, B: int, points: np.ndarray, warm: bool = True) -> dict:
    """Cold compile, warm-cache compile and run seconds, the peak around the run, the memory
    bandwidth after it, the HLO.

    Short runs are repeated (best of up to 3) and the peak is measured just before and just
    after the run: other processes take a share of the cores that drifts within seconds, and
    utilisation should compare like with like.
    """
    lrs = engine.lr_grid(cfg).astype(cfg.sweep.dtype)
    prob = engine.build(cfg)
    args = place(lrs, np.arange(cfg.sweep.seeds, dtype=np.uint32), prob.task.data)
    t0 = time.perf_counter()
    compiled = engine.compile_program(engine.program(cfg, prob, B, points).lower(*args))
    out = dict(compile_s=time.perf_counter() - t0, hlo=compiled.as_text())
    before, runs = matmul_peak(reps=3), []
    while not runs or (len(runs) < 3 and sum(runs) < 2.0):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        runs.append(time.perf_counter() - t0)
    out.update(run_s=min(runs), peak=(before + matmul_peak(reps=3)) / 2, compile_warm_s=np.nan)
    out["stream"] = stream_gbs()
    out["lane_dot"] = lane_dot_gflops(cfg, B)
    if warm:
        jax.clear_caches()  # the next compile can only come from the persistent cache
        t0 = time.perf_counter()
        engine.compile_program(engine.program(cfg, prob, B, points).lower(*args))
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
    return spanning(engine.compile_program(prog).as_text(), cfg, B)


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

"""One batch size on the devices: placement, the compile (or the stored executable) and the run
of its program, in chunks of learning rates that fit the memory plan (sweeps.memory)."""

from __future__ import annotations

import functools
import time
from typing import NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lrscale.config import Config, ConfigError
from sweeps import engine, executables, memory


def _compiled(cfg: Config, store, batch_size: int, points, prog, args):
    """`executables.compiled`; a user's model that fails inside the sweep's program (a trace the
    start-up checks could not foresee) is named in one line."""
    try:
        return executables.compiled(store, batch_size, points, prog, args)
    except (ConfigError, jax.errors.JaxRuntimeError):
        raise
    except Exception as e:
        if cfg.model.name != "custom":
            raise
        why = f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
        raise ConfigError(
            f"model.target: {cfg.model.target} fails inside the sweep's program at batch size "
            f"{batch_size} ({why})"
        ) from None


class Prepared(NamedTuple):
    """One batch size's compiled program and its inputs, placed on the devices."""

    compiled: object
    chunks: list  # the padded lrs, cut into chunks that fit the memory budget
    seeds: jax.Array
    data: dict
    n_lrs: int
    x64: bool
    compile_s: float


def prepare(
    cfg: Config, prob, batch_size: int, lrs: np.ndarray, points, seeds=None, store=None
) -> Prepared:
    """Place the inputs of one batch size and compile its program (safe in a worker thread), or
    load it from `store` (a `sweeps.executables.Store`), where it is kept for the next start.

    The lr axis is sharded over every local device and cut into equal chunks that fit the
    memory budget; padding lanes repeat the last learning rate and are dropped afterwards.
    When XLA counts more memory than the budget, the chunks shrink to fit (one recompile),
    and a batch size whose single learning rate does not fit is refused (ConfigError).
    """
    x64 = cfg.sweep.dtype == "float64"
    seeds = np.arange(cfg.sweep.seeds) if seeds is None else np.asarray(seeds)
    budget = memory.memory_budget(cfg)
    with jax.enable_x64(x64):
        devices = jax.devices()
        mesh = Mesh(np.array(devices), ("lanes",))
        everywhere = NamedSharding(mesh, PartitionSpec())
        shard = NamedSharding(mesh, PartitionSpec("lanes"))
        seeds_d = jax.device_put(seeds.astype(np.uint32), everywhere)
        data = jax.device_put(prob.task.data, everywhere)  # once, for every chunk and lane
        t0 = time.perf_counter()
        prog = functools.partial(engine.program, cfg, prob, batch_size, points)
        chunk = memory.lr_chunk(cfg, prob, batch_size, len(points), len(devices))
        while True:
            n = -(-len(lrs) // chunk) * chunk
            lrs_pad = np.concatenate([lrs, np.full(n - len(lrs), lrs[-1])]).astype(cfg.sweep.dtype)
            chunks = [jax.device_put(lrs_pad[i : i + chunk], shard) for i in range(0, n, chunk)]
            args = (chunks[0], seeds_d, data)
            compiled = _compiled(cfg, store, batch_size, points, prog, args)
            need = memory.compiled_bytes(compiled)
            if need is None or need <= budget:  # XLA counts the memory of one device
                break
            if chunk == len(devices):  # the smallest call: it runs if the device holds it
                if need > memory.device_memory():
                    raise memory.too_big(cfg, prob, batch_size, need, "as compiled")
                break
            smaller = int(chunk * budget / need) // len(devices) * len(devices)
            chunk = max(len(devices), min(smaller, chunk - len(devices)))
    return Prepared(compiled, chunks, seeds_d, data, len(lrs), x64, time.perf_counter() - t0)


def run_prepared(p: Prepared, sig=None):
    """(Lanes as numpy, run seconds) of a prepared batch size."""
    wait = sig.wait if sig else jax.block_until_ready
    t0 = time.perf_counter()
    try:
        with jax.enable_x64(p.x64):
            outs = [jax.device_get(wait(p.compiled(c, p.seeds, p.data))) for c in p.chunks]
    except jax.errors.JaxRuntimeError as e:
        if "RESOURCE_EXHAUSTED" not in str(e):
            raise
        raise ConfigError(
            f"sweep.memory_gb: the device ran out of memory ({str(e).splitlines()[0][:200]}): "
            "set a smaller sweep.memory_gb, or use smaller batch sizes or fewer sweep.seeds"
        ) from None
    run_s = time.perf_counter() - t0
    return jax.tree.map(lambda *a: np.concatenate(a, axis=1)[:, : p.n_lrs], *outs), run_s


def train_batch_size(cfg: Config, batch_size: int, lrs: np.ndarray, points, sig=None, prob=None):
    """All lanes of one batch size: (Lanes as numpy, compile seconds, run seconds)."""
    with jax.enable_x64(cfg.sweep.dtype == "float64"):
        prob = prob or engine.build(cfg)
    p = prepare(cfg, prob, batch_size, lrs, points)
    out, run_s = run_prepared(p, sig)
    return out, p.compile_s, run_s

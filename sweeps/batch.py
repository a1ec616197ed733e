"""One batch size on the devices: the memory plan, placement, compile and run of its program."""

from __future__ import annotations

import os
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from sweeps import engine
from sweeps.config import Config


def lane_bytes(cfg: Config, prob: engine.Problem, batch_size: int, points: int) -> int:
    """A generous estimate of the device memory one lane needs while it trains."""
    m = prob.model
    # Activations of the minibatch (forward and backward) and of the held-out set.
    act = 3 * m.activations * batch_size + m.activations * (prob.task.columns["eval_size"] or 0)
    # Copies of the parameters in the optimizer state (two moments at most).
    state = {"sgd": int(cfg.optimizer.momentum > 0), "signsgd": 0}.get(cfg.optimizer.name, 2)
    # params, grads, updates, the frozen copy and the new params, plus optimizer state; the
    # minibatch itself (B x F inputs) and this seed's shuffled order of the training set
    inputs = batch_size * (prob.task.n_features + 1) + (prob.task.n_train or 0)
    size = m.n_params * (5 + state) + act + inputs + 2 * points
    return jnp.dtype(cfg.sweep.dtype).itemsize * size


def memory_budget(cfg: Config) -> float:
    """Bytes the lanes of one call may use: the config's, or half of the device's memory."""
    if cfg.sweep.memory_gb is not None:
        return cfg.sweep.memory_gb * 2**30
    stats = jax.devices()[0].memory_stats() or {}
    if "bytes_limit" in stats:
        return 0.5 * stats["bytes_limit"]
    return 0.5 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def lr_chunk(cfg: Config, prob, batch_size: int, points: int, n_devices: int) -> int:
    """Learning rates per call: as many as fit the memory budget, a multiple of the devices."""
    per_lr = lane_bytes(cfg, prob, batch_size, points) * cfg.sweep.seeds
    fit = int(memory_budget(cfg) * n_devices // per_lr)
    n = -(-cfg.sweep.lr.num // n_devices) * n_devices
    return max(n_devices, min(n, fit // n_devices * n_devices))


class Prepared(NamedTuple):
    """One batch size's compiled program and its inputs, placed on the devices."""

    compiled: object
    chunks: list  # the padded lrs, cut into chunks that fit the memory budget
    seeds: jax.Array
    data: dict
    n_lrs: int
    x64: bool
    compile_s: float


def prepare(cfg: Config, prob, batch_size: int, lrs: np.ndarray, points) -> Prepared:
    """Place the inputs of one batch size and compile its program (safe in a worker thread).

    The lr axis is sharded over every local device and cut into equal chunks that fit the
    memory budget; padding lanes repeat the last learning rate and are dropped afterwards.
    """
    x64 = cfg.sweep.dtype == "float64"
    with jax.enable_x64(x64):
        devices = jax.devices()
        mesh = Mesh(np.array(devices), ("lanes",))
        chunk = lr_chunk(cfg, prob, batch_size, len(points), len(devices))
        n = -(-len(lrs) // chunk) * chunk
        lrs_pad = np.concatenate([lrs, np.full(n - len(lrs), lrs[-1])]).astype(cfg.sweep.dtype)
        everywhere = NamedSharding(mesh, PartitionSpec())
        seeds = jax.device_put(np.arange(cfg.sweep.seeds, dtype=np.uint32), everywhere)
        data = jax.device_put(prob.task.data, everywhere)  # once, for every chunk and lane
        shard = NamedSharding(mesh, PartitionSpec("lanes"))
        chunks = [jax.device_put(lrs_pad[i : i + chunk], shard) for i in range(0, n, chunk)]
        t0 = time.perf_counter()
        prog = engine.program(cfg, prob, batch_size, points)
        compiled = prog.lower(chunks[0], seeds, data).compile()
    return Prepared(compiled, chunks, seeds, data, len(lrs), x64, time.perf_counter() - t0)


def run_prepared(p: Prepared, sig=None):
    """(Lanes as numpy, run seconds) of a prepared batch size."""
    wait = sig.wait if sig else jax.block_until_ready
    t0 = time.perf_counter()
    with jax.enable_x64(p.x64):
        outs = [jax.device_get(wait(p.compiled(c, p.seeds, p.data))) for c in p.chunks]
    run_s = time.perf_counter() - t0
    return jax.tree.map(lambda *a: np.concatenate(a, axis=1)[:, : p.n_lrs], *outs), run_s


def train_batch_size(cfg: Config, batch_size: int, lrs: np.ndarray, points, sig=None, prob=None):
    """All lanes of one batch size: (Lanes as numpy, compile seconds, run seconds)."""
    with jax.enable_x64(cfg.sweep.dtype == "float64"):
        prob = prob or engine.build(cfg)
    p = prepare(cfg, prob, batch_size, lrs, points)
    out, run_s = run_prepared(p, sig)
    return out, p.compile_s, run_s

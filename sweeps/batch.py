"""One batch size on the devices: the memory plan, placement, compile and run of its program."""

from __future__ import annotations

import functools
import os
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lrscale import optimizers
from lrscale.config import Config, ConfigError
from sweeps import engine, executables


def lane_bytes(cfg: Config, prob: engine.Problem, batch_size: int, points: int) -> int:
    """A generous estimate of the device memory one lane needs while it trains."""
    m = prob.model
    # Activations of the minibatch (forward and backward) and of the held-out set.
    act = 3 * m.activations * batch_size + m.activations * (prob.task.columns["eval_size"] or 0)
    # Copies of the parameters in the optimizer state.
    state = optimizers.REGISTRY[cfg.optimizer.name].moments(cfg.optimizer)
    # params, grads, updates, the frozen copy and the new params, plus optimizer state
    size = m.n_params * (5 + state) + act + 2 * points
    return jnp.dtype(cfg.sweep.dtype).itemsize * size


def seed_bytes(cfg: Config, prob: engine.Problem, batch_size: int) -> int:
    """Device memory of what the learning rates of a seed share: its minibatch (B x F inputs,
    with the temporaries that sample or gather it) and its order of the training set."""
    size = 4 * batch_size * (prob.task.n_features + 1) + (prob.task.n_train or 0)
    return jnp.dtype(cfg.sweep.dtype).itemsize * size


def call_bytes(cfg: Config, prob, batch_size: int, points: int, n_lrs: int) -> int:
    """Estimated device memory of one call of n_lrs learning rates x every seed."""
    per_seed = seed_bytes(cfg, prob, batch_size) + n_lrs * lane_bytes(cfg, prob, batch_size, points)
    return cfg.sweep.seeds * per_seed


def device_memory() -> float:
    """Bytes of memory of one device (of the host, for the CPU)."""
    stats = jax.devices()[0].memory_stats() or {}
    if "bytes_limit" in stats:
        return float(stats["bytes_limit"])
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def memory_budget(cfg: Config) -> float:
    """Bytes the lanes of one call may use: the config's, or half of the device's memory."""
    if cfg.sweep.memory_gb is not None:
        return cfg.sweep.memory_gb * 2**30
    return 0.5 * device_memory()


def lr_chunk(cfg: Config, prob, batch_size: int, points: int, n_devices: int) -> int:
    """Learning rates per call: as many as fit the memory budget, a multiple of the devices."""
    per_lr = lane_bytes(cfg, prob, batch_size, points) * cfg.sweep.seeds
    shared = seed_bytes(cfg, prob, batch_size) * cfg.sweep.seeds
    fit = int((memory_budget(cfg) * n_devices - shared * n_devices) // per_lr)
    n = -(-cfg.sweep.lr.num // n_devices) * n_devices
    return max(n_devices, min(n, fit // n_devices * n_devices))


def _too_big(cfg: Config, prob, batch_size: int, need: float, how: str) -> ConfigError:
    """Device memory exceeded: blamed on the model where one lane of it does not fit, else on
    the batch size and seeds."""
    n, device = prob.model.n_params, device_memory() / 2**30
    m = cfg.model
    model = f"model.target={m.target}" if m.name == "custom" else f"model={m.name}"
    lane = lane_bytes(cfg, prob, 1, cfg.sweep.curve_points)
    if lane > device_memory():
        return ConfigError(
            f"{'model.target' if m.name == 'custom' else 'model'}: {model} has {n:,} parameters, "
            f"which with the optimizer's state need {lane / 2**30:.3g} GiB for one lane, more than "
            f"the device's {device:.3g} GiB: use a smaller model"
        )
    return ConfigError(
        f"sweep.batch_sizes: batch size {batch_size} needs {need / 2**30:.3g} GiB of device "
        f"memory ({how}) for one learning rate with its {cfg.sweep.seeds} seeds ({model}: "
        f"{n:,} parameters), more than the device's {device:.3g} GiB: use smaller batch sizes, "
        "fewer sweep.seeds or a smaller model"
    )


def check_fits(cfg: Config, prob, batch_size: int) -> None:
    """Refuse, before anything runs, a batch size whose smallest call cannot fit the device.
    (Calls larger than the budget, sweep.memory_gb, are cut into chunks; one learning rate
    with every seed is the smallest.)"""
    need = call_bytes(cfg, prob, batch_size, cfg.sweep.curve_points, 1)
    if need > device_memory():
        raise _too_big(cfg, prob, batch_size, need, "estimated")


def _compiled_bytes(compiled) -> int | None:
    """Device memory of a compiled program, as XLA counts it (None where it does not)."""
    try:
        m = compiled.memory_analysis()
        return m.temp_size_in_bytes + m.argument_size_in_bytes + m.output_size_in_bytes
    except Exception:  # not every backend reports it
        return None


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
    budget = memory_budget(cfg)
    with jax.enable_x64(x64):
        devices = jax.devices()
        mesh = Mesh(np.array(devices), ("lanes",))
        everywhere = NamedSharding(mesh, PartitionSpec())
        shard = NamedSharding(mesh, PartitionSpec("lanes"))
        seeds_d = jax.device_put(seeds.astype(np.uint32), everywhere)
        data = jax.device_put(prob.task.data, everywhere)  # once, for every chunk and lane
        t0 = time.perf_counter()
        prog = functools.partial(engine.program, cfg, prob, batch_size, points)
        chunk = lr_chunk(cfg, prob, batch_size, len(points), len(devices))
        while True:
            n = -(-len(lrs) // chunk) * chunk
            lrs_pad = np.concatenate([lrs, np.full(n - len(lrs), lrs[-1])]).astype(cfg.sweep.dtype)
            chunks = [jax.device_put(lrs_pad[i : i + chunk], shard) for i in range(0, n, chunk)]
            args = (chunks[0], seeds_d, data)
            compiled = _compiled(cfg, store, batch_size, points, prog, args)
            need = _compiled_bytes(compiled)
            if need is None or need <= budget:  # XLA counts the memory of one device
                break
            if chunk == len(devices):  # the smallest call: it runs if the device holds it
                if need > device_memory():
                    raise _too_big(cfg, prob, batch_size, need, "as compiled")
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

"""The memory plan of one batch size's program: what a lane and a seed need on the device, how
many learning rates one call takes, and what cannot fit at all (refused before anything runs)."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp

from lrscale import optimizers
from lrscale.config import Config, ConfigError
from sweeps import engine


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


def too_big(cfg: Config, prob, batch_size: int, need: float, how: str) -> ConfigError:
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
        raise too_big(cfg, prob, batch_size, need, "estimated")


def compiled_bytes(compiled) -> int | None:
    """Device memory of a compiled program, as XLA counts it (None where it does not)."""
    try:
        m = compiled.memory_analysis()
        return m.temp_size_in_bytes + m.argument_size_in_bytes + m.output_size_in_bytes
    except Exception:  # not every backend reports it
        return None

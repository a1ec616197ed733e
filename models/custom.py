"""A user's flax.linen.Module, named by its dotted path: checked once, counted by XLA."""

from __future__ import annotations

import importlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from sweeps.config import ConfigError, ModelConfig

PROBE = 3  # examples in the abstract evaluation that checks the output shape


def _why(e: Exception) -> str:
    """An exception in one line: the error of a start-up check is one line."""
    return f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"


def _class(target: str) -> type:
    module_name, _, name = target.rpartition(".")
    if not module_name:
        raise ConfigError(f"model.target: {target!r} is not a dotted path (package.module.Class)")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - any import failure of user code is reported the same
        raise ConfigError(f"model.target: cannot import {module_name} ({_why(e)})") from None
    cls = getattr(module, name, None)
    if cls is None:
        raise ConfigError(f"model.target: {module_name} has no {name}")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ConfigError(f"model.target: {target} is not a flax.linen.Module class")
    return cls


def _cost(apply, params, n_features: int) -> tuple[float, int]:
    """(forward FLOPs, bytes touched) of one example from XLA's cost analysis."""
    x = jax.ShapeDtypeStruct((1, n_features), jnp.float32)
    cost = jax.jit(apply).lower(params, x).cost_analysis()
    cost = cost[0] if isinstance(cost, list | tuple) else cost or {}
    return float(cost.get("flops", 0.0)), int(cost.get("bytes accessed", 0.0))


def custom(cfg: ModelConfig, n_features: int, n_out: int):
    """Model fields (init, apply, linear, n_params, flops, train_flops, activations) of
    model.target(n_out=..., **kwargs)."""
    cls = _class(cfg.target)
    try:
        net = cls(n_out=n_out, **cfg.kwargs)
    except Exception as e:  # noqa: BLE001
        raise ConfigError(
            f"model.target: {cfg.target}(n_out={n_out}, **model.kwargs) failed ({_why(e)})"
        ) from None
    x = jnp.zeros((PROBE, n_features), jnp.float32)
    try:
        out, params = jax.eval_shape(lambda: net.init_with_output(jax.random.key(0), x))
    except Exception as e:  # noqa: BLE001
        raise ConfigError(
            f"model.target: {cfg.target} fails on a batch of shape {x.shape} ({_why(e)})"
        ) from None
    if getattr(out, "shape", None) != (PROBE, n_out):
        raise ConfigError(
            f"model.target: {cfg.target} returns shape {getattr(out, 'shape', type(out))} for a "
            f"batch of {PROBE} examples; it must return ({PROBE}, {n_out}) = (batch, task outputs)"
        )
    n_params = int(sum(np.prod(p.shape) for p in jax.tree.leaves(params)))
    flops, touched = _cost(net.apply, params, n_features)
    return (
        lambda key, dtype: net.init(key, jnp.zeros((1, n_features), dtype)),
        net.apply,
        False,
        n_params,
        flops,
        3 * flops,
        max(n_out, touched // 4),
    )

"""Models as pure (init, apply) pairs; `build` picks one from the config."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from sweeps.config import ModelConfig


class Model(NamedTuple):
    init: Callable[[jax.Array, int, Any], Any]  # (key, dim, dtype) -> params
    apply: Callable[[Any, jax.Array], jax.Array]  # (params, x_BxD) -> pred_B
    linear: bool  # params are the weight vector w_D itself (exact population loss applies)


def linear() -> Model:
    """f(x) = w.x, no bias, w = 0 at init."""
    return Model(
        init=lambda key, dim, dtype: jnp.zeros((dim,), dtype),
        apply=lambda w_D, x_BxD: x_BxD @ w_D,
        linear=True,
    )


class MLP(nn.Module):
    width: int
    depth: int
    activation: str

    @nn.compact
    def __call__(self, x_BxD):
        act = getattr(nn, self.activation)
        h = x_BxD
        for _ in range(self.depth):
            h = act(nn.Dense(self.width, param_dtype=x_BxD.dtype)(h))
        return nn.Dense(1, param_dtype=x_BxD.dtype)(h)[:, 0]


def mlp(width: int, depth: int, activation: str) -> Model:
    net = MLP(width, depth, activation)
    return Model(
        init=lambda key, dim, dtype: net.init(key, jnp.zeros((1, dim), dtype)),
        apply=net.apply,
        linear=False,
    )


def build(cfg: ModelConfig) -> Model:
    if cfg.name == "linear":
        return linear()
    return mlp(cfg.width, cfg.depth, cfg.activation)

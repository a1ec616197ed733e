"""Models as pure (init, apply) pairs with their own accounting; `build` picks one from the config.

Every model maps a batch x_BxF to outputs of shape (B, task.n_out). It owns its parameter count
and its forward FLOPs and stored activations per example, which the memory planner and the
benchmark read.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from models.custom import custom
from sweeps.config import ConfigError, ModelConfig


class Model(NamedTuple):
    init: Callable[[jax.Array, Any], Any]  # (key, dtype) -> params
    apply: Callable[[Any, jax.Array], jax.Array]  # (params, x_BxF) -> out_BxK
    linear: bool  # params are the weight vector w_F itself (exact population loss applies)
    n_params: int
    flops: float  # forward pass, per example
    activations: int  # floats per example kept for the backward pass


def linear(n_features: int, n_out: int, regression: bool) -> Model:
    """Regression: f(x) = w.x, no bias, w = 0 at init. Classification: softmax regression."""
    F, K = n_features, n_out
    if regression:
        return Model(
            init=lambda key, dtype: jnp.zeros((F,), dtype),
            apply=lambda w_F, x_BxF: (x_BxF @ w_F)[:, None],
            linear=True,
            n_params=F,
            flops=2 * F,
            activations=1,
        )
    return Model(
        init=lambda key, dtype: {"w": jnp.zeros((F, K), dtype), "b": jnp.zeros((K,), dtype)},
        apply=lambda p, x_BxF: x_BxF @ p["w"] + p["b"],
        linear=False,
        n_params=F * K + K,
        flops=2 * F * K + K,
        activations=K,
    )


class MLP(nn.Module):
    width: int
    depth: int
    activation: str
    n_out: int = 1

    @nn.compact
    def __call__(self, x_BxF):
        act = getattr(nn, self.activation)
        h = x_BxF
        for _ in range(self.depth):
            h = act(nn.Dense(self.width, param_dtype=x_BxF.dtype)(h))
        return nn.Dense(self.n_out, param_dtype=x_BxF.dtype)(h)


class CNN(nn.Module):
    """A small 1-D convolutional net for sequences: `depth` stride-2 convolutions, then a Dense."""

    channels: int
    depth: int
    kernel: int
    activation: str
    n_out: int

    @nn.compact
    def __call__(self, x_BxL):
        act = getattr(nn, self.activation)
        h = x_BxL[..., None]
        for _ in range(self.depth):
            conv = nn.Conv(self.channels, (self.kernel,), strides=(2,), param_dtype=x_BxL.dtype)
            h = act(conv(h))
        return nn.Dense(self.n_out, param_dtype=x_BxL.dtype)(h.reshape(h.shape[0], -1))


def _flax(net: nn.Module, n_features: int, n_params: int, flops: float, act: int) -> Model:
    return Model(
        init=lambda key, dtype: net.init(key, jnp.zeros((1, n_features), dtype)),
        apply=net.apply,
        linear=False,
        n_params=n_params,
        flops=flops,
        activations=act,
    )


def mlp(cfg: ModelConfig, n_features: int, n_out: int) -> Model:
    F, W, d, K = n_features, cfg.width, cfg.depth, n_out
    weights = F * W + (d - 1) * W * W + W * K
    n_params = weights + d * W + K
    return _flax(MLP(W, d, cfg.activation, K), F, n_params, 2 * weights + 2 * d * W, d * W + K)


def cnn(cfg: ModelConfig, n_features: int, n_out: int) -> Model:
    C, k, K = cfg.channels, cfg.kernel, n_out
    lengths = [math.ceil(n_features / 2**i) for i in range(1, cfg.depth + 1)]
    c_in = [1] + [C] * (cfg.depth - 1)
    conv_w = [k * ci * C for ci in c_in]
    n_params = sum(conv_w) + cfg.depth * C + lengths[-1] * C * K + K
    flops = sum(2 * n * w for n, w in zip(lengths, conv_w, strict=True)) + 2 * lengths[-1] * C * K
    net = CNN(C, cfg.depth, k, cfg.activation, K)
    return _flax(net, n_features, n_params, flops, C * sum(lengths) + K)


def build(cfg: ModelConfig, task) -> Model:
    """The model of cfg for `task` (its number of features and outputs)."""
    F, K = task.n_features, task.n_out
    if cfg.name == "linear":
        return linear(F, K, regression=task.kind == "regression")
    if cfg.name == "mlp":
        return mlp(cfg, F, K)
    if cfg.name == "cnn":
        if not task.sequence:
            raise ConfigError(
                f"model=cnn convolves along 1-D sequences (task=mnist1d); the examples of "
                f"task={task.name} are not sequences"
            )
        return cnn(cfg, F, K)
    return Model(*custom(cfg, F, K))

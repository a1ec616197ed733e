"""Models as pure (init, apply) pairs with their own accounting; `build` picks one from the config.

Every model maps a batch x_BxF to outputs of shape (B, task.n_out). It owns its parameter count
, its FLOPs per example (forward; forward and backward, matrix products only: the backward
pass forms no gradient of the input data) and the activations it keeps, which the memory planner
and the benchmark read.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from models.custom import custom
from models.transformer import transformer
from sweeps.config import ConfigError, ModelConfig


class Model(NamedTuple):
    init: Callable[[jax.Array, Any], Any]  # (key, dtype) -> params
    apply: Callable[[Any, jax.Array], jax.Array]  # (params, x_BxF) -> out_BxK
    linear: bool  # params are the weight vector w_F itself (exact population loss applies)
    n_params: int
    flops: float  # forward pass, per example
    train_flops: float  # forward and backward pass, per example
    activations: int  # floats per example kept for the backward pass
    identity: dict = {}  # what identifies a user's model beyond the config (never mutated)


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
            train_flops=4 * F,
            activations=1,
        )
    return Model(
        init=lambda key, dtype: {"w": jnp.zeros((F, K), dtype), "b": jnp.zeros((K,), dtype)},
        apply=lambda p, x_BxF: x_BxF @ p["w"] + p["b"],
        linear=False,
        n_params=F * K + K,
        flops=2 * F * K,
        train_flops=4 * F * K,
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


class Conv1D(nn.Module):
    """A 'SAME' 1-D convolution as one matrix product over the unfolded input.

    Under vmap over learning rates XLA turns nn.Conv into a grouped convolution, which is slow
    on CPU; written as unfold + matmul, the lane axis is a batch dimension of one dot.
    """

    features: int
    kernel: int
    stride: int = 2

    @nn.compact
    def __call__(self, x_BxLxC):
        B, L, C = x_BxLxC.shape
        k, s = self.kernel, self.stride
        n = -(-L // s)
        pad = max((n - 1) * s + k - L, 0)
        x = jnp.pad(x_BxLxC, ((0, 0), (pad // 2, pad - pad // 2), (0, 0)))
        span = s * (n - 1) + 1
        patches_BxNxKC = jnp.concatenate([x[:, j : j + span : s] for j in range(k)], axis=-1)
        w = self.param("kernel", nn.initializers.lecun_normal(), (k * C, self.features), x.dtype)
        b = self.param("bias", nn.initializers.zeros, (self.features,), x.dtype)
        return patches_BxNxKC @ w + b


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
            h = act(Conv1D(self.channels, self.kernel)(h))
        return nn.Dense(self.n_out, param_dtype=x_BxL.dtype)(h.reshape(h.shape[0], -1))


def _flax(net: nn.Module, n_features: int, n_params: int, flops, first: int, act: int) -> Model:
    """A flax net whose first layer has `first` weights (its input gradient is never formed)."""
    return Model(
        init=lambda key, dtype: net.init(key, jnp.zeros((1, n_features), dtype)),
        apply=net.apply,
        linear=False,
        n_params=n_params,
        flops=flops,
        train_flops=3 * flops - first,
        activations=act,
    )


def mlp(cfg: ModelConfig, n_features: int, n_out: int) -> Model:
    F, W, d, K = n_features, cfg.width, cfg.depth, n_out
    weights = F * W + (d - 1) * W * W + W * K
    n_params = weights + d * W + K
    return _flax(MLP(W, d, cfg.activation, K), F, n_params, 2 * weights, 2 * F * W, d * W + K)


def cnn(cfg: ModelConfig, n_features: int, n_out: int) -> Model:
    C, k, K = cfg.channels, cfg.kernel, n_out
    lengths = [math.ceil(n_features / 2**i) for i in range(1, cfg.depth + 1)]
    c_in = [1] + [C] * (cfg.depth - 1)
    conv_w = [k * ci * C for ci in c_in]
    n_params = sum(conv_w) + cfg.depth * C + lengths[-1] * C * K + K
    flops = sum(2 * n * w for n, w in zip(lengths, conv_w, strict=True)) + 2 * lengths[-1] * C * K
    net = CNN(C, cfg.depth, k, cfg.activation, K)
    first = 2 * lengths[0] * conv_w[0]
    return _flax(net, n_features, n_params, flops, first, C * sum(lengths) + K)


def build(cfg: ModelConfig, task, dtype="float32", batch_sizes=()) -> Model:
    """The model of cfg for `task` (its number of features and outputs); a user's model is traced
    as the sweep calls it: in dtype, on each of batch_sizes and the task's held-out set."""
    F, K = task.n_features, task.n_out
    if (cfg.name == "transformer") != (task.kind == "language"):
        raise ConfigError(
            f"model=transformer and task=text go together: a transformer reads byte sequences and "
            f"predicts each next byte (got model={cfg.name} with task={task.name})"
        )
    if cfg.name == "transformer":
        return Model(*transformer(cfg, F, K))
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
    sizes = [*batch_sizes, task.columns.get("eval_size") or 1]
    return Model(**custom(cfg, F, K, dtype, sizes))

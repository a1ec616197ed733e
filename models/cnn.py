"""A small 1-D convolutional net for sequences (task=mnist1d): `depth` stride-2 convolutions of
`channels` filters of width `kernel`, then a Dense layer to the task's outputs."""

from __future__ import annotations

import math

import flax.linen as nn
import jax.numpy as jnp

from lrscale.config import ConfigError
from models.base import Model, from_flax

NAME = "cnn"
READS = ("channels", "depth", "kernel", "activation")
TASK_KINDS = ("regression", "classification")


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


def build(cfg, task, dtype, batch_sizes) -> Model:
    if not task.sequence:
        raise ConfigError(
            f"model=cnn convolves along 1-D sequences (task=mnist1d); the examples of "
            f"task={task.name} are not sequences"
        )
    n_features, C, k, K = task.n_features, cfg.channels, cfg.kernel, task.n_out
    lengths = [math.ceil(n_features / 2**i) for i in range(1, cfg.depth + 1)]
    c_in = [1] + [C] * (cfg.depth - 1)
    conv_w = [k * ci * C for ci in c_in]
    n_params = sum(conv_w) + cfg.depth * C + lengths[-1] * C * K + K
    flops = sum(2 * n * w for n, w in zip(lengths, conv_w, strict=True)) + 2 * lengths[-1] * C * K
    net = CNN(C, cfg.depth, k, cfg.activation, K)
    first = 2 * lengths[0] * conv_w[0]
    return from_flax(net, n_features, n_params, flops, first, C * sum(lengths) + K)

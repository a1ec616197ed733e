"""A flax MLP: `depth` hidden layers of `width` units, then a Dense layer to the task's outputs."""

from __future__ import annotations

import flax.linen as nn

from models.base import Model, from_flax

NAME = "mlp"
READS = ("width", "depth", "activation")
TASK_KINDS = ("regression", "classification")


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


def build(cfg, task, dtype, batch_sizes) -> Model:
    F, W, d, K = task.n_features, cfg.width, cfg.depth, task.n_out
    weights = F * W + (d - 1) * W * W + W * K
    n_params = weights + d * W + K
    return from_flax(MLP(W, d, cfg.activation, K), F, n_params, 2 * weights, 2 * F * W, d * W + K)

"""What the engine knows of a model: a pure (init, apply) pair with its own accounting.

Every model maps a batch x_BxF to outputs of shape (B, task.n_out). It owns its parameter count,
its FLOPs per example (forward; forward and backward, matrix products only: the backward pass
forms no gradient of the input data) and the activations it keeps, which the memory planner and
the benchmark read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp


class Model(NamedTuple):
    init: Callable[[jax.Array, Any], Any]  # (key, dtype) -> params
    apply: Callable[[Any, jax.Array], jax.Array]  # (params, x_BxF) -> out_BxK
    linear: bool  # params are the weight vector w_F itself (exact population loss applies)
    n_params: int
    flops: float  # forward pass, per example
    train_flops: float  # forward and backward pass, per example
    activations: int  # floats per example kept for the backward pass
    identity: dict = {}  # what identifies a user's model beyond the config (never mutated)


def from_flax(net: nn.Module, n_features: int, n_params: int, flops, first: int, act: int) -> Model:
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

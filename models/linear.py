"""The linear model: w.x for a regression (the pinned task's, exact theory applies), softmax
regression for classes."""

from __future__ import annotations

import jax.numpy as jnp

from models.base import Model

NAME = "linear"
READS: tuple[str, ...] = ()
TASK_KINDS = ("regression", "classification")


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


def build(cfg, task, dtype, batch_sizes) -> Model:
    return linear(task.n_features, task.n_out, regression=task.kind == "regression")

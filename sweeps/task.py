"""The linear-regression task, exactly as pinned in the design notes (tests and theory rely on it).

x ~ N(0, diag(lam)) with lam_i proportional to i^-spectrum_decay and sum(lam) = dim; teacher
w* ~ N(0, I/dim) from the seed; y = x.w* + noise_std * eps. Loss: mean over the batch of
(f(x) - y)^2, no 1/2.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def spectrum(dim: int, decay: float) -> np.ndarray:
    """Eigenvalues lam_i ~ i^-decay of the feature covariance, scaled so that sum(lam) = dim."""
    lam = np.arange(1, dim + 1, dtype=np.float64) ** -float(decay)
    return lam * (dim / lam.sum())


def teacher(key: jax.Array, dim: int, dtype=jnp.float32) -> jax.Array:
    return jax.random.normal(key, (dim,), dtype) / jnp.sqrt(dim).astype(dtype)


def sample(key: jax.Array, n: int, lam_D: jax.Array, w_star_D: jax.Array, noise_std: float):
    """n examples (x_NxD, y_N) of the task."""
    kx, ke = jax.random.split(key)
    x_NxD = jax.random.normal(kx, (n, lam_D.shape[0]), lam_D.dtype) * jnp.sqrt(lam_D)
    y_N = x_NxD @ w_star_D + noise_std * jax.random.normal(ke, (n,), lam_D.dtype)
    return x_NxD, y_N


def mse(pred_N: jax.Array, y_N: jax.Array) -> jax.Array:
    return jnp.mean((pred_N - y_N) ** 2)


def population_loss(w_D: jax.Array, w_star_D: jax.Array, lam_D: jax.Array, noise_std: float):
    """Exact population MSE of the linear model f(x) = w.x: (w - w*)^T diag(lam) (w - w*) + s^2."""
    d_D = w_D - w_star_D
    return jnp.sum(lam_D * d_D * d_D) + noise_std**2

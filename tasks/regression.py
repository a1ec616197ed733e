"""The linear-regression task, exactly as pinned in the design notes (tests and theory rely on it).

x ~ N(0, diag(lam)) with lam_i proportional to i^-spectrum_decay and sum(lam) = dim; teacher
w* ~ N(0, I/dim) from the seed; y = x.w* + noise_std * eps. Loss: mean over the batch of
(f(x) - y)^2, no 1/2.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tasks.base import SeedData, Task

NAME = "regression"


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


def population_loss(w_D: jax.Array, w_star_D: jax.Array, lam_D: jax.Array, noise_std: float):
    """Exact population MSE of the linear model f(x) = w.x: (w - w*)^T diag(lam) (w - w*) + s^2."""
    d_D = w_D - w_star_D
    return jnp.sum(lam_D * d_D * d_D) + noise_std**2


def build(cfg) -> Task:
    """The pinned task; the linear model's eval loss is the exact population MSE."""
    t = cfg.task
    lam = spectrum(t.dim, t.spectrum_decay)
    exact = cfg.model.name == "linear"  # its parameters are the weight vector w itself

    def seed_data(data, keys, dtype):
        lam_D = jnp.asarray(lam, dtype)
        w_star_D = teacher(keys.teacher, t.dim, dtype)

        def draw(key, n):
            return sample(key, n, lam_D, w_star_D, t.noise_std)

        return SeedData(
            train=draw(keys.data, t.n_train) if t.n_train is not None else None,
            sample=draw,
            eval=None if exact else draw(keys.eval, t.n_eval),
            exact_loss=(lambda w_D: population_loss(w_D, w_star_D, lam_D, t.noise_std))
            if exact
            else None,
        )

    return Task(
        name="regression",
        kind="regression",
        loss="mse",
        n_out=1,
        n_features=t.dim,
        sequence=False,
        n_train=t.n_train,
        data={},
        seed_data=seed_data,
        columns={
            "task_kind": "regression",
            "loss": "mse",
            "n_features": t.dim,
            "n_outputs": 1,
            "train_size": t.n_train,
            "eval_size": None if exact else t.n_eval,
        },
    )

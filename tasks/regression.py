"""The linear-regression task, exactly as pinned in the design notes (tests and theory rely on it).

x ~ N(0, diag(lam)) with lam_i proportional to i^-spectrum_decay and sum(lam) = dim; teacher
w* ~ N(0, I/dim) from the seed; y = x.w* + noise_std * eps. Loss: mean over the batch of
(f(x) - y)^2, no 1/2.
"""

from __future__ import annotations

from typing import NamedTuple

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


# ---- the gradient noise scale of the linear model on this task, in closed form -------------
# McCandlish et al. 2018; the derivation is in docs/science.md ("Gradient noise scale").


class NoiseScale(NamedTuple):
    B_simple: float
    B_noise: float
    G2: float  # |G|^2
    trS: float  # tr(Sigma)
    GHG: float  # G^T Hl G
    trHS: float  # tr(Hl Sigma)


def noise_scale(G2, trS, GHG, trHS) -> NoiseScale:
    """B_simple = tr(Sigma) / |G|^2 and B_noise = tr(Hl Sigma) / (G^T Hl G), with the moments."""
    G2, trS, GHG, trHS = (float(v) for v in (G2, trS, GHG, trHS))
    return NoiseScale(trS / G2, trHS / GHG, G2, trS, GHG, trHS)


def linear_noise_scale(w, w_star, lam, noise_std: float) -> NoiseScale:
    """Closed-form noise scales of the linear task at w for teacher w_star."""
    lam_D = np.asarray(lam, np.float64)
    d2_D = (np.asarray(w, np.float64) - np.asarray(w_star, np.float64)) ** 2
    L = lam_D @ d2_D + noise_std**2
    Hd2, H3d = lam_D**2 @ d2_D, lam_D**3 @ d2_D
    trS = 4 * Hd2 + 4 * L * lam_D.sum()
    return noise_scale(4 * Hd2, trS, 8 * H3d, 8 * H3d + 8 * L * (lam_D**2).sum())


def linear_noise_scale_init(lam, noise_std: float) -> NoiseScale:
    """Noise scales at w = 0, numerator and denominator averaged over teachers w* ~ N(0, I/D)."""
    lam_D = np.asarray(lam, np.float64)
    D = lam_D.size
    # every term is linear in d^2 and E[d_i^2] = 1/D: a w* with w*_i^2 = 1/D gives the expectations
    return linear_noise_scale(np.zeros(D), np.full(D, 1 / np.sqrt(D)), lam_D, noise_std)

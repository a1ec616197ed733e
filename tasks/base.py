"""What the engine knows of a task: its data, its loss and its metrics (no task names)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrscale.config import ConfigError


class Keys(NamedTuple):
    """The random streams of one seed, shared by every learning rate of that seed."""

    teacher: jax.Array
    init: jax.Array
    data: jax.Array  # minibatch t of an online stream uses fold_in(data, t); epochs likewise
    eval: jax.Array


def seed_keys(seed) -> Keys:
    return Keys(*jax.random.split(jax.random.key(seed), 4))


class SeedData(NamedTuple):
    """What the lanes of one seed train and are evaluated on (built inside the program)."""

    train: tuple[jax.Array, jax.Array] | None  # a finite training set (x_NxF, y_N); None: online
    sample: Callable[[jax.Array, int], tuple] | None  # online: (key, n) -> (x_NxF, y_N)
    eval: tuple[jax.Array, jax.Array] | None  # the held-out set (x_MxF, y_M)
    exact_loss: Callable[[Any], jax.Array] | None  # params -> exact population loss, if known


class Task(NamedTuple):
    name: str
    kind: str  # regression | classification
    loss: str  # mse | cross_entropy
    n_out: int  # outputs of the model: 1 for regression, the number of classes otherwise
    n_features: int
    sequence: bool  # an example is a 1-D signal (a convolution along it makes sense)
    n_train: int | None  # training-set size; None: fresh samples every step
    data: dict[str, np.ndarray]  # put on the device once per program, shared by every lane
    seed_data: Callable[[dict, Keys, Any], SeedData]  # (data, keys, dtype) -> SeedData
    columns: dict  # recorded in every row of the results: kind, loss and sizes
    # What identifies the data beyond the config (digests of the files read, the features used):
    # part of the sweep's identity and recorded in every row.
    identity: dict = {}  # never mutated
    notes: tuple[str, ...] = ()  # what a user should hear about the data (columns left out)


def mse(pred_BxK: jax.Array, y_B: jax.Array) -> jax.Array:
    """Mean over the batch of (f(x) - y)^2, no 1/2 (the pinned regression loss)."""
    return jnp.mean((pred_BxK[:, 0] - y_B) ** 2)


def cross_entropy(logits_BxK: jax.Array, y_B: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy in nats."""
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits_BxK, y_B))


def accuracy(logits_BxK: jax.Array, y_B: jax.Array) -> jax.Array:
    return jnp.mean(jnp.argmax(logits_BxK, axis=-1) == y_B)


LOSSES = {"mse": mse, "cross_entropy": cross_entropy}


EXTRA = "pip install 'lrscale[data]'"


def need(module: str, task: str, package: str):
    """module, imported, or a ConfigError saying which extra installs it."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise ConfigError(
            f"task={task} needs the {package} package, which is not installed: {EXTRA}"
        ) from None


def finite(x: np.ndarray, where: str, what: str) -> None:
    """Refuse NaN or inf in x, naming the first row that has one."""
    bad = ~np.isfinite(x)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise ConfigError(f"{where}: NaN or inf in the {what} (row {row})")

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


def standardize_columns(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Arrays scaled by the training array's mean and std (per column of 2-D arrays; a constant
    column stays as it is). Each column is first divided by a power of two near its largest
    magnitude: exact in floating point, so the result is the plain (x - mean) / std wherever that
    does not overflow, and finite where it would (values near 1e300)."""
    top = np.max(np.abs(train), axis=0)
    two_k = np.exp2(np.floor(np.log2(np.where(top > 0, top, 1.0))))
    train = train / two_k
    mu, sd = train.mean(0), train.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    return [(train - mu) / sd, *((x / two_k - mu) / sd for x in others)]


def cast(x: np.ndarray, dtype, where: str, what: str, hint: str) -> np.ndarray:
    """x in dtype, refused where a value leaves the dtype's range (inf) or a column that varies
    becomes constant (every value rounded to 0)."""
    with np.errstate(over="ignore"):
        out = x.astype(dtype)
    big = ~np.isfinite(out)
    if big.any():
        v = x[big].flat[0]
        raise ConfigError(
            f"{where}: the {what} reach {v:.3g}, beyond the range of {np.dtype(dtype).name} "
            f"(+-{float(np.finfo(dtype).max):.3g}): {hint}"
        )
    x2, o2 = x.reshape(len(x), -1), out.reshape(len(out), -1)
    lost = (np.ptp(x2, axis=0) > 0) & (np.ptp(o2, axis=0) == 0) if len(x2) else []
    if np.any(lost):
        col = int(np.flatnonzero(lost)[0])
        raise ConfigError(
            f"{where}: the {what} of column {col} ({np.abs(x2[:, col]).max():.3g} at most) "
            f"round to one value in {np.dtype(dtype).name}: {hint}"
        )
    return out


def from_arrays(
    name: str,
    kind: str,
    train: tuple[np.ndarray, np.ndarray],
    held_out: tuple[np.ndarray, np.ndarray],
    *,
    where: str,
    max_batch: int,
    dtype,
    standardize: bool = False,
    sequence: bool = False,
    columns: dict | None = None,
    identity: dict | None = None,
    notes: tuple[str, ...] = (),
) -> Task:
    """A task on a fixed training split and a held-out split, after the checks users need.

    Classification labels (integers or strings) are mapped to 0..K-1; `standardize` scales the
    features (and regression targets) by the training split's mean and std. A constant regression
    target is refused, and so are values that the sweep's dtype cannot hold.
    """
    (x_tr, y_tr), (x_ev, y_ev) = train, held_out
    if len(x_ev) == 0:
        raise ConfigError(f"{where}: the held-out split has no examples")
    if len(x_tr) < max_batch:
        raise ConfigError(
            f"{where}: the training split has {len(x_tr)} examples, fewer than the largest "
            f"batch size {max_batch} (sweep.batch_sizes)"
        )
    x_tr, x_ev = (np.asarray(x, np.float64).reshape(len(x), -1) for x in (x_tr, x_ev))
    finite(x_tr, where, "training features")
    finite(x_ev, where, "held-out features")
    if kind == "classification":
        for y, what in ((y_tr, "training labels"), (y_ev, "held-out labels")):
            if np.issubdtype(np.asarray(y).dtype, np.floating):
                finite(np.asarray(y), where, what)
        classes, y_all = np.unique(np.concatenate([y_tr, y_ev]), return_inverse=True)
        if len(np.unique(y_all[: len(y_tr)])) < 2:
            raise ConfigError(f"{where}: the classification target has one class in training")
        y_tr, y_ev = y_all[: len(y_tr)].astype(np.int32), y_all[len(y_tr) :].astype(np.int32)
        n_out, loss = len(classes), "cross_entropy"
    else:
        y_tr, y_ev = np.asarray(y_tr, np.float64), np.asarray(y_ev, np.float64)
        finite(y_tr, where, "training targets")
        finite(y_ev, where, "held-out targets")
        if np.ptp(y_tr) == 0:
            raise ConfigError(
                f"{where}: the regression target is {y_tr[0]:.6g} in every training example: "
                "there is nothing to learn"
            )
        n_out, loss = 1, "mse"
    if standardize:
        x_tr, x_ev = standardize_columns(x_tr, x_ev)
        if kind == "regression":
            y_tr, y_ev = standardize_columns(y_tr, y_ev)
    hint = (
        "use sweep.dtype=float64"
        if standardize
        else "set task.standardize=true, or use sweep.dtype=float64"
    )
    data = {
        "x_train": cast(x_tr, dtype, where, "training features", hint),
        "x_eval": cast(x_ev, dtype, where, "held-out features", hint),
    }
    if kind == "classification":
        data.update(y_train=y_tr.astype(np.int32), y_eval=y_ev.astype(np.int32))
    else:
        data.update(
            y_train=cast(y_tr, dtype, where, "training targets", hint),
            y_eval=cast(y_ev, dtype, where, "held-out targets", hint),
        )

    def seed_data(data, keys, dtype):
        return SeedData(
            train=(data["x_train"], data["y_train"]),
            sample=None,
            eval=(data["x_eval"], data["y_eval"]),
            exact_loss=None,
        )

    return Task(
        name=name,
        kind=kind,
        loss=loss,
        n_out=n_out,
        n_features=x_tr.shape[1],
        sequence=sequence,
        n_train=len(x_tr),
        data=data,
        seed_data=seed_data,
        columns={
            "task_kind": kind,
            "loss": loss,
            "n_features": x_tr.shape[1],
            "n_outputs": n_out,
            "train_size": len(x_tr),
            "eval_size": len(x_ev),
            **(columns or {}),
        },
        identity=identity or {},
        notes=notes,
    )


def split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int):
    """A held-out split of round(test_fraction * N) examples chosen by seed."""
    n_eval = int(round(test_fraction * len(x)))
    perm = np.random.default_rng(seed).permutation(len(x))
    ev, tr = perm[:n_eval], perm[n_eval:]
    return (x[tr], y[tr]), (x[ev], y[ev])

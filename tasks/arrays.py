"""A task on a fixed training split and a held-out split (files, MNIST-1D, digits), after the
checks users need: labels, targets, scales and what the sweep's dtype can hold."""

from __future__ import annotations

import numpy as np

from lrscale.config import ConfigError
from tasks.base import SeedData, Task, finite


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


MAX_CLASS_SHARE = 0.5  # more classes than this share of the training examples: not classes
FAR = 1e6  # held-out values this many training standard deviations away: another scale


def _labels(y_tr, y_ev, where: str, where_ev: str):
    """(training labels, held-out labels, number of classes): 0..K-1 by sorted label; labels
    that mix numbers and text are compared as text."""
    y_tr, y_ev = np.asarray(y_tr), np.asarray(y_ev)
    for y, at, what in ((y_tr, where, "training labels"), (y_ev, where_ev, "held-out labels")):
        if np.issubdtype(y.dtype, np.floating):
            finite(y, at, what)
    if np.issubdtype(y_tr.dtype, np.number) != np.issubdtype(y_ev.dtype, np.number):
        y_tr, y_ev = y_tr.astype(str), y_ev.astype(str)
    classes, y_all = np.unique(np.concatenate([y_tr, y_ev]), return_inverse=True)
    seen = np.unique(y_all[: len(y_tr)])
    if len(seen) < 2:
        raise ConfigError(f"{where}: the classification target has one class in training")
    if len(seen) > MAX_CLASS_SHARE * len(y_tr):
        raise ConfigError(
            f"{where}: the classification target has {len(seen)} classes in {len(y_tr)} training "
            "examples: a number to predict is task.kind=regression"
        )
    unseen = np.setdiff1d(y_all[len(y_tr) :], seen)
    if len(unseen):
        named = ", ".join(repr(classes[k].item()) for k in unseen[:5])
        raise ConfigError(
            f"{where_ev}: held-out labels that no training example has ({named}): the model "
            "cannot learn them"
        )
    return y_all[: len(y_tr)].astype(np.int32), y_all[len(y_tr) :].astype(np.int32), len(classes)


def _targets(y_tr, y_ev, where: str, where_ev: str):
    """Regression targets as float64, refused where not finite or constant."""
    y_tr, y_ev = np.asarray(y_tr, np.float64), np.asarray(y_ev, np.float64)
    finite(y_tr, where, "training targets")
    finite(y_ev, where_ev, "held-out targets")
    if np.ptp(y_tr) == 0:
        raise ConfigError(
            f"{where}: the regression target is {y_tr[0]:.6g} in every training example: "
            "there is nothing to learn"
        )
    return y_tr, y_ev


def _within_scale(train: np.ndarray, held_out: np.ndarray, where_ev: str, what: str) -> None:
    """Refuse held-out values FAR training standard deviations from the training mean: a file on
    another scale, whose losses would overflow where training does not."""
    t, h = train.reshape(len(train), -1), held_out.reshape(len(held_out), -1)
    top = np.max(np.abs(t), axis=0)
    two_k = np.exp2(np.floor(np.log2(np.where(top > 0, top, 1.0))))
    sd = np.std(t / two_k, axis=0) * two_k
    z = np.abs(h / two_k - np.mean(t / two_k, axis=0)) * two_k / np.where(sd > 0, sd, 1.0)
    if np.any(z > FAR):
        row, col = np.argwhere(z > FAR)[0]
        far = f"{h[row, col]:.3g} (row {row}), {z[row, col]:.3g} training standard deviations"
        raise ConfigError(
            f"{where_ev}: the held-out {what} reach {far} away: it holds data on another scale"
        )


def from_arrays(
    name: str,
    kind: str,
    train: tuple[np.ndarray, np.ndarray],
    held_out: tuple[np.ndarray, np.ndarray],
    *,
    where: str,
    max_batch: int,
    dtype,
    where_eval: str | None = None,
    standardize: bool = False,
    sequence: bool = False,
    columns: dict | None = None,
    identity: dict | None = None,
    notes: tuple[str, ...] = (),
) -> Task:
    """A task on a fixed training split and a held-out split, after the checks users need.

    where (where_eval, default where) names the data in errors about the training (held-out)
    split. Classification labels (integers or strings) are mapped to 0..K-1; `standardize`
    scales the features (and regression targets) by the training split's mean and std. A
    constant regression target, held-out data on another scale and values that the sweep's
    dtype cannot hold are refused.
    """
    (x_tr, y_tr), (x_ev, y_ev) = train, held_out
    where_ev = where_eval or where
    if len(x_ev) == 0:
        raise ConfigError(f"{where_ev}: the held-out split has no examples")
    if len(x_tr) < max_batch:
        raise ConfigError(
            f"{where}: the training split has {len(x_tr)} examples, fewer than the largest "
            f"batch size {max_batch} (sweep.batch_sizes)"
        )
    x_tr, x_ev = (np.asarray(x, np.float64).reshape(len(x), -1) for x in (x_tr, x_ev))
    finite(x_tr, where, "training features")
    finite(x_ev, where_ev, "held-out features")
    _within_scale(x_tr, x_ev, where_ev, "features")
    if kind == "classification":
        y_tr, y_ev, n_out = _labels(y_tr, y_ev, where, where_ev)
        loss = "cross_entropy"
    else:
        y_tr, y_ev = _targets(y_tr, y_ev, where, where_ev)
        _within_scale(y_tr, y_ev, where_ev, "targets")
        n_out, loss = 1, "mse"
    if standardize:
        x_tr, x_ev = standardize_columns(x_tr, x_ev)
        if kind == "regression":
            y_tr, y_ev = standardize_columns(y_tr, y_ev)
    wider = "" if np.dtype(dtype) == np.float64 else "use sweep.dtype=float64"
    hint = (
        wider if standardize else ", or ".join(filter(None, ("set task.standardize=true", wider)))
    )
    data = {
        "x_train": cast(x_tr, dtype, where, "training features", hint),
        "x_eval": cast(x_ev, dtype, where_ev, "held-out features", hint),
    }
    if kind == "classification":
        data.update(y_train=y_tr, y_eval=y_ev)
    else:
        # the squared error of a target near the dtype's square root overflows
        root = float(np.sqrt(np.finfo(dtype).max)) / 2
        for y, at, what in ((y_tr, where, "training"), (y_ev, where_ev, "held-out")):
            if np.abs(y).max() > root:
                raise ConfigError(
                    f"{at}: the {what} targets reach {np.abs(y).max():.3g}, whose squared error "
                    f"overflows {np.dtype(dtype).name}: {hint}"
                )
        data.update(
            y_train=cast(y_tr, dtype, where, "training targets", hint),
            y_eval=cast(y_ev, dtype, where_ev, "held-out targets", hint),
        )
    return _task(name, kind, loss, n_out, data, sequence, columns, identity, notes)


def _task(name, kind, loss, n_out, data, sequence, columns, identity, notes) -> Task:
    """The Task of a fixed training split and held-out split in data."""

    def seed_data(data, keys, dtype):
        return SeedData(
            train=(data["x_train"], data["y_train"]),
            sample=None,
            eval=(data["x_eval"], data["y_eval"]),
            exact_loss=None,
        )

    F = data["x_train"].shape[1]
    return Task(
        name=name,
        kind=kind,
        loss=loss,
        n_out=n_out,
        n_features=F,
        sequence=sequence,
        n_train=len(data["x_train"]),
        data=data,
        seed_data=seed_data,
        columns={
            "task_kind": kind,
            "loss": loss,
            "n_features": F,
            "n_outputs": n_out,
            "train_size": len(data["x_train"]),
            "eval_size": len(data["x_eval"]),
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

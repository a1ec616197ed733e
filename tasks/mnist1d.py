"""MNIST-1D (Greydanus 2020), generated offline by the `mnist1d` package and cached."""

from __future__ import annotations

import importlib.metadata
import io
import random
from pathlib import Path

import numpy as np

from lrscale.config import user_cache_dir
from lrscale.files import atomic_write
from tasks.arrays import from_arrays
from tasks.base import Task, need

NAME = "mnist1d"


def mnist1d_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n examples (x_Nx40, y_N) of MNIST-1D from its procedural generator (never downloaded)."""
    data = need("mnist1d.data", "mnist1d", "mnist1d")
    args = data.get_dataset_args()
    args.num_samples = -(-n // 10) * 10  # the generator makes the same number of every class
    args.train_split, args.seed = 1.0, seed
    # The generator seeds Python's and numpy's global generators; leave them as they were.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = data.make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return d["x"][:n].astype(np.float32), d["y"][:n].astype(np.int64)


def mnist1d_cached(n: int, seed: int, cache: Path | None = None):
    """mnist1d_arrays, kept as .npz in the user cache directory keyed by its settings."""
    need("mnist1d.data", "mnist1d", "mnist1d")
    version = importlib.metadata.version("mnist1d")  # another generator may give other data
    cache = cache or user_cache_dir() / "data"
    path = cache / f"mnist1d-{version}-n{n}-seed{seed}.npz"
    if path.exists():
        with np.load(path) as f:
            return f["x"], f["y"]
    x, y = mnist1d_arrays(n, seed)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: tmp.write_bytes(_npz_bytes(x, y)))
    except OSError:
        pass  # an unwritable cache only costs regenerating next time
    return x, y


def build(cfg) -> Task:
    t = cfg.task
    x, y = mnist1d_cached(t.n_train + t.n_eval, t.data_seed)
    version = importlib.metadata.version("mnist1d")
    return from_arrays(
        "mnist1d",
        "classification",
        (x[: t.n_train], y[: t.n_train]),
        (x[t.n_train :], y[t.n_train :]),
        where="task=mnist1d",
        max_batch=max(cfg.sweep.batch_sizes),
        dtype=cfg.sweep.dtype,
        sequence=True,
        identity={"task_generator": f"mnist1d {version}"},  # another version, other data
    )


def _npz_bytes(x: np.ndarray, y: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, x=x, y=y)
    return buf.getvalue()

"""scikit-learn's bundled 8x8 digits, 1797 images."""

from __future__ import annotations

from tasks.arrays import from_arrays, split
from tasks.base import Task, need

NAME = "digits"


def build(cfg) -> Task:
    t = cfg.task
    x, y = need("sklearn.datasets", "digits", "scikit-learn").load_digits(return_X_y=True)
    train, held_out = split(x, y, t.test_fraction, t.data_seed)
    return from_arrays(
        "digits",
        "classification",
        train,
        held_out,
        where="task=digits",
        max_batch=max(cfg.sweep.batch_sizes),
        dtype=cfg.sweep.dtype,
        standardize=t.standardize,
    )

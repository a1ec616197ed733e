"""Tasks: the data a sweep trains on, its loss and metrics; `build` picks one from the config."""

from __future__ import annotations

from tasks import datasets, files, regression, text
from tasks.base import LOSSES, Keys, SeedData, Task, accuracy, seed_keys

BUILDERS = {
    "regression": regression.build,
    "mnist1d": datasets.mnist1d,
    "digits": datasets.digits,
    "file": files.build,
    "text": text.build,
}


def build(cfg) -> Task:
    """The task of cfg (data loaded and checked); ConfigError names the key or file at fault."""
    return BUILDERS[cfg.task.name](cfg)


__all__ = ["LOSSES", "Keys", "SeedData", "Task", "accuracy", "build", "seed_keys"]

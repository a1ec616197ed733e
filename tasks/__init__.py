"""Tasks, one module each (regression, mnist1d, digits, file, text): `build` picks one by name.

A task's module holds its NAME and `build(cfg) -> Task` (the data loaded and checked); its
schema (the task.* keys, typed) and their value checks are in lrscale.config and lrscale.checks,
so that a config error is found before the data or JAX are loaded. The modules of this package
are found by name, so none is listed twice.
"""

from __future__ import annotations

import importlib
import pkgutil

from tasks.base import LOSSES, Keys, SeedData, Task, accuracy, seed_keys


def _modules() -> dict:
    """{NAME: module} of every task module of this package."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "NAME"):
            found[module.NAME] = module
    return found


REGISTRY = _modules()


def build(cfg) -> Task:
    """The task of cfg (data loaded and checked); ConfigError names the key or file at fault."""
    return REGISTRY[cfg.task.name].build(cfg)


__all__ = ["LOSSES", "REGISTRY", "Keys", "SeedData", "Task", "accuracy", "build", "seed_keys"]

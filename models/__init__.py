"""Models, one module each (linear, mlp, cnn, transformer, custom): `build` picks one by name.

A model's module holds its NAME, the model.* keys it READS, the TASK_KINDS it trains on and
`build(cfg, task, dtype, batch_sizes) -> Model`; adding a model is one such module and one YAML
in conf/model/. The modules of this package are found by name, so none is listed twice.
"""

from __future__ import annotations

import importlib
import pkgutil

from lrscale.config import ConfigError, ModelConfig
from models.base import Model


def _modules() -> dict:
    """{NAME: module} of every model module of this package."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "NAME"):
            found[module.NAME] = module
    return found


REGISTRY = _modules()


def build(cfg: ModelConfig, task, dtype="float32", batch_sizes=()) -> Model:
    """The model of cfg for `task` (its number of features and outputs); a user's model is traced
    as the sweep calls it: in dtype, on each of batch_sizes and the task's held-out set."""
    if cfg.name not in REGISTRY:
        raise ConfigError(f"model.name must be one of {', '.join(REGISTRY)} (got {cfg.name!r})")
    module = REGISTRY[cfg.name]
    if task.kind not in module.TASK_KINDS:
        raise ConfigError(
            f"model=transformer and task=text go together: a transformer reads byte sequences and "
            f"predicts each next byte (got model={cfg.name} with task={task.name})"
        )
    return module.build(cfg, task, dtype, batch_sizes)


__all__ = ["REGISTRY", "Model", "build"]

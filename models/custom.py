"""A user's flax.linen.Module, named by its dotted path: traced once at start-up under the calls
the sweep will make, counted by XLA, and identified by its source."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import sys
from pathlib import Path

import flax.errors
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lrscale.config import ConfigError, ModelConfig
from models.base import Model

NAME = "custom"
READS = ("target", "kwargs")
TASK_KINDS = ("regression", "classification")

NOT_TRACEABLE = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerArrayConversionError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
)
STATE = (flax.errors.ModifyScopeVariableError, flax.errors.ScopeCollectionNotFound)


def _why(e: BaseException, first_sentence: bool = False) -> str:
    """An exception in one line: the error of a start-up check is one line."""
    text = " ".join(str(e).split())
    if first_sentence:
        text = text.split(". ")[0]
    return f"{type(e).__name__}: {text[:300]}"


def _class(target: str) -> tuple[type, list[str]]:
    """The class model.target names, and the source files of the user's modules its import
    loaded (its own first; installed packages and the standard library left out)."""
    module_name, _, name = target.rpartition(".")
    if not module_name:
        raise ConfigError(f"model.target: {target!r} is not a dotted path (package.module.Class)")
    before = set(sys.modules)
    try:
        module = importlib.import_module(module_name)
    except SystemExit as e:  # a module that exits when imported is an import failure too
        raise ConfigError(
            f"model.target: importing {module_name} called sys.exit({e.code!r}); a model's "
            "module must define its class without running a program"
        ) from None
    except Exception as e:  # noqa: BLE001 - any import failure of user code is reported the same
        raise ConfigError(f"model.target: cannot import {module_name} ({_why(e)})") from None
    cls = getattr(module, name, None)
    if cls is None:
        raise ConfigError(f"model.target: {module_name} has no {name}")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ConfigError(f"model.target: {target} is not a flax.linen.Module class")
    installed = {sys.prefix, sys.base_prefix, sys.exec_prefix, str(Path(nn.__file__).parents[2])}
    loaded = sorted(set(sys.modules) - before - {module_name})
    files = [getattr(sys.modules[m], "__file__", None) for m in loaded]
    users = [f for f in files if f and not any(f.startswith(p) for p in installed)]
    return cls, [inspect.getfile(cls), *users]


def source_digest(files: list[str]) -> str:
    """sha256 of the bytes of these source files, in order (first 16 hex digits)."""
    h = hashlib.sha256()
    for f in files:
        try:
            h.update(Path(f).read_bytes())
        except OSError as e:
            raise ConfigError(f"model.target: its source {f} cannot be read ({e})") from None
    return h.hexdigest()[:16]


def _traced(target: str, what: str, fn, *args):
    """jax.eval_shape(fn, *args): every failure a one-line ConfigError naming what the module
    did."""
    try:
        return jax.eval_shape(fn, *args)
    except STATE as e:
        raise ConfigError(
            f"model.target: {target} keeps state besides its parameters ({_why(e)}); lrscale "
            "trains parameters only: no BatchNorm(use_running_average=False), no mutable variables"
        ) from None
    except flax.errors.InvalidRngError as e:
        raise ConfigError(
            f"model.target: {target} draws random numbers ({_why(e)}); lrscale gives a model "
            "none: no Dropout (or Dropout(deterministic=True))"
        ) from None
    except NOT_TRACEABLE as e:
        raise ConfigError(
            f"model.target: {target} is not traceable by JAX {what} (it turns an array into "
            f"numpy or Python values, e.g. np.asarray(x) or `if x > 0`): {_why(e, True)}"
        ) from None
    except Exception as e:  # noqa: BLE001 - any failure of user code is reported the same
        raise ConfigError(f"model.target: {target} fails {what} ({_why(e)})") from None


def build(cfg: ModelConfig, task, dtype, batch_sizes) -> Model:
    """model.target(n_out=..., **kwargs), after tracing it as the sweep calls it: initialised on
    one example, applied in dtype to batches of every size in batch_sizes, of 1 and of the
    task's held-out set, and differentiated; its output must be (batch, n_out) floats."""
    target, n_features, n_out = cfg.target, task.n_features, task.n_out
    batch_sizes = [*batch_sizes, task.columns.get("eval_size") or 1]
    cls, sources = _class(target)
    try:
        net = cls(n_out=n_out, **cfg.kwargs)
    except Exception as e:  # noqa: BLE001
        raise ConfigError(
            f"model.target: {target}(n_out={n_out}, **model.kwargs) failed ({_why(e)})"
        ) from None
    if cfg.kwargs:  # a failure below may be a value of model.kwargs'
        target = f"{target}({', '.join(f'{k}={v!r}' for k, v in cfg.kwargs.items())})"
    dtype = jnp.dtype(dtype)
    one = jax.ShapeDtypeStruct((1, n_features), dtype)
    params = _traced(
        target, f"at init on a batch of shape {one.shape}", net.init, jax.random.key(0), one
    )
    extra = sorted(set(params) - {"params"})
    if extra:
        raise ConfigError(
            f"model.target: {target} keeps state besides its parameters (collection "
            f"{', '.join(map(repr, extra))}); lrscale trains parameters only: no "
            "BatchNorm(use_running_average=False), no mutable variables"
        )
    for b in sorted({1, *batch_sizes}):
        x = jax.ShapeDtypeStruct((b, n_features), dtype)
        out = _traced(target, f"on a batch of shape {x.shape} ({dtype.name})", net.apply, params, x)
        if getattr(out, "shape", None) != (b, n_out):
            raise ConfigError(
                f"model.target: {target} returns shape {getattr(out, 'shape', type(out))} for a "
                f"batch of shape {x.shape}; it must return ({b}, {n_out}) = (batch, task outputs)"
            )
        if not jnp.issubdtype(out.dtype, jnp.floating):
            raise ConfigError(
                f"model.target: {target} returns {out.dtype} outputs; it must return floats "
                "(predictions or logits), which a loss can be differentiated through"
            )
    _traced(target, "under jax.grad", jax.grad(lambda p, x: jnp.sum(net.apply(p, x))), params, one)
    n_params = int(sum(np.prod(p.shape) for p in jax.tree.leaves(params)))
    if n_params == 0:
        raise ConfigError(f"model.target: {target} has no parameters: there is nothing to train")
    try:
        cost = jax.jit(net.apply).lower(params, one).cost_analysis()
    except Exception as e:  # noqa: BLE001
        raise ConfigError(f"model.target: {target} cannot be lowered by XLA ({_why(e)})") from None
    cost = cost[0] if isinstance(cost, list | tuple) else cost or {}
    flops, touched = float(cost.get("flops", 0.0)), int(cost.get("bytes accessed", 0.0))
    return Model(
        init=lambda key, dtype: net.init(key, jnp.zeros((1, n_features), dtype)),
        apply=net.apply,
        linear=False,
        n_params=n_params,
        flops=flops,
        train_flops=3 * flops,
        activations=max(n_out, touched // 4),
        # the module's source and size: an edited module is another sweep
        identity={"model_source_sha256": source_digest(sources), "model_n_params": n_params},
    )

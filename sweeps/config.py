"""Typed configuration: the Hydra schema (every key declared) and the value checks."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

TASK_KINDS = ("regression", "classification")
MODELS = ("linear", "mlp", "cnn", "custom")
ACTIVATIONS = ("relu", "gelu", "tanh", "silu")
OPTIMIZERS = (
    "sgd",
    "momentum",
    "nesterov",
    "adam",
    "adamw",
    "rmsprop",
    "lion",
    "signsgd",
    "adafactor",
)
SCALING_RULES = ("none", "sqrt")
DTYPES = ("float32", "float64")


class ConfigError(ValueError):
    """A config value outside what is allowed; the message names the key."""


@dataclass
class RegressionTask:
    """The pinned synthetic linear-regression task (see the design notes)."""

    name: str = "regression"
    dim: int = 64
    noise_std: float = 0.5
    spectrum_decay: float = 1.0
    n_train: int | None = None  # None: fresh samples every step
    n_eval: int = 1024  # held-out set of the MLP (the linear model's eval loss is exact)


@dataclass
class Mnist1dTask:
    """MNIST-1D (Greydanus 2020), generated offline by the `mnist1d` package."""

    name: str = "mnist1d"
    n_train: int = 4000
    n_eval: int = 1000
    data_seed: int = 0  # the dataset is a fixed function of this, whatever the sweep's seeds


@dataclass
class DigitsTask:
    """scikit-learn's bundled 8x8 digits, 1797 images."""

    name: str = "digits"
    test_fraction: float = 0.2
    data_seed: int = 0  # the held-out split
    standardize: bool = True


@dataclass
class FileTask:
    """The user's own data: .npz (arrays x, y), .csv or .parquet (a target column)."""

    name: str = "file"
    path: str = MISSING
    kind: str = MISSING  # classification or regression
    target: str | None = None  # the target column (csv, parquet)
    features: list[str] | None = None  # feature columns; None: every other numeric column
    test_fraction: float = 0.2
    test_path: str | None = None  # a held-out file of the same layout instead of a split
    data_seed: int = 0  # the held-out split
    standardize: bool = True  # features (and regression targets) by the training split's stats


TASK_SCHEMAS = {
    "regression": RegressionTask,
    "mnist1d": Mnist1dTask,
    "digits": DigitsTask,
    "file": FileTask,
}
TASKS = tuple(TASK_SCHEMAS)


@dataclass
class ModelConfig:
    name: str = MISSING
    width: int = 64  # mlp
    depth: int = 2  # hidden layers (mlp), convolutions (cnn)
    activation: str = "relu"  # mlp, cnn
    channels: int = 8  # cnn
    kernel: int = 5  # cnn
    target: str | None = None  # custom: dotted path of a flax.linen.Module class
    kwargs: dict[str, Any] = field(default_factory=dict)  # custom: Class(n_out=..., **kwargs)


@dataclass
class OptimizerConfig:
    name: str = MISSING
    momentum: float = 0.0  # sgd, momentum, nesterov (heavy ball in optax's trace form)
    nesterov: bool = False
    b1: float = 0.9  # first-moment decay: adam, adamw, lion
    b2: float = 0.999  # second-moment decay: adam, adamw, lion, rmsprop
    eps: float = 1e-8
    weight_decay: float = 0.0  # decoupled: adamw, lion
    # "sqrt": Malladi et al. 2022 for adaptive methods: at batch size B = k * base_batch_size,
    # 1 - b1 and 1 - b2 are multiplied by k and eps divided by sqrt(k) (the lr stays swept).
    scaling_rule: str = "none"
    base_batch_size: int = 1


@dataclass
class LrGrid:
    min: float = 1e-3
    max: float = 10.0
    num: int = 25


@dataclass
class Budget:
    samples: int | None = None
    steps: int | None = None

    @property
    def kind(self) -> str:
        return "samples" if self.samples is not None else "steps"

    def steps_for(self, batch_size: int) -> int:
        return self.samples // batch_size if self.samples is not None else self.steps


@dataclass
class SweepConfig:
    name: str = "default"
    batch_sizes: list[int] = field(default_factory=lambda: [2**k for k in range(11)])
    lr: LrGrid = field(default_factory=LrGrid)
    seeds: int = 3
    budget: Budget = field(default_factory=Budget)
    divergence_factor: float = 1e3  # a lane whose loss exceeds this times its initial loss diverged
    curve_points: int = 64  # log-spaced points of the loss curves
    dtype: str = "float32"
    memory_gb: float | None = None  # lanes run in chunks that fit this; None: half the device's


@dataclass
class Config:
    task: Any = field(default_factory=RegressionTask)  # one of TASK_SCHEMAS, chosen by name
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    progress: bool = True
    plot: bool = True  # draw the figures of the finished sweep
    compile_cache: bool = True  # JAX's persistent compilation cache, in the user's cache directory
    resume: bool = False  # continue the latest run of this model-optimizer (see README)


def register() -> None:
    cs = ConfigStore.instance()
    # The task node starts empty: each conf/task/<name>.yaml extends schema/task/<name>.
    cs.store(name="schema", node=Config(task=MISSING))
    for name, schema in TASK_SCHEMAS.items():
        cs.store(group="schema/task", name=name, node=schema)


def user_cache_dir() -> Path:
    """lrscale's folder in the user's cache directory."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lrscale"


def to_config(dcfg) -> Config:
    """The typed Config of a composed DictConfig (or a plain dict); unknown keys are refused.

    Hydra lets `+key=value` add keys even to a typed node, so the composed tree is merged once
    more into a fresh schema, which names any key it does not declare.
    """
    try:
        plain = OmegaConf.to_container(dcfg) if OmegaConf.is_config(dcfg) else dict(dcfg)
        task = plain.get("task") or {}
        name = task.get("name", "regression") if isinstance(task, dict) else None
        if name not in TASK_SCHEMAS:
            raise ConfigError(f"task.name must be one of {', '.join(TASKS)} (got {name!r})")
        base = OmegaConf.structured(Config(task=TASK_SCHEMAS[name]()))
        return OmegaConf.to_object(OmegaConf.merge(base, plain))
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "config"
        raise ConfigError(f"{key}: {str(e).splitlines()[0]}") from None


def _check(ok: bool, key: str, allowed: str, value) -> None:
    if not ok:
        raise ConfigError(f"{key} must be {allowed} (got {value!r})")


def _one_of(key: str, value, options) -> None:
    _check(value in options, key, "one of " + ", ".join(map(str, options)), value)


def _validate_task(t, max_batch: int) -> None:
    if t.name == "regression":
        _check(t.dim > 0, "task.dim", "> 0", t.dim)
        _check(t.noise_std >= 0, "task.noise_std", ">= 0", t.noise_std)
        _check(t.spectrum_decay >= 0, "task.spectrum_decay", ">= 0", t.spectrum_decay)
        _check(t.n_eval > 0, "task.n_eval", "> 0", t.n_eval)
        if t.n_train is not None:
            _check(
                t.n_train >= max_batch,
                "task.n_train",
                f"null (online data) or >= the largest batch size {max_batch}",
                t.n_train,
            )
        return
    if t.name == "mnist1d":
        _check(
            t.n_train >= max_batch,
            "task.n_train",
            f">= the largest batch size {max_batch}",
            t.n_train,
        )
        _check(t.n_eval > 0, "task.n_eval", "> 0", t.n_eval)
        return
    if t.name == "file":
        _one_of("task.kind", t.kind, TASK_KINDS)
        _check(bool(t.path), "task.path", "a file path", t.path)
        if t.features is not None:
            _check(len(t.features) > 0, "task.features", "null or a non-empty list", t.features)
    _check(0 < t.test_fraction < 1, "task.test_fraction", "in (0, 1)", t.test_fraction)


def validate(cfg: Config) -> Config:
    """Raise ConfigError on the first value that is out of range; return cfg unchanged."""
    t, m, o, s = cfg.task, cfg.model, cfg.optimizer, cfg.sweep
    for key, value in _floats(cfg):
        _check(value is None or math.isfinite(value), key, "a finite number", value)
    _one_of("model.name", m.name, MODELS)
    _one_of("model.activation", m.activation, ACTIVATIONS)
    _check(m.width > 0, "model.width", "> 0", m.width)
    _check(m.depth >= 1, "model.depth", ">= 1", m.depth)
    _check(m.channels > 0, "model.channels", "> 0", m.channels)
    _check(m.kernel > 0, "model.kernel", "> 0", m.kernel)
    if m.name == "custom":
        _check(bool(m.target), "model.target", "a dotted path (model=custom)", m.target)
    _one_of("optimizer.name", o.name, OPTIMIZERS)
    _check(0 <= o.momentum < 1, "optimizer.momentum", "in [0, 1)", o.momentum)
    _check(0 <= o.b1 < 1, "optimizer.b1", "in [0, 1)", o.b1)
    _check(0 <= o.b2 < 1, "optimizer.b2", "in [0, 1)", o.b2)
    _check(o.eps > 0, "optimizer.eps", "> 0", o.eps)
    _check(o.weight_decay >= 0, "optimizer.weight_decay", ">= 0", o.weight_decay)
    _one_of("optimizer.scaling_rule", o.scaling_rule, SCALING_RULES)
    _check(o.base_batch_size > 0, "optimizer.base_batch_size", "> 0", o.base_batch_size)
    bs = list(s.batch_sizes)
    _check(len(bs) > 0, "sweep.batch_sizes", "a non-empty list", bs)
    for b in bs:
        _check(b > 0, "sweep.batch_sizes", "a list of integers > 0", bs)
    _check(len(set(bs)) == len(bs), "sweep.batch_sizes", "a list without repeats", bs)
    _check(s.lr.min > 0, "sweep.lr.min", "> 0", s.lr.min)
    _check(s.lr.max > s.lr.min, "sweep.lr.max", f"> sweep.lr.min = {s.lr.min}", s.lr.max)
    _check(s.lr.num >= 2, "sweep.lr.num", ">= 2", s.lr.num)
    _check(s.seeds > 0, "sweep.seeds", "> 0", s.seeds)
    _check(s.divergence_factor > 1, "sweep.divergence_factor", "> 1", s.divergence_factor)
    _check(s.curve_points >= 2, "sweep.curve_points", ">= 2", s.curve_points)
    _one_of("sweep.dtype", s.dtype, DTYPES)
    if s.memory_gb is not None:
        _check(s.memory_gb > 0, "sweep.memory_gb", "null (auto) or > 0", s.memory_gb)
    b = s.budget
    _check(
        (b.samples is None) != (b.steps is None),
        "sweep.budget",
        "exactly one of samples or steps",
        {"samples": b.samples, "steps": b.steps},
    )
    if b.samples is not None:
        _check(
            b.samples >= max(bs),
            "sweep.budget.samples",
            f">= the largest batch size {max(bs)} (one step)",
            b.samples,
        )
    else:
        _check(b.steps >= 1, "sweep.budget.steps", ">= 1", b.steps)
    _validate_task(t, max(bs))
    return cfg


# The optimizer and model keys each option reads; the others are ignored by it.
USES = {
    "optimizer": {
        "sgd": ("momentum", "nesterov"),
        "momentum": ("momentum",),
        "nesterov": ("momentum",),
        "adam": ("b1", "b2", "eps", "scaling_rule", "base_batch_size"),
        "adamw": ("b1", "b2", "eps", "weight_decay", "scaling_rule", "base_batch_size"),
        "rmsprop": ("b2", "eps", "scaling_rule", "base_batch_size"),
        "lion": ("b1", "b2", "weight_decay", "scaling_rule", "base_batch_size"),
        "signsgd": (),
        "adafactor": (),
    },
    "model": {
        "linear": (),
        "mlp": ("width", "depth", "activation"),
        "cnn": ("channels", "depth", "kernel", "activation"),
        "custom": ("target", "kwargs"),
    },
}


def unused(cfg: Config) -> list[str]:
    """One line per group naming the keys set away from their default that its option ignores."""
    out = []
    for group, uses in USES.items():
        node = getattr(cfg, group)
        default = type(node)(name=node.name)
        ignored = [
            f"{group}.{f.name}"
            for f in dataclasses.fields(node)
            if f.name != "name"
            and f.name not in uses.get(node.name, ())
            and getattr(node, f.name) != getattr(default, f.name)
        ]
        if ignored:
            uses_text = ", ".join(uses.get(node.name, ())) or "none of them"
            out.append(
                f"{', '.join(ignored)}: ignored by {group}={node.name} (it uses {uses_text})"
            )
    return out


def _floats(node, prefix: str = ""):
    """(dotted key, value) of every float key of a config tree (the value may be None)."""
    for f in dataclasses.fields(node):
        v = getattr(node, f.name)
        if dataclasses.is_dataclass(v):
            yield from _floats(v, f"{prefix}{f.name}.")
        elif "float" in str(f.type):
            yield f"{prefix}{f.name}", v


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def file_digest(path: str | None) -> str | None:
    """sha256 of a file's bytes (first 16 hex digits); None when it cannot be read."""
    if not path:
        return None
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()[:16]


def settings(cfg: Config) -> dict:
    """The flat settings that identify a sweep (everything that changes a lane's result)."""
    out = {"model": cfg.model.name, "optimizer": cfg.optimizer.name, "task": cfg.task.name}
    for group in ("task", "model", "optimizer"):
        for k, v in dataclasses.asdict(getattr(cfg, group)).items():
            if k == "name":
                continue
            # Lists and mappings as JSON text: a table column holds scalars.
            out[f"{group}_{k}"] = json.dumps(v, sort_keys=True) if isinstance(v, list | dict) else v
    for key in ("path", "test_path"):
        if getattr(cfg.task, key, None):
            out[f"task_{key}_sha256"] = file_digest(getattr(cfg.task, key))
    if cfg.task.name == "mnist1d":  # the data are the generator's: another version, other data
        out["task_generator"] = f"mnist1d {_version('mnist1d')}"
    s = cfg.sweep
    out.update(
        budget_kind=s.budget.kind,
        budget=s.budget.samples if s.budget.samples is not None else s.budget.steps,
        lr_min=s.lr.min,
        lr_max=s.lr.max,
        lr_num=s.lr.num,
        divergence_factor=s.divergence_factor,
        dtype=s.dtype,
    )
    return out


def sweep_id(cfg: Config) -> str:
    """Hash of the settings: batch sizes and seeds are rows of one sweep, not its identity."""
    blob = json.dumps(settings(cfg), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]

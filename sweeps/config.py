"""Typed configuration: the Hydra schema (every key declared) and the value checks."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

MODELS = ("linear", "mlp")
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
class TaskConfig:
    name: str = "regression"
    dim: int = 64
    noise_std: float = 0.5
    spectrum_decay: float = 1.0
    n_train: int | None = None  # None: fresh samples every step
    n_eval: int = 1024  # held-out set of the MLP (the linear model's eval loss is exact)


@dataclass
class ModelConfig:
    name: str = MISSING
    width: int = 64
    depth: int = 2  # hidden layers
    activation: str = "relu"


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
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    progress: bool = True
    plot: bool = True  # draw the figures of the finished sweep
    compile_cache: bool = True  # JAX's persistent compilation cache, in the user's cache directory
    resume: bool = False  # continue the latest run of this model-optimizer (see README)


def register() -> None:
    ConfigStore.instance().store(name="schema", node=Config)


def to_config(dcfg) -> Config:
    """The typed Config of a composed DictConfig (or a plain dict); unknown keys are refused.

    Hydra lets `+key=value` add keys even to a typed node, so the composed tree is merged once
    more into a fresh schema, which names any key it does not declare.
    """
    try:
        plain = OmegaConf.to_container(dcfg) if OmegaConf.is_config(dcfg) else dcfg
        tree = OmegaConf.merge(OmegaConf.structured(Config), plain)
        return OmegaConf.to_object(tree)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "config"
        raise ConfigError(f"{key}: {str(e).splitlines()[0]}") from None


def _check(ok: bool, key: str, allowed: str, value) -> None:
    if not ok:
        raise ConfigError(f"{key} must be {allowed} (got {value!r})")


def _one_of(key: str, value, options) -> None:
    _check(value in options, key, "one of " + ", ".join(map(str, options)), value)


def validate(cfg: Config) -> Config:
    """Raise ConfigError on the first value that is out of range; return cfg unchanged."""
    t, m, o, s = cfg.task, cfg.model, cfg.optimizer, cfg.sweep
    _check(t.dim > 0, "task.dim", "> 0", t.dim)
    _check(t.noise_std >= 0, "task.noise_std", ">= 0", t.noise_std)
    _check(t.spectrum_decay >= 0, "task.spectrum_decay", ">= 0", t.spectrum_decay)
    _check(t.n_eval > 0, "task.n_eval", "> 0", t.n_eval)
    _one_of("model.name", m.name, MODELS)
    _one_of("model.activation", m.activation, ACTIVATIONS)
    _check(m.width > 0, "model.width", "> 0", m.width)
    _check(m.depth >= 1, "model.depth", ">= 1", m.depth)
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
    if t.n_train is not None:
        _check(
            t.n_train >= max(bs),
            "task.n_train",
            f"null (online data) or >= the largest batch size {max(bs)}",
            t.n_train,
        )
    return cfg


def settings(cfg: Config) -> dict:
    """The flat settings that identify a sweep (everything that changes a lane's result)."""
    out = {"model": cfg.model.name, "optimizer": cfg.optimizer.name, "task": cfg.task.name}
    for group in ("task", "model", "optimizer"):
        for k, v in dataclasses.asdict(getattr(cfg, group)).items():
            if k != "name":
                out[f"{group}_{k}"] = v
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

"""Typed configuration: the Hydra schema (every key declared), composition, the settings that
identify a sweep."""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException

TASK_KINDS = ("regression", "classification")
ACTIVATIONS = ("relu", "gelu", "tanh", "silu")
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


@dataclass
class TextTask:
    """Byte-level next-token prediction on a text file (vocabulary 256: no tokenizer)."""

    name: str = "text"
    path: str | None = None  # None: the .py sources of this Python's standard library
    context: int = 64  # bytes per sequence; an example is one window of context + 1 bytes
    test_fraction: float = 0.1  # the held-out tail of the corpus
    eval_windows: int = 128  # held-out windows every curve point evaluates (evenly spaced)


TASK_SCHEMAS = {
    "regression": RegressionTask,
    "mnist1d": Mnist1dTask,
    "digits": DigitsTask,
    "file": FileTask,
    "text": TextTask,
}
TASKS = tuple(TASK_SCHEMAS)


@dataclass
class ModelConfig:
    name: str = MISSING
    width: int = 64  # mlp
    depth: int = 2  # hidden layers (mlp), convolutions (cnn), blocks (transformer)
    activation: str = "relu"  # mlp, cnn, transformer (its MLP blocks)
    channels: int = 8  # cnn
    kernel: int = 5  # cnn
    heads: int = 4  # transformer: attention heads, dividing width
    mlp_ratio: int = 4  # transformer: hidden units of an MLP block per unit of width
    tie_embeddings: bool = True  # transformer: the output layer is the input embedding
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
    # Half-lives in samples (Marek et al. 2025): at batch size B, b1 = 0.5 ** (B / b1_halflife)
    # (adam, adamw, lion); None: the fixed b1.
    b1_halflife: float | None = None
    # b2 = 0.5 ** (B / b2_halflife) (adam, adamw, lion, rmsprop); None: the fixed b2.
    b2_halflife: float | None = None
    # The AdamW timescale tau = B / (lr * weight_decay * D) (Bergsma et al. 2025), D the data
    # budget in samples: each lane's weight decay is B / (lr * tau * D) (adamw); None: the fixed
    # weight_decay.
    tau: float | None = None


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
    curve_points: int = 64  # points per lane, on a geometric grid of sample counts shared by all B
    dtype: str = "float32"
    memory_gb: float | None = None  # lanes run in chunks that fit this; None: half the device's


# What matplotlib writes without extra packages (analysis.figures_base.supported_formats);
# checked at start-up from here so that a config error does not import matplotlib.
PLOT_FORMATS = ("png", "svg", "svgz", "pdf", "eps", "ps", "jpg", "jpeg", "tif", "tiff", "webp")


@dataclass
class PlotConfig:
    """The figures drawn once a sweep is finished (`python -m analysis.plot` draws any later)."""

    enabled: bool = True  # `plot=false` is short for plot.enabled=false
    formats: list[str] = field(default_factory=lambda: ["png"])
    # main: loss vs lr and eta* vs B, in about a second; all: every figure and the analysis
    # tables, as `python -m analysis.plot` draws them (seconds to a minute)
    figures: str = "main"


@dataclass
class Config:
    task: Any = field(default_factory=RegressionTask)  # one of TASK_SCHEMAS, chosen by name
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    progress: bool = True
    plot: PlotConfig = field(default_factory=PlotConfig)
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
        if isinstance(plain.get("plot"), bool):  # stored by earlier versions: now plot.enabled
            plain["plot"] = {"enabled": plain["plot"]}
        task = plain.get("task") or {}
        name = task.get("name", "regression") if isinstance(task, dict) else None
        if name not in TASK_SCHEMAS:
            raise ConfigError(f"task.name must be one of {', '.join(TASKS)} (got {name!r})")
        base = OmegaConf.structured(Config(task=TASK_SCHEMAS[name]()))
        return OmegaConf.to_object(OmegaConf.merge(base, plain))
    except MissingMandatoryValue as e:
        key = getattr(e, "full_key", None) or "config"
        raise ConfigError(f"{key}: must be set{MUST_SET.get(key, '')}") from None
    except ConfigKeyError as e:
        raise ConfigError(no_such_key(getattr(e, "full_key", None) or "config", name)) from None
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "config"
        raise ConfigError(f"{key}: {str(e).splitlines()[0]}") from None


MUST_SET = {
    "task.kind": " (task=file: task.kind=classification or task.kind=regression)",
    "task.path": " (task=file: task.path=<your .csv, .parquet or .npz file>)",
}


def no_such_key(key: str, task: str | None = None) -> str:
    """`key: no such key`, with the declared key nearest to it (among the keys of `task`, when
    the key is a task's)."""
    parent, _, name = key.rpartition(".")
    if parent == "task":
        schemas = [TASK_SCHEMAS[task]] if task in TASK_SCHEMAS else TASK_SCHEMAS.values()
        keys = sorted({f.name for s in schemas for f in dataclasses.fields(s)} - {"name"})
        if task in TASK_SCHEMAS:
            return f"{key}: task={task} has no key {name!r} (its keys: {', '.join(keys)})"
    else:
        node: Any = Config()
        for part in filter(None, parent.split(".")):
            node = getattr(node, part, None)
        keys = [f.name for f in dataclasses.fields(node)] if dataclasses.is_dataclass(node) else []
    close = difflib.get_close_matches(name, keys, n=1)
    hint = f"; did you mean {'.'.join(filter(None, (parent, close[0])))}?" if close else ""
    return f"{key}: no such key{hint} (`lrscale-sweep --help` lists every key)"


def settings(cfg: Config, built: dict | None = None) -> dict:
    """The flat settings that identify a sweep: the config's, and `built`, what the task and the
    model say of themselves once built (the data's digests, a user model's source; see
    `sweeps.identity`)."""
    out = {"model": cfg.model.name, "optimizer": cfg.optimizer.name, "task": cfg.task.name}
    for group in ("task", "model", "optimizer"):
        for k, v in dataclasses.asdict(getattr(cfg, group)).items():
            if k == "name":
                continue
            # Lists and mappings as JSON text: a table column holds scalars.
            out[f"{group}_{k}"] = json.dumps(v, sort_keys=True) if isinstance(v, list | dict) else v
    out.update(built or {})
    s = cfg.sweep
    out.update(
        budget_kind=s.budget.kind,
        budget=s.budget.samples if s.budget.samples is not None else s.budget.steps,
        lr_min=s.lr.min,
        lr_max=s.lr.max,
        lr_num=s.lr.num,
        divergence_factor=s.divergence_factor,
        dtype=s.dtype,
        curve_points=s.curve_points,  # where segments end, so what final_train_loss averages
    )
    return out

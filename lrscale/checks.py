"""The value checks of a config: the first value out of range, in one line naming the key."""

from __future__ import annotations

import dataclasses
import math

from lrscale import optimizers
from lrscale.config import (
    ACTIVATIONS,
    DTYPES,
    PLOT_FORMATS,
    SCALING_RULES,
    TASK_KINDS,
    Config,
    ConfigError,
)

MAX_STEPS = 2**31 - 1  # steps are counted in int32 inside the program


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
    if t.name == "text":
        _check(t.context > 0, "task.context", "> 0", t.context)
        _check(t.eval_windows > 0, "task.eval_windows", "> 0", t.eval_windows)
    if t.name == "file":
        _one_of("task.kind", t.kind, TASK_KINDS)
        _check(bool(t.path), "task.path", "a file path", t.path)
        if t.features is not None:
            _check(len(t.features) > 0, "task.features", "null or a non-empty list", t.features)
    if hasattr(t, "test_fraction"):  # a task with a held-out share of its data
        _check(0 < t.test_fraction < 1, "task.test_fraction", "in (0, 1)", t.test_fraction)


def _validate_halflives(o, min_batch: int, dtype: str) -> None:
    """Half-lives in samples: > 0, not with the sqrt rule (both set the betas per batch size), and
    short enough that beta = 0.5 ** (B / half-life) stays below 1 in the sweep's dtype."""
    for key in ("b1_halflife", "b2_halflife"):
        h = getattr(o, key)
        if h is None:
            continue
        _check(h > 0, f"optimizer.{key}", f"null (the fixed {key[:2]}) or > 0", h)
        _check(
            o.scaling_rule == "none",
            f"optimizer.{key}",
            "null under optimizer.scaling_rule=sqrt (both set the betas per batch size)",
            h,
        )
        if dtype in DTYPES:
            import numpy as np  # here, not at the top: `--help` does without it

            _check(
                np.asarray(0.5 ** (min_batch / h), dtype) < 1,
                f"optimizer.{key}",
                f"short enough that {key[:2]} < 1 in {dtype} at batch size {min_batch}",
                h,
            )


def validate(cfg: Config) -> Config:
    """Raise ConfigError on the first value that is out of range; return cfg unchanged."""
    for key, value in float_keys(cfg):
        _check(value is None or math.isfinite(value), key, "a finite number", value)
    _validate_model(cfg.model)
    _validate_optimizer(cfg.optimizer)
    s = cfg.sweep
    bs = list(s.batch_sizes)
    _check(len(bs) > 0, "sweep.batch_sizes", "a non-empty list", bs)
    for b in bs:
        _check(b > 0, "sweep.batch_sizes", "a list of integers > 0", bs)
    _check(len(set(bs)) == len(bs), "sweep.batch_sizes", "a list without repeats", bs)
    _validate_halflives(cfg.optimizer, min(bs), s.dtype)
    _validate_sweep(s)
    _one_of("plot.figures", cfg.plot.figures, ("main", "all"))
    _check(len(cfg.plot.formats) > 0, "plot.formats", "a non-empty list", cfg.plot.formats)
    for f in cfg.plot.formats:
        _one_of("plot.formats", f, PLOT_FORMATS)
    if s.memory_gb is not None:
        _check(s.memory_gb > 0, "sweep.memory_gb", "null (auto) or > 0", s.memory_gb)
    _validate_budget(s.budget, bs)
    _validate_task(cfg.task, max(bs))
    return cfg


def _validate_model(m) -> None:
    _one_of("model.activation", m.activation, ACTIVATIONS)
    _check(m.width > 0, "model.width", "> 0", m.width)
    _check(m.depth >= 1, "model.depth", ">= 1", m.depth)
    _check(m.channels > 0, "model.channels", "> 0", m.channels)
    _check(m.kernel > 0, "model.kernel", "> 0", m.kernel)
    if m.name == "custom":
        _check(bool(m.target), "model.target", "a dotted path (model=custom)", m.target)
    if m.name == "transformer":
        _check(m.heads > 0, "model.heads", "> 0", m.heads)
        _check(
            m.width % m.heads == 0, "model.heads", f"a divisor of model.width={m.width}", m.heads
        )
        _check(m.mlp_ratio > 0, "model.mlp_ratio", "> 0", m.mlp_ratio)


def _validate_optimizer(o) -> None:
    _one_of("optimizer.name", o.name, tuple(optimizers.REGISTRY))
    _check(0 <= o.momentum < 1, "optimizer.momentum", "in [0, 1)", o.momentum)
    _check(0 <= o.b1 < 1, "optimizer.b1", "in [0, 1)", o.b1)
    _check(0 <= o.b2 < 1, "optimizer.b2", "in [0, 1)", o.b2)
    _check(o.eps > 0, "optimizer.eps", "> 0", o.eps)
    _check(o.weight_decay >= 0, "optimizer.weight_decay", ">= 0", o.weight_decay)
    _one_of("optimizer.scaling_rule", o.scaling_rule, SCALING_RULES)
    _check(o.base_batch_size > 0, "optimizer.base_batch_size", "> 0", o.base_batch_size)
    if o.tau is not None:
        _check(o.tau > 0, "optimizer.tau", "null (the fixed weight_decay) or > 0", o.tau)


def _validate_sweep(s) -> None:
    """The lr grid, seeds, divergence rule, curve points and dtype."""
    _check(s.lr.min > 0, "sweep.lr.min", "> 0", s.lr.min)
    _check(s.lr.max > s.lr.min, "sweep.lr.max", f"> sweep.lr.min = {s.lr.min}", s.lr.max)
    if s.dtype in DTYPES:  # a learning rate the dtype rounds to 0 or inf would train at that
        import numpy as np  # here, not at the top: `--help` does without it

        tiny, big = float(np.finfo(s.dtype).tiny), float(np.finfo(s.dtype).max)
        _check(s.lr.min >= tiny, "sweep.lr.min", f">= {tiny:.3g} in {s.dtype}", s.lr.min)
        _check(s.lr.max <= big, "sweep.lr.max", f"<= {big:.3g} in {s.dtype}", s.lr.max)
    _check(s.lr.num >= 2, "sweep.lr.num", ">= 2", s.lr.num)
    _check(s.seeds > 0, "sweep.seeds", "> 0", s.seeds)
    _check(s.divergence_factor > 1, "sweep.divergence_factor", "> 1", s.divergence_factor)
    _check(s.curve_points >= 2, "sweep.curve_points", ">= 2", s.curve_points)
    _one_of("sweep.dtype", s.dtype, DTYPES)


def _validate_budget(b, bs: list[int]) -> None:
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
        _check(
            b.samples // min(bs) <= MAX_STEPS,
            "sweep.budget.samples",
            f"<= {MAX_STEPS} steps at the smallest batch size {min(bs)}",
            b.samples,
        )
    else:
        _check(1 <= b.steps <= MAX_STEPS, "sweep.budget.steps", f"in [1, {MAX_STEPS}]", b.steps)


def float_keys(node, prefix: str = ""):
    """(dotted key, value) of every float key of a config tree (the value may be None)."""
    for f in dataclasses.fields(node):
        v = getattr(node, f.name)
        if dataclasses.is_dataclass(v):
            yield from float_keys(v, f"{prefix}{f.name}.")
        elif "float" in str(f.type):
            yield f"{prefix}{f.name}", v

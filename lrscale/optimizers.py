"""The optimizers a sweep can train with, one entry each: how optax builds it, the config keys it
reads and the parameter-sized arrays its state keeps. Adding an optimizer is one entry here and
one YAML in conf/optimizer/; optax is imported only when one is built.

`make(o, h, lr, wd)` gets the optimizer's config o, its betas and eps at the batch size
(`h`, from `sweeps.engine.hyperparams`), the lane's traced learning rate and adamw's weight
decay as a function of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple


def _optax():
    import optax  # here, not at the top: a config check or `--help` does without it

    return optax


class Optimizer(NamedTuple):
    make: Callable[[Any, dict, Any, Callable], Any]  # (o, h, lr, wd) -> GradientTransformation
    reads: tuple[str, ...]  # optimizer.* keys it reads (the others are noted as ignored)
    moments: Callable[[Any], int]  # parameter-sized arrays in its state, given its config


HALF_LIVES = ("b1_halflife", "b2_halflife")
ADAPTIVE = ("scaling_rule", "base_batch_size")

REGISTRY: dict[str, Optimizer] = {
    "sgd": Optimizer(
        lambda o, h, lr, wd: _optax().sgd(lr, o.momentum or None, o.nesterov),
        ("momentum", "nesterov"),
        lambda o: int(o.momentum > 0),
    ),
    "momentum": Optimizer(
        lambda o, h, lr, wd: _optax().sgd(lr, o.momentum),
        ("momentum",),
        lambda o: int(o.momentum > 0),
    ),
    "nesterov": Optimizer(
        lambda o, h, lr, wd: _optax().sgd(lr, o.momentum, nesterov=True),
        ("momentum",),
        lambda o: int(o.momentum > 0),
    ),
    "adam": Optimizer(
        lambda o, h, lr, wd: _optax().adam(lr, h["b1"], h["b2"], h["eps"]),
        ("b1", "b2", "eps", *ADAPTIVE, *HALF_LIVES),
        lambda o: 2,
    ),
    "adamw": Optimizer(
        lambda o, h, lr, wd: _optax().adamw(lr, h["b1"], h["b2"], h["eps"], weight_decay=wd(lr)),
        ("b1", "b2", "eps", "weight_decay", *ADAPTIVE, *HALF_LIVES, "tau"),
        lambda o: 2,
    ),
    "rmsprop": Optimizer(
        lambda o, h, lr, wd: _optax().rmsprop(lr, decay=h["b2"], eps=h["eps"]),
        ("b2", "eps", *ADAPTIVE, "b2_halflife"),
        lambda o: 1,
    ),
    "lion": Optimizer(
        lambda o, h, lr, wd: _optax().lion(lr, h["b1"], h["b2"], weight_decay=o.weight_decay),
        ("b1", "b2", "weight_decay", *ADAPTIVE, *HALF_LIVES),
        lambda o: 1,
    ),
    "signsgd": Optimizer(lambda o, h, lr, wd: _optax().sign_sgd(lr), (), lambda o: 0),
    # its factored second moments are not parameter-sized
    "adafactor": Optimizer(lambda o, h, lr, wd: _optax().adafactor(lr), (), lambda o: 0),
}
NAMES = tuple(REGISTRY)  # in the order tables list the sweeps: SGD before Adam

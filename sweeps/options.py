"""Which keys the model and the optimizer of a sweep read: a key set away from its default that
its option ignores gets a note at start-up."""

from __future__ import annotations

import dataclasses

import models
from lrscale import optimizers
from lrscale.config import Config


def reads(group: str, name: str) -> tuple[str, ...]:
    """The keys of `group` (model or optimizer) that its option `name` reads."""
    if group == "model":
        return models.REGISTRY[name].READS
    return optimizers.REGISTRY[name].reads


def unused(cfg: Config) -> list[str]:
    """One line per group naming the keys set away from their default that its option ignores."""
    out = []
    for group in ("optimizer", "model"):
        node = getattr(cfg, group)
        default, uses = type(node)(name=node.name), reads(group, node.name)
        ignored = [
            f"{group}.{f.name}"
            for f in dataclasses.fields(node)
            if f.name != "name"
            and f.name not in uses
            and getattr(node, f.name) != getattr(default, f.name)
        ]
        if ignored:
            uses_text = ", ".join(uses) or "none of them"
            what = f"ignored by {group}={node.name} (it uses {uses_text})"
            out.append(f"{', '.join(ignored)}: {what}")
    return out

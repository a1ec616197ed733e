"""A sweep's identity, computed once per run from its config and what its task and model say of
themselves once built: every setting that changes a lane's result, and its hash."""

from __future__ import annotations

import hashlib
import json
from typing import NamedTuple

from lrscale.config import Config, settings


class Identity(NamedTuple):
    sweep_id: str  # the hash of settings
    settings: dict  # flat: one table column each


def digest(settings: dict) -> str:
    """The sweep id of a settings dict: batch sizes and seeds are rows of a sweep, not its
    identity."""
    blob = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def of(cfg: Config, prob) -> Identity:
    """The identity of cfg trained on prob (an `engine.Problem`): the config's settings, the
    task's (its data's digests, the features it uses) and the model's (a user model's source and
    size)."""
    s = settings(cfg, {**prob.task.identity, **prob.model.identity})
    return Identity(digest(s), s)

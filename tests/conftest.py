"""Shared test helpers: the real configs, composed through Hydra and shrunk by overrides."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lrscale.config import Config
from sweeps.compose import compose

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
# The smoke sweep, shrunk further: the tests exercise the code paths, not the science.
SMALL = [
    "sweep=smoke",
    "task.dim=8",
    "model.width=16",
    "task.n_eval=256",
    "progress=false",
    "plot.enabled=false",
]


def make_config(*overrides: str) -> Config:
    """Compose conf/config.yaml with overrides into the typed Config, as sweeps.run does."""
    return compose(overrides)


def cli(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run `python -m sweeps.run ARGS` in a subprocess, as a user would."""
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, "-m", "sweeps.run", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def identity(cfg: Config):
    """The sweep identity of cfg, as a run computes it (its task and model built)."""
    from sweeps import engine
    from sweeps import identity as ident

    return ident.of(cfg, engine.build(cfg))


def sweep_id(cfg: Config) -> str:
    return identity(cfg).sweep_id


def program(cfg: Config, batch_size: int, points, **kw):
    """engine.program of cfg's own task and model, called as (lrs, seeds)."""
    from sweeps import engine

    prob = engine.build(cfg)
    prog = engine.program(cfg, prob, batch_size, points, **kw)
    return lambda lrs, seeds: prog(lrs, seeds, prob.task.data)


@pytest.fixture
def small():
    """A factory of small real configs: small(*extra_overrides) -> Config."""
    return lambda *extra: make_config(*SMALL, *extra)

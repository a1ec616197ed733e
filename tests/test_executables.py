"""Stored executables: a warm start loads the program itself, and only the program it stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sweeps import batch, engine, executables
from tests.conftest import ROOT, SMALL, make_config

# One process of a warm start: JAX's persistent cache is on and already holds the program (the
# first prepare puts it there), then the program comes from the store (or is compiled into it).
WARM_START = """
import json, sys
from sweeps import batch, engine
from sweeps.sweep import cache_dir, setup_jax
from tests.conftest import SMALL, make_config
cfg = make_config(*SMALL, "model=mlp", "optimizer=adam")
setup_jax(cfg)
prob, lrs = engine.build(cfg), engine.lr_grid(cfg)
points = engine.curve_points(cfg, 4)[0]
batch.prepare(cfg, prob, 4, lrs, points)
p = batch.prepare(cfg, prob, 4, lrs, points, store=cache_dir() / "executables")
print(json.dumps(batch.run_prepared(p)[0].curve_eval.tolist()))
"""


def _lanes(cfg, store, B=4):
    prob = engine.build(cfg)
    points = engine.curve_points(cfg, B)[0]
    p = batch.prepare(cfg, prob, B, engine.lr_grid(cfg), points, store=store)
    return batch.run_prepared(p)[0]


def test_a_stored_program_runs_in_the_next_process_bit_for_bit_alike(tmp_path):
    env = {**os.environ, "LRSCALE_CACHE_DIR": str(tmp_path)}

    def start():
        cmd = [sys.executable, "-c", WARM_START]
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        return np.array(json.loads(r.stdout.splitlines()[-1]))

    first = start()
    (entry,) = (tmp_path / "executables").glob("*.bin")
    stored = entry.stat().st_mtime_ns
    second = start()  # loads the entry: a JAX cache hit would have stored a program without code
    assert entry.stat().st_mtime_ns == stored
    want = _lanes(make_config(*SMALL, "model=mlp", "optimizer=adam"), None).curve_eval
    np.testing.assert_array_equal(first, want)
    np.testing.assert_array_equal(second, want)


def test_a_damaged_entry_is_compiled_again_and_replaced(tmp_path):
    cfg = make_config(*SMALL)
    want = _lanes(cfg, tmp_path)
    (entry,) = tmp_path.glob("*.bin")
    entry.write_bytes(b"not an executable")
    got = _lanes(cfg, tmp_path)
    np.testing.assert_array_equal(want.curve_eval, got.curve_eval)
    assert entry.stat().st_size > 1000


@pytest.mark.parametrize(
    "change",
    ["sweep.lr.max=0.5", "sweep.dtype=float64", "task.noise_std=0.4", "optimizer=adam"],
)
def test_the_key_changes_with_whatever_changes_the_program(change):
    def key(cfg, B=4):
        points = engine.curve_points(cfg, B)[0]
        return executables.key(cfg, B, points, (np.zeros(6, np.float32), np.arange(2)))

    base = make_config(*SMALL)
    assert key(base) == key(make_config(*SMALL, "progress=true", "plot.enabled=true"))
    assert key(base) != key(base, B=8)
    assert key(base) != key(make_config(*SMALL, change))


def test_custom_models_are_never_stored():
    cfg = make_config(*SMALL, "model=custom", "model.target=tests.data.nets.TwoLayer")
    assert executables.key(cfg, 4, [0, 1], ()) is None

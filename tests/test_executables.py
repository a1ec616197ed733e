"""Stored executables: a warm start loads the program itself, and only the program it stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sweeps import engine, executables, programs
from sweeps import identity as ident
from tests.conftest import ROOT, SMALL, identity, make_config

# One process of a sweep's start: JAX's persistent cache on, the program from the store (or
# compiled, and then stored unless it came from JAX's cache).
START = """
import json, sys
from sweeps import engine, executables, identity, programs
from sweeps.sweep import cache_dir, setup_jax
from tests.conftest import SMALL, make_config
cfg = make_config(*SMALL)
setup_jax(cfg)
prob, lrs = engine.build(cfg), engine.lr_grid(cfg)
points = engine.curve_points(cfg, 4)[0]
store = executables.Store(cache_dir() / "executables", identity.of(cfg, prob).settings)
p = programs.prepare(cfg, prob, 4, lrs, points, store=store)
print(json.dumps(programs.run_prepared(p)[0].curve_eval.tolist()))
"""


def _start(cache: Path, script: str = START) -> np.ndarray:
    """Run script in a fresh process with cache as lrscale's cache; the curves it prints."""
    env = {**os.environ, "LRSCALE_CACHE_DIR": str(cache)}
    cmd = [sys.executable, "-c", script]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return np.array(json.loads(r.stdout.splitlines()[-1]))


def _lanes(cfg, folder, B=4):
    prob = engine.build(cfg)
    points = engine.curve_points(cfg, B)[0]
    store = folder and executables.Store(folder, ident.of(cfg, prob).settings)
    p = programs.prepare(cfg, prob, B, engine.lr_grid(cfg), points, store=store)
    return programs.run_prepared(p)[0]


def test_a_stored_program_runs_in_the_next_process_bit_for_bit_alike(tmp_path):
    """Each start's results equal a fresh compile's. A start that loaded the stored program
    leaves its file as it was; one that compiled it stores it anew (a new file, atomically)."""
    want = _lanes(make_config(*SMALL), None).curve_eval
    store = tmp_path / "executables"
    np.testing.assert_array_equal(_start(tmp_path), want)  # compiled afresh: stored
    (entry,) = store.glob("*.bin")
    stored = entry.stat().st_ino
    np.testing.assert_array_equal(_start(tmp_path), want)
    assert entry.stat().st_ino == stored  # loaded
    # A damaged entry is compiled again, as a lost one is. JAX's cache holds the program under
    # its name (from the first start), and what it returns serialises without its code: so the
    # program is compiled once more under a name of its own, and that is stored.
    entry.write_bytes(b"not an executable")
    np.testing.assert_array_equal(_start(tmp_path), want)
    assert entry.read_bytes() != b"not an executable" and list(store.glob("*.bin")) == [entry]
    # An upgrade of lrscale that leaves the program as it was changes its key, and so the
    # program's name: JAX's cache, which would answer with a copy that does not serialise, misses.
    # The program is compiled afresh and stored, and the next start loads it.
    upgraded = "from sweeps import executables\nexecutables._source_digest = lambda: 'next'\n"
    np.testing.assert_array_equal(_start(tmp_path, upgraded + START), want)
    (new,) = set(store.glob("*.bin")) - {entry}
    stored = new.stat().st_ino
    np.testing.assert_array_equal(_start(tmp_path, upgraded + START), want)
    assert new.stat().st_ino == stored and set(store.glob("*.bin")) == {entry, new}


@pytest.mark.parametrize(
    "change",
    ["sweep.lr.num=9", "sweep.dtype=float64", "task.noise_std=0.4", "optimizer=adam"],
)
def test_the_key_changes_with_whatever_changes_the_program(change):
    def key(cfg, B=4):
        points = engine.curve_points(cfg, B)[0]
        settings = identity(cfg).settings
        return executables.key(settings, B, points, (np.zeros(6, np.float32), np.arange(2)))

    base = make_config(*SMALL)
    assert key(base) == key(make_config(*SMALL, "progress=true", "plot.enabled=true"))
    assert key(base) == key(make_config(*SMALL, "sweep.lr.min=1e-5", "sweep.lr.max=0.5"))
    assert key(base) != key(base, B=8)
    assert key(base) != key(make_config(*SMALL, change))


def test_a_stored_program_runs_another_lr_range_as_its_own_compile_does(tmp_path):
    first = make_config(*SMALL, "sweep.lr.min=1e-3", "sweep.lr.max=1e-1")
    other = make_config(*SMALL, "sweep.lr.min=1e-2", "sweep.lr.max=1.0")
    _lanes(first, tmp_path)
    (entry,) = tmp_path.glob("*.bin")
    got, want = _lanes(other, tmp_path), _lanes(other, None)  # the first's program, loaded
    assert list(tmp_path.glob("*.bin")) == [entry]
    np.testing.assert_array_equal(got.curve_eval, want.curve_eval)
    assert not np.array_equal(got.curve_eval, _lanes(first, None).curve_eval)


def test_custom_models_are_never_stored():
    cfg = make_config(*SMALL, "model=custom", "model.target=tests.data.nets.TwoLayer")
    assert executables.key(identity(cfg).settings, 4, [0, 1], ()) is None

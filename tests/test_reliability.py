"""Fault injection: killed and interrupted sweeps resume to the tables of an uninterrupted run."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lrscale.results import CURVES, RESULTS
from sweeps import engine
from sweeps.programs import train_batch_size
from sweeps.sweep import run_sweep
from tests.conftest import SMALL, cli, make_config

# Four batch sizes, so that a kill after the first or second leaves work on both sides of it.
ARGS = [*SMALL, "sweep.batch_sizes=[1,2,4,16]"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted sweep, through the same command line."""
    d = tmp_path_factory.mktemp("ref") / "run"
    r = cli(*ARGS, f"hydra.run.dir={d}", cwd=d.parent)
    assert r.returncode == 0, r.stderr
    return pd.read_parquet(d / RESULTS), pd.read_parquet(d / CURVES)


def _start(run_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sweeps.run", *ARGS, f"hydra.run.dir={run_dir}"],
        cwd=run_dir.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _batch_sizes_written(run_dir: Path) -> int:
    try:
        return pd.read_parquet(run_dir / RESULTS, columns=["batch_size"])["batch_size"].nunique()
    except (FileNotFoundError, OSError):
        return 0


def _wait_for(proc, run_dir: Path, n: int, timeout: float = 120) -> None:
    t0 = time.time()
    while _batch_sizes_written(run_dir) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < timeout
        time.sleep(0.01)


def _only_complete_files(run_dir: Path) -> None:
    for p in run_dir.iterdir():
        if not p.name.startswith("."):
            pd.read_parquet(p)  # raises on a half-written file


def _assert_same(run_dir: Path, reference) -> None:
    res, cur = reference
    pd.testing.assert_frame_equal(pd.read_parquet(run_dir / RESULTS), res)
    pd.testing.assert_frame_equal(pd.read_parquet(run_dir / CURVES), cur)


@pytest.mark.parametrize("after", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_sigkill_then_resume_equals_uninterrupted(tmp_path, reference, after):
    run_dir = tmp_path / "run"
    proc = _start(run_dir)
    _wait_for(proc, run_dir, after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _only_complete_files(run_dir)
    assert 1 <= _batch_sizes_written(run_dir) < 4
    r = cli(*ARGS, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    _assert_same(run_dir, reference)


def test_sigterm_stops_at_a_batch_size_boundary_and_says_how_to_resume(tmp_path, reference):
    run_dir = tmp_path / "run"
    proc = _start(run_dir)
    _wait_for(proc, run_dir, 1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "SIGTERM" in err and "resume with" in err and f"hydra.run.dir={run_dir}" in err
    _only_complete_files(run_dir)
    done = _batch_sizes_written(run_dir)
    assert 1 <= done < 4
    resume = shlex.split(err.split("resume with:")[1].split("python -m sweeps.run")[1])
    r = cli(*resume, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    _assert_same(run_dir, reference)


@pytest.mark.slow  # the fast set covers it in tests/test_nothing_lost.py
def test_a_directory_of_another_sweep_is_refused_and_left_unchanged(tmp_path, reference):
    run_dir = tmp_path / "run"
    assert cli(*ARGS, f"hydra.run.dir={run_dir}", cwd=tmp_path).returncode == 0
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    r = cli(*ARGS, "task.noise_std=0.3", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert r.returncode == 2 and "another sweep" in r.stderr
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


def test_an_unwritable_output_directory_fails_before_anything_runs(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    t0 = time.time()
    r = cli(*SMALL, f"hydra.run.dir={tmp_path / 'file' / 'run'}", cwd=tmp_path)
    assert r.returncode == 2 and "cannot be written" in r.stderr
    assert "Traceback" not in r.stderr and "jax" not in r.stderr
    assert time.time() - t0 < 30


def test_a_full_disk_is_reported_before_anything_compiles(small, tmp_path, monkeypatch):
    import shutil

    from sweeps import resume, sweep

    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 10))
    monkeypatch.setattr(sweep.engine, "program", lambda *a, **k: pytest.fail("compiled"))
    with pytest.raises(resume.NoRoomError, match="MiB free"):
        run_sweep(small(), tmp_path)
    assert not (tmp_path / RESULTS).exists()


@pytest.mark.slow  # the fast set covers it in tests/test_nothing_lost.py
def test_resume_true_continues_the_newest_run(tmp_path, reference):
    base = tmp_path / "outputs" / "linear-sgd"
    old, new = base / "2020-01-01_00-00-00", base / "2020-01-02_00-00-00"
    for d in (old, new):
        d.mkdir(parents=True)
    pd.DataFrame(reference[0][reference[0]["batch_size"] == 1]).to_parquet(new / RESULTS)
    pd.DataFrame(reference[1][reference[1]["batch_size"] == 1]).to_parquet(new / CURVES)
    r = cli(*ARGS, "resume=true", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(pd.read_parquet(new / RESULTS)["batch_size"].unique()) == [1, 2, 4, 16]
    assert not any(old.iterdir())


# float64, so that the comparisons see the arithmetic, not float32 rounding of other matmul shapes
def test_chunked_lanes_equal_one_call(small):
    cfg = small("sweep.dtype=float64")
    lrs, points = engine.lr_grid(cfg), engine.curve_steps(16, 6)
    whole, *_ = train_batch_size(cfg, 4, lrs, points)
    cfg.sweep.memory_gb = 1e-9  # one learning rate per call
    chunked, *_ = train_batch_size(cfg, 4, lrs, points)
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


SHARDED = """
import sys, numpy as np
from tests.conftest import make_config, SMALL
from sweeps import engine
from sweeps.programs import train_batch_size
import jax
assert jax.device_count() == 4, jax.devices()
cfg = make_config(*SMALL, "model=mlp", "optimizer=adam", "sweep.dtype=float64")
out, *_ = train_batch_size(cfg, 4, engine.lr_grid(cfg), engine.curve_steps(16, 6))
np.savez(sys.argv[1], *out)
"""


@pytest.mark.slow
def test_lanes_sharded_over_four_devices_equal_one_device(tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-c", SHARDED, str(tmp_path / "s.npz")], env=env, cwd=root, check=True
    )
    sharded = np.load(tmp_path / "s.npz")
    cfg = make_config(*SMALL, "model=mlp", "optimizer=adam", "sweep.dtype=float64")
    one, *_ = train_batch_size(cfg, 4, engine.lr_grid(cfg), engine.curve_steps(16, 6))
    assert one.final_eval_loss.dtype == np.float64
    for i, a in enumerate(one):
        np.testing.assert_allclose(sharded[f"arr_{i}"], a, rtol=1e-10)


def test_float64_runs_without_nan(small, tmp_path):
    df = run_sweep(small("sweep.dtype=float64", "sweep.batch_sizes=[4]"), tmp_path)
    assert not df[["final_train_loss", "final_eval_loss"]].isna().to_numpy().any()
    assert (~df["diverged"]).any()


@pytest.mark.parametrize("side", [-1, 1])
def test_divergence_rule_at_its_boundary(small, side):
    """With one step, the rule compares minibatch-0 loss / initial loss with the factor."""
    import jax
    import jax.numpy as jnp

    import tasks
    from tasks import regression as task

    cfg = small("sweep.seeds=8")
    t, B = cfg.task, 1
    lam = jnp.asarray(task.spectrum(t.dim, t.spectrum_decay), "float32")
    ratio = []
    for seed in range(8):
        k = tasks.seed_keys(seed)
        w_star = task.teacher(k.teacher, t.dim)
        _, y = task.sample(jax.random.fold_in(k.data, 0), B, lam, w_star, t.noise_std)
        loss0 = task.population_loss(jnp.zeros(t.dim), w_star, lam, t.noise_std)
        ratio.append(float(jnp.mean(y**2) / loss0))
    ratio = np.array(ratio)
    assert ratio.max() > 1.5  # a seed whose first minibatch is unusually hard
    factor = ratio.max() * (1 + side * 1e-4)
    cfg.sweep.divergence_factor = factor
    cfg.sweep.budget.samples, cfg.sweep.budget.steps = None, 1
    out, *_ = train_batch_size(cfg, B, np.array([1e-3]), engine.curve_steps(1, 2))
    np.testing.assert_array_equal(out.diverged[:, 0], ratio > factor)
    assert out.diverged.any() == (side < 0)


@pytest.mark.slow
def test_concurrent_jobs_write_one_sweep_dir_and_readers_see_complete_parts(tmp_path):
    from analysis.load import load

    sweep = tmp_path / "multi"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeps.run", "-m", "hydra/launcher=joblib",
         "hydra.launcher.n_jobs=2", *ARGS, "model=linear,mlp", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lanes, reads = 6 * 2, 0
    while proc.poll() is None:
        if any(sweep.glob("*/results.parquet")):
            df = pd.read_parquet(sweep)  # never a half-written file, never a stray one
            assert (df.groupby(["sweep_id", "batch_size"]).size() == lanes).all()
            reads += 1
        time.sleep(0.05)
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert reads > 0
    df = load(sweep)
    assert sorted(df["model"].unique()) == ["linear", "mlp"]
    assert len(df) == 2 * 4 * lanes

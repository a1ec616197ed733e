"""Nothing lost: concurrent sweeps, the sweep identity, and one-line errors instead of tracebacks.

The concurrency tests start real processes and line them up on a barrier (a file they wait
for, after loading their modules), so both sweeps start within milliseconds of each other.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lrscale.results import CURVES, RESULTS
from sweeps import memory, programs, rundir
from sweeps.sweep import run_sweep
from tests.conftest import ROOT, SMALL, cli, identity, make_config

# Waits for the barrier file, then runs the command line with the given arguments.
AT_BARRIER = """
import sys, time
from pathlib import Path
from sweeps.run import cli
Path(sys.argv[1] + ".ready." + sys.argv[2]).touch()
while not Path(sys.argv[1]).exists():
    time.sleep(0.001)
sys.argv = ["sweeps.run", *sys.argv[3:]]
cli()
"""


def _together(tmp_path: Path, *arg_lists, cwd: Path | None = None) -> list:
    """Run `sweeps.run` once per argument list, all released at the same moment."""
    barrier = tmp_path / "go"
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", AT_BARRIER, str(barrier), str(i), *args],
            cwd=cwd or tmp_path,
            env={**env, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, args in enumerate(arg_lists)
    ]
    t0 = time.time()
    while not all(Path(f"{barrier}.ready.{i}").exists() for i in range(len(procs))):
        assert time.time() - t0 < 120 and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    barrier.touch()
    return [(p.wait(timeout=300), *p.communicate()) for p in procs]


def _files(d: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


# 1. Two different sweeps into one directory.
def test_two_sweeps_started_together_into_one_directory_one_is_refused(tmp_path):
    run = tmp_path / "run"
    (rc_a, _, err_a), (rc_b, _, err_b) = _together(
        tmp_path,
        [*SMALL, "sweep.lr.num=6", f"hydra.run.dir={run}"],
        [*SMALL, "sweep.lr.num=7", f"hydra.run.dir={run}"],
    )
    assert sorted([rc_a, rc_b]) == [0, 2], (err_a, err_b)
    err = err_b if rc_b == 2 else err_a
    assert "Traceback" not in err
    # refused by the lock while the other runs, or by the identity once it has finished
    assert (
        "in use by another process" in err
        or "sweep.lr.num: 7 here, 6 there" in err
        or ("sweep.lr.num: 6 here, 7 there" in err)
    )
    df = pd.read_parquet(run / RESULTS)
    lr_num = 6 if rc_a == 0 else 7
    assert df["sweep_id"].nunique() == 1 and len(df) == lr_num * 2 * 3


@pytest.mark.slow  # the fast set calls the resolver in-process
def test_default_directories_of_sweeps_started_in_one_second_differ(tmp_path):
    # The default directory with a fixed time stamp, so that both sweeps collide on it.
    fixed = "hydra.run.dir=${lrscale_dir:outputs/same,2030-01-01_00-00-00,false}"
    out = _together(
        tmp_path, [*SMALL, "task.noise_std=0.1", fixed], [*SMALL, "task.noise_std=0.5", fixed]
    )
    assert [rc for rc, *_ in out] == [0, 0], out
    paths = sorted((tmp_path / "outputs" / "same").iterdir())
    assert [p.name for p in paths] == ["2030-01-01_00-00-00", "2030-01-01_00-00-00-2"]
    stds = {float(pd.read_parquet(p / RESULTS)["task_noise_std"].iloc[0]) for p in paths}
    assert stds == {0.1, 0.5}
    printed = {re.search(r"results: (.*)", o).group(1) for _, o, _ in out}
    assert printed == {str(p.absolute() / RESULTS) for p in paths}


def _identity(cfg):
    """(settings, sweep_id) of cfg's identity, as rundir.refusal takes them."""
    ident = identity(cfg)
    return ident.settings, ident.sweep_id


# 15. Refusals name the settings that differ.
def test_refusal_names_the_settings_that_differ(tmp_path):
    run_sweep(make_config(*SMALL, "sweep.batch_sizes=[4]"), tmp_path)
    other = make_config(*SMALL, "sweep.batch_sizes=[4]", "sweep.lr.num=7", "task.noise_std=0.3")
    why = rundir.refusal(tmp_path, *_identity(other))
    assert "sweep.lr.num: 7 here, 6 there" in why and "task.noise_std: 0.3 here, 0.5 there" in why
    assert "sweep.seeds" not in why and "model" not in why


def test_directories_written_before_identity_records_are_still_checked(tmp_path):
    run_sweep(make_config(*SMALL, "sweep.batch_sizes=[4]"), tmp_path)
    (tmp_path / rundir.IDENTITY).unlink()
    other = make_config(*SMALL, "sweep.batch_sizes=[4]", "optimizer.momentum=0.5")
    assert "optimizer.momentum: 0.5 here, 0.0 there" in rundir.refusal(tmp_path, *_identity(other))
    with pytest.raises(rundir.ResumeError, match="another sweep"):
        run_sweep(other, tmp_path)


# 2. Seeds: fewer keep everything, more train only the new seeds.
def test_fewer_seeds_keep_every_row_and_more_seeds_train_only_the_new_ones(
    tmp_path, monkeypatch, capsys
):
    args = [*SMALL, "sweep.batch_sizes=[2,8]"]
    two = run_sweep(make_config(*args), tmp_path)
    before = pd.read_parquet(tmp_path / RESULTS)
    one = run_sweep(make_config(*args, "sweep.seeds=1"), tmp_path)
    assert "keeps seeds 1 trained before" in capsys.readouterr().err
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / RESULTS), before)
    assert len(one) == len(two) == 2 * 6 * 2

    trained = []
    prepare = programs.prepare
    monkeypatch.setattr(
        programs, "prepare", lambda *a, **k: trained.append(list(a[5])) or prepare(*a, **k)
    )
    three = run_sweep(make_config(*args, "sweep.seeds=3"), tmp_path)
    assert trained == [[2], [2]]  # seed 2 of each batch size, nothing else
    kept = three[three["seed"] < 2].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before)  # seeds 0 and 1 untouched
    fresh = run_sweep(make_config(*args, "sweep.seeds=3"), tmp_path / "fresh")
    np.testing.assert_allclose(
        three["final_eval_loss"], fresh["final_eval_loss"], rtol=1e-5
    )  # a seed trained alone equals the same seed trained beside others (float32 rounding)
    curves = pd.read_parquet(tmp_path / CURVES)
    assert sorted(curves["seed"].unique()) == [0, 1, 2] and len(curves) == len(
        pd.read_parquet(tmp_path / "fresh" / CURVES)
    )


# 3. Same sweep, two processes, one directory.
def test_a_second_process_in_a_directory_in_use_is_refused_and_the_first_finishes(tmp_path):
    run = tmp_path / "run"
    args = [*SMALL, f"hydra.run.dir={run}"]
    first = subprocess.Popen(
        [sys.executable, "-m", "sweeps.run", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    t0 = time.time()
    while not (run / rundir.IDENTITY).exists():  # the first holds the directory
        assert first.poll() is None and time.time() - t0 < 120, first.communicate()
        time.sleep(0.01)
    first.send_signal(signal.SIGSTOP)  # frozen while it holds the directory
    try:
        second = cli(*args, cwd=tmp_path)
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 2 and "in use by another process (pid" in second.stderr
    assert "Traceback" not in second.stderr
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert len(pd.read_parquet(run / RESULTS)) == 36


# 4. A refused multirun changes nothing, Hydra's records included.
def test_a_refused_multirun_changes_no_file(tmp_path):
    sweep_dir = tmp_path / "multi"
    args = [*SMALL, "sweep.batch_sizes=[4]", f"hydra.sweep.dir={sweep_dir}"]
    assert cli("-m", *args, cwd=tmp_path).returncode == 0
    before = _files(sweep_dir)
    assert sweep_dir / "0" / ".hydra" / "config.yaml" in before
    r = cli("-m", *args, "sweep.lr.num=7", cwd=tmp_path)
    assert r.returncode == 2 and "sweep.lr.num: 7 here, 6 there" in r.stderr, r.stderr
    assert "nothing was changed" in r.stderr
    assert _files(sweep_dir) == before


# 5. Results that cannot be read: one line, nothing written.
@pytest.mark.parametrize("damage", ["truncated", "garbage", "foreign"])
def test_unreadable_results_are_refused_in_one_line(tmp_path, damage):
    good = tmp_path / "good"
    run_sweep(make_config(*SMALL, "sweep.batch_sizes=[4]"), good)
    run = tmp_path / "run"
    run.mkdir()
    if damage == "truncated":
        (run / RESULTS).write_bytes((good / RESULTS).read_bytes()[:3000])
    elif damage == "garbage":
        (run / RESULTS).write_bytes(b"PAR1 not parquet at all")
    else:
        pd.DataFrame({"x": [1.0]}).to_parquet(run / RESULTS)
    before = _files(run)
    r = cli(*SMALL, f"hydra.run.dir={run}", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "cannot be read as lrscale results" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert _files(run) == before


# 6. Out of memory is refused up front, naming the setting and the memory.
def test_a_batch_size_too_big_for_the_device_is_refused_before_anything(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "device_memory", lambda: 2**30)
    cfg = make_config(
        *SMALL, "task.dim=1024", "sweep.batch_sizes=[4,65536]", "sweep.budget.samples=65536"
    )
    with pytest.raises(
        Exception, match=r"sweep.batch_sizes: batch size 65536 needs [\d.]+ GiB"
    ) as e:
        run_sweep(cfg, tmp_path / "run")
    assert "estimated" in str(e.value) and "device's 1 GiB" in str(e.value)
    assert not (tmp_path / "run").exists()


def test_the_compiled_program_is_checked_against_the_device(tmp_path, monkeypatch):
    """What the estimate misses, XLA's count of the compiled program catches."""
    monkeypatch.setattr(memory, "device_memory", lambda: 2**30)
    monkeypatch.setattr(memory, "seed_bytes", lambda *a: 0)
    cfg = make_config(
        *SMALL, "task.dim=1024", "sweep.batch_sizes=[65536]", "sweep.budget.samples=65536"
    )
    with pytest.raises(Exception, match="as compiled"):
        run_sweep(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / RESULTS).exists()
    assert not (tmp_path / "run" / rundir.IDENTITY).exists()  # the directory is nobody's


def test_a_batch_size_no_device_holds_is_one_line_from_the_command_line(tmp_path):
    r = cli(
        *SMALL,
        "task.dim=4096",
        "sweep.batch_sizes=[16777216]",
        "sweep.budget.samples=null",
        "sweep.budget.steps=1",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "sweep.batch_sizes: batch size 16777216 needs" in r.stderr
    assert not (tmp_path / "run").exists()


def test_results_without_their_curves_are_refused_not_retrained(tmp_path):
    run_sweep(make_config(*SMALL, "sweep.batch_sizes=[4]"), tmp_path)
    (tmp_path / CURVES).unlink()
    before = _files(tmp_path)
    with pytest.raises(rundir.ResumeError, match="has no _curves.parquet beside it"):
        run_sweep(make_config(*SMALL, "sweep.batch_sizes=[4]"), tmp_path)
    assert _files(tmp_path) == before


def test_identity_record_is_created_once(tmp_path):
    ident = identity(make_config(*SMALL, "sweep.batch_sizes=[4]"))
    with rundir.claim(ident, tmp_path):
        rec = json.loads((tmp_path / rundir.IDENTITY).read_text())
        with pytest.raises(rundir.ResumeError, match="in use by another process"):
            with rundir.claim(ident, tmp_path):
                pass
    assert rec["sweep_id"] and rec["settings"]["lr_num"] == 6

"""The command line refuses what it cannot run faithfully in one line, before anything trains,
and leaves nothing it made behind (never a directory of the user's); interrupts at any moment,
in every command, are one line with exit 130 or 143."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from lrscale import interrupts
from lrscale.results import RESULTS
from sweeps import rundir
from sweeps.sweep import run_sweep
from tests.conftest import ROOT, SMALL, cli, identity, make_config
from tests.data.analysis import synth


def _one_error_line(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


# ---- 8. a multirun checks every job before the first starts ----------------------------------


@pytest.mark.parametrize(
    ("sweep", "says"),
    [
        ("sweep.lr.num=4,1,5", "error: sweep.lr.num must be >= 2 (got 1) (job 1 of 3: "),
        ("model=linear,nosuch", "error: model: no option 'nosuch' (options: cnn,"),
    ],
)
def test_a_multirun_with_one_bad_job_runs_none_and_leaves_nothing(tmp_path, sweep, says):
    r = cli("-m", *SMALL, sweep, f"hydra.sweep.dir={tmp_path / 'm'}", cwd=tmp_path, timeout=60)
    line = _one_error_line(r)
    assert line.startswith(says) and line.endswith("no job was run"), line
    assert list(tmp_path.iterdir()) == []


FAST = ["sweep=smoke", "progress=false", "plot.enabled=false", "sweep.batch_sizes=[4]"]


def test_a_multirun_reads_every_jobs_data_file_before_the_first_starts(tmp_path):
    pd.DataFrame({"a": np.arange(40.0), "y": np.arange(40.0) % 3}).to_csv(tmp_path / "d.csv")
    (tmp_path / "empty.csv").write_text("")
    data = ["task=file", "task.kind=regression", "task.target=y"]
    paths = f"task.path={tmp_path / 'd.csv'},{tmp_path / 'empty.csv'}"
    r = cli("-m", *FAST, *data, paths, f"hydra.sweep.dir={tmp_path / 'm'}", cwd=tmp_path)
    line = _one_error_line(r)
    assert line.startswith("error: task.path: ") and "empty.csv" in line, line
    assert line.endswith(
        "(job 1 of 2: task.path=" + str(tmp_path / "empty.csv") + "); no job was run"
    )
    assert not (tmp_path / "m").exists()


def test_a_job_that_fails_mid_multirun_keeps_the_others_and_says_how_to_resume(tmp_path):
    nets = "model.target=tests.data.nets.TwoLayer,tests.data.nets.WrongShape"
    sweep_dir = tmp_path / "m"
    r = cli("-m", *FAST, "task=digits", "model=custom", nets, f"hydra.sweep.dir={sweep_dir}",
            cwd=ROOT)  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "error: model.target: tests.data.nets.WrongShape returns shape" in r.stderr
    assert "the jobs before it are kept: once this is fixed, resume with:" in r.stderr
    assert r.stderr.strip().splitlines()[-1].strip().startswith("python -m sweeps.run -m ")
    assert (sweep_dir / "0" / RESULTS).exists() and not (sweep_dir / "1").exists()


# ---- 9. a refusal removes only what it made ---------------------------------------------------


def test_a_refused_run_keeps_the_users_own_empty_directory(tmp_path):
    (tmp_path / "keep" / "sub").mkdir(parents=True)
    r = cli(*SMALL, "sweep.lr.num=1", "hydra.run.dir=keep/sub", cwd=tmp_path, timeout=60)
    assert _one_error_line(r) == "error: sweep.lr.num must be >= 2 (got 1)"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "keep",
        "keep/sub",
    ]


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="no /proc")
def test_a_run_directory_that_cannot_be_made_is_one_line(tmp_path):
    r = cli(*SMALL, "hydra.run.dir=/proc/lrs", cwd=tmp_path, timeout=60)
    assert _one_error_line(r).startswith("error: output directory /proc/lrs cannot be written")


# ---- what Hydra cannot parse gets the override that works -------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["task.path=my", "file.csv"], "error: overrides: 'file.csv' is not key=value"),
        (["task.path=my data (1).csv"], "error: task.path: Hydra cannot read 'my data (1).csv'"),
        (["task.path=a,b.csv"], "error: task.path: Hydra reads the commas of 'a,b.csv'"),
    ],
)
def test_an_unquoted_path_is_told_how_to_quote_it(tmp_path, args, says):
    r = cli(*SMALL, "task=file", *args, cwd=tmp_path, timeout=60)
    line = _one_error_line(r)
    assert line.startswith(says), line
    fix = line.split("e.g. ")[-1]
    (word,) = subprocess.run(["sh", "-c", f"printf %s {fix}"], capture_output=True, text=True)\
        .stdout.splitlines()  # fmt: skip
    (parsed,) = OverridesParser.create().parse_overrides([word])
    assert parsed.key_or_group == "task.path" and parsed.value().endswith(".csv")


# ---- a directory claimed by a sweep killed before its first write holds nothing --------------


def test_a_record_left_by_a_killed_sweep_is_no_other_sweep(tmp_path):
    first = identity(make_config(*SMALL, "sweep.batch_sizes=[4]", "sweep.lr.num=3"))
    with pytest.raises(KeyboardInterrupt), rundir.claim(first, tmp_path):
        os.link(tmp_path / rundir.IDENTITY, tmp_path / "kept")  # what kill -9 leaves
        raise KeyboardInterrupt
    os.replace(tmp_path / "kept", tmp_path / rundir.IDENTITY)
    (tmp_path / rundir.LOCK).touch()
    other = make_config(*SMALL, "sweep.batch_sizes=[4]")
    assert rundir.refusal(tmp_path, identity(other).settings) is None
    assert len(run_sweep(other, tmp_path)) == 12
    # while a live process holds it, it is in use, whatever its results
    fd = os.open(tmp_path / rundir.LOCK, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert "is in use by another process" in rundir.refusal(tmp_path, {})
    finally:
        os.close(fd)


# ---- interrupts ------------------------------------------------------------------------------


def test_a_signal_swallowed_on_its_way_stops_the_sweep_before_it_trains(tmp_path, monkeypatch):
    monkeypatch.setattr(interrupts, "_received", [signal.SIGINT])  # as if JAX ate the interrupt
    with pytest.raises(KeyboardInterrupt):
        run_sweep(make_config(*SMALL, "sweep.batch_sizes=[4]"), tmp_path / "run")
    assert list((tmp_path / "run").iterdir()) == []  # the claim left nothing


def _blocked_start(tmp_path: Path, *args: str) -> subprocess.Popen:
    """The sweep command, started on a data file that blocks its start until written to."""
    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)
    data = [f"task.path={fifo}", "task.kind=regression", "task.target=y"]
    return subprocess.Popen(
        [sys.executable, "-m", "sweeps.run", "task=file", *data, *args],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigterm_during_start_up_is_one_line_with_exit_143(tmp_path):
    proc = _blocked_start(tmp_path, f"hydra.run.dir={tmp_path / 'run'}")
    fd = None
    t0 = time.time()
    while fd is None:  # the write end opens once the sweep is reading the data file
        try:
            fd = os.open(tmp_path / "data.csv", os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            assert proc.poll() is None and time.time() - t0 < 60, proc.communicate()
            time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    os.close(fd)
    assert proc.returncode == 143 and "Traceback" not in err, err
    assert err.strip() == "interrupted by SIGTERM: no results were written"
    assert not (tmp_path / "run").exists()  # made for the run, removed with it


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("command", ["analysis.report", "analysis.plot"])
def test_an_interrupt_of_the_analysis_commands_is_one_line(tmp_path, command, sig):
    synth.write(tmp_path / "run", synth.results(lambda B: 0.01))
    proc = subprocess.Popen(
        [sys.executable, "-m", command, str(tmp_path / "run"), "--boot", "100000"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)  # imports done, the bootstrap under way
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig and "Traceback" not in err, err
    assert err.strip() == (
        f"{command}: interrupted by {signal.Signals(sig).name}: every file written so far is "
        "whole; nothing half-written was left"
    )
    assert not list((tmp_path / "run").rglob(".*.tmp"))


# ---- the analysis never writes over what is not its own ------------------------------------


def test_the_report_and_its_tables_never_overwrite_files_of_a_run_or_of_the_user(tmp_path, capsys):
    from analysis import plot, report

    run = synth.write(tmp_path / "run", synth.results(lambda B: 0.01))
    user = tmp_path / "user"
    user.mkdir()
    (user / "laws.parquet").write_bytes(b"the user's own file")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for out, says in (
        (run / "results.parquet", "--out names the report, a markdown file (.md)"),
        (run / "report.md", "holds a sweep's results; the report and the analysis tables go"),
        (user / "report.md", "laws.parquet: exists and is not one of lrscale's analysis outputs"),
    ):
        assert report.main([str(run), "--boot", "10", "--out", str(out)]) == 2
        assert says in capsys.readouterr().err
    assert plot.main([str(run), "--boot", "10", "--out", str(run)]) == 2
    assert "holds a sweep's results" in capsys.readouterr().err
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # nothing written, nothing replaced


def test_an_interrupt_swallowed_by_a_callback_is_not_printed(capsys):
    class Unraisable:
        exc_type, exc_value, exc_traceback, err_msg, object = (
            KeyboardInterrupt,
            None,
            None,
            "",
            None,
        )

    interrupts._unraisable(Unraisable)
    assert capsys.readouterr().err == ""


def test_the_closing_summary_names_no_best_lr_where_every_lr_diverged():
    from sweeps.rows import summary

    df = pd.DataFrame({"batch_size": [1, 1, 4, 4], "lr": [0.1, 1.0, 0.1, 1.0]})
    df["final_eval_loss"] = [np.inf, np.inf, 0.5, np.inf]
    df["diverged"], df["steps"] = np.isinf(df["final_eval_loss"]), 8
    df.attrs["timings"] = [{"batch_size": b, "compile_s": 1.0, "run_s": 1.0} for b in (1, 4)]
    s = summary(df)
    assert np.isnan(s.loc[1, "best_lr"]) and s.loc[4, "best_lr"] == 0.1

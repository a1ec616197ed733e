"""Nothing lost, continued: values refused by name, interrupts that say what is kept, resume
commands that survive any path, chunking within its tolerance, progress weighted by work."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lrscale.results import RESULTS
from sweeps.sweep import run_sweep
from tests.conftest import ROOT, SMALL, cli, make_config


# 7. Values that used to end in a traceback or a silent wrong answer.
@pytest.mark.parametrize(
    "override, key",
    [
        ("sweep.memory_gb=inf", "sweep.memory_gb"),
        ("sweep.budget.samples=100000000000000000000", "sweep.budget.samples"),
        ("sweep.lr.min=1e-300", "sweep.lr.min"),
        ("sweep.lr.max=1e300", "sweep.lr.max"),
    ],
)
def test_values_out_of_range_name_the_key(override, key):
    from lrscale.checks import validate
    from lrscale.config import ConfigError

    with pytest.raises(ConfigError, match=re.escape(key)):
        validate(make_config(*SMALL, override))


def test_a_step_budget_beyond_int32_is_refused():
    from lrscale.checks import validate
    from lrscale.config import ConfigError

    cfg = make_config(*SMALL, "sweep.budget.samples=null", "sweep.budget.steps=3000000000")
    with pytest.raises(ConfigError, match=r"sweep.budget.steps must be in \[1, 2147483647\]"):
        validate(cfg)


def test_an_empty_run_directory_is_refused(tmp_path):
    r = cli(*SMALL, "hydra.run.dir=", cwd=tmp_path)
    assert r.returncode == 2 and "hydra.run.dir must be a directory" in r.stderr
    assert list(tmp_path.iterdir()) == []


# 12. Chunking changes results only in float32's last bits (the tolerance the README states).
def test_chunked_float32_results_agree_within_the_stated_tolerance(tmp_path):
    one = "sweep.batch_sizes=[4]"  # the claim is per lane
    whole = run_sweep(make_config(*SMALL, one), tmp_path / "a")
    chunked = run_sweep(make_config(*SMALL, one, "sweep.memory_gb=1e-12"), tmp_path / "b")
    assert (whole["diverged"] == chunked["diverged"]).all()
    for c in ("final_train_loss", "final_eval_loss"):
        np.testing.assert_allclose(chunked[c], whole[c], rtol=1e-5)


# 14. resume=true picks the run written last, whatever its name.
@pytest.mark.slow  # the fast set calls the resolver in-process
def test_resume_true_picks_the_run_written_last(tmp_path):
    base = tmp_path / "outputs" / "linear-sgd"
    cfg = make_config(*SMALL, "sweep.batch_sizes=[2,4]")
    run_sweep(make_config(*SMALL, "sweep.batch_sizes=[2]"), base / "2030-01-02_00-00-00")
    run_sweep(make_config(*SMALL, "sweep.batch_sizes=[2]"), base / "zzz_mine")
    old = time.time() - 3600
    os.utime(base / "zzz_mine" / RESULTS, (old, old))
    r = cli(*SMALL, "sweep.batch_sizes=[2,4]", "resume=true", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"results: {base / '2030-01-02_00-00-00' / RESULTS}" in r.stdout
    assert len(pd.read_parquet(base / "zzz_mine" / RESULTS)) == 12
    assert len(run_sweep(cfg, base / "2030-01-02_00-00-00")) == 24


# 10 and 11. Ctrl-C anywhere says what is kept; the resume command survives any path.
def test_ctrl_c_during_start_up_is_one_line(tmp_path):
    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)  # reading it blocks start-up until the test has sent the signal
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sweeps.run",
            "task=file",
            f"task.path={fifo}",
            "task.kind=regression",
            "task.target=y",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    t0 = time.time()
    while True:  # opening the write end succeeds once the sweep has opened the read end
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            assert proc.poll() is None and time.time() - t0 < 60, proc.communicate()
            time.sleep(0.01)
    time.sleep(0.3)  # the sweep now waits inside pandas' C reader, which swallows the interrupt
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    os.close(fd)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted by SIGINT: no results were written" in err


# A Ctrl-C at a chosen moment: the command line, with one function replaced by a Ctrl-C.
CTRL_C_IN = """
import sys
import sweeps.app, sweeps.run, sweeps.sweep
real = sweeps.sweep.run_sweep
calls = []

def interrupt(*a, **k):
    raise KeyboardInterrupt

def second_job_interrupted(*a, **k):
    calls.append(1)
    return interrupt() if len(calls) == 2 else real(*a, **k)

if sys.argv[1] == "drawing":
    sweeps.app.draw_figures = interrupt
else:
    sweeps.sweep.run_sweep = second_job_interrupted
sys.argv = ["sweeps.run", *sys.argv[2:]]
sweeps.run.cli()
"""


def _ctrl_c_in(where: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CTRL_C_IN, where, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )


def _run_printed(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run a printed `python -m sweeps.run ...` command through the shell, as a user would."""
    assert command.startswith("python -m sweeps.run ")
    return subprocess.run(
        command.replace("python", shlex.quote(sys.executable), 1),
        shell=True,
        cwd=cwd,
        capture_output=True,
        text=True,
    )


@pytest.mark.slow  # the fast set covers the start-up one
def test_ctrl_c_while_drawing_says_the_results_are_complete(tmp_path):
    run = tmp_path / "my run"
    r = _ctrl_c_in("drawing", *SMALL, "plot=true", f"hydra.run.dir='{run}'", cwd=tmp_path)
    assert r.returncode == 130 and "Traceback" not in r.stderr, r.stderr
    assert f"the results are complete in {run}" in r.stderr
    assert f"draw the figures later with: lrscale-plot '{run}'" in r.stderr
    assert len(pd.read_parquet(run / RESULTS)) == 36


# 9. Figures that cannot be written: the results are safe, and the sweep says so.
@pytest.mark.slow  # the fast set draws in-process
def test_figures_that_cannot_be_written_leave_the_results_and_say_so(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "_analysis").write_text("a file where the figures would go")
    r = cli(*SMALL, "plot=true", f"hydra.run.dir={run}", cwd=tmp_path)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "no figures: " in r.stderr and f"the results are complete in {run}" in r.stderr
    assert len(pd.read_parquet(run / RESULTS)) == 36


@pytest.mark.slow  # the fast set parses the command in-process
def test_ctrl_c_between_multirun_jobs_prints_the_command_that_resumes_them_all(tmp_path):
    sweep_dir = tmp_path / "multi ré"
    args = [*SMALL, "sweep.batch_sizes=[4]", "task.noise_std=0.1,0.5"]
    r = _ctrl_c_in("jobs", "-m", *args, f"hydra.sweep.dir='{sweep_dir}'", cwd=tmp_path)
    assert r.returncode == 130 and "Traceback" not in r.stderr, r.stderr
    assert "finished jobs are kept; resume with:" in r.stderr
    command = r.stderr.strip().splitlines()[-1].strip()
    assert command.startswith("python -m sweeps.run -m ")
    job0 = pd.read_parquet(sweep_dir / "0" / RESULTS)
    r = _run_printed(command, tmp_path)
    assert r.returncode == 0, r.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(sweep_dir / "0" / RESULTS), job0)
    assert len(pd.read_parquet(sweep_dir / "1" / RESULTS)) == 12


@pytest.mark.slow  # the fast set parses the same override in-process
def test_the_resume_command_after_sigterm_works_for_a_path_with_spaces_and_accents(tmp_path):
    run = tmp_path / "my runs" / "été"
    args = [*SMALL, "sweep.batch_sizes=[1,2]", "sweep.budget.samples=200000"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeps.run", *args, f"hydra.run.dir='{run}'"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    t0 = time.time()
    while not (run / RESULTS).exists():  # the first batch size is written
        assert proc.poll() is None and time.time() - t0 < 120, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, err
    r = _run_printed(err.strip().splitlines()[-1].strip(), tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(pd.read_parquet(run / RESULTS)["batch_size"].unique()) == [1, 2]


@pytest.mark.parametrize(
    "path", ["/tmp/plain/run", "/tmp/my runs/été", "/tmp/it's", "/tmp/$x a=b,c"]
)
def test_a_printed_directory_override_parses_back_to_the_path(path):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from sweeps.command import dir_override

    (word,) = shlex.split(dir_override("hydra.run.dir", path))  # as the shell hands it over
    (parsed,) = OverridesParser.create().parse_overrides([word])
    assert parsed.value() == path


def test_the_directory_resolver_makes_new_directories_and_resumes_the_last_written(tmp_path):
    from sweeps.callbacks import latest_dir

    base = str(tmp_path / "runs")
    first, second = (
        latest_dir.__wrapped__(base, "t", False),
        latest_dir.__wrapped__(base, "t", False),
    )
    assert (first, second) == (f"{base}/t", f"{base}/t-2")  # made, so never shared
    for name, age in (("zzz_mine", 3600), ("t", 0)):
        (Path(base) / name).mkdir(exist_ok=True)
        pd.DataFrame({"x": [1]}).to_parquet(Path(base) / name / RESULTS)
        os.utime(Path(base) / name / RESULTS, (time.time() - age, time.time() - age))
    assert latest_dir.__wrapped__(base, "new", True) == f"{base}/t"  # by time, not by name


def test_figures_that_fail_after_a_sweep_say_the_results_are_safe(tmp_path, monkeypatch, capsys):
    import analysis.pipeline
    from analysis.output import OutputError
    from sweeps.drawing import draw_figures

    def full(paths, **kw):
        raise OutputError(f"{tmp_path}/_analysis/figures/x.png: cannot write the figure (no space)")

    monkeypatch.setattr(analysis.pipeline, "plot_dirs", full)
    draw_figures(tmp_path)
    err = capsys.readouterr().err
    assert err.startswith("no figures: ") and f"the results are complete in {tmp_path}" in err
    assert f"draw the figures later with: lrscale-plot {tmp_path}" in err


# 16. The progress bar is weighted by the expected work and shows compiling as its own phase.
def test_progress_is_weighted_by_work_and_shows_compiling(tmp_path, capsys):
    from sweeps import engine
    from sweeps.sweep import _work

    cfg = make_config(*SMALL, "progress=true", "sweep.batch_sizes=[1,16]")
    run_sweep(cfg, tmp_path)
    err = capsys.readouterr().err
    assert "compiling B=1" in err and "training B=16" in err and "FLOP" in err
    prob, lanes = engine.build(cfg), 6 * 2
    w1, w16 = (_work(cfg, prob, b, lanes) for b in (1, 16))
    # after the first batch size: its share of the work (counted in steps it would be 94%)
    after_first = {int(m) for m in re.findall(r"(\d+)%\|", err)} - {0, 100}
    assert after_first == {int(100 * w1 / (w1 + w16))} and max(after_first) < 90

"""Bad places and bad inputs for the analysis outputs: one line `error: ...`, exit code 2.

The noise-scale command on paths it cannot measure; figures, reports and the theory cache where
the output path is a file, read-only or full.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from analysis import pipeline, plot, report
from analysis.load import AnalysisError
from analysis.output import OutputError
from lrscale.results import NOISE_SCALE
from sweeps import noise_scale
from tests.conftest import ROOT, SMALL, make_config
from tests.data.analysis import synth

NS = "sweeps.noise_scale: error: "
GRID = dict(batch_sizes=(1, 4, 16, 64), lrs=(1e-4, 10.0, 13), seeds=2)


def _errors(capsys) -> tuple[list[str], str]:
    """The stderr lines that say error, and stdout."""
    out = capsys.readouterr()
    return [line for line in out.err.splitlines() if "error:" in line], out.out


# --- the noise-scale command -------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A real sweep (the command replays its stored config): two batch sizes, 4 lrs, 2 seeds."""
    from sweeps.sweep import run_sweep

    d = tmp_path_factory.mktemp("ns_run")
    cfg = make_config(*SMALL, "sweep.batch_sizes=[4,16]", "sweep.lr.num=4", "sweep.lr.max=0.1")
    run_sweep(cfg, d)
    return d


def _ns(capsys, *args) -> tuple[int, list[str], str]:
    rc = noise_scale.main([str(a) for a in args])
    err, out = _errors(capsys)
    return rc, err, out


def test_noise_scale_on_a_missing_directory(tmp_path, capsys):
    rc, err, _ = _ns(capsys, tmp_path / "nope")
    assert rc == 2 and err == [f"{NS}{tmp_path / 'nope'}: no such file or directory"]


def test_noise_scale_on_a_multirun_directory_names_the_jobs_to_pick_from(sweep, tmp_path, capsys):
    for job in ("0", "1"):
        shutil.copytree(sweep, tmp_path / "multi" / job)
    rc, err, _ = _ns(capsys, tmp_path / "multi")
    assert rc == 2 and len(err) == 1
    assert err[0].startswith(f"{NS}{tmp_path / 'multi'}: a multirun directory with 2 sweeps")
    assert "give one of its job folders: 0, 1" in err[0]
    assert not list((tmp_path / "multi").rglob(NOISE_SCALE))


def test_noise_scale_on_a_corrupt_results_file(sweep, tmp_path, capsys):
    (tmp_path / "bad").mkdir()
    good = (sweep / "results.parquet").read_bytes()
    (tmp_path / "bad" / "results.parquet").write_bytes(good[:3000])
    rc, err, _ = _ns(capsys, tmp_path / "bad")
    assert rc == 2 and len(err) == 1
    assert err[0].startswith(f"{NS}{tmp_path / 'bad' / 'results.parquet'}: not a readable parquet")


def test_noise_scale_on_a_table_without_a_stored_config(tmp_path, capsys):
    d = synth.write(tmp_path / "synth", synth.results(lambda B: 0.01, **GRID))
    rc, err, _ = _ns(capsys, d)
    assert rc == 2 and err == [
        f"{NS}{d / 'results.parquet'}: no sweep config in its metadata (the measurement replays "
        "the sweep from it; tables written by lrscale's sweeps have one)"
    ]


@pytest.mark.parametrize(
    "flags, expect",
    [
        (
            ["--batch-size", "3"],
            "--batch-size 3: not a batch size of the sweep in {d} (it has 4, 16)",
        ),
        (
            ["--n", "1"],
            "--n must be at least 2 (got 1): the noise scale needs the spread of two or "
            "more examples' gradients",
        ),
        (["--seeds", "0"], "--seeds must be at least 1 (got 0)"),
        (["--lr", "-1"], "--lr must be a positive finite number (got -1.0)"),
    ],
    ids=["batch-size", "n", "seeds", "lr"],
)
def test_noise_scale_refuses_bad_flags_in_one_line(sweep, capsys, flags, expect):
    rc, err, _ = _ns(capsys, sweep, *flags)
    assert rc == 2 and err == [NS + expect.format(d=sweep / "results.parquet")]
    assert not (sweep / NOISE_SCALE).exists()


def test_noise_scale_from_the_shell_has_no_traceback(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "sweeps.noise_scale", str(tmp_path / "nope")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [f"{NS}{tmp_path / 'nope'}: no such file or directory"]


def test_noise_scale_prints_plain_numbers_and_refuses_an_unwritable_output(sweep, tmp_path, capsys):
    run = shutil.copytree(sweep, tmp_path / "run")
    rc, err, out = _ns(capsys, run, "--n", "64", "--seeds", "1")
    assert rc == 0 and err == [] and "np.float64" not in out
    (line,) = [x for x in out.splitlines() if x.startswith("pooled over seeds:")]
    saved = pd.read_parquet(run / NOISE_SCALE)
    p = saved[saved["seed"].isna()].set_index("point")
    assert line == "pooled over seeds: " + "; ".join(
        f"{k} B_simple = {p.loc[k, 'B_simple']:.4g}, B_noise = {p.loc[k, 'B_noise']:.4g}"
        for k in ("init", "end")
    )
    assert np.isfinite(p[["B_simple", "B_noise"]].to_numpy(float)).all()
    # the measurement's file cannot be written (a directory stands in its place)
    (run / NOISE_SCALE).unlink()
    (run / NOISE_SCALE).mkdir()
    rc, err, _ = _ns(capsys, run, "--n", "64", "--seeds", "1")
    target = run / NOISE_SCALE
    assert rc == 2 and err == [f"{NS}{target}: is a directory; cannot write the measurement there"]


# --- figures and reports where they cannot be written ------------------------------------------


@pytest.fixture
def run(tmp_path) -> Path:
    return synth.write(tmp_path / "run", synth.results(lambda B: 0.01 * B, **GRID))


def _no_figures(d: Path) -> None:
    """Nothing in d looks like a figure, whole or in part (temporary files included)."""
    left = [p.name for p in d.rglob("*") if p.is_file()] if d.is_dir() else []
    assert left == [], left


@pytest.mark.parametrize("main", [plot.main, report.main], ids=["plot", "report"])
def test_analysis_dir_that_is_a_file(run, capsys, main):
    (run / "_analysis").write_text("a file where the outputs go")
    assert main([str(run), "--boot", "10"]) == 2
    err, _ = _errors(capsys)
    assert err == [
        f"{main.__module__}: error: {run / '_analysis'}: is a file, not a directory; cannot "
        f"write the figures in {run / '_analysis' / 'figures'}"
    ]


def test_plot_out_that_is_a_file(run, tmp_path, capsys):
    f = tmp_path / "taken"
    f.write_text("x")
    assert plot.main([str(run), "--boot", "10", "--out", str(f)]) == 2
    err, _ = _errors(capsys)
    assert err == [
        f"analysis.plot: error: {f}: is a file, not a directory; cannot write the figures in {f}"
    ]
    assert f.read_text() == "x"


@pytest.mark.slow  # the fast set refuses a bad --out of analysis.plot
def test_report_out_that_is_a_directory_or_below_a_file(run, tmp_path, capsys):
    d = tmp_path / "somedir"
    d.mkdir()
    assert report.main([str(run), "--boot", "10", "--out", str(d)]) == 2
    err, _ = _errors(capsys)
    assert err == [
        f"analysis.report: error: {d}: is a directory; --out names the report file, "
        f"e.g. {d / 'report.md'}"
    ]
    assert list(d.iterdir()) == [] and not (tmp_path / "figures").exists()
    f = tmp_path / "taken"
    f.write_text("x")
    assert report.main([str(run), "--boot", "10", "--out", str(f / "report.md")]) == 2
    err, _ = _errors(capsys)
    assert err == [
        f"analysis.report: error: {f}: is a file, not a directory; cannot write the figures "
        f"in {f / 'figures'}"
    ]
    # an existing report file is simply replaced
    g = tmp_path / "old.md"
    g.write_text("old report")
    assert report.main([str(run), "--boot", "10", "--out", str(g)]) == 0
    assert g.read_text().startswith("# Optimal learning rate vs batch size")


def _read_only(monkeypatch, d: Path) -> None:
    """d and everything below it read-only, for root too (who ignores the permission bits)."""
    for p in [d, *d.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    real = os.mkdir

    def mkdir(path, *a, **kw):
        if Path(path).is_relative_to(d):
            if not Path(path).parent.is_dir():  # as the system says it: the parent first
                raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, *a, **kw)

    monkeypatch.setattr(os, "mkdir", mkdir)


@pytest.mark.parametrize("main", [plot.main, report.main], ids=["plot", "report"])
def test_read_only_run_directory(run, capsys, monkeypatch, main):
    _read_only(monkeypatch, run)
    try:
        assert main([str(run), "--boot", "10"]) == 2
    finally:
        run.chmod(0o755)
    err, _ = _errors(capsys)
    fig = run / "_analysis" / "figures"
    assert err == [
        f"{main.__module__}: error: {fig}: cannot create the directory for the figures "
        f"(permission denied at {run / '_analysis'})"
    ]
    assert not (run / "_analysis").exists()


def _disk_full_after(monkeypatch, n_ok: int) -> list[str]:
    """Figure.savefig writes n_ok files, then half a file and ENOSPC; returns the names asked."""
    real, asked = Figure.savefig, []

    def savefig(self, fname, *a, **kw):
        asked.append(str(fname))
        if len(asked) <= n_ok:
            return real(self, fname, *a, **kw)
        Path(fname).write_bytes(b"\x89PNG half a figure")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", savefig)
    return asked


@pytest.mark.parametrize("n_ok", [0, 3])
def test_disk_full_while_drawing_leaves_no_half_written_figure(run, capsys, monkeypatch, n_ok):
    _disk_full_after(monkeypatch, n_ok)
    assert plot.main([str(run), "--boot", "10", "--format", "png"]) == 2
    err, _ = _errors(capsys)
    figs = run / "_analysis" / "figures"
    written = sorted(figs.iterdir())
    assert len(written) == n_ok and all(p.suffix == ".png" for p in written)
    assert all(p.read_bytes()[:4] == b"\x89PNG" and p.stat().st_size > 10_000 for p in written)
    stems = ["loss_vs_lr", "eta_vs_batch", "heatmap", "eta_vs_batch_by_data"]
    failed = figs / f"linear-sgd_{stems[n_ok]}.png"
    assert err == [
        f"analysis.plot: error: {failed}: cannot write the figure (no space left on device); "
        "nothing half-written was left"
    ]


def test_plot_dirs_raises_one_output_error_the_sweep_can_catch(run, monkeypatch):
    (run / "_analysis").write_text("x")
    with pytest.raises(OutputError, match=r"_analysis: is a file, not a directory") as e:
        pipeline.plot_dirs([run])
    assert isinstance(e.value, AnalysisError)
    (run / "_analysis").unlink()
    _disk_full_after(monkeypatch, 0)
    with pytest.raises(OutputError, match="no space left on device"):
        pipeline.plot_dirs([run], formats=("svg",))
    _no_figures(run / "_analysis")


@pytest.mark.slow  # the fast set fills the disk while drawing
def test_report_disk_full_leaves_the_old_report_whole(run, monkeypatch):
    out = run / "_analysis" / "report.md"
    report.write_report([run], n_boot=10, formats=("png",))
    old = out.read_text()
    real = Path.write_text

    def full(self, data, *a, **kw):
        real(self, data[:100], *a, **kw)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OutputError, match=f"{out}: cannot write the report .no space left"):
        report.write_report([run], n_boot=10, formats=("png",))
    assert out.read_text() == old
    names = {p.name for p in out.parent.iterdir()}  # no temporary file left behind
    assert {"figures", "report.md"} <= names and not any(n.startswith(".") for n in names)


# --- the theory cache beside the results -------------------------------------------------------

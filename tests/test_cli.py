"""The command line end to end, as a user types it."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from lrscale.results import CURVES, RESULTS
from sweeps.command import plot_shorthand
from tests.conftest import SMALL, cli

# Libraries a command that stops before the sweep does without: the figures' and the sweep's
# (numpy is light beside them, and the config's checks use it for the dtype's limits).
HEAVY = {"matplotlib", "seaborn", "scipy", "analysis", "jax", "optax", "pandas", "pyarrow"}
# `python -m sweeps.run ARGS`, then the top-level packages it imported on stdout's last line.
IMPORTED = """
import runpy, sys
try:
    runpy.run_module("sweeps.run", run_name="__main__", alter_sys=True)
except SystemExit as e:
    sys.stderr.write(f"exit {e.code}")
print(" ".join(sorted({m.split(".")[0] for m in sys.modules})))
"""


def test_single_run_writes_tables_and_prints_the_summary(tmp_path):
    run_dir = tmp_path / "run"
    r = cli(*SMALL, "plot=true", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    df = pd.read_parquet(run_dir / RESULTS)
    assert len(df) == 3 * 6 * 2
    assert (run_dir / CURVES).exists()
    assert "best_lr" in r.stdout and str(run_dir / RESULTS) in r.stdout
    # The figures a user looks at first, as PNG; every other one on request (lrscale-plot).
    figures = run_dir / "_analysis" / "figures"
    assert (figures / "linear-sgd_eta_vs_batch.png").stat().st_size > 10_000
    assert sorted(p.name for p in figures.iterdir()) == [
        "linear-sgd_eta_vs_batch.png",
        "linear-sgd_loss_vs_lr.png",
    ]
    assert f"lrscale-plot {run_dir}" in r.stdout
    # Only parquet, hidden and underscore entries: the directory reads as one table.
    assert pd.read_parquet(run_dir).shape == df.shape


def test_multirun_jobs_land_side_by_side_and_read_as_one_table(tmp_path):
    sweep_dir = tmp_path / "multi"
    r = cli(
        "-m", *SMALL, "plot=true", "plot.figures=all", "plot.formats=[svg]", "model=linear,mlp",
        f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (sweep_dir / "0" / RESULTS).exists() and (sweep_dir / "1" / RESULTS).exists()
    df = pd.read_parquet(sweep_dir)
    assert sorted(df["model"].unique()) == ["linear", "mlp"]
    assert len(df) == 2 * 3 * 6 * 2
    assert df["sweep_id"].nunique() == 2
    # Drawn once for the whole sweep, the comparison across its jobs included; every figure, in
    # the format asked for alone
    figures = sweep_dir / "_analysis" / "figures"
    for f in ("comparison", "mlp-sgd_heatmap", "linear-sgd_loss_vs_lr"):
        assert (figures / f"{f}.svg").exists() and not (figures / f"{f}.png").exists()
    assert not (sweep_dir / "0" / "_analysis" / "figures").exists()


def test_plot_false_is_short_for_plot_enabled_false():
    argv = [
        "plot=false",
        "plot=true,false",
        "++plot=False",
        "plot.formats=[svg]",
        "plot={enabled:0}",
    ]
    assert plot_shorthand(argv) == [
        "plot.enabled=false",
        "plot.enabled=true,false",
        "++plot.enabled=False",
        "plot.formats=[svg]",
        "plot={enabled:0}",
    ]


@pytest.mark.parametrize(
    "args, says",
    [(["--help"], "exit 0"), (["sweep.seeds=0"], "error: sweep.seeds must be > 0 (got 0)")],
)
def test_help_and_config_errors_import_neither_figures_nor_the_sweep(tmp_path, args, says):
    args = [*args, f"hydra.run.dir={tmp_path / 'run'}"]
    r = subprocess.run(
        [sys.executable, "-c", IMPORTED, *args], cwd=tmp_path, capture_output=True, text=True
    )
    assert says in r.stderr, r.stderr
    imported = set(r.stdout.splitlines()[-1].split())
    assert "hydra" in imported and imported & HEAVY == set()

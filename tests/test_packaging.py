"""A built wheel carries its configs: it runs a sweep, a report and its console scripts anywhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from lrscale.results import RESULTS
from tests.conftest import ROOT, SMALL


def _run(*cmd, cwd: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_wheel_runs_a_sweep_and_a_report_outside_the_checkout(tmp_path):
    wheels, site, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "work"
    work.mkdir()
    # Built from a copy: setuptools writes its build/ folder into the source tree.
    src = tmp_path / "src"
    skip = (".*", "build", "outputs", "*.egg-info", "__pycache__", "docs")
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*skip))
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    pip = (sys.executable, "-m", "pip")
    r = _run(*pip, "wheel", "--no-deps", "-q", "-w", str(wheels), str(src), cwd=work, env=env)
    assert r.returncode == 0, r.stderr
    (wheel,) = wheels.glob("lrscale-*.whl")
    r = _run(
        *pip, "install", "--no-deps", "-q", "--target", str(site), str(wheel), cwd=work, env=env
    )
    assert r.returncode == 0, r.stderr
    # The installed copy, not the checkout: PYTHONPATH puts it before the editable install.
    env["PYTHONPATH"] = str(site)
    r = _run(sys.executable, "-c", "import sweeps; print(sweeps.__file__)", cwd=work, env=env)
    assert r.stdout.strip().startswith(str(site)), r.stdout
    assert (site / "sweeps" / "conf" / "task" / "mnist1d.yaml").exists()

    r = _run(site / "bin" / "lrscale-sweep", *SMALL, "hydra.run.dir=run", cwd=work, env=env)
    assert r.returncode == 0, r.stderr
    assert len(pd.read_parquet(work / "run" / RESULTS)) == 3 * 6 * 2
    r = _run(site / "bin" / "lrscale-report", "run", cwd=work, env=env)
    assert r.returncode == 0, r.stderr
    assert (work / "run" / "_analysis" / "report.md").exists()
    r = _run(site / "bin" / "lrscale-sweep", "--help", cwd=work, env=env, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("lrscale: how should the learning rate")
    assert "task: digits, file, mnist1d, regression" in r.stdout

"""The analysis on a real (tiny) sweep written by the engine: schema, optima, figures, report."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from analysis import pipeline, report
from analysis.load import load, load_curves


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    from sweeps.sweep import run_sweep
    from tests.conftest import SMALL, make_config

    cfg = make_config(*SMALL, "sweep.batch_sizes=[1,4,16,64]", "sweep.lr.num=9")
    out = tmp_path_factory.mktemp("real")
    run_sweep(cfg, out)
    return cfg, out


def test_engine_output_loads_cleanly_and_gives_an_optimum_per_batch_size(real):
    cfg, out = real
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = load(out)
        a = pipeline.analyse([out], n_boot=100)
    s = cfg.sweep
    assert len(df) == len(s.batch_sizes) * s.lr.num * s.seeds
    assert list(df["label"].unique()) == ["linear+sgd"]
    assert len(load_curves(out)) > len(df)
    o = a.opt.set_index("batch_size")
    assert list(o.index) == s.batch_sizes and o["status"].isin(["ok", "edge", "diverged"]).all()
    # the refined eta* stays within one grid step of the grid argmin of the seed mean
    ok = o[o["usable"]]
    step = np.log10(s.lr.max / s.lr.min) / (s.lr.num - 1)
    assert (np.abs(np.log10(ok["eta"] / ok["eta_grid"])) <= step / 2 + 1e-12).all()
    mean = df.groupby(["batch_size", "lr"])["final_eval_loss"].mean()
    for B, r in ok.iterrows():
        assert mean[B].idxmin() == r["eta_grid"] and mean[B].min() == r["loss"]


def test_plot_and_report_run_on_engine_output(real):
    _, out = real
    files = pipeline.plot_dirs([out], formats=("png",))
    assert {f.name for f in files} >= {"linear-sgd_eta_vs_batch.png", "comparison.png"}
    md = report.write_report([out], n_boot=100, formats=("png",)).read_text()
    assert "**(a) Linear regression + SGD" in md and "No MLP+SGD sweep" in md

"""Classification results in the analysis: new columns, eta* by accuracy, loss names, no theory."""

from __future__ import annotations

import importlib.util
import re
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from analysis import (
    estimator,
    figures,
    figures_accuracy,
    metric,
    optimum,
    pipeline,
    plot,
    report,
    theory_sweep,
)
from analysis.load import AnalysisError, load, load_curves
from analysis.pipeline import analyse

_spec = importlib.util.spec_from_file_location(
    "analysis_synth", Path(__file__).parent / "data" / "analysis" / "synth.py"
)
synth = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synth)

SMALL = dict(batch_sizes=(1, 4, 16, 64, 256), lrs=(1e-4, 10.0, 31), seeds=3)
ETA = lambda B: 0.01 * B  # noqa: E731  (where the loss is lowest)
ACC_ETA = lambda B: 0.003 * B  # noqa: E731  (where the accuracy is highest)


def _mnist1d(root: Path, **kw) -> Path:
    kw = dict(SMALL, task="mnist1d", acc_eta=ACC_ETA, noise=0.01) | kw
    return synth.write(root, synth.results(ETA, **kw))


@pytest.fixture(scope="module")
def cls(tmp_path_factory) -> Path:
    """A linear+SGD sweep on mnist1d (softmax regression) whose accuracy and loss optima differ."""
    return _mnist1d(tmp_path_factory.mktemp("mnist1d"))


# --- loading -----------------------------------------------------------------------------------


def test_a_table_from_before_the_new_columns_reads_as_regression_mse(tmp_path):
    old = synth.results(ETA, **SMALL)
    assert not {"loss", "task_kind", "final_eval_accuracy"} & set(old.columns)
    synth.write(tmp_path / "old", old)
    synth.write(tmp_path / "new", synth.results(ETA, **SMALL, task="digits"))
    df = load(tmp_path)
    r = df[df["task"] == "regression"]
    assert (r["loss"] == "mse").all() and (r["task_kind"] == "regression").all()
    assert str(df["final_eval_accuracy"].dtype) == "Float64"
    assert r["final_eval_accuracy"].isna().all()
    c = df[df["task"] == "digits"]
    assert (c["loss"] == "cross_entropy").all() and c["final_eval_accuracy"].notna().all()
    # diverged lanes: loss +inf, accuracy 0, never NaN
    d = c[c["diverged"]]
    assert len(d) and (d["final_eval_accuracy"] == 0).all() and np.isinf(d["final_eval_loss"]).all()
    cur = load_curves(tmp_path)
    assert str(cur["eval_accuracy"].dtype) == "Float64"
    assert cur.loc[cur["task"] == "regression", "eval_accuracy"].isna().all()
    assert sorted(df["label"].unique()) == ["linear+sgd", "linear+sgd on digits"]


BAD = {
    "loss": (lambda df: df.assign(loss="hinge"), "unknown loss 'hinge'"),
    "task_kind": (lambda df: df.assign(task_kind="ranking"), "unknown task_kind 'ranking'"),
    "accuracy": (
        lambda df: df.assign(final_eval_accuracy=pd.array([1.5] * len(df), dtype="Float64")),
        "final_eval_accuracy 1.5 is outside [0, 1]",
    ),
}


@pytest.mark.parametrize("what", list(BAD))
def test_an_unknown_loss_or_an_accuracy_outside_0_1_is_refused_or_skipped(tmp_path, what):
    spoil, expect = BAD[what]
    good = synth.write(tmp_path / "good", synth.results(ETA, **SMALL, task="mnist1d"))
    bad = synth.write(tmp_path / "bad", spoil(synth.results(ETA, **SMALL, task="digits")))
    with pytest.raises(AnalysisError, match=re.escape(expect)) as e:
        load(tmp_path)
    assert str(bad / "results.parquet") in str(e.value) and "\n" not in str(e.value)
    with pytest.warns(UserWarning, match=re.escape(f"skipped {bad / 'results.parquet'}: ")):
        df = load(tmp_path, skip_bad=True)
    assert set(df["source"]) == {str(good)}


def test_curves_with_an_accuracy_outside_0_1_are_refused_or_skipped(tmp_path):
    d = _mnist1d(tmp_path / "run")
    c = synth.curves(synth.results(ETA, **SMALL, task="mnist1d"))
    c["eval_accuracy"] = c["eval_accuracy"] * 0 - 0.5
    synth.write_table(c, d / "_curves.parquet", {})
    with pytest.raises(AnalysisError, match="eval_accuracy -0.5 is outside"):
        load_curves(d)
    with pytest.warns(UserWarning), pytest.raises(AnalysisError, match="all files were skipped"):
        load_curves(d, skip_bad=True)


# --- eta* by accuracy --------------------------------------------------------------------------


def test_eta_by_accuracy_finds_the_accuracy_optimum_not_the_loss_one(cls):
    res = load(cls)
    by_acc = optimum.optima(res, n_boot=200, by="accuracy").set_index("batch_size")
    by_loss = optimum.optima(res, n_boot=200).set_index("batch_size")
    for B in SMALL["batch_sizes"]:
        a, lo = by_acc.loc[B], by_loss.loc[B]
        assert a["eta"] == pytest.approx(ACC_ETA(B), rel=0.3), B
        assert a["eta_lo"] <= a["eta"] <= a["eta_hi"]
        assert lo["eta"] == pytest.approx(ETA(B), rel=0.3), B
        assert 0.9 < a["accuracy"] <= 1 and a["accuracy"] > lo["accuracy"]
        assert np.isfinite(a["loss"]) and a["loss"] > lo["loss"]  # the loss at eta*(accuracy)
    assert (by_acc["metric"] == "accuracy").all() and (by_loss["metric"] == "loss").all()
    assert (by_acc["loss_name"] == "cross_entropy").all() and by_acc["usable"].all()


def test_an_accuracy_optimum_at_the_grid_edge_is_flagged():
    df = synth.results(ETA, **SMALL, task="mnist1d", acc_eta=lambda B: 1e-5)
    o = optimum.optima(df, n_boot=0, by="accuracy")
    assert (o["edge"] == "low").all() and not o["usable"].any()
    assert o["note"].str.startswith("maximum at the lowest lr").all()


def test_a_perfect_accuracy_can_win():
    """An error of exactly 0 is an optimum, not a missing value (no log scale for accuracy)."""
    lr = np.geomspace(1e-3, 1, 7)
    err = np.array([0.3, 0.2, 0.05, 0.0, 0.1, 0.2, 0.4])[:, None] * np.ones((1, 3))
    r = estimator.one(lr, err, 50, 0.95, np.random.default_rng(0), metric.get("accuracy"))
    assert r["eta_grid"] == lr[3] and r["status"] == "ok"


@pytest.mark.parametrize("main", [plot.main, report.main], ids=["plot", "report"])
def test_metric_accuracy_on_a_regression_sweep_is_one_line_naming_it(tmp_path, capsys, main):
    synth.write(tmp_path / "0", synth.results(ETA, **SMALL))
    _mnist1d(tmp_path / "1")
    assert main([str(tmp_path), "--metric", "accuracy", "--boot", "20"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"analysis.{main.__module__.split('.')[-1]}: error: --metric accuracy: no accuracy in "
        "linear+sgd (regression): only classification has one; use --metric loss"
    ]


# --- figures and report ------------------------------------------------------------------------


def test_figures_name_the_loss_and_add_accuracy_vs_lr(cls, tmp_path):
    a = analyse([cls], n_boot=50, by="accuracy")
    c, o = a.curve, a.opt
    ax = figures.loss_vs_lr(c, o)
    assert ax.get_ylabel() == "final eval loss (cross-entropy, nats)"
    assert "η* maximises accuracy" in ax.get_title()
    plt.close(ax.figure)
    ax = figures.heatmap(c, o)
    assert "cross-entropy" in ax.figure.axes[-1].get_ylabel()  # the colour bar
    plt.close(ax.figure)
    ax = figures_accuracy.accuracy_vs_lr(c, o)
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "final eval accuracy (seed mean)"
    assert ax.get_title().startswith("linear+sgd on mnist1d: accuracy vs learning rate")
    names = [t.get_text() for t in ax.get_legend().get_texts()]
    assert names[:5] == ["1", "4", "16", "64", "256"] and "η* (refined accuracy argmax)" in names
    plt.close(ax.figure)
    files = pipeline.plot_dirs([cls], out=tmp_path / "f", formats=("png",), by="accuracy")
    stems = {f.stem for f in files}
    assert "linear-sgd-on-mnist1d_accuracy_vs_lr" in stems
    assert "linear-sgd-on-mnist1d_loss_vs_lr" in stems
    # a regression sweep gets no accuracy figure and keeps its MSE label
    run = synth.write(tmp_path / "reg", synth.results(ETA, **SMALL))
    files = pipeline.plot_dirs([run], out=tmp_path / "g", formats=("png",))
    assert not any("accuracy" in f.stem for f in files)
    r = analyse([run], n_boot=0)
    ax = figures.loss_vs_lr(r.curve, r.opt)
    assert ax.get_ylabel() == "final eval loss (MSE)"
    plt.close(ax.figure)


def test_report_by_accuracy_shows_the_best_accuracy_per_batch_size(cls, tmp_path):
    out = tmp_path / "report.md"
    assert report.main([str(cls), "--metric", "accuracy", "--boot", "50", "--out", str(out)]) == 0
    md = out.read_text()
    assert "argmax over the lr grid of the seed-mean final eval accuracy" in md
    head = "| B | eta* | 95% interval | grid argmax | best accuracy (mean) | loss there (mean, "
    assert head + "cross-entropy, nats) |" in md
    assert "(figures/linear-sgd-on-mnist1d_accuracy_vs_lr.png)" in md
    # by loss, the table gives the accuracy at eta* beside the loss
    report.write_report([cls], out=tmp_path / "by_loss.md", n_boot=50, formats=("png",))
    md = (tmp_path / "by_loss.md").read_text()
    assert (
        "| best loss (mean, cross-entropy, nats) | median loss there | accuracy there (mean) |"
        in md
    )


def test_linear_sgd_on_mnist1d_gets_no_theory_and_answers_no_homework_question(cls, tmp_path):
    res = load(cls)
    why = "the exact theory covers the pinned regression task, not mnist1d"
    assert theory_sweep.uncovered(res) == why and theory_sweep.predicted(res) is None
    path = report.write_report([cls], out=tmp_path / "r.md", n_boot=50, formats=("png",))
    md = path.read_text()
    assert f"### Theory vs measurement\n\nNot computed: {why}.\n" in md
    assert "eta* theory" not in md and "closed form of the linear task" not in md
    assert "not measured: the measurement covers the regression task, not mnist1d" in md
    assert "**(a)" not in md  # no homework answers without a sweep of the regression task
    assert "so the sweeps of mnist1d (linear+sgd on mnist1d) answer none of them" in md
    assert "## linear+sgd on mnist1d" in md and "### Fitted laws" in md


def test_analysis_tables_of_hand_built_frames_get_the_defaults():
    """optima and curve on a table that never went through load() (no new columns)."""
    df = synth.results(ETA, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        o = optimum.optima(df, n_boot=0)
        c = optimum.curve(df)
    assert (o["loss_name"] == "mse").all() and o["accuracy"].isna().all()
    assert c["accuracy"].isna().all() and (c["loss_name"] == "mse").all()

"""The notes on eta* give advice only where the data support it: a flat loss curve or a single
finite lr does not ask to extend the grid, and a task whose loss overflows at initialisation
does not ask for a lower lr grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import advice, figures, law_table, optimum, plot, report
from analysis.pipeline import analyse
from tests.conftest import SMALL, make_config
from tests.data.analysis import synth

GRID = dict(batch_sizes=(1, 4, 16), lrs=(1e-9, 1e-8, 6), seeds=2)
SMALLC = dict(batch_sizes=(4, 16), lrs=(1e-3, 1.0, 7), seeds=2, task="mnist1d")


def _set(df: pd.DataFrame, loss: np.ndarray, div=None, step=None) -> pd.DataFrame:
    """df with the final losses (and the diverged flags and steps) replaced, lane by lane."""
    df = df.copy()
    div = ~np.isfinite(loss) if div is None else np.asarray(div, bool)
    df["final_eval_loss"] = df["final_train_loss"] = np.where(div, np.inf, loss)
    df["diverged"] = div
    steps = np.where(div, 5 if step is None else step, 0)
    df["diverged_step"] = pd.Series(steps, index=df.index, dtype="Int64").mask(~div)
    return df


def _flat(seeds: int = 2) -> pd.DataFrame:
    """What a sweep whose lrs are too small to train looks like: per seed its initial loss, less
    a trace that grows with the lr; seeds differ by their teachers (about 10%)."""
    df = synth.results(lambda B: 1e-3, **(GRID | dict(seeds=seeds)))
    base = 1.3 * (1 + 0.1 * (df["seed"].to_numpy() - 0.5))
    return _set(df, base * (1 - 4000.0 * df["lr"].to_numpy()))


def test_a_flat_loss_curve_says_eta_is_not_identified_not_extend_the_grid():
    o = optimum.optima(_flat(), n_boot=50).set_index("batch_size")
    for B, r in o.iterrows():
        assert r["status"] == "unidentified" and not r["usable"], B
        assert r["edge"] == "high" and r["eta"] == pytest.approx(1e-8)  # the estimate stands
        assert "extend" not in r["note"]
        assert r["note"] == (
            "the loss does not depend on the lr across the grid: its seed mean varies by "
            "0.0036% over lrs 1e-09 to 1e-08, within the seed spread (7.3%); eta* is not "
            "identified"
        )


def test_a_flat_curve_with_one_seed_is_judged_against_a_relative_floor():
    o = optimum.optima(_flat(seeds=1), n_boot=0)
    assert o["status"].eq("unidentified").all()
    assert o["note"].str.endswith("within 0.01%; eta* is not identified").all()
    # one seed and a loss that clearly moves: an edge, with the advice to extend
    df = _flat(seeds=1)
    df = _set(df, df["final_eval_loss"].to_numpy() * (1 - 1e6 * df["lr"].to_numpy()))
    o = optimum.optima(df, n_boot=0)
    assert o["status"].eq("edge").all()
    assert o["note"].str.endswith("extend the grid up").all()


def test_an_edge_that_clearly_rises_away_keeps_the_advice_to_extend():
    """Seeds 10% apart, the loss falling by 30% across the grid toward its top: extend up."""
    df = _flat()
    base = 1.3 * (1 + 0.1 * (df["seed"].to_numpy() - 0.5))
    df = _set(df, base * (1 - 3e7 * df["lr"].to_numpy()))
    o = optimum.optima(df, n_boot=50)
    assert o["status"].eq("edge").all() and (o["edge"] == "high").all()
    assert o["note"].eq("minimum at the highest lr 1e-08: extend the grid up").all()


def test_a_flat_curve_in_the_interior_is_not_fitted_either():
    df = synth.results(lambda B: 1e-3, batch_sizes=(8,), lrs=(1e-4, 1e-2, 5), seeds=3)
    rng = np.random.default_rng(0)
    per_seed = 1.0 + 0.1 * df["seed"].to_numpy()
    loss = per_seed * (1 + 1e-4 * rng.standard_normal(len(df)))
    lr = df["lr"].to_numpy()
    loss[lr == lr[2]] *= 1 - 3e-4  # the argmin in the middle, far within the seed spread
    (r,) = optimum.optima(_set(df, loss), n_boot=20).to_dict("records")
    assert r["edge"] == "" and r["status"] == "unidentified" and not r["usable"]
    assert r["note"].startswith("the loss does not depend on the lr across the grid")


def test_a_flat_accuracy_curve_says_so_in_accuracy():
    df = synth.results(lambda B: 1e-2, **SMALLC)
    df["final_eval_accuracy"] = pd.array(np.ones(len(df)), dtype="Float64")
    df = _set(df, df["final_eval_loss"].to_numpy(), div=np.zeros(len(df), bool))
    o = optimum.optima(df, n_boot=0, by="accuracy")
    assert o["status"].eq("unidentified").all()
    assert (
        o["note"]
        .str.startswith(
            "the accuracy does not depend on the lr across the grid: its seed mean varies by 0 "
        )
        .all()
    )


def test_one_finite_lr_does_not_locate_eta():
    df = synth.results(lambda B: 1e-3, batch_sizes=(4, 16), lrs=(1e-3, 1.0, 4), seeds=2, wall=1e9)
    lr = df["lr"].to_numpy()
    loss = df["final_eval_loss"].to_numpy().copy()
    loss[lr > 1e-3] = np.inf  # every lr above the smallest has diverged
    o = optimum.optima(_set(df, loss), n_boot=20)
    # still an edge (never fitted), but with no call to extend the grid beyond it
    assert o["status"].eq("edge").all() and not o["usable"].any() and o["finite_lrs"].eq(1).all()
    assert (
        o["note"]
        .eq(
            "only lr 0.001 is free of diverged seeds, and one point does not locate eta*: it lies "
            "below 0.01, where seeds diverge; a finer grid there would locate it"
        )
        .all()
    )
    # a seed diverged at one lr only, in the middle: its neighbours are the bounds
    loss = df["final_eval_loss"].to_numpy().copy()
    loss[(lr != lr[1]) & (df["seed"].to_numpy() == 0)] = np.inf
    o = optimum.optima(_set(df, loss), n_boot=20)
    assert o["status"].eq("unidentified").all()
    assert o["note"].str.contains("it lies between 0.001 and 0.1, where seeds diverge").all()
    ax = figures.eta_vs_batch(o, law_table.fits(o))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "η* not identified by the grid (not fitted)" in labels


def test_a_grid_of_one_lr_says_so():
    df = synth.results(lambda B: 1e-3, batch_sizes=(4,), lrs=(1e-3, 1e-3, 1), seeds=2)
    (r,) = optimum.optima(df, n_boot=0).to_dict("records")
    assert r["status"] == "unidentified" and "extend" not in r["note"]
    assert r["note"] == "the grid has one lr (0.001), which does not locate eta*; sweep several"


def _diverged(step: int) -> pd.DataFrame:
    df = synth.results(lambda B: 1e-3, **GRID)
    return _set(df, np.full(len(df), np.inf), step=step)


def test_every_lane_diverged_at_step_0_blames_the_task_not_the_lr_grid():
    df = _diverged(step=0)
    o = optimum.optima(df, n_boot=20)
    assert o["status"].eq("diverged").all() and o["diverged_at_step0"].eq(o["lanes"]).all()
    assert o["note"].eq(optimum.OVERFLOW).all()
    assert "lower the lr grid" not in optimum.OVERFLOW
    (p,) = optimum.problems(o)
    assert p == (
        "linear+sgd: every lane diverged at every batch size, at step 0 before any update: "
        + optimum.OVERFLOW_WHY
    )
    assert "lower the lr grid" not in p


def test_every_lane_diverged_later_still_asks_for_a_lower_grid():
    o = optimum.optima(_diverged(step=5), n_boot=20)
    assert (
        o["note"].eq("all lanes diverged, even at the smallest lr 1e-09: lower the lr grid").all()
    )
    (p,) = optimum.problems(o)
    assert p == "linear+sgd: every lane diverged at every batch size; lower the lr grid"


def test_one_seed_that_overflows_at_step_0_is_named():
    df = synth.results(lambda B: 1e-3, **(GRID | dict(seeds=3)))
    loss = df["final_eval_loss"].to_numpy().copy()
    loss[df["seed"].to_numpy() == 2] = np.inf
    o = optimum.optima(_set(df, loss, step=0), n_boot=20)
    assert o["status"].eq("diverged").all()
    said = "every lr has a diverged seed: seed 2 diverged at step 0, before any update; "
    assert o["note"].eq(said + optimum.OVERFLOW_WHY).all()
    (p,) = optimum.problems(o)
    assert "lower the lr grid" not in p and p.endswith(optimum.OVERFLOW_WHY)


def test_the_notes_reach_the_report_the_command_and_the_figure(tmp_path, capsys):
    d = synth.write(tmp_path / "flat", _flat())
    assert plot.main([str(d), "--boot", "20", "--format", "png"]) == 0
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if line.startswith("note: ")]
    assert len(notes) == 4 and not any("extend" in n for n in notes)
    assert "note: linear+sgd, B=4: the loss does not depend on the lr across the grid" in out
    assert notes[-1] == (
        "note: linear+sgd: no law fitted: only 0 usable batch sizes of 3 (3 with eta* not "
        "identified); a law needs at least 3"
    )
    md = report.write_report([d], n_boot=20, formats=("png",)).read_text()
    assert "extend the grid" not in md and md.count("eta* is not identified") >= 6
    a = analyse([d], n_boot=20)
    ax = figures.eta_vs_batch(a.opt, a.fits)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "η* not identified by the grid (not fitted)" in labels
    assert not any("grid edge" in t for t in labels)
    assert law_table._reason(a.opt).startswith("only 0 usable batch sizes of 3 (3 with eta* not")


# --- the sweeps of the issue, run for real (small) ---------------------------------------------


def _real(tmp_path, *overrides):
    from sweeps.sweep import run_sweep

    run_sweep(make_config(*SMALL, "sweep.batch_sizes=[1,4]", *overrides), tmp_path)
    return analyse([tmp_path], n_boot=20)


def test_a_real_sweep_whose_lrs_are_too_small_to_train_is_flat(tmp_path):
    a = _real(tmp_path, "sweep.lr.min=1e-9", "sweep.lr.max=1e-8")
    assert a.opt["status"].eq("unidentified").all()
    assert a.opt["note"].str.startswith("the loss does not depend on the lr across the grid").all()
    assert not any("extend" in n for n in advice.notes(a))


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_a_real_sweep_whose_loss_overflows_blames_the_task(tmp_path):
    a = _real(tmp_path, "task.noise_std=1e30")
    assert a.opt["note"].eq(optimum.OVERFLOW).all()
    (p,) = a.problems
    assert "at step 0 before any update" in p and "lower the lr grid" not in p


def test_a_user_model_that_overflows_at_step_0_is_blamed_not_the_task():
    df = synth.results(lambda B: 1e-3, model="custom", **GRID)
    o = optimum.optima(_set(df, np.full(len(df), np.inf), step=0), n_boot=20)
    assert o["note"].str.contains("model.target's outputs are finite at initialisation").all()
    assert not o["note"].str.contains("noise_std").any()
    (p,) = optimum.problems(o)
    assert "model.target" in p and "noise_std" not in p


def test_a_loss_that_is_zero_at_every_lr_locates_nothing():
    df = synth.results(lambda B: 1e-3, **GRID)
    o = optimum.optima(_set(df, np.zeros(len(df))), n_boot=20)
    assert o["status"].eq("unidentified").all()
    assert o["note"].str.startswith("the loss is 0 at every lr from 1e-09 to 1e-08").all()
    # where some lrs reach 0 exactly, those are the best: not skipped as a log's missing cells
    loss = np.where(df["lr"].to_numpy() > 5e-9, 0.0, 1.0)
    o = optimum.optima(_set(df, loss), n_boot=0)
    assert (o["eta_grid"] > 5e-9).all() and o["loss"].eq(0).all()


def test_one_sweep_that_cannot_answer_among_others_is_a_warning(tmp_path, capsys):
    fine = dict(batch_sizes=(1, 4, 16, 64), lrs=(1e-4, 1.0, 13), seeds=2)
    synth.write(tmp_path / "0", synth.results(lambda B: 0.01 * B**0.5, **fine))
    mlp = synth.results(lambda B: 1e-3, model="mlp", **GRID)
    synth.write(tmp_path / "1", _set(mlp, np.full(len(mlp), np.inf), step=5))
    assert report.main([str(tmp_path), "--boot", "20"]) == 0
    err = capsys.readouterr().err
    assert "analysis.report: warning: mlp+sgd: every lane diverged" in err and "error" not in err

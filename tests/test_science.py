"""Theory on the figures and in the report, critical batch size and the zoo table, end to end."""

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
    critical,
    figures,
    figures_critical,
    figures_theory,
    noise,
    pipeline,
    report_sections,
    report_text,
    theory_sweep,
)
from analysis.load import load_curves
from analysis.pipeline import analyse
from analysis.theory import divergence_edge, optimal_lr
from lrscale.results import NOISE_SCALE
from tasks.regression import spectrum

_spec = importlib.util.spec_from_file_location(
    "analysis_synth", Path(__file__).parent / "data" / "analysis" / "synth.py"
)
synth = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synth)

SAMPLES = 1024
BOOT = 60


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A real engine sweep of the linear model with SGD, fine enough to locate eta*."""
    from sweeps.sweep import run_sweep
    from tests.conftest import SMALL, make_config

    cfg = make_config(
        *SMALL,
        "sweep.batch_sizes=[1,4,16,64]",
        "sweep.lr.num=25",
        "sweep.lr.min=1e-3",
        "sweep.lr.max=1",
        "sweep.seeds=32",
        f"sweep.budget.samples={SAMPLES}",
        "sweep.curve_points=24",
    )
    out = tmp_path_factory.mktemp("tiny")
    run_sweep(cfg, out)
    return cfg, out, analyse([out], n_boot=BOOT)


def _exact(cfg):
    t = cfg.task
    lam_D = spectrum(t.dim, t.spectrum_decay)
    B = np.array(cfg.sweep.batch_sizes)
    return B, optimal_lr(B, lam_D, t.noise_std, samples=SAMPLES), divergence_edge(B, lam_D)


def _ctx(a):
    sid = a.opt["sweep_id"].iloc[0]
    return dict(
        res=a.res[a.res["sweep_id"] == sid],
        curve=a.curve,
        opt=a.opt,
        fits=a.fits,
        theory=a.theory[a.theory["sweep_id"] == sid],
        label=a.opt["label"].iloc[0],
    )


def test_theory_line_and_divergence_edge_are_on_the_figures(tiny):
    cfg, _, a = tiny
    B, eta_B, edge_B = _exact(cfg)
    over = [figures_theory.eta_overlay]
    ax = figures.eta_vs_batch(a.opt, a.fits, overlays=over, ctx=_ctx(a))
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    th = lines["exact SGD theory η*(B), same budget"]
    np.testing.assert_allclose(th.get_xdata(), B)
    np.testing.assert_allclose(th.get_ydata(), eta_B, rtol=1e-9)
    np.testing.assert_allclose(
        lines["divergence edge η_max(B) (exact theory)"].get_ydata(), edge_B, rtol=1e-9
    )
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "exact SGD theory η*(B), same budget" in legend
    ax = figures.loss_vs_lr(a.curve, a.opt, overlays=[figures_theory.edge_overlay], ctx=_ctx(a))
    ticks = sorted(ln.get_xdata()[0] for ln in ax.get_lines() if len(ln.get_xdata()) == 2)
    np.testing.assert_allclose(ticks, np.sort(edge_B), rtol=1e-9)
    assert any("divergence edge" in t.get_text() for t in ax.get_legend().get_texts())


def test_report_theory_table_agrees_with_theory_and_measurement(tiny):
    cfg, out, a = tiny
    B, eta_B, edge_B = _exact(cfg)
    md = report_text.render(a, {}, out, [str(out)])
    sec = md.split("### Theory vs measurement")[1].split("###")[0]
    rows = [r.split("|")[1:-1] for r in sec.splitlines() if re.match(r"\| \d", r)]
    assert [int(r[0]) for r in rows] == list(B)
    meas = a.opt.set_index("batch_size")["eta"]
    for r, b, e, edge in zip(rows, B, eta_B, edge_B, strict=True):
        assert float(r[2]) == pytest.approx(meas[b], rel=5.1e-3)
        assert float(r[4]) == pytest.approx(e, rel=5.1e-3)
        assert float(r[6]) == pytest.approx(edge, rel=5.1e-3)
        # the engine against the theory: a wrong gradient or batch average breaks this
        assert abs(np.log(meas[b] / e)) < np.log(1.5), (b, meas[b], e)
    assert "agree within a factor 1.5 at every usable batch size" in sec
    answer = md.split("**(a)")[1].split("\n")[0]
    assert "Against the exact SGD theory (linear+sgd): **Theory and measurement agree" in answer
    # the linear closed form of the noise scale is quoted for the linear model
    assert "closed form of the linear task at initialisation: B_noise" in md
    assert "not measured: `python -m sweeps.noise_scale" in md


def test_critical_section_numbers_come_from_analysis_critical(tiny):
    _, out, a = tiny
    c = critical.critical_batch(load_curves(out), n_boot=BOOT)
    (row,) = a.critical.itertuples()
    assert (row.S_min, row.E_min, row.B_crit, row.B_crit_lo) == (*c.fit[:3], c.fit.B_crit_ci[0])
    md = report_text.render(a, {}, out, [str(out)])
    sec = md.split("### Critical batch size")[1].split("###")[0]
    assert f"**{c.target:.3g}**" in sec
    for name, v in (("S_min", c.fit.S_min), ("E_min", c.fit.E_min), ("B_crit", c.fit.B_crit)):
        row = next(r for r in sec.splitlines() if r.startswith(f"| {name}"))
        assert row.split("|")[2].strip() == f"{v:.3g}"
    lo, hi = critical.boot_ci(c.boot)["B_crit"]
    assert f"[{lo:.3g}, {hi:.3g}]" in sec
    # S(B) falls with B and the fit passes near every point
    t = c.table
    assert (np.diff(t["steps"]) < 0).all()
    assert np.all(np.abs(np.log(t["steps"] / t["steps_fit"])) < np.log(1.5))


@pytest.mark.parametrize(
    "ci, band", [((4.0, 16.0), True), ((0.0, np.inf), False), ((np.nan, np.nan), False)]
)
def test_the_critical_batch_band_is_drawn_only_where_its_interval_is_bounded(ci, band):
    B = np.array([1.0, 4.0, 16.0, 64.0])
    steps, _ = critical.tradeoff_curve(100.0, 800.0, B)
    fit = critical.Tradeoff(100.0, 800.0, 8.0, (90.0, 110.0), (700.0, 900.0), ci)
    crit = critical.Critical(0.1, pd.DataFrame({"batch_size": B, "steps": steps}), fit, None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a span to 0 or inf on a log axis: NaN transforms
        ax = figures_critical.steps_vs_batch(crit, "x")
        ax.figure.canvas.draw()
    assert len(ax.patches) == band
    says = "(band: 95% interval)" if band else "(95% interval unbounded)"
    assert any(t.get_text().endswith(says) for t in ax.get_legend().get_texts())
    plt.close(ax.figure)


def test_plot_draws_the_critical_figures_from_the_tables(tiny):
    _, out, a = tiny
    files = {f.name for f in pipeline.plot_dirs([out], out=out / "figs", formats=("png",))}
    assert {"linear-sgd_steps_vs_batch.png", "linear-sgd_tradeoff.png"} <= files
    sid = a.opt["sweep_id"].iloc[0]
    ax = figures_critical.steps_vs_batch(critical.view(a.critical.iloc[0], a.steps), "x")
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert "perfect scaling S ∝ 1/B" in labels and ax.get_xscale() == "log"
    # the tables the figure and the report read are written beside them
    written = pd.read_parquet(out / "figs" / "critical.parquet")
    assert written.set_index("sweep_id").loc[sid, "B_crit"] == a.critical["B_crit"].iloc[0]


def test_measured_noise_scale_is_quoted_beside_the_fitted_one(tiny, tmp_path):
    _, out, a = tiny
    res = a.res.assign(source=str(tmp_path))
    pooled = pd.DataFrame(
        {
            "point": ["init", "end"],
            "seed": pd.array([None, None], dtype="Int64"),
            "batch_size": 1,
            "lr": 0.01,
            "step": [0, 1024],
            "B_simple": [12.5, 333.0],
            "B_noise": [4.25, 777.0],
        }
    )
    pooled.to_parquet(tmp_path / NOISE_SCALE)
    fits = a.fits.assign(law="saturating", B_noise=55.5, B_noise_lo=40.0, B_noise_hi=70.0)
    line = "\n".join(report_sections.noise(noise.table(res, fits), res))
    assert "init B_noise = 4.25" in line and "end B_noise = 777" in line
    assert "B_noise = 55.5 [40, 70]" in line and "not measured" not in line


def test_no_theory_where_it_does_not_apply_and_a_zoo_table_for_many_sweeps(tmp_path):
    etas = {
        ("mlp", "sgd"): lambda B: 0.02 / (1 + 20 / B),
        ("linear", "adam"): lambda B: 1e-3 * B**0.5,
        ("linear", "rmsprop"): lambda B: 1e-3 * B**0.5,
        ("linear", "lion"): lambda B: 1e-4 * B**0.3,
        ("linear", "signsgd"): lambda B: 1e-4 * B**0.6,
    }
    kw = dict(batch_sizes=(1, 4, 16, 64, 256), lrs=(1e-6, 10.0, 29), seeds=2)
    for i, ((m, o), eta) in enumerate(etas.items()):
        synth.write(tmp_path / str(i), synth.results(eta, model=m, optimizer=o, seed=i, **kw))
    a = analyse([tmp_path], n_boot=BOOT)
    for _, res in a.res.groupby("sweep_id"):
        assert theory_sweep.predicted(res) is None and theory_sweep.uncovered(res)
    md = report_text.render(a, {}, tmp_path, [str(tmp_path)])
    assert "### Theory vs measurement" not in md
    zoo = md.split("## Optimizer zoo")[1].split("\n## ")[0]
    rows = [r for r in zoo.splitlines() if r.startswith("| ") and not r.startswith("| opt")]
    assert sorted(r.split("|")[1].strip() for r in rows) == sorted(o for _, o in etas)
    lion = next(r for r in rows if r.startswith("| lion"))
    assert float(lion.split("|")[4].split()[0]) == pytest.approx(0.3, abs=0.1)
    ax = figures.comparison(a.opt)
    handles, _ = ax.get_legend_handles_labels()
    marks = {h.lines[0].get_marker() for h in handles if hasattr(h, "lines")}
    assert len(marks) == len(etas)  # one marker per sweep, so many sweeps stay apart


def test_warm_up_computes_the_theory_the_figures_use(tiny):
    """What the command line computes while a sweep trains is what its figures look up."""
    from lrscale.config import settings
    from sweeps.drawing import prepare_figures

    cfg, _, a = tiny
    theory_sweep.compute.cache_clear()
    prepare_figures(settings(cfg), cfg.sweep.batch_sizes)
    assert theory_sweep.compute.cache_info().currsize == 1
    assert theory_sweep.predicted(a.res)["batch_size"].tolist() == cfg.sweep.batch_sizes
    assert theory_sweep.compute.cache_info().hits == 1  # what the warm-up computed


@pytest.mark.parametrize(
    "ylim, y_dropped", [((0.5, 3), False), ((0.1, 2), False), ((1e-3, 10), True)]
)
def test_minor_ticks_that_draw_nothing_are_dropped_and_the_figure_is_unchanged(
    tiny, tmp_path, ylim, y_dropped
):
    """Where one power of ten or none is in view (0.1 to 2 included) matplotlib labels minor
    ticks, and a colorbar drawn outside the style marks them: those stay."""
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import NullLocator

    from analysis import figures_base

    _, _, a = tiny
    pngs = []
    for drop in (False, True):
        ax = figures.loss_vs_lr(a.curve, a.opt)
        ax.set_ylim(*ylim)
        bar = ax.figure.colorbar(ScalarMappable(norm=LogNorm(1, 1e4)), ax=ax)
        if drop:
            figures_base.drop_hidden_minor_ticks(ax.figure)
            dropped = [isinstance(x.get_minor_locator(), NullLocator) for x in (ax.xaxis, ax.yaxis)]
            assert dropped == [True, y_dropped]  # the lr axis spans three decades
            assert not isinstance(bar.ax.yaxis.get_minor_locator(), NullLocator)
        ax.figure.savefig(tmp_path / f"{drop}.png", dpi=60)
        plt.close(ax.figure)
        pngs.append((tmp_path / f"{drop}.png").read_bytes())
    assert pngs[0] == pngs[1]

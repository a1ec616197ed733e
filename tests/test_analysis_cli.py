"""analysis.plot and analysis.report: every figure, answers derived from numbers, bad input."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from analysis import homework, pipeline, plot, report
from analysis.pipeline import analyse
from analysis.tables import (
    ACROSS,
    BUDGET,
    CRITICAL,
    LAWS,
    NOISE,
    OPTIMA,
    STEPS,
    SWEEPS,
    THEORY,
)

_spec = importlib.util.spec_from_file_location(
    "analysis_synth", Path(__file__).parent / "data" / "analysis" / "synth.py"
)
synth = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synth)

ROOT = Path(__file__).resolve().parents[1]
BS = (1, 4, 16, 64, 256, 1024)
SMALL = dict(batch_sizes=BS, lrs=(1e-4, 10.0, 21), seeds=2)


def _multirun(root: Path, sweeps: dict, **grid) -> Path:
    """One job dir per (model, optimizer) -> eta(B), like a Hydra multirun."""
    for i, ((m, o), eta) in enumerate(sweeps.items()):
        kw = SMALL | grid
        synth.write(root / str(i), synth.results(eta, model=m, optimizer=o, seed=i, **kw))
    return root


@pytest.fixture(scope="module")
def four(tmp_path_factory):
    """The homework's four sweeps with textbook shapes (8 seeds: intervals that separate the
    small-batch slopes of SGD and Adam)."""
    return _multirun(
        tmp_path_factory.mktemp("multirun"),
        {
            ("linear", "sgd"): lambda B: 0.05 / (1 + 60 / B),
            ("mlp", "sgd"): lambda B: 0.02 / (1 + 20 / B),
            ("linear", "adam"): lambda B: 0.001 * np.sqrt(B),
            ("mlp", "adam"): lambda B: 0.002 * np.sqrt(B),
        },
        seeds=8,
    )


def _valid_png(p: Path) -> bool:
    img = mpimg.imread(p)
    return img.shape[0] >= 300 and img.shape[1] >= 400 and img.std() > 0.01


def test_plot_cli_writes_every_figure(tmp_path):
    two = _multirun(
        tmp_path / "multirun",
        {("linear", "sgd"): lambda B: 0.05 / (1 + 60 / B), ("mlp", "adam"): lambda B: 1e-3 * B},
    )
    r = subprocess.run(
        [sys.executable, "-m", "analysis.plot", str(two), "--out", str(tmp_path / "f")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    kinds = ("loss_vs_lr", "eta_vs_batch", "heatmap", "steps_vs_batch", "tradeoff")
    kinds += ("eta_vs_batch_by_data", "eta_map", "batch_vs_data")  # across the data budget
    stems = [f"{s}_{k}" for s in ("linear-sgd", "mlp-adam") for k in kinds] + ["comparison"]
    for stem in stems:
        png, svg = tmp_path / "f" / f"{stem}.png", tmp_path / "f" / f"{stem}.svg"
        assert f"wrote {png}" in r.stdout
        assert png.stat().st_size > 10_000 and _valid_png(png), stem
        assert ET.parse(svg).getroot().tag.endswith("svg")
    # --out takes the analysis tables too: every one the figures and the report read
    names = (ACROSS, LAWS, OPTIMA, SWEEPS, BUDGET, THEORY, CRITICAL, STEPS, NOISE)
    tables = [tmp_path / "f" / name for name in names]
    assert all(f"wrote {t}" in r.stdout and t.exists() for t in tables)
    assert len(list((tmp_path / "f").iterdir())) == 2 * len(stems) + len(tables)
    assert not [p for name in names for p in two.rglob(name)]


@pytest.mark.slow  # draws everything twice; the fast set draws through the command line
def test_plot_dirs_defaults_to_a_figures_dir_beside_the_results(tmp_path):
    run = synth.write(tmp_path / "run", synth.results(lambda B: 0.01 * B, **SMALL))
    files = pipeline.plot_dirs([run], formats=("png", "svg"))
    kinds = ("loss_vs_lr", "eta_vs_batch", "heatmap", "steps_vs_batch", "tradeoff")
    kinds += ("eta_vs_batch_by_data", "eta_map", "batch_vs_data")  # across the data budget
    stems = [f"linear-sgd_{k}" for k in kinds] + ["comparison"]
    assert sorted(f.name for f in files) == sorted(
        f"{s}.{x}" for s in stems for x in ("png", "svg")
    )
    assert all(f.parent == run / "_analysis" / "figures" and f.exists() for f in files)
    # redrawn from the same results, the files are byte for byte the same
    first = {f: f.read_bytes() for f in files}
    assert pipeline.plot_dirs([run], formats=("png", "svg")) == files
    assert all(f.read_bytes() == b for f, b in first.items())


def test_outputs_go_to_the_directory_the_inputs_share(tmp_path):
    a, b = tmp_path / "m" / "0", tmp_path / "m" / "1"
    a.mkdir(parents=True)
    b.mkdir()
    assert pipeline.out_dir([a, b / "results.parquet"], "figures") == tmp_path / "m" / "figures"
    assert pipeline.out_dir([a], "report.md") == a / "report.md"
    assert pipeline.out_dir([a, Path("/")]) == a  # nothing shared but the root


def test_overlays_are_drawn_on_their_figure(tmp_path):
    from analysis import figures

    run = synth.write(tmp_path / "run", synth.results(lambda B: 0.01 * B, **SMALL))
    a = analyse([run], n_boot=50)
    seen = []

    def theory(ax, ctx):
        seen.append((ax.get_title(), ctx["label"], len(ctx["opt"])))
        ax.plot([1, 1024], [1e-3, 1.0], label="theory")

    ctx = dict(label="linear+sgd", opt=a.opt)
    ax = figures.eta_vs_batch(a.opt, a.fits, overlays=[theory], ctx=ctx)
    assert "theory" in [t.get_text() for t in ax.get_legend().get_texts()]  # before the legend
    assert seen == [
        (
            "linear+sgd: optimal learning rate vs batch size\n"
            "(samples budget 4,096, mean over 2 seeds)",
            "linear+sgd",
            len(BS),
        )
    ]


def test_report_answers_the_three_questions_from_the_numbers(four):
    path = report.write_report([four], n_boot=200, formats=("png",))
    md = path.read_text()
    assert path == four / "_analysis" / "report.md"
    a, b, c = (md.split(f"**({k})")[1].split("\n")[0] for k in "abc")
    assert "resembles **linear-then-saturating**" in a
    bn = float(re.search(r"linear in B up to B ~ ([\d.]+)", a).group(1))
    assert 40 < bn < 90  # generated with B_noise = 60
    lo, hi = map(
        float, re.search(r"saturation sets in at B ~ ([\d.]+) instead of ~ ([\d.]+)", b).groups()
    )
    assert lo == pytest.approx(20, rel=0.4) and hi == bn and "earlier" in b
    assert c.count("**sqrt**") == 2
    # a verdict per Adam sweep; linear's slopes (0.5 vs ~0.9) are clearly apart, while the MLP's
    # SGD slope over B = 1..64 is flattened by its saturation at B ~ 20
    weaker, same = "grows more weakly with B under Adam", "does not change significantly"
    assert c.count(weaker) + c.count(same) == 2
    assert weaker in c.split("*mlp+adam*")[0]
    for stem in ("comparison", "linear-sgd_eta_vs_batch", "mlp-adam_heatmap"):
        assert f"(figures/{stem}.png)" in md
        assert (four / "_analysis" / "figures" / f"{stem}.png").exists()
    # the per-batch-size table of each sweep
    assert md.count("| B | eta* | 95% interval |") == 4


@pytest.mark.parametrize(
    "eta, shape",
    [(lambda B: 1e-3 * B, "linear"), (lambda B: 0.01 + 0 * B, "flat")],
    ids=["linear", "flat"],
)
def test_report_says_linear_or_flat_as_the_data_say(tmp_path, eta, shape):
    run = _multirun(tmp_path, {("linear", "sgd"): eta})
    ans = homework.answers(*(lambda a: (a.summary, a.fits))(analyse([run], n_boot=200)))
    assert f"resembles **{shape}**" in ans["a"]
    other = {"linear": "flat", "flat": "linear"}[shape]
    assert f"**{other}**" not in ans["a"]
    assert ans["b"].startswith("No MLP+SGD sweep") and ans["c"].startswith("No Adam sweep")


def test_adam_scaling_like_sgd_says_it_does_not_change(tmp_path):
    run = _multirun(
        tmp_path, {("mlp", "sgd"): lambda B: 1e-4 * B, ("mlp", "adam"): lambda B: 3e-5 * B}
    )
    ans = homework.answers(*(lambda a: (a.summary, a.fits))(analyse([run], n_boot=200)))
    assert "**No significant change in the scaling with Adam**" in ans["c"]
    assert ans["a"].startswith("No linear+SGD sweep")
    assert "There is no linear+SGD sweep to compare with" in ans["b"]


# --- bad input: one line on stderr, exit code 2, no traceback ----------------------------------


def _bad(tmp_path, kind: str) -> Path:
    d = tmp_path / kind
    if kind == "empty":
        d.mkdir()
    elif kind == "unreadable":
        (d / "0").mkdir(parents=True)
        (d / "0" / "results.parquet").write_text("not parquet")
    elif kind == "mixed":
        synth.write(d / "0", synth.results(lambda B: 0.01, **SMALL).assign(optimizer_x=1.0))
        synth.write(
            d / "1", synth.results(lambda B: 0.01, model="mlp", **SMALL).assign(optimizer_x="a")
        )
    elif kind == "one_batch_size":
        synth.write(d, synth.results(lambda B: 0.01, batch_sizes=(8,), lrs=(1e-4, 1.0, 9)))
    elif kind == "all_diverged":
        synth.write(d, synth.results(lambda B: 1e-6, wall=1.0, **SMALL))
    return d


@pytest.mark.parametrize(
    "kind, expect",
    [
        ("empty", "no results.parquet found in this directory"),
        ("unreadable", "not a readable parquet file"),
        ("mixed", "mixed schemas: column optimizer_x"),
        ("one_batch_size", "linear+sgd: only one batch size (B=8)"),
        ("all_diverged", "linear+sgd: every lane diverged at every batch size"),
    ],
)
@pytest.mark.parametrize("main", [plot.main, report.main], ids=["plot", "report"])
def test_bad_input_gives_one_clear_line_and_exit_code_2(tmp_path, capsys, kind, expect, main):
    d = _bad(tmp_path, kind)
    assert main([str(d), "--boot", "20"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and expect in err[0], err
    if kind in ("empty", "unreadable"):
        assert str(d) in err[0]


def test_bad_input_from_the_shell_has_no_traceback(tmp_path):
    d = _bad(tmp_path, "unreadable")
    r = subprocess.run(
        [sys.executable, "-m", "analysis.report", str(d)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    (line,) = r.stderr.strip().splitlines()
    bad = d / "0" / "results.parquet"
    assert line.startswith(f"analysis.report: error: {bad}: not a readable parquet file")


@pytest.mark.parametrize("flag", [["--level", "1.5"], ["--boot", "-1"], ["--format", "png,bmp"]])
def test_bad_options_are_refused_before_reading(tmp_path, capsys, flag):
    with pytest.raises(SystemExit) as e:
        plot.main([str(tmp_path), *flag])
    assert e.value.code == 2 and flag[0] in capsys.readouterr().err


def test_answers_say_which_sweep_lacks_a_law(tmp_path):
    synth.write(tmp_path / "0", synth.results(lambda B: 1e-3 * B, model="mlp", **SMALL))
    synth.write(
        tmp_path / "1",
        synth.results(lambda B: 1e-3 * B, model="mlp", optimizer="adam", batch_sizes=(1, 4)),
    )
    a = analyse([tmp_path], n_boot=100)
    c = homework.answers(a.summary, a.fits)["c"]
    assert "no law could be fitted to mlp+adam: only 2 usable batch sizes of 2" in c
    assert "No comparison with mlp+sgd: this sweep has no fitted law." in c
    assert "cannot be decided" in c

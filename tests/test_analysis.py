"""Loading, optimal-lr extraction and scaling-law fits on synthetic sweeps with known answers."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import estimator, law_table, laws, optimum
from analysis.load import AnalysisError, load, load_curves, sweeps

_spec = importlib.util.spec_from_file_location(
    "analysis_synth", Path(__file__).parent / "data" / "analysis" / "synth.py"
)
synth = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synth)

B11 = 2.0 ** np.arange(11)


# --- loading -----------------------------------------------------------------------------------


def test_load_reads_multirun_dirs_and_files_and_labels_sweeps(tmp_path):
    a = synth.write(tmp_path / "multi" / "0", synth.results(lambda B: 0.01 * B))
    synth.write(tmp_path / "multi" / "1", synth.results(lambda B: 0.01, model="mlp"))
    b = synth.write(tmp_path / "run", synth.results(lambda B: 0.01, optimizer="adam", seeds=2))
    # a file given as well as its directory is read once
    df = load([tmp_path / "multi", a / "results.parquet", b])
    s = sweeps(df)
    assert sorted(s["label"]) == ["linear+adam", "linear+sgd", "mlp+sgd"]
    assert len(df) == 5 * 31 * 3 * 2 + 5 * 31 * 2
    assert s.set_index("label").loc["linear+adam", "seeds"] == 2
    assert df["sweep_id"].nunique() == 3
    # diverged lanes carry +inf, never NaN
    assert np.isinf(df.loc[df["diverged"], "final_eval_loss"]).all()
    assert not df["final_eval_loss"].isna().any()
    c = load_curves(tmp_path)
    assert len(c) == 3 * len(df) and set(c["sweep_id"]) == set(df["sweep_id"])


def test_labels_tell_apart_sweeps_that_differ_only_in_a_setting(tmp_path):
    synth.write(tmp_path / "0", synth.results(lambda B: 0.01, samples=4096))
    synth.write(tmp_path / "1", synth.results(lambda B: 0.01, samples=8192))
    labels = sorted(load(tmp_path)["label"].unique())
    assert labels == ["linear+sgd (budget=4096)", "linear+sgd (budget=8192)"]


def _write_raw(path: Path, df: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    return path


@pytest.mark.parametrize(
    "make, expect",
    [
        (lambda p: p.write_bytes(b"PAR1 not really parquet"), "not a readable parquet file"),
        (lambda p: _write_raw(p, pd.DataFrame({"x": [1, 2]})), "not an lrscale table"),
        (
            lambda p: _write_raw(p, synth.results(lambda B: 0.01).drop(columns=["seed", "lr"])),
            "missing columns: no column lr, seed",
        ),
        (
            lambda p: _write_raw(p, synth.results(lambda B: 0.01).astype({"lr": str})),
            "wrong column types: lr is",
        ),
        (lambda p: _write_raw(p, synth.results(lambda B: 0.01).iloc[:0]), "has no rows"),
    ],
    ids=["corrupt", "foreign", "missing", "dtype", "empty"],
)
def test_bad_files_raise_one_error_naming_the_file(tmp_path, make, expect):
    f = tmp_path / "job" / "results.parquet"
    f.parent.mkdir()
    make(f)
    with pytest.raises(AnalysisError, match=expect) as e:
        load(tmp_path)
    assert str(f) in str(e.value)


def test_empty_dir_missing_path_and_mixed_schemas(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnalysisError, match="no results.parquet found"):
        load(tmp_path / "empty")
    with pytest.raises(AnalysisError, match="no such file"):
        load(tmp_path / "nope")
    a = synth.results(lambda B: 0.01)
    b = synth.results(lambda B: 0.01, model="mlp").assign(optimizer_extra="x")
    synth.write(tmp_path / "m" / "0", a.assign(optimizer_extra=0.5))
    synth.write(tmp_path / "m" / "1", b)
    with pytest.raises(AnalysisError, match="mixed schemas: column optimizer_extra"):
        load(tmp_path / "m")


def test_skip_bad_reads_the_rest_and_says_what_it_skipped(tmp_path):
    synth.write(tmp_path / "0", synth.results(lambda B: 0.01))
    bad = tmp_path / "1" / "results.parquet"
    bad.parent.mkdir()
    bad.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match=str(bad)):
        df = load(tmp_path, skip_bad=True)
    assert df["sweep_id"].nunique() == 1


# --- optimal learning rate ---------------------------------------------------------------------


def test_parabola_refinement_recovers_a_minimum_between_grid_points():
    x = np.linspace(-4, 1, 21)  # 4 points per decade, step h = 0.25
    for xs in (-2.33, -1.9, -0.06, 0.3 + 0.45 * 0.25):  # up to 0.45 h from the nearest point
        L = 10 ** (0.1 + 0.8 * (x - xs) ** 2)
        i, xv, yv = estimator.argmin_refined(x, L)
        assert abs(x[i] - xs) <= 0.125 + 1e-12
        assert xv == pytest.approx(xs, abs=1e-9) and yv == pytest.approx(0.1, abs=1e-9)


def test_refinement_falls_back_to_the_grid_at_an_edge_or_next_to_divergence():
    x = np.linspace(-3, 0, 7)
    L = 10 ** ((x + 1.6) ** 2)  # minimum at index 3 (x = -1.5)
    L[4:] = np.inf  # diverged right of the minimum's neighbour
    _, xv, _ = estimator.argmin_refined(x, L)
    assert xv == x[3]
    _, xv, _ = estimator.argmin_refined(x, 10 ** ((x + 3.4) ** 2))
    assert xv == x[0]
    # a gentle left flank and a cliff on the right: no parabola, the grid point stands
    y = 0.2 * (x + 1.5) ** 2
    y[4] = y[3] + estimator.CLIFF * 1.01 * (y[2] - y[3])
    _, xv, _ = estimator.argmin_refined(x, 10**y)
    assert xv == x[3]
    y[4] = y[3] + estimator.CLIFF * 0.99 * (y[2] - y[3])
    _, xv, _ = estimator.argmin_refined(x, 10**y)
    assert x[2] < xv < x[3]


def test_optima_flags_edges_reports_divergence_and_recovers_eta():
    eta = {1: 0.002, 4: 0.01, 16: 0.05, 64: 2e-5, 256: 20.0}
    df = synth.results(eta, lrs=(1e-4, 10.0, 31), noise=0.0, wall=1e9)
    df.loc[df["batch_size"] == 16, ["final_eval_loss", "final_train_loss"]] = np.inf
    df.loc[df["batch_size"] == 16, "diverged"] = True
    o = optimum.optima(df, n_boot=50).set_index("batch_size")
    assert o.loc[1, "eta"] == pytest.approx(0.002, rel=1e-6)
    assert o.loc[4, "eta"] == pytest.approx(0.01, rel=1e-6)
    assert list(o["status"]) == ["ok", "ok", "diverged", "edge", "edge"]
    assert o.loc[64, "edge"] == "low" and "extend the grid down" in o.loc[64, "note"]
    assert o.loc[256, "edge"] == "high" and "extend the grid up" in o.loc[256, "note"]
    assert o.loc[16, "diverged"] == o.loc[16, "lanes"] == 93 and o.loc[1, "diverged"] == 0
    assert np.isnan(o.loc[16, "eta"]) and not o.loc[16, "usable"]
    assert list(o["usable"]) == [True, True, False, False, False]


def test_curve_mean_is_inf_where_any_seed_diverged_and_median_is_not():
    df = synth.results(lambda B: 0.01, batch_sizes=(8,), lrs=(1e-3, 1e-1, 5))
    k = df.index[(df["lr"] == 1e-2) & (df["seed"] == 0)]
    df.loc[k, ["final_eval_loss", "diverged"]] = [np.inf, True]
    c = optimum.curve(df).set_index("lr")
    assert np.isinf(c.loc[1e-2, "mean"]) and np.isfinite(c.loc[1e-2, "median"])
    assert c.loc[1e-2, "diverged"] == 1 and c.loc[1e-3, "diverged"] == 0


def test_bootstrap_interval_covers_the_truth_in_most_trials():
    rng = np.random.default_rng(0)
    x = np.linspace(-4, 0, 33)  # 8 points per decade
    n_seed, hits = 8, 0
    for _ in range(100):
        xs = rng.uniform(-3, -1)
        shift = 0.06 * rng.standard_normal(n_seed)  # each seed's own optimum
        y = 0.5 * (x[:, None] - xs - shift) ** 2 + 0.01 * rng.standard_normal((len(x), n_seed))
        r = estimator.one(10**x, 10**y, n_boot=400, level=0.95, rng=rng)
        hits += r["eta_lo"] <= 10**xs <= r["eta_hi"]
    assert 80 <= hits <= 100


# --- scaling laws ------------------------------------------------------------------------------

CASES = [
    ("power", dict(c=0.003, alpha=0.8)),
    ("saturating", dict(eta_max=0.06, B_noise=100.0)),
    ("surge", dict(eta_max=0.01, B_noise=40.0)),
]


@pytest.mark.parametrize("law, p", CASES, ids=[c[0] for c in CASES])
def test_each_law_fit_recovers_its_parameters_and_wins_by_aic(law, p):
    rel = dict(c=0.15, alpha=0.04, eta_max=0.08, B_noise=0.25)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        eta = laws.predict(law, p, B11) * np.exp(0.05 * rng.standard_normal(11))
        f = laws.fit_all(B11, eta, n_boot=300, seed=seed).set_index("law")
        assert f["aic"].idxmin() == law and f.loc[law, "best"]
        for k, v in p.items():
            tol = rel[k] if k == "alpha" else rel[k] * v
            assert f.loc[law, k] == pytest.approx(v, abs=tol), (seed, k)
            assert f.loc[law, f"{k}_lo"] < f.loc[law, k] < f.loc[law, f"{k}_hi"]
            assert f.loc[law, f"{k}_lo"] - tol <= v <= f.loc[law, f"{k}_hi"] + tol


def test_law_shapes_are_said_in_words():
    say = lambda law, p: laws.fit_all(B11, laws.predict(law, p, B11)).iloc[0]  # noqa: E731
    r = say("saturating", dict(eta_max=0.06, B_noise=180.0))
    assert r["shape"] == "linear-then-saturating"
    assert r["words"] == "linear in B up to B ~ 180, then saturating at eta ~ 0.06"
    r = say("surge", dict(eta_max=0.01, B_noise=32.0))
    assert r["words"] == "rises like sqrt(B) up to a peak at B ~ 32 (eta ~ 0.01), then falls"
    assert say("power", dict(c=0.01, alpha=1.0))["shape"] == "linear"
    assert say("power", dict(c=0.01, alpha=0.0))["shape"] == "flat"
    assert laws.classify("power", dict(alpha=0.48), 1, 1024) == "sqrt"
    assert laws.classify("saturating", dict(eta_max=1, B_noise=0.01), 1, 1024) == "flat"
    assert laws.classify("saturating", dict(eta_max=1, B_noise=1e5), 1, 1024) == "linear"


def test_local_slope_over_small_batches_and_its_interval():
    rng = np.random.default_rng(3)
    eta = laws.predict("saturating", dict(eta_max=1.0, B_noise=1e4), B11)
    eta = eta * np.exp(0.03 * rng.standard_normal(11))
    s = laws.slope(B11, eta, k=4)
    assert s["slope_B_max"] == pytest.approx(8)
    assert s["slope_lo"] < 1.0 < s["slope_hi"] and s["slope"] == pytest.approx(1, abs=0.1)
    s = laws.slope(B11, 0.01 * np.sqrt(B11), w=np.full(11, 1 / 0.05**2))
    assert s["slope"] == pytest.approx(0.5, abs=1e-9)
    assert s["slope_hi"] - s["slope_lo"] == pytest.approx(
        2 * 1.959964 * 0.05 / np.sqrt(((np.log(B11[:4]) - np.log(B11[:4]).mean()) ** 2).sum()),
        rel=1e-6,
    )


def test_weights_come_from_interval_widths_with_a_floor():
    z = 1.959964
    s = 1 / np.sqrt(laws.weights([1.0, 1.0, np.nan], [np.e, np.e**2, np.nan], level=0.95))
    assert s[0] == pytest.approx(0.5 / z) and s[1] == pytest.approx(1.0 / z)
    assert s[2] == pytest.approx(0.75 / z)  # missing: the median
    s = 1 / np.sqrt(laws.weights([1.0, 1.0, 1.0], [np.e, 1.0, 1.001], level=0.95, floor=0.1))
    med = (0.5 + np.log(1.001) / 2) / z / 2  # the zero-wide interval gets the median width
    assert s == pytest.approx([0.5 / z, med, 0.1])
    assert np.all(laws.weights([np.nan] * 3, [np.nan] * 3) == 1)


def test_fewer_than_three_usable_batch_sizes_are_not_fitted_and_say_why():
    eta = {1: 0.001, 4: 0.004, 16: 5e-5}
    df = synth.results(eta, batch_sizes=(1, 4, 16), lrs=(1e-4, 1.0, 17), noise=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        o = optimum.optima(df, n_boot=50)
    f = law_table.fits(o)
    s = law_table.summary(o, f)
    assert f.empty and s["law"].isna().all()
    assert s["reason"].iloc[0] == (
        "only 2 usable batch sizes of 3 (1 at the grid edge); a law needs at least 3"
    )
    assert s["slope"].iloc[0] == pytest.approx(1.0, abs=1e-6)


def test_interval_level_nests_the_intervals():
    df = synth.results(lambda B: 0.01 * B, seeds=6, noise=0.05)
    wide, narrow = (optimum.optima(df, n_boot=400, level=q, seed=1) for q in (0.95, 0.5))
    assert (wide["eta_lo"] <= narrow["eta_lo"]).all() and (narrow["eta_hi"] <= wide["eta_hi"]).all()
    assert (narrow["eta_hi"] - narrow["eta_lo"] < wide["eta_hi"] - wide["eta_lo"]).any()
    assert (wide["level"] == 0.95).all()


def test_optima_reads_each_group_as_lrs_by_seeds_where_a_repeated_lane_counts_once():
    df = synth.results(lambda B: 0.01, batch_sizes=(8,), lrs=(1e-3, 1e-1, 5), seeds=2)
    df = df.sort_values(["lr", "seed"], ignore_index=True)
    L = df["final_eval_loss"].to_numpy(float, copy=True).reshape(5, 2)  # (lr, seed)
    L[4, 1] = np.nan  # a missing lane: out of its lr's seed mean
    again = df.iloc[[4]].assign(final_eval_loss=100.0)  # a repeated lane: its first row counts
    odd = pd.concat([df.drop(index=9).iloc[::-1], again], ignore_index=True)
    odd["diverged"] = pd.array([pd.NA, *odd["diverged"].iloc[1:]], dtype="boolean")
    (o,) = optimum.optima(odd, n_boot=50).to_dict("records")
    want = estimator.one(np.sort(df["lr"].unique()), L, 50, 0.95, np.random.default_rng(0))
    for k in ("eta", "eta_lo", "eta_hi", "loss"):
        assert o[k] == want[k], k
    assert o["status"] == want["status"] == "ok"
    # a null `diverged` is no divergence
    assert (o["lanes"], o["seeds"], o["diverged"]) == (10, 2, odd["diverged"].iloc[1:].sum())

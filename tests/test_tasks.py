"""The task layer: every task trains a tiny sweep and writes its columns; losses, the softmax
SGD step, custom models, MNIST-1D generation, standardization and the sweep identity of files."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import random
import socket

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import tasks
from lrscale.results import CURVES, RESULTS
from sweeps import engine
from sweeps.sweep import cache_dir, run_sweep
from tasks import mnist1d as mnist1d_task
from tasks.base import cross_entropy
from tests.conftest import make_config, program, sweep_id

# The smoke sweep, shrunk: every test adds its task, model and batch sizes.
FAST = [
    "sweep=smoke",
    "sweep.lr.num=3",
    "sweep.seeds=2",
    "sweep.curve_points=4",
    "progress=false",
    "plot.enabled=false",
]
MNIST1D = ["task=mnist1d", "task.n_train=200", "task.n_eval=100"]
DIGITS_TRAIN, DIGITS_EVAL = 1438, 359  # 1797 images, test_fraction 0.2
DIGITS_COLUMNS = dict(
    kind="classification",
    n_features=64,
    n_outputs=10,
    train_size=DIGITS_TRAIN,
    eval_size=DIGITS_EVAL,
)


@pytest.fixture
def data_cache(tmp_path, monkeypatch):
    """Generated datasets go to a fresh cache; JAX's compilation cache stays where it was."""
    monkeypatch.setenv("LRSCALE_CACHE_DIR", str(cache_dir()))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "lrscale" / "data"


def _tables(out) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(out / RESULTS), pd.read_parquet(out / CURVES)


def _check_columns(df, curves, *, kind, n_features, n_outputs, train_size, eval_size):
    """The task's columns in results and curves, with the values and dtypes of the contract."""
    loss = "mse" if kind == "regression" else "cross_entropy"
    for col, value in (("loss", loss), ("task_kind", kind)):
        assert pd.api.types.is_string_dtype(df[col]), col
        assert (df[col] == value).all(), col
    assert (df["n_features"] == n_features).all() and str(df["n_features"].dtype) == "int64"
    assert (df["n_outputs"] == n_outputs).all() and str(df["n_outputs"].dtype) == "int64"
    for col, value in (("train_size", train_size), ("eval_size", eval_size)):
        assert str(df[col].dtype) == "Int64", col
        assert df[col].isna().all() if value is None else (df[col] == value).all(), col
    assert not df[["final_train_loss", "final_eval_loss"]].isna().to_numpy().any()
    acc, curve_acc = df["final_eval_accuracy"], curves["eval_accuracy"]
    assert str(acc.dtype) == "Float64" and str(curve_acc.dtype) == "Float64"
    if kind == "regression":
        assert acc.isna().all() and curve_acc.isna().all()
        return
    assert acc.notna().all() and curve_acc.notna().all()
    assert ((acc >= 0) & (acc <= 1)).all() and ((curve_acc >= 0) & (curve_acc <= 1)).all()
    assert (acc[df["diverged"]] == 0).all()
    keys = ["batch_size", "lr", "seed"]
    last = curves.loc[curves.groupby(keys)["step"].idxmax()].merge(df, on=keys)
    np.testing.assert_array_equal(last["eval_accuracy"], last["final_eval_accuracy"])


def _best_accuracy(df: pd.DataFrame) -> float:
    """Best seed-mean final accuracy over the grid."""
    return float(df.groupby(["batch_size", "lr"])["final_eval_accuracy"].mean().max())


# ---- 1. every task trains a tiny sweep and writes its columns --------------------------------


def test_regression_sweep_has_mse_and_no_accuracy(small, tmp_path):
    # The program of test_engine's SGD smoke sweep at B = 4: compiled once per session.
    cfg = small("sweep.batch_sizes=[4]")
    df = run_sweep(cfg, tmp_path)
    disk, curves = _tables(tmp_path)
    # The linear model's eval loss is the exact population loss: no held-out set, online data.
    _check_columns(
        disk, curves, kind="regression", n_features=8, n_outputs=1, train_size=None, eval_size=None
    )
    assert (disk["task"] == "regression").all() and (disk["task_dim"] == 8).all()
    assert disk["task_n_train"].isna().all() and str(disk["task_n_train"].dtype) == "Int64"
    assert len(df) == len(disk) == cfg.sweep.lr.num * cfg.sweep.seeds


@pytest.mark.parametrize(
    "model",
    [
        ["model=mlp", "model.width=8", "model.depth=1"],
        ["model=cnn", "model.channels=4", "model.depth=1"],
    ],
    ids=["mlp", "cnn"],
)
def test_mnist1d_sweep_writes_classification_columns(tmp_path, data_cache, model):
    cfg = make_config(*FAST, *MNIST1D, "sweep.batch_sizes=[8]", *model)
    df = run_sweep(cfg, tmp_path / "out")
    disk, curves = _tables(tmp_path / "out")
    _check_columns(
        disk,
        curves,
        kind="classification",
        n_features=40,
        n_outputs=10,
        train_size=200,
        eval_size=100,
    )
    assert (disk["task"] == "mnist1d").all() and (disk["model"] == model[0][6:]).all()
    assert (disk["task_n_train"] == 200).all() and (disk["task_n_eval"] == 100).all()
    assert (disk["task_data_seed"] == 0).all()
    assert len(df) == 3 * 2 and not disk["diverged"].any()
    assert list(data_cache.glob("mnist1d-*-n300-seed0.npz"))


DIGITS_MLP = [
    *FAST,
    "task=digits",
    "optimizer=adam",
    "sweep.batch_sizes=[16]",
    "sweep.budget.samples=null",
    "sweep.budget.steps=150",
    "sweep.lr.min=1e-3",
    "sweep.lr.max=1e-1",
]


@pytest.fixture(scope="module")
def digits_mlp(tmp_path_factory):
    """The digits sweep of a one-hidden-layer MLP: (results, curves) as written."""
    out = tmp_path_factory.mktemp("digits_mlp")
    cfg = make_config(
        *DIGITS_MLP, "model=mlp", "model.width=16", "model.depth=1", "model.activation=tanh"
    )
    run_sweep(cfg, out)
    return _tables(out)


def test_digits_mlp_sweep_learns_well_above_chance(digits_mlp):
    disk, curves = digits_mlp
    _check_columns(disk, curves, **DIGITS_COLUMNS)
    assert (disk["task"] == "digits").all() and (disk["model"] == "mlp").all()
    assert (disk["task_test_fraction"] == 0.2).all() and disk["task_standardize"].all()
    # Chance is 0.1; 150 Adam steps of B = 16 reach about 0.9.
    assert _best_accuracy(disk) > 0.8


def _labelled(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """Two features, a unique row id and a string label that the features decide."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    label = np.where(a > 0.5, "cat", np.where(a < -0.5, "dog", "emu"))
    return pd.DataFrame({"a": a, "b": b, "id": np.arange(n, dtype=float), "label": label})


def _file_config(path, *extra):
    return make_config(
        *FAST,
        "task=file",
        f"task.path={path}",
        "model=linear",
        "sweep.batch_sizes=[8]",
        *extra,
    )


def test_file_formats_train_the_same_sweep_with_string_labels(tmp_path):
    """csv, parquet and npz of one table give the same lanes; a huge lr diverges with accuracy 0."""
    frame = _labelled()
    paths = {
        "csv": tmp_path / "d.csv",
        "parquet": tmp_path / "d.parquet",
        "npz": tmp_path / "d.npz",
    }
    frame.to_csv(paths["csv"], index=False)
    frame.to_parquet(paths["parquet"])
    np.savez(paths["npz"], x=frame[["a", "b"]].to_numpy(), y=frame["label"].to_numpy(str))
    runs = {}
    for fmt, path in paths.items():
        cls = ["task.kind=classification", "sweep.lr.min=1e-2", "sweep.lr.max=1e4"]
        columns = [] if fmt == "npz" else ["task.target=label", "task.features=[a,b]"]
        runs[fmt] = run_sweep(_file_config(path, *cls, *columns), tmp_path / fmt)
        disk, curves = _tables(tmp_path / fmt)
        _check_columns(
            disk,
            curves,
            kind="classification",
            n_features=2,
            n_outputs=3,
            train_size=48,
            eval_size=12,
        )
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        assert (disk["task_path_sha256"] == digest).all() and (disk["task_path"] == str(path)).all()
        assert disk.loc[disk["lr"] == 1e4, "diverged"].all()
        assert not disk.loc[disk["lr"] < 1e3, "diverged"].any()
        assert (disk.loc[disk["diverged"], "final_eval_accuracy"] == 0).all()
    lanes = ["final_train_loss", "final_eval_loss", "final_eval_accuracy", "diverged"]
    for fmt in ("parquet", "npz"):
        pd.testing.assert_frame_equal(runs[fmt][lanes], runs["csv"][lanes])
    # The label decides by feature a: softmax regression learns it.
    assert _best_accuracy(runs["csv"]) > 0.75


def _unstandardized_csv_task(frame: pd.DataFrame, tmp_path):
    """The classification task of frame written as a CSV, features as they are in the file."""
    frame.to_csv(tmp_path / "d.csv", index=False)
    kind = ("task.kind=classification", "task.target=label", "task.standardize=false")
    cfg = _file_config(tmp_path / "d.csv", *kind)
    return engine.build(cfg).task


def test_string_labels_map_to_sorted_classes(tmp_path):
    frame = _labelled()
    task = _unstandardized_csv_task(frame, tmp_path)
    assert task.n_out == 3 and task.loss == "cross_entropy"
    code = {"cat": 0, "dog": 1, "emu": 2}  # np.unique order
    for split in ("train", "eval"):
        x, y = task.data[f"x_{split}"], task.data[f"y_{split}"]
        assert y.dtype == np.int32
        rows = x[:, 2].astype(int)  # the id column: every numeric column besides the target
        np.testing.assert_array_equal(y, frame["label"].map(code).to_numpy()[rows])


def test_file_regression_sweep_fits_a_linear_target(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 3))
    y = 5.0 + x @ np.array([2.0, -1.0, 0.5]) + 0.1 * rng.normal(size=80)
    pd.DataFrame({"f0": x[:, 0], "f1": x[:, 1], "f2": x[:, 2], "y": y}).to_csv(
        tmp_path / "r.csv", index=False
    )
    cfg = _file_config(
        tmp_path / "r.csv",
        "task.kind=regression",
        "task.target=y",
        "sweep.lr.min=1e-2",
        "sweep.lr.max=1e-1",
    )
    run_sweep(cfg, tmp_path / "out")
    disk, curves = _tables(tmp_path / "out")
    _check_columns(
        disk, curves, kind="regression", n_features=3, n_outputs=1, train_size=64, eval_size=16
    )
    # Standardized targets: predicting 0 costs about 1; the fitted line far less.
    assert disk.groupby("lr")["final_eval_loss"].mean().min() < 0.2


# ---- 2. the loss and the metric against a hand computation -----------------------------------


def test_cross_entropy_and_accuracy_by_hand():
    logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0], [1000.0, 0.0, 999.0], [0.0, 0.0, 3.0]])
    y = np.array([0, 2, 2, 2])
    m = logits.max(1, keepdims=True)
    lse = (m + np.log(np.exp(logits - m).sum(1, keepdims=True)))[:, 0]
    expected = np.mean(lse - logits[np.arange(4), y])  # the third row costs exactly 1 + log(1+e^-1)
    got = cross_entropy(jnp.asarray(logits, jnp.float32), jnp.asarray(y))
    np.testing.assert_allclose(float(got), expected, rtol=2e-5)  # float32 logits of 1000
    assert np.isfinite(float(got))
    assert float(tasks.accuracy(jnp.asarray(logits), jnp.asarray(y))) == pytest.approx(0.5)


# ---- 3. softmax regression: one SGD step in closed form --------------------------------------


def test_softmax_regression_sgd_steps_match_numpy():
    """W0 = 0, b0 = 0; grad of the mean cross-entropy = X^T (softmax(XW + b) - onehot) / B."""
    B, lrs, T = 8, [0.05, 0.5], 2
    cfg = make_config(
        *FAST,
        "task=digits",
        "model=linear",
        "optimizer=sgd",
        "sweep.budget.samples=null",
        f"sweep.budget.steps={T}",
        f"sweep.batch_sizes=[{B}]",
    )
    data = engine.build(cfg).task.data
    points = engine.curve_steps(T, T + 1)
    assert list(points) == [0, 1, 2]  # eval after step 1 and after step 2
    out = program(cfg, B, points)(np.asarray(lrs, np.float32), np.arange(2, dtype=np.uint32))
    x, y = np.asarray(data["x_train"], np.float64), np.asarray(data["y_train"])
    xe, ye = np.asarray(data["x_eval"], np.float64), np.asarray(data["y_eval"])
    K, n = 10, len(x)

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    def held_out(w, b):
        z = xe @ w + b
        m = z.max(1)
        lse = m + np.log(np.exp(z - m[:, None]).sum(1))
        return np.mean(lse - z[np.arange(len(ye)), ye]), np.mean(z.argmax(1) == ye)

    for seed in range(2):
        keys = tasks.seed_keys(seed)
        perm = np.asarray(jax.random.permutation(jax.random.fold_in(keys.data, 0), n))
        for j, lr in enumerate(lrs):
            w, b = np.zeros((x.shape[1], K)), np.zeros(K)
            np.testing.assert_allclose(out.curve_eval[seed, j, 0], np.log(K), rtol=1e-6)
            for t in range(T):
                idx = perm[t * B : (t + 1) * B]  # one epoch holds n // B steps
                g = softmax(x[idx] @ w + b) - np.eye(K)[y[idx]]
                w, b = w - lr * x[idx].T @ g / B, b - lr * g.mean(0)
                loss, acc = held_out(w, b)
                np.testing.assert_allclose(out.curve_eval[seed, j, t + 1], loss, rtol=2e-5)
                # argmax of float32 logits may flip a near tie: at most one example
                assert abs(out.curve_accuracy[seed, j, t + 1] - acc) <= 1.0 / len(ye) + 1e-7
            # The train loss of step 0 is that of the zero parameters: log K.
            np.testing.assert_allclose(out.curve_train[seed, j, 1], np.log(K), rtol=1e-6)


# ---- 4. the user's flax module ---------------------------------------------------------------


def test_custom_module_is_counted_by_its_parameters():
    from tests.data.nets import TwoLayer

    cfg = make_config(
        "task=digits",
        "model=custom",
        "model.target=tests.data.nets.TwoLayer",
        "+model.kwargs.hidden=16",
    )
    assert cfg.model.kwargs == {"hidden": 16}
    model = engine.build(cfg).model
    net = TwoLayer(n_out=10, hidden=16)
    params = jax.eval_shape(lambda: net.init(jax.random.key(0), jnp.zeros((1, 64))))
    flax_count = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))
    assert model.n_params == flax_count == 64 * 16 + 16 + 16 * 10 + 10
    assert model.flops >= 2 * (64 * 16 + 16 * 10)  # XLA's count of the forward pass


def test_custom_module_trains_like_the_built_in_model(tmp_path, digits_mlp):
    """A user's module equal to model=mlp (tests/data/mlp_net.py) gives the same lanes."""
    cfg = make_config(
        *DIGITS_MLP,
        "model=custom",
        "model.target=tests.data.mlp_net.OneHidden",
        "+model.kwargs.width=16",
    )
    run_sweep(cfg, tmp_path)
    disk, curves = _tables(tmp_path)
    _check_columns(disk, curves, **DIGITS_COLUMNS)
    assert (disk["model"] == "custom").all()
    assert (disk["model_target"] == "tests.data.mlp_net.OneHidden").all()
    assert json.loads(disk["model_kwargs"].iloc[0]) == {"width": 16}
    mlp, _ = digits_mlp
    lanes = ["batch_size", "lr", "seed", "final_train_loss", "final_eval_loss"]
    pd.testing.assert_frame_equal(
        disk[lanes + ["final_eval_accuracy"]], mlp[lanes + ["final_eval_accuracy"]]
    )
    assert sweep_id(cfg) != mlp["sweep_id"].iloc[0]


@pytest.mark.parametrize("override", ["+model.kwargs.hidden=16", "+model.kwargs={hidden:16}"])
def test_custom_kwargs_can_be_given_on_the_command_line(override):
    """model.kwargs starts empty: its keys are added with Hydra's +."""
    cfg = make_config(
        "task=digits", "model=custom", "model.target=tests.data.nets.TwoLayer", override
    )
    assert cfg.model.kwargs == {"hidden": 16}
    assert engine.build(cfg).model.n_params == 64 * 16 + 16 + 16 * 10 + 10


@pytest.mark.parametrize(
    "model",
    [
        ["model=linear"],
        ["model=mlp", "model.width=8", "model.depth=2"],
        ["model=cnn", "model.channels=4", "model.depth=3", "model.kernel=5"],
    ],
    ids=["linear", "mlp", "cnn"],
)
def test_model_parameter_counts_equal_the_initialised_parameters(data_cache, model):
    cfg = make_config("sweep=smoke", *MNIST1D, *model)
    m = engine.build(cfg).model
    params = jax.eval_shape(lambda: m.init(jax.random.key(0), jnp.float32))
    assert m.n_params == sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


# ---- 6. MNIST-1D: generated offline, deterministic, cached -----------------------------------


def test_mnist1d_is_generated_offline_deterministically_and_cached(tmp_path, monkeypatch):
    import mnist1d.data  # noqa: F401 - imported before the guard: only generation is watched

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = []

    def no_network(*args, **kwargs):
        calls.append(args)
        raise OSError("tests: no network")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    random.seed(7)
    np.random.seed(7)
    py_state, np_state = random.getstate(), np.random.get_state()

    x, y = mnist1d_task.mnist1d_arrays(120, 0)
    assert x.shape == (120, 40) and y.shape == (120,)
    assert np.isfinite(x).all() and set(np.unique(y)) == set(range(10))
    x2, y2 = mnist1d_task.mnist1d_arrays(120, 0)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    x3, _ = mnist1d_task.mnist1d_arrays(120, 1)
    assert not np.array_equal(x, x3)
    # The generator seeds the global generators; they are left as they were.
    assert random.getstate() == py_state
    now = np.random.get_state()
    assert now[0] == np_state[0] and np.array_equal(now[1], np_state[1]) and now[2:] == np_state[2:]

    version = importlib.metadata.version("mnist1d")
    path = tmp_path / "lrscale" / "data" / f"mnist1d-{version}-n120-seed0.npz"
    assert not path.exists()
    xc, yc = mnist1d_task.mnist1d_cached(120, 0)
    assert path.exists()
    np.testing.assert_array_equal(xc, x)
    np.testing.assert_array_equal(yc, y)

    def regenerate(n, seed):
        raise AssertionError("the cached file should have been read")

    monkeypatch.setattr(mnist1d_task, "mnist1d_arrays", regenerate)
    xr, yr = mnist1d_task.mnist1d_cached(120, 0)
    np.testing.assert_array_equal(xr, x)
    np.testing.assert_array_equal(yr, y)
    # The task reads the same cache: n_train + n_eval examples, split in order.
    task = engine.build(
        make_config("sweep=smoke", "task=mnist1d", "task.n_train=100", "task.n_eval=20")
    ).task
    np.testing.assert_array_equal(task.data["x_train"], x[:100])
    np.testing.assert_array_equal(task.data["y_eval"], y[100:])
    assert calls == []
    assert random.getstate() == py_state


# ---- 7. task.standardize ---------------------------------------------------------------------


def test_standardize_scales_by_the_training_split(tmp_path):
    rng = np.random.default_rng(2)
    n = 50
    frame = pd.DataFrame(
        {
            "big": 1000 + 50 * rng.normal(size=n),
            "small": 1e-3 * rng.normal(size=n),
            "const": np.full(n, 7.0),
            "y": 3.0 + 10 * rng.normal(size=n),
        }
    )
    frame.to_csv(tmp_path / "s.csv", index=False)
    base = ["task.kind=regression", "task.target=y", "sweep.dtype=float64"]
    on = engine.build(_file_config(tmp_path / "s.csv", *base)).task.data
    x, y = on["x_train"], on["y_train"]
    assert np.isfinite(on["x_train"]).all() and np.isfinite(on["x_eval"]).all()
    np.testing.assert_allclose(x[:, :2].mean(0), 0, atol=1e-9)
    np.testing.assert_allclose(x[:, :2].std(0), 1, rtol=1e-9)
    np.testing.assert_array_equal(x[:, 2], 0.0)  # a constant column: centred, not divided by 0
    np.testing.assert_allclose([y.mean(), y.std()], [0, 1], atol=1e-9)

    off = engine.build(_file_config(tmp_path / "s.csv", *base, "task.standardize=false")).task.data
    # Without standardizing, the splits hold the file's rows as they are.
    rows = np.concatenate([off["x_train"], off["x_eval"]])
    targets = np.concatenate([off["y_train"], off["y_eval"]])
    order = np.argsort(rows[:, 0])
    file_order = np.argsort(frame["big"].to_numpy())
    np.testing.assert_array_equal(
        rows[order], frame[["big", "small", "const"]].to_numpy()[file_order]
    )
    np.testing.assert_array_equal(targets[order], frame["y"].to_numpy()[file_order])
    # The held-out split is scaled by the training split's statistics.
    mu, sd = off["x_train"][:, :2].mean(0), off["x_train"][:, :2].std(0)
    np.testing.assert_allclose(on["x_eval"][:, :2], (off["x_eval"][:, :2] - mu) / sd, rtol=1e-9)
    m, s = off["y_train"].mean(), off["y_train"].std()
    np.testing.assert_allclose(on["y_eval"], (off["y_eval"] - m) / s, rtol=1e-9)


def test_standardize_with_a_test_file_keeps_its_rows_in_order(tmp_path):
    rng = np.random.default_rng(3)
    train = pd.DataFrame({"a": rng.normal(size=20), "y": np.arange(20) % 2})
    test = pd.DataFrame({"a": rng.normal(size=6), "y": [0, 1, 1, 0, 0, 1]})
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    cfg = _file_config(
        tmp_path / "train.csv",
        f"task.test_path={tmp_path / 'test.csv'}",
        "task.kind=classification",
        "task.target=y",
        "task.standardize=false",
    )
    data = engine.build(cfg).task.data
    np.testing.assert_array_equal(data["x_train"][:, 0], train["a"].to_numpy(np.float32))
    np.testing.assert_array_equal(data["x_eval"][:, 0], test["a"].to_numpy(np.float32))
    np.testing.assert_array_equal(data["y_eval"], test["y"].to_numpy())


def test_digits_standardized_features():
    from sklearn.datasets import load_digits

    data = engine.build(make_config("task=digits")).task.data
    x = np.asarray(data["x_train"], np.float64)
    raw = load_digits().data
    constant = raw.std(0) == 0
    assert constant.any()  # digits has blank pixels: the constant-column case is exercised
    assert np.isfinite(x).all() and np.isfinite(data["x_eval"]).all()
    moving = x.std(0) > 0
    np.testing.assert_allclose(x.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(x[:, moving].std(0), 1, rtol=1e-4)
    raw_data = engine.build(make_config("task=digits", "task.standardize=false")).task.data
    assert set(np.unique(raw_data["x_train"])) <= set(range(17))  # pixel values 0..16


# ---- 8. the sweep identity of a file task ----------------------------------------------------


def test_changed_file_changes_the_sweep_id(tmp_path):
    path = tmp_path / "d.csv"
    frame = _labelled()
    frame.to_csv(path, index=False)
    cfg = _file_config(path, "task.kind=classification", "task.target=label")
    first = sweep_id(cfg)
    assert sweep_id(cfg) == first
    frame.loc[0, "a"] += 1.0
    frame.to_csv(path, index=False)
    changed = sweep_id(cfg)
    assert changed != first
    _labelled().to_csv(path, index=False)
    assert sweep_id(cfg) == first  # the same bytes again: the same sweep


# ---- what users' files may hold --------------------------------------------------------------


def test_a_boolean_column_does_not_stop_a_table_whose_features_are_not_named(tmp_path):
    """task.features=null takes the numeric columns; a bool column must not then refuse the file."""
    frame = _labelled()
    frame["flag"] = frame["a"] > 0
    task = _unstandardized_csv_task(frame, tmp_path)
    assert task.n_features in (3, 4)  # a, b, id, and flag as 0/1 if bools count as numbers
    if task.n_features == 4:
        np.testing.assert_array_equal(task.data["x_train"][:, 3], task.data["x_train"][:, 0] > 0)


def test_nan_is_reported_at_its_row_of_the_file(tmp_path):
    """The row in the message is the file's (0-based data row), as for an empty target."""
    from lrscale.config import ConfigError

    frame = _labelled()
    frame.loc[5, "b"] = np.nan
    frame.to_csv(tmp_path / "d.csv", index=False)
    cfg = _file_config(tmp_path / "d.csv", "task.kind=classification", "task.target=label")
    with pytest.raises(ConfigError, match=r"\(row 5\)"):
        engine.build(cfg)

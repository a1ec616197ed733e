"""Inputs the sweep cannot use faithfully are refused in one line, or made faithful: what
decides the numbers is in the sweep's identity, files are matched by column name, values the
dtype cannot hold and targets with nothing to learn are refused, and a user's model is traced as
the sweep calls it."""

from __future__ import annotations

import hashlib
import importlib
import json
import sys

import numpy as np
import pandas as pd
import pytest

from lrscale.config import ConfigError
from lrscale.results import RESULTS
from sweeps import engine, rundir
from sweeps.sweep import run_sweep
from tests.conftest import make_config, sweep_id

FAST = ["sweep=smoke", "sweep.lr.num=3", "sweep.curve_points=4", "progress=false"]
FILE = [*FAST, "plot.enabled=false", "task=file", "sweep.batch_sizes=[1,8]", "model=linear"]
REG = ["task.kind=regression", "task.target=y"]


def _table(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b, c = rng.normal(size=(3, n))
    return pd.DataFrame({"a": a, "b": b, "c": c, "y": 2 * a - b + 0.5 * c})


def _file(path, *extra):
    return make_config(*FILE, f"task.path={path}", *extra)


def _refused(cfg, out) -> str:
    with pytest.raises(ConfigError) as e:
        run_sweep(cfg, out)
    assert "\n" not in str(e.value) and not out.exists()
    return str(e.value)


# ---- 1. an edited model of the same name is another sweep ------------------------------------

NET = """import flax.linen as nn


class Net(nn.Module):
    n_out: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.n_out)(nn.{act}(nn.Dense({hidden})(x)))
"""


def _write_net(d, hidden: int, act: str):
    (d / "editnet.py").write_text(NET.format(hidden=hidden, act=act))
    sys.modules.pop("editnet", None)
    importlib.invalidate_caches()


def test_an_edited_model_of_the_same_name_is_refused_and_its_source_recorded(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    _table().to_csv(tmp_path / "reg.csv", index=False)
    net = ["model=custom", "model.target=editnet.Net", *REG]
    _write_net(tmp_path, 16, "relu")
    out = tmp_path / "out"
    run_sweep(_file(tmp_path / "reg.csv", *net), out)
    disk = pd.read_parquet(out / RESULTS)
    source = hashlib.sha256((tmp_path / "editnet.py").read_bytes()).hexdigest()[:16]
    assert (disk["model_source_sha256"] == source).all()
    assert (disk["model_n_params"] == 3 * 16 + 16 + 16 + 1).all()  # the model's own count
    _write_net(tmp_path, 2, "tanh")
    more = _file(tmp_path / "reg.csv", *net, "sweep.batch_sizes=[1,8,16]")
    with pytest.raises(rundir.ResumeError, match=r"the source of model.target \(sha256\)"):
        run_sweep(more, out)
    pd.testing.assert_frame_equal(pd.read_parquet(out / RESULTS), disk)  # nothing changed


# ---- 2. a path with ~ is read, hashed and recorded as the file it names ----------------------


def test_a_home_relative_path_is_hashed_and_a_changed_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    _table().to_csv(tmp_path / "t.csv", index=False)
    cfg = _file("'~/t.csv'", *REG)
    run_sweep(cfg, tmp_path / "out")
    digest = hashlib.sha256((tmp_path / "t.csv").read_bytes()).hexdigest()[:16]
    assert (pd.read_parquet(tmp_path / "out" / RESULTS)["task_path_sha256"] == digest).all()
    _table(seed=1).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(rundir.ResumeError, match=r"the bytes of task.path \(sha256\)"):
        run_sweep(_file("'~/t.csv'", *REG, "sweep.batch_sizes=[1,8,16]"), tmp_path / "out")


# ---- 3. a test file's columns are matched by name --------------------------------------------


def test_test_file_columns_are_matched_by_name_not_position(tmp_path):
    _table().to_csv(tmp_path / "train.csv", index=False)
    test = _table(20, seed=1)
    test.to_csv(tmp_path / "test.csv", index=False)
    test[["y", "c", "b", "a"]].to_csv(tmp_path / "test_cba.csv", index=False)
    data = {
        name: engine.build(
            _file(tmp_path / "train.csv", *REG, f"task.test_path={tmp_path / name}")
        ).task.data
        for name in ("test.csv", "test_cba.csv")
    }
    for k in ("x_eval", "y_eval"):
        np.testing.assert_array_equal(data["test.csv"][k], data["test_cba.csv"][k])
    test.rename(columns={"b": "B"}).to_csv(tmp_path / "other.csv", index=False)
    cfg = _file(tmp_path / "train.csv", *REG, f"task.test_path={tmp_path / 'other.csv'}")
    msg = _refused(cfg, tmp_path / "out")
    assert msg.startswith("task.test_path: no column 'b' in") and "features of" in msg


def test_a_test_file_of_another_format_is_refused(tmp_path):
    _table().to_csv(tmp_path / "train.csv", index=False)
    np.savez(tmp_path / "test.npz", x=np.zeros((5, 3)), y=np.zeros(5))
    cfg = _file(tmp_path / "train.csv", *REG, f"task.test_path={tmp_path / 'test.npz'}")
    assert "matched by name" in _refused(cfg, tmp_path / "out")


# ---- 4. values the dtype cannot hold ----------------------------------------------------------


@pytest.mark.parametrize("column", ["a", "y"])
def test_huge_values_are_standardised_exactly(tmp_path, column):
    t = _table()
    t.to_csv(tmp_path / "plain.csv", index=False)
    t[column] *= 2.0**900  # a power of two: the standardised data must be the same
    t.to_csv(tmp_path / "huge.csv", index=False)
    plain, huge = (
        engine.build(_file(tmp_path / name, *REG)).task.data for name in ("plain.csv", "huge.csv")
    )
    for k, v in plain.items():
        np.testing.assert_array_equal(huge[k], v)
    t[column] *= 2.0**100  # ~1e300: the plain std would overflow to inf (and the data to 0)
    t.to_csv(tmp_path / "huger.csv", index=False)
    data = engine.build(_file(tmp_path / "huger.csv", *REG)).task.data
    for k, v in plain.items():
        np.testing.assert_allclose(data[k], v, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("column", "scale"), [("a", 1e300), ("y", 1e300), ("b", 1e-300)])
def test_values_beyond_float32_without_standardising_are_refused(tmp_path, column, scale):
    t = _table()
    t[column] *= scale
    t.to_csv(tmp_path / "t.csv", index=False)
    msg = _refused(_file(tmp_path / "t.csv", *REG, "task.standardize=false"), tmp_path / "out")
    assert msg.startswith("task.path: ") and "float32" in msg and "task.standardize=true" in msg
    cfg = _file(tmp_path / "t.csv", *REG, "task.standardize=false", "sweep.dtype=float64")
    if column == "y":  # its squared error overflows float64 too
        msg = _refused(cfg, tmp_path / "out64")
        assert "overflows float64: set task.standardize=true" in msg and "dtype" not in msg
    else:
        assert np.isfinite(engine.build(cfg).task.data["x_train"]).all()


# ---- 5, 6. nothing to learn, or the answer among the features --------------------------------


def test_a_constant_target_is_refused(tmp_path):
    t = _table().assign(y=3.0)
    t.to_csv(tmp_path / "t.csv", index=False)
    msg = _refused(_file(tmp_path / "t.csv", *REG), tmp_path / "out")
    assert msg.startswith("task.path: ") and "nothing to learn" in msg


def test_the_target_cannot_be_a_feature(tmp_path):
    _table().to_csv(tmp_path / "t.csv", index=False)
    msg = _refused(_file(tmp_path / "t.csv", *REG, "task.features=[a,y]"), tmp_path / "out")
    assert msg.startswith("task.features: 'y' is the target")


# ---- 7. columns left out are named, the features used are recorded ---------------------------


def test_index_and_text_columns_are_left_out_with_a_note_and_the_features_recorded(
    tmp_path, capsys
):
    t = _table().assign(word="x", const=1.0)
    t.sample(frac=1.0, random_state=0).to_csv(tmp_path / "t.csv")  # with pandas' index
    run_sweep(_file(tmp_path / "t.csv", *REG), tmp_path / "out")
    err = capsys.readouterr().err
    assert "left out of the features: 'word' (not numeric), 'Unnamed: 0' (a row index)" in err
    assert "constant, so they carry nothing: 'const'" in err
    disk = pd.read_parquet(tmp_path / "out" / RESULTS)
    assert json.loads(disk["task_features_used"].iloc[0]) == ["a", "b", "c", "const"]
    assert (disk["n_features"] == 4).all()


def test_the_features_used_are_part_of_the_identity(tmp_path):
    _table().to_csv(tmp_path / "t.csv", index=False)
    named = _file(tmp_path / "t.csv", *REG, "task.features=[a,b,c]")
    default = _file(tmp_path / "t.csv", *REG)
    fewer = _file(tmp_path / "t.csv", *REG, "task.features=[a,b]")
    assert sweep_id(default) != sweep_id(named) != sweep_id(fewer)  # the config differs too
    assert engine.build(named).task.identity["task_features_used"] == '["a", "b", "c"]'


# ---- user models traced as the sweep calls them ----------------------------------------------

MODELS = [
    ("WithDropout", "draws random numbers"),
    ("WithBatchNorm", "keeps state besides its parameters (collection 'batch_stats')"),
    ("WithCounter", "keeps state besides its parameters (collection 'counter')"),
    ("ToNumpy", "is not traceable by JAX"),
    ("FixedReshape", "cannot reshape array of shape (1, 64)"),
    ("FirstThree", "returns shape (3, 10) for a batch of shape (4, 64)"),
    ("IntegerOutput", "returns int32 outputs"),
]


@pytest.mark.parametrize(("net", "says"), MODELS, ids=[m[0] for m in MODELS])
def test_models_that_cannot_train_as_lrscale_trains_are_refused(tmp_path, net, says):
    cfg = make_config(*FAST, "task=digits", "model=custom", f"model.target=tests.data.nets.{net}")
    msg = _refused(cfg, tmp_path / "out")
    assert msg.startswith(f"model.target: tests.data.nets.{net} ") and says in msg, msg


def test_a_module_that_exits_on_import_is_an_import_failure(tmp_path):
    target = "model.target=tests.data.exit_net.Net"
    msg = _refused(make_config(*FAST, "task=digits", "model=custom", target), tmp_path / "out")
    assert msg.startswith("model.target: importing tests.data.exit_net called sys.exit(0)")


# ---- a second hostile pass: what else gave a wrong table ---------------------------------------


def test_a_continuous_target_is_no_classification(tmp_path):
    _table().to_csv(tmp_path / "t.csv", index=False)
    cls = ["task.kind=classification", "task.target=y"]
    msg = _refused(_file(tmp_path / "t.csv", *cls), tmp_path / "out")
    assert "classes in 48 training examples: a number to predict is task.kind=regression" in msg


def test_held_out_labels_unseen_in_training_are_refused_and_mixed_types_compared_as_text(
    tmp_path,
):
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"a": rng.normal(size=40), "label": np.arange(40) % 2})
    train.to_csv(tmp_path / "train.csv", index=False)
    cls = ["task.kind=classification", "task.target=label"]
    test = pd.DataFrame({"a": rng.normal(size=10), "label": ["0", "1"] * 5})
    test.to_csv(tmp_path / "strings.csv", index=False)
    cfg = _file(tmp_path / "train.csv", *cls, f"task.test_path={tmp_path / 'strings.csv'}")
    assert engine.build(cfg).task.n_out == 2  # "0" and 0 are one class
    test.assign(label=[0, 1, 2, 0, 1] * 2).to_csv(tmp_path / "unseen.csv", index=False)
    cfg = _file(tmp_path / "train.csv", *cls, f"task.test_path={tmp_path / 'unseen.csv'}")
    msg = _refused(cfg, tmp_path / "out")
    assert msg.startswith("task.test_path: ") and "held-out labels that no training example" in msg


def test_held_out_data_on_another_scale_is_refused_naming_the_test_file(tmp_path):
    _table().to_csv(tmp_path / "train.csv", index=False)
    _table(20, seed=1).assign(a=lambda f: f["a"] * 1e300).to_csv(tmp_path / "far.csv", index=False)
    cfg = _file(tmp_path / "train.csv", *REG, f"task.test_path={tmp_path / 'far.csv'}")
    msg = _refused(make_config(*[*FILE, f"task.path={tmp_path / 'train.csv'}", *REG,
                                 f"task.test_path={tmp_path / 'far.csv'}", "sweep.dtype=float64"]),
                   tmp_path / "out")  # fmt: skip
    assert msg.startswith("task.test_path: ") and "training standard deviations away" in msg
    assert _refused(cfg, tmp_path / "out").startswith("task.test_path: ")


def test_npz_files_have_no_columns_to_name(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).normal(size=(40, 3)), y=np.arange(40.0))
    msg = _refused(_file(tmp_path / "d.npz", "task.kind=regression", "task.features=[a]"),
                   tmp_path / "out")  # fmt: skip
    assert msg.startswith("task.features: ") and "leave task.features unset" in msg


def test_integers_beyond_float64_precision_are_refused(tmp_path):
    t = _table().assign(big=2**62 + np.arange(60))
    t.to_csv(tmp_path / "t.csv", index=False)
    msg = _refused(_file(tmp_path / "t.csv", *REG), tmp_path / "out")
    assert msg.startswith("task.path: column 'big' of") and "beyond 2^53" in msg


HELPER = "ACT = '{act}'\n"
USES_HELPER = """import flax.linen as nn

import helper


class Net(nn.Module):
    n_out: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.n_out)(getattr(nn, helper.ACT)(nn.Dense(8)(x)))
"""


def test_a_changed_module_that_the_model_imports_is_another_sweep(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    _table().to_csv(tmp_path / "reg.csv", index=False)
    (tmp_path / "usehelper.py").write_text(USES_HELPER)
    net = ["model=custom", "model.target=usehelper.Net", *REG]

    def sweep_id_with(act):
        (tmp_path / "helper.py").write_text(HELPER.format(act=act))
        for m in ("usehelper", "helper"):
            sys.modules.pop(m, None)
        importlib.invalidate_caches()
        return sweep_id(_file(tmp_path / "reg.csv", *net))

    assert sweep_id_with("relu") != sweep_id_with("sigmoid")


def test_a_model_without_parameters_or_with_non_finite_outputs_is_refused(tmp_path):
    for net, says in (("NoParameters", "has no parameters"), ("NaNOutput", "non-finite outputs")):
        target = f"model.target=tests.data.nets.{net}"
        cfg = make_config(*FAST, "task=digits", "model=custom", target)
        assert says in _refused(cfg, tmp_path / "out")

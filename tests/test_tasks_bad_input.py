"""Bad data and bad models: one line naming the key or file, before any compile or write."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from lrscale.config import ConfigError
from sweeps import engine
from sweeps.sweep import run_sweep
from tests.conftest import cli, make_config

FILE = ["sweep=smoke", "sweep.batch_sizes=[1,8]", "task=file", "model=linear"]
CLS = ["task.kind=classification", "task.target=label", "task.features=[a,b]"]
REG = ["task.kind=regression", "task.target=label", "task.features=[a,b]"]
DIGITS = ["sweep=smoke", "task=digits"]


def _frame(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "word": np.array(["x", "y"])[np.arange(n) % 2],
            "label": np.array(["cat", "dog"])[np.arange(n) % 2],
        }
    )


def _csv(name: str, change=None, n: int = 40):
    """A writer of a CSV table (changed by change(frame) first)."""

    def write(d):
        frame = _frame(n)
        if change:
            change(frame)
        frame.to_csv(d / name, index=False)

    return write


def _set(col, row, value):
    return lambda f: f.__setitem__(col, f[col].where(f.index != row, value))


def _bytes(name: str):
    return lambda d: (d / name).write_bytes(np.random.default_rng(0).bytes(512))


def _npz(name: str, **arrays):
    return lambda d: np.savez(d / name, **arrays)


X = np.random.default_rng(1).normal(size=(40, 2))
X_NAN = np.where(np.arange(80).reshape(40, 2) == 41, np.nan, X)
Y_NAN = np.where(np.arange(40) % 9 == 4, np.nan, np.arange(40) % 2)

# (id, writes the input files into d, overrides ({d}: the input folder), what the message names)
CASES = [
    ("missing file", None, [*FILE, *CLS, "task.path={d}/nope.csv"], ["task.path", "nope.csv"]),
    (
        "directory",
        lambda d: (d / "dir.csv").mkdir(),
        [*FILE, *CLS, "task.path={d}/dir.csv"],
        ["task.path", "dir.csv", "directory"],
    ),
    (
        "random bytes csv",
        _bytes("r.csv"),
        [*FILE, *CLS, "task.path={d}/r.csv"],
        ["task.path", "r.csv", "cannot be read"],
    ),
    (
        "random bytes parquet",
        _bytes("r.parquet"),
        [*FILE, *CLS, "task.path={d}/r.parquet"],
        ["task.path", "r.parquet", "cannot be read"],
    ),
    (
        "random bytes npz",
        _bytes("r.npz"),
        [*FILE, "task.kind=classification", "task.path={d}/r.npz"],
        ["task.path", "r.npz", "cannot be read"],
    ),
    (
        "unknown extension",
        _csv("d.txt"),
        [*FILE, *CLS, "task.path={d}/d.txt"],
        ["task.path", "d.txt", ".txt"],
    ),
    (
        "no target column",
        _csv("d.csv"),
        [*FILE, *CLS, "task.target=nope", "task.path={d}/d.csv"],
        ["task.target", "'nope'", "d.csv"],
    ),
    (
        "no feature column",
        _csv("d.csv"),
        [*FILE, *CLS, "task.features=[a,nope]", "task.path={d}/d.csv"],
        ["task.features", "'nope'", "d.csv"],
    ),
    (
        "text feature",
        _csv("d.csv"),
        [*FILE, *CLS, "task.features=[a,word]", "task.path={d}/d.csv"],
        ["task.features", "'word'", "not numeric"],
    ),
    (
        "NaN feature",
        _csv("d.csv", _set("b", 5, np.nan)),
        [*FILE, *CLS, "task.path={d}/d.csv"],
        ["task.path", "d.csv", "NaN or inf"],
    ),
    (
        "inf feature",
        _csv("d.csv", _set("a", 7, np.inf)),
        [*FILE, *CLS, "task.path={d}/d.csv"],
        ["task.path", "d.csv", "NaN or inf"],
    ),
    (
        "NaN feature npz",
        _npz("d.npz", x=X_NAN, y=np.arange(40) % 2),
        [*FILE, "task.kind=classification", "task.path={d}/d.npz"],
        ["task.path", "d.npz", "NaN or inf"],
    ),
    (
        "one class",
        _csv("d.csv", lambda f: f.__setitem__("label", "cat")),
        [*FILE, *CLS, "task.path={d}/d.csv"],
        ["task.path", "d.csv", "one class"],
    ),
    (
        "text regression target",
        _csv("d.csv"),
        [*FILE, *REG, "task.path={d}/d.csv"],
        ["task.target", "'label'", "not numeric"],
    ),
    (
        "text regression target npz",
        _npz("d.npz", x=X, y=np.array(["cat", "dog"] * 20)),
        [*FILE, "task.kind=regression", "task.path={d}/d.npz"],
        ["task.path", "d.npz", "y"],
    ),
    (
        "NaN class label npz",
        _npz("d.npz", x=X, y=Y_NAN),
        [*FILE, "task.kind=classification", "task.path={d}/d.npz"],
        ["task.path", "d.npz", "NaN"],
    ),
    (
        "empty test split",
        _csv("d.csv", n=4),
        [*FILE, *CLS, "task.test_fraction=0.1", "task.path={d}/d.csv"],
        ["task.path", "d.csv", "held-out split has no examples"],
    ),
    (
        "training split below the batch size",
        _csv("d.csv", n=12),
        [*FILE, *CLS, "sweep.batch_sizes=[1,16]", "task.path={d}/d.csv"],
        ["task.path", "d.csv", "16"],
    ),
    (
        "npz without y",
        _npz("d.npz", x=X),
        [*FILE, "task.kind=classification", "task.path={d}/d.npz"],
        ["task.path", "d.npz", "no array y"],
    ),
    (
        "missing test file",
        _csv("d.csv"),
        [*FILE, *CLS, "task.path={d}/d.csv", "task.test_path={d}/nope.csv"],
        ["task.test_path", "nope.csv"],
    ),
    (
        "target module missing",
        None,
        [*DIGITS, "model=custom", "model.target=tests.data.nowhere.Net"],
        ["model.target", "tests.data.nowhere"],
    ),
    (
        "target module fails",
        None,
        [*DIGITS, "model=custom", "model.target=tests.data.broken_net.Net"],
        ["model.target", "tests.data.broken_net"],
    ),
    (
        "target class missing",
        None,
        [*DIGITS, "model=custom", "model.target=tests.data.nets.Nowhere"],
        ["model.target", "Nowhere"],
    ),
    (
        "target not dotted",
        None,
        [*DIGITS, "model=custom", "model.target=TwoLayer"],
        ["model.target", "TwoLayer"],
    ),
    (
        "target not a module",
        None,
        [*DIGITS, "model=custom", "model.target=tests.data.nets.NotAModule"],
        ["model.target", "NotAModule", "flax.linen.Module"],
    ),
    (
        "target output shape",
        None,
        [*DIGITS, "model=custom", "model.target=tests.data.nets.WrongShape"],
        ["model.target", "WrongShape", "(1, 11)", "(1, 10)"],
    ),
    (
        "target bad kwarg",
        None,
        [*DIGITS, "model=custom", "model.target=tests.data.nets.TwoLayer", "+model.kwargs.depth=3"],
        ["model.target", "TwoLayer", "depth"],
    ),
    ("cnn on digits", None, [*DIGITS, "model=cnn"], ["model=cnn", "task=digits"]),
    (
        "cnn on a file",
        _csv("d.csv"),
        [*FILE, *CLS, "model=cnn", "task.path={d}/d.csv"],
        ["model=cnn", "task=file"],
    ),
]


@pytest.fixture
def no_compile(monkeypatch):
    """Fail the test if the sweep gets as far as building a program."""

    def program(*args, **kwargs):
        raise AssertionError("a program was built for a bad input")

    monkeypatch.setattr(engine, "program", program)


def _refused(cfg, tmp_path, before: set) -> str:
    """run_sweep's one-line ConfigError; nothing new under tmp_path."""
    out = tmp_path / "out"
    with pytest.raises(ConfigError) as e:
        run_sweep(cfg, out)
    msg = str(e.value)
    assert "\n" not in msg, msg
    assert not out.exists()
    assert {p.name for p in tmp_path.iterdir()} == before
    return msg


@pytest.mark.parametrize(
    ("write", "overrides", "names"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_refused_in_one_line_naming_it(tmp_path, no_compile, write, overrides, names):
    if write:
        write(tmp_path)
    before = {p.name for p in tmp_path.iterdir()}
    over = (o.format(d=tmp_path) for o in overrides)
    cfg = make_config(*over, "progress=false", "plot.enabled=false")
    msg = _refused(cfg, tmp_path, before)
    for name in names:
        assert name in msg, (name, msg)


def test_mnist1d_without_its_package(tmp_path, monkeypatch, no_compile):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    cfg = make_config("sweep=smoke", "task=mnist1d", "task.n_train=100", "task.n_eval=20")
    msg = _refused(cfg, tmp_path, set())
    assert "task=mnist1d" in msg and "mnist1d" in msg and "pip install 'lrscale[data]'" in msg


def test_digits_without_scikit_learn(tmp_path, monkeypatch, no_compile):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    msg = _refused(make_config(*DIGITS), tmp_path, set())
    assert "task=digits" in msg and "scikit-learn" in msg and "pip install 'lrscale[data]'" in msg


USER_NET = """import flax.linen as nn


class Net(nn.Module):
    n_out: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.n_out + 1)(x)
"""


def _user_net_and_data(d):
    (d / "usernet.py").write_text(USER_NET)
    _csv("data.csv")(d)


# A few representative cases (a CLI call costs seconds): bad data, and a bad model of the user's.
CLI_CASES = [
    (
        "NaN feature",
        _csv("data.csv", _set("a", 3, np.nan)),
        ["task=file", *CLS, "task.path=data.csv"],
        ["task.path", "data.csv", "NaN or inf"],
    ),
    (
        "wrong output shape",
        _user_net_and_data,
        ["task=file", *CLS, "task.path=data.csv", "model=custom", "model.target=usernet.Net"],
        ["model.target", "usernet.Net", "(1, 3)"],
    ),
]


@pytest.mark.parametrize(
    ("write", "args", "names"), [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES]
)
def test_command_line_refuses_bad_input(tmp_path, monkeypatch, write, args, names):
    """Exit code 2, one line on stderr, no traceback, no run directory: only the inputs remain."""
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # the user's module leaves no __pycache__
    write(tmp_path)
    before = {p.name for p in tmp_path.iterdir()}
    run_dir = tmp_path / "run"
    r = cli("sweep=smoke", "plot.enabled=false", *args, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for name in names:
        assert name in lines[0], (name, lines[0])
    assert not run_dir.exists()
    assert {p.name for p in tmp_path.iterdir()} == before

"""Language models: byte-level text (task=text) and the decoder-only transformer."""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import tasks
from analysis.load import load, load_curves
from sweeps import engine
from sweeps.sweep import run_sweep
from tasks import corpus
from tests.conftest import cli, identity, make_config
from tests.test_tasks_bad_input import _refused, no_compile  # noqa: F401 - a fixture

LN256 = float(np.log(256))
# sweep=lm_smoke, shrunk: a one-block transformer of width 16 on windows of 16 bytes.
TINY = [
    "task=text",
    "model=transformer",
    "optimizer=adam",
    "sweep=lm_smoke",
    "model.width=16",
    "model.heads=2",
    "model.depth=1",
    "task.context=16",
    "task.eval_windows=8",
    "sweep.batch_sizes=[2,8]",
    "sweep.budget.samples=64",
    "sweep.curve_points=4",
    "progress=false",
    "plot.enabled=false",
]


def periodic_text(period: int = 61, n: int = 4000, seed: int = 0) -> bytes:
    """Random bytes repeated: every window of 16 bytes determines the next one."""
    motif = np.random.default_rng(seed).integers(0, 256, period, dtype=np.uint8)
    return np.resize(motif, n).tobytes()


@pytest.fixture
def corpus_file(tmp_path):
    p = tmp_path / "corpus.bin"
    p.write_bytes(periodic_text())
    return p


def tiny(path, *extra):
    return make_config(*TINY, f"task.path={path}", *extra)


def test_a_future_byte_leaves_earlier_logits_unchanged(corpus_file):
    cfg = tiny(corpus_file)
    prob = engine.build(cfg)
    params = prob.model.init(jax.random.key(0), jnp.float32)
    apply = jax.jit(prob.model.apply)
    x = jnp.asarray(np.random.default_rng(1).integers(0, 256, (3, 16)), jnp.int32)
    for j in (0, 7, 15):
        changed = x.at[:, j].set((x[:, j] + 1) % 256)
        a, b = apply(params, x), apply(params, changed)
        assert a.shape == (3, 16, 256)
        np.testing.assert_array_equal(a[:, :j], b[:, :j])
        assert np.abs(a[:, j:] - b[:, j:]).max(axis=(0, 2)).min() > 0  # every later position


@pytest.mark.parametrize("tie", ["true", "false"])
def test_an_untrained_model_predicts_bytes_nearly_uniformly(corpus_file, tie):
    cfg = tiny(corpus_file, f"model.tie_embeddings={tie}", "model.width=64", "model.heads=4")
    prob = engine.build(cfg)
    params = prob.model.init(jax.random.key(0), jnp.float32)
    x, y = prob.task.data["x_eval"], prob.task.data["y_eval"]
    loss = float(jax.jit(tasks.LOSSES["cross_entropy"])(jax.jit(prob.model.apply)(params, x), y))
    assert abs(loss - LN256) < 0.1, loss  # (2% of ln 256)
    # the parameter count the planner and the benchmark use is the model's real one
    assert prob.model.n_params == sum(p.size for p in jax.tree.leaves(params))


def test_a_tiny_corpus_is_memorised_at_a_good_learning_rate(tmp_path, corpus_file):
    cfg = tiny(
        corpus_file,
        "model.width=32",
        "sweep.batch_sizes=[16]",
        "sweep.budget.samples=9600",
        "sweep.lr.min=1e-5",
        "sweep.lr.max=1e-2",
        "sweep.lr.num=2",
        "sweep.seeds=1",
    )
    low, high = run_sweep(cfg, tmp_path / "run").sort_values("lr")["final_eval_loss"]
    # 600 Adam steps at lr 1e-2 learn the 61-byte cycle; lr 1e-5 barely moves from ln 256
    assert high < 0.05, high
    assert low > 0.8 * LN256, low
    curves = pd.read_parquet(tmp_path / "run" / "_curves.parquet")
    assert np.allclose(curves.loc[curves["step"] == 0, "eval_loss"], LN256, atol=0.1)


def test_every_learning_rate_of_a_seed_reads_the_same_windows(corpus_file):
    cfg = tiny(corpus_file, "sweep.curve_points=8")
    prob = engine.build(cfg)
    points = engine.curve_points(cfg, 8)[0]
    prog = engine.program(cfg, prob, 8, points)
    seeds = jnp.arange(2, dtype=jnp.uint32)
    one = prog(jnp.asarray([1e-3, 3e-3], jnp.float32), seeds, prob.task.data)
    other = prog(jnp.asarray([3e-3, 3e-2], jnp.float32), seeds, prob.task.data)
    # the lane of lr 3e-3 trains the same beside either neighbour: its windows are the seed's
    np.testing.assert_allclose(one.curve_train[:, 1], other.curve_train[:, 0], rtol=1e-4)
    # and the two seeds read different windows
    assert np.abs(one.curve_train[0, 1, 1:] - one.curve_train[1, 1, 1:]).max() > 1e-3
    # a window's targets are its inputs shifted by one byte, all from the training split
    d = prob.task.seed_data(prob.task.data, tasks.seed_keys(0), jnp.float32)
    x, y = d.sample(jax.random.key(3), 5)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    text = prob.task.data["train"].tobytes()
    for row_x, row_y in zip(np.asarray(x), np.asarray(y), strict=True):
        assert bytes(np.append(row_x, row_y[-1]).astype(np.uint8)) in text


def test_the_default_corpus_is_the_standard_library_found_offline_and_hashed(monkeypatch):
    files = corpus.stdlib_files()
    assert files == sorted(files) and any(p.name == "functools.py" for p in files)
    assert not any({"test", "site-packages"} & set(p.parts) for p in files)
    c = corpus.load(None)
    assert c.size > 2_000_000 and c.name.startswith("python ") and len(c.sha256) == 16
    corpus._stdlib.cache_clear()  # read again: the same bytes, the same hash
    assert corpus.load(None).sha256 == c.sha256
    s = identity(make_config(*TINY)).settings
    assert (s["task_corpus_bytes"], s["task_corpus_sha256"]) == (c.size, c.sha256)


def test_results_count_tokens_and_the_analysis_shows_bits_per_byte(tmp_path, corpus_file):
    run_sweep(tiny(corpus_file), tmp_path)
    raw = pd.read_parquet(tmp_path / "results.parquet")
    assert (raw["task_kind"] == "language").all() and (raw["loss"] == "cross_entropy").all()
    assert (raw["tokens_per_step"] == raw["batch_size"] * 16).all()
    assert (raw["tokens"] == raw["samples"] * 16).all()
    assert raw["final_eval_accuracy"].isna().all()
    df = load(tmp_path)
    merged = df.merge(raw, on=["batch_size", "lr", "seed"], suffixes=("", "_nats"))
    np.testing.assert_allclose(
        merged["final_eval_loss"], merged["final_eval_loss_nats"] / np.log(2)
    )
    assert (df["loss"] == "bits_per_byte").all()
    curves = load_curves(tmp_path)
    assert np.allclose(curves.loc[curves["step"] == 0, "eval_loss"], 8.0, atol=0.15)  # 8 bits


def _write(name: str, data: bytes):
    def write(d):
        (d / name).write_bytes(data)

    return write


BAD = [
    ("missing file", None, ["task.path={d}/nope.txt"], ["task.path", "no such file", "nope.txt"]),
    ("empty file", _write("e.txt", b""), ["task.path={d}/e.txt"], ["task.path", "e.txt", "empty"]),
    ("a directory", None, ["task.path={d}"], ["task.path", "is a directory"]),
    (
        "too short",
        _write("s.txt", b"x" * 100),
        ["task.path={d}/s.txt"],
        ["task.path", "s.txt", "100 bytes", "task.context=16", "largest batch size 8", "129"],
    ),
    (
        "context 0",
        _write("c.txt", periodic_text()),
        ["task.path={d}/c.txt", "task.context=0"],
        ["task.context", "> 0"],
    ),  # fmt: skip
    (
        "heads",
        _write("c.txt", periodic_text()),
        ["task.path={d}/c.txt", "model.heads=3"],
        ["model.heads", "divisor of model.width=16"],
    ),  # fmt: skip
    (
        "an mlp on text",
        _write("c.txt", periodic_text()),
        ["task.path={d}/c.txt", "model=mlp"],
        ["model=transformer", "task=text", "model=mlp"],
    ),  # fmt: skip
]


@pytest.mark.parametrize(("write", "over", "names"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_text_input_is_one_line_naming_it(tmp_path, no_compile, write, over, names):  # noqa: F811
    if write:
        write(tmp_path)
    before = {p.name for p in tmp_path.iterdir()}
    cfg = make_config(*TINY, *(o.format(d=tmp_path) for o in over))
    msg = _refused(cfg, tmp_path, before)
    for name in names:
        assert name in msg, (name, msg)


def test_a_transformer_needs_text(tmp_path, no_compile):  # noqa: F811
    msg = _refused(make_config("sweep=smoke", "model=transformer"), tmp_path, set())
    assert "task=text" in msg and "task=regression" in msg


def test_the_model_counts_its_flops(corpus_file):
    """Forward FLOPs per sequence within 15% of XLA's count (which adds the elementwise work)."""
    cfg = tiny(corpus_file, "model.width=64", "model.heads=4", "model.depth=2")
    m = engine.build(cfg).model
    params = m.init(jax.random.key(0), jnp.float32)
    x = jax.ShapeDtypeStruct((4, 16), jnp.int32)
    cost = jax.jit(m.apply).lower(params, x).cost_analysis()
    cost = cost[0] if isinstance(cost, list | tuple) else cost
    assert 0.85 < 4 * m.flops / cost["flops"] < 1.0
    assert m.train_flops == 3 * m.flops


@pytest.mark.slow
def test_lm_smoke_from_the_command_line_with_any_text_file(tmp_path):
    """The user's second command, shrunk: a text file of theirs, adamw, figures and all."""
    (tmp_path / "my corpus.txt").write_text("The quick brown fox jumps over the lazy dog. " * 200)
    over = [o for o in TINY if not o.startswith(("optimizer", "plot"))]
    run = tmp_path / "run"
    r = cli(*over, "optimizer=adamw", "task.path=my corpus.txt", f"hydra.run.dir={run}",
            cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    df = load(run)
    assert len(df) == 2 * 5 * 2 and np.isfinite(df["final_eval_loss"]).any()
    figures = run / "_analysis" / "figures"
    assert (figures / "transformer-adamw-on-my-corpus-txt_loss_vs_lr.png").exists()
    r = subprocess.run([sys.executable, "-m", "analysis.report", str(run)], capture_output=True)
    assert r.returncode == 0, r.stderr
    report = (run / "_analysis" / "report.md").read_text()
    assert "transformer+adamw on my corpus.txt" in report and "bits per byte" in report


def test_a_missing_corpus_from_the_command_line_is_one_line(tmp_path):
    r = cli(*TINY, "task.path=missing.txt", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == ["error: task.path: no such file: missing.txt"]
    assert list(tmp_path.iterdir()) == []

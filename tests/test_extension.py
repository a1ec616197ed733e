"""Adding an optimizer, a model or a task is one entry where its kind is listed and one config
node (the YAML of conf/, here stored in Hydra's ConfigStore): a toy one of each trains a sweep."""

from __future__ import annotations

import dataclasses
import types

import numpy as np
import pandas as pd
import pytest
from hydra.core.config_store import ConfigStore

import models
import tasks
from lrscale import optimizers
from lrscale.config import TASK_SCHEMAS
from sweeps.sweep import run_sweep
from tests.conftest import SMALL, make_config


@pytest.fixture
def node():
    """store(group, name, node): a config node of the group, as conf/<group>/<name>.yaml is;
    removed again after the test."""
    cs, stored = ConfigStore.instance(), []

    def store(group, name, node):
        cs.store(group=group, name=name, node=node)
        stored.append((group, f"{name}.yaml"))

    yield store
    for group, name in stored:
        del cs.repo[group][name]


def test_a_toy_optimizer_is_one_registry_entry(tmp_path, monkeypatch, node):
    halved = optimizers.Optimizer(
        lambda o, h, lr, wd: optimizers._optax().sgd(lr / 2), (), lambda o: 0
    )
    monkeypatch.setitem(optimizers.REGISTRY, "halfsgd", halved)
    node("optimizer", "halfsgd", {"name": "halfsgd"})
    one = [*SMALL, "sweep.batch_sizes=[4]", "sweep.lr.num=3"]
    toy = run_sweep(make_config(*one, "optimizer=halfsgd"), tmp_path / "toy")
    sgd = run_sweep(make_config(*one, "sweep.lr.min=5e-4", "sweep.lr.max=0.5"), tmp_path / "sgd")
    # SGD at lr/2 is SGD at half the lr: the same lanes, lr for lr
    np.testing.assert_allclose(toy["final_eval_loss"], sgd["final_eval_loss"], rtol=1e-6)
    assert (toy["optimizer"] == "halfsgd").all()


def _toy_model_build(cfg, task, dtype, batch_sizes):
    import jax.numpy as jnp

    F, K = task.n_features, task.n_out
    return models.Model(
        init=lambda key, dtype: {"w": jnp.zeros((F, K), dtype)},
        apply=lambda p, x: x @ p["w"],
        linear=False,
        n_params=F * K,
        flops=2 * F * K,
        train_flops=4 * F * K,
        activations=K,
    )


def test_a_toy_model_is_one_module(tmp_path, monkeypatch, node):
    toy = types.SimpleNamespace(
        NAME="toy", READS=(), TASK_KINDS=("regression",), build=_toy_model_build
    )
    monkeypatch.setitem(models.REGISTRY, "toy", toy)
    node("model", "toy", {"name": "toy"})
    df = run_sweep(make_config(*SMALL, "model=toy", "sweep.batch_sizes=[4]"), tmp_path)
    assert (df["model"] == "toy").all() and not df["diverged"].all()


@dataclasses.dataclass
class ToyTask:
    name: str = "toy"
    n: int = 64


def _toy_task_build(cfg):
    from tasks.arrays import from_arrays

    rng = np.random.default_rng(0)
    x = rng.normal(size=(cfg.task.n, 3))
    y = x @ np.array([1.0, -2.0, 0.5])
    return from_arrays(
        "toy", "regression", (x[:48], y[:48]), (x[48:], y[48:]),
        where="task=toy", max_batch=max(cfg.sweep.batch_sizes), dtype=cfg.sweep.dtype,
    )  # fmt: skip


def test_a_toy_task_is_one_module_and_its_schema(tmp_path, monkeypatch, node):
    monkeypatch.setitem(TASK_SCHEMAS, "toy", ToyTask)
    monkeypatch.setitem(
        tasks.REGISTRY, "toy", types.SimpleNamespace(NAME="toy", build=_toy_task_build)
    )
    node("task", "toy", ToyTask)
    cfg = make_config(
        "sweep=smoke", "task=toy", "task.n=64", "progress=false", "plot.enabled=false"
    )
    df = run_sweep(cfg, tmp_path)
    assert (df["task"] == "toy").all() and (df["task_n"] == 64).all()
    best = df.groupby("lr")["final_eval_loss"].mean().min()
    assert best < 0.5 * pd.Series(df["final_eval_loss"]).max()  # it learns the linear target

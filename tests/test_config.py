"""Config composition, schema and the start-up checks of bad input."""

from __future__ import annotations

import itertools

import pytest

from lrscale.checks import validate
from lrscale.config import ConfigError, to_config
from tests.conftest import CONF, cli, make_config, sweep_id

GROUPS = {
    g: sorted(p.stem for p in (CONF / g).glob("*.yaml")) for g in ("model", "optimizer", "sweep")
}


# Every model with every optimizer; the sweeps take turns, so each appears with several of them.
PAIRS = list(itertools.product(GROUPS["model"], GROUPS["optimizer"]))
SWEEPS = itertools.cycle(GROUPS["sweep"])


@pytest.mark.parametrize("model,optimizer,sweep", [(m, o, next(SWEEPS)) for m, o in PAIRS])
def test_every_combination_composes_and_validates(model, optimizer, sweep):
    extra = ["model.target=tests.data.nets.TwoLayer"] if model == "custom" else []
    cfg = make_config(f"model={model}", f"optimizer={optimizer}", f"sweep={sweep}", *extra)
    assert validate(cfg) is cfg
    assert (cfg.model.name, cfg.optimizer.name) == (model, optimizer)


@pytest.mark.parametrize("task", sorted(p.stem for p in (CONF / "task").glob("*.yaml")))
def test_every_task_composes_into_its_own_schema(task):
    extra = ["task.path=x.csv", "task.kind=regression"] if task == "file" else []
    cfg = make_config(f"task={task}", *extra)
    assert validate(cfg) is cfg and cfg.task.name == task
    assert type(cfg.task).__name__.lower().startswith(task)
    with pytest.raises(ConfigError, match="task.dimm"):
        to_config({"task": {"name": task, "dimm": 3}, "model": {"name": "linear"}})


def test_sweep_id_ignores_batch_sizes_and_seeds_but_not_the_task():
    a = make_config()
    b = make_config("sweep.batch_sizes=[2,8]", "sweep.seeds=5")
    c = make_config("task.noise_std=0.1")
    assert sweep_id(a) == sweep_id(b) != sweep_id(c)


# (override, text the one-line error must contain): the range checks of lrscale.checks.validate.
BAD_VALUES = [
    ("sweep.batch_sizes=[4,0]", "sweep.batch_sizes"),
    ("sweep.batch_sizes=[]", "sweep.batch_sizes"),
    ("sweep.lr.min=0", "sweep.lr.min"),
    ("sweep.lr.min=2.0", "sweep.lr.max"),
    ("sweep.lr.num=1", "sweep.lr.num"),
    ("sweep.seeds=0", "sweep.seeds"),
    ("sweep.budget.steps=10", "sweep.budget"),
    ("sweep.budget.samples=null", "sweep.budget"),
    ("sweep.budget.samples=8", "sweep.budget.samples"),
    ("task.n_train=8", "task.n_train"),
    ("task.dim=0", "task.dim"),
    ("task.noise_std=-0.1", "task.noise_std"),
    ("plot.formats=[gif]", "plot.formats"),
    ("plot.formats=[]", "plot.formats"),
    ("plot.figures=some", "plot.figures"),
]


@pytest.mark.parametrize("override,key", BAD_VALUES)
def test_bad_value_is_refused_in_process(override, key):
    cfg = make_config("sweep=smoke", override)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(cfg)


# Hydra's own checks (unknown option, misspelt key, wrong type, syntax) and non-finite values.
BAD_SCHEMA = [
    ("optimizer=adamx", "optimizer: no option 'adamx' (options: adafactor, adam,"),
    ("sweep.lr.mni=0.1", "sweep.lr.mni: no such key; did you mean sweep.lr.min?"),
    ("+model.widht=3", "model.widht: no such key; did you mean model.width?"),
    ("sweep.seeds=three", "sweep.seeds: Value 'three'"),
    ("task=digits", "task.dim: task=digits has no key 'dim' (its keys: data_seed,"),  # task.dim=3
    (
        "model.kwargs.hidden=8",
        "model.kwargs.hidden: model.kwargs holds no key 'hidden' yet: add "
        "it with a +, +model.kwargs.hidden=8",
    ),
    ("task.name=file", "task.name: choose the task with task=file, not task.name=file"),
    ("optimizer.name=momentum", "optimizer.name: choose the optimizer with optimizer=momentum"),
    ("sweep.batch_sizes=[1,", "sweep.batch_sizes: Hydra cannot read '[1,': a list is written"),
    ("sweep.memory_gb=inf", "sweep.memory_gb must be a finite number (got inf)"),
]


# The command line of a few range checks (the others are checked in process above).
@pytest.mark.parametrize("override,key", BAD_VALUES[::6] + BAD_SCHEMA)
def test_bad_input_fails_at_start_up_and_writes_nothing(tmp_path, override, key):
    run_dir = tmp_path / "run"
    extra = ["task.dim=3"] if override == "task=digits" else []
    r = cli("sweep=smoke", override, *extra, f"hydra.run.dir={run_dir}", cwd=tmp_path, timeout=60)
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and key in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not run_dir.exists()
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())


def test_the_config_stored_with_results_rebuilds_the_same_sweep(small, tmp_path):
    from lrscale.results import RESULTS, read_meta
    from sweeps.sweep import run_sweep

    cfg = small("sweep.batch_sizes=[2]")
    run_sweep(cfg, tmp_path)
    assert sweep_id(to_config(read_meta(tmp_path / RESULTS)["config"])) == sweep_id(cfg)

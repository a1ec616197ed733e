"""Property-based bad input: random configs and random or corrupt results files."""

from __future__ import annotations

import dataclasses
import io
import warnings

import numpy as np
import pandas as pd
import pytest
from hydra.errors import HydraException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf.errors import OmegaConfBaseException

from analysis.load import AnalysisError, load
from lrscale.checks import validate
from lrscale.config import Config, ConfigError
from sweeps.sweep import run_sweep
from tests.conftest import SMALL, make_config

ints = st.integers(-3, 40)
anything = st.one_of(ints, st.floats(-2, 2, allow_nan=False), st.sampled_from(["x", "null", "1e"]))
# Each key with values that are sometimes fine, sometimes out of range, sometimes the wrong type.
VALUES = {
    "task.dim": st.one_of(ints, anything),
    "task.noise_std": st.one_of(st.floats(-1, 2, allow_nan=False), anything),
    "task.spectrum_decay": st.floats(-1, 3, allow_nan=False),
    "task.n_train": st.one_of(st.just("null"), st.integers(-2, 64)),
    "sweep.batch_sizes": st.lists(st.integers(-2, 24), max_size=3).map(
        lambda v: "[" + ",".join(map(str, v)) + "]"
    ),
    "sweep.lr.min": st.one_of(st.floats(-0.1, 1, allow_nan=False), anything),
    "sweep.lr.num": st.integers(-1, 4),
    "sweep.seeds": st.one_of(st.integers(-1, 2), anything),
    "sweep.budget.samples": st.one_of(st.just("null"), st.integers(-8, 96)),
    "sweep.budget.steps": st.one_of(st.just("null"), st.integers(-2, 6)),
    "sweep.divergence_factor": st.floats(0, 1e4, allow_nan=False),
    "optimizer": st.sampled_from(["sgd", "adam", "lion", "adamx"]),
}


def _keys(node, prefix: str = "") -> set[str]:
    """Every dotted key of a dataclass schema, groups included."""
    out = set()
    for f in dataclasses.fields(node):
        key = prefix + f.name
        out.add(key)
        value = getattr(node, f.name)
        if dataclasses.is_dataclass(value):
            out |= _keys(value, key + ".")
    return out


KEYS = _keys(Config())
EXAMPLES = {"configs": 0, "accepted": 0, "refused": 0, "files": 0}


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.sampled_from(sorted(VALUES)), st.none(), max_size=4).flatmap(
    lambda keys: st.fixed_dictionaries({k: VALUES[k] for k in keys})
))  # fmt: skip
def test_random_config_is_accepted_and_runs_or_refused_naming_the_key(tmp_path_factory, values):
    overrides = [f"{k}={v}" for k, v in values.items()]
    EXAMPLES["configs"] += 1
    try:
        cfg = validate(make_config(*SMALL, "sweep.lr.max=1.0", *overrides))
    except ConfigError as e:
        EXAMPLES["refused"] += 1
        key = str(e).split()[0]
        assert "\n" not in str(e) and key in KEYS, e
        return
    except (HydraException, OmegaConfBaseException) as e:
        EXAMPLES["refused"] += 1
        assert any(k.split(".")[-1] in str(e) or str(v) in str(e) for k, v in values.items()), e
        return
    EXAMPLES["accepted"] += 1
    cfg.sweep.batch_sizes = cfg.sweep.batch_sizes[:2]  # keep the run short
    if cfg.sweep.budget.samples is not None:
        cfg.sweep.budget.samples = max(cfg.sweep.batch_sizes) * 4
    df = run_sweep(validate(cfg), tmp_path_factory.mktemp("run"))
    assert len(df) == len(cfg.sweep.batch_sizes) * cfg.sweep.lr.num * cfg.sweep.seeds
    assert not df[["final_train_loss", "final_eval_loss"]].isna().to_numpy().any()


@pytest.fixture(scope="module")
def good_results(tmp_path_factory):
    d = tmp_path_factory.mktemp("good")
    run_sweep(make_config(*SMALL), d)
    return pd.read_parquet(d / "results.parquet")


def _corrupt(kind: str, good: pd.DataFrame, data: st.DataObject) -> bytes:
    """Bytes of a results file broken in one way."""
    buf = io.BytesIO()
    if kind == "random":
        return data.draw(st.binary(max_size=256))
    good.to_parquet(buf)
    raw = buf.getvalue()
    if kind == "truncated":
        return raw[: data.draw(st.integers(0, len(raw) - 1))]
    if kind == "flipped":
        i = data.draw(st.integers(0, len(raw) - 1))
        return raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1 :]
    df = good.copy()
    if kind == "missing_column":
        df = df.drop(columns=data.draw(st.sampled_from(["lr", "batch_size", "final_eval_loss"])))
    elif kind == "wrong_dtype":
        col = data.draw(st.sampled_from(["lr", "diverged", "batch_size"]))
        df[col] = df[col].astype(str)
    elif kind == "empty":
        df = df.iloc[:0]
    elif kind == "foreign":
        df = pd.DataFrame({"x": np.arange(3)})
    buf = io.BytesIO()
    df.to_parquet(buf)
    return buf.getvalue()


KINDS = ["random", "truncated", "flipped", "missing_column", "wrong_dtype", "empty", "foreign"]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(kind=st.sampled_from(KINDS), data=st.data())
def test_broken_results_file_is_named_and_can_be_skipped(
    tmp_path_factory, good_results, kind, data
):
    d = tmp_path_factory.mktemp("bad")
    (d / "ok").mkdir()
    good_results.to_parquet(d / "ok" / "results.parquet")
    (d / "bad").mkdir()
    bad = d / "bad" / "results.parquet"
    bad.write_bytes(_corrupt(kind, good_results, data))
    EXAMPLES["files"] += 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            df = load(d)
    except AnalysisError as e:
        assert str(bad) in str(e) and "\n" not in str(e).strip(), e
        with pytest.warns(UserWarning, match="bad"):
            kept = load(d, skip_bad=True)
        assert len(kept) == len(good_results)
    else:
        # A flipped byte can land in a value: the file then still reads as a valid table.
        # (the analysis keeps one copy of rows that two files both hold).
        assert kind == "flipped" and len(df) >= len(good_results)


def test_property_counts(request):
    """Report how many random inputs the property tests above tried (runs after them)."""
    print(f"\nproperty tests tried: {EXAMPLES}")
    assert EXAMPLES["configs"] == 0 or EXAMPLES["refused"] > 0

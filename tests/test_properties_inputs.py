"""Property-based bad input at start-up: every float key of the schema, and damaged data files."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrscale.checks import float_keys, validate
from lrscale.config import TASK_SCHEMAS, Config, ConfigError
from sweeps import engine
from tests.conftest import make_config

# Every float of the schema: the shared groups, and each task's own keys.
FLOAT_KEYS = sorted(
    {k for k, _ in float_keys(Config())}
    | {f"task.{k}" for schema in TASK_SCHEMAS.values() for k, _ in float_keys(schema())}
)
TASK_OF = {  # a task whose schema has the key (the regression task unless only another has it)
    f"task.{k}": name
    for name, schema in reversed(TASK_SCHEMAS.items())
    for k, _ in float_keys(schema())
}
FILE = ["task.path=data.csv", "task.kind=classification", "task.target=label"]
TRIED = {"values": 0, "files": 0}


def _config(key: str, value: float) -> Config:
    task = TASK_OF.get(key, "regression")
    extra = FILE if task == "file" else []
    return make_config("sweep=smoke", f"task={task}", *extra, f"{key}={value!r}")


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    key=st.sampled_from(FLOAT_KEYS),
    value=st.one_of(
        st.sampled_from([math.inf, -math.inf, math.nan]),
        st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    ),
)
def test_every_float_key_refuses_non_finite_values_naming_the_key(key, value):
    TRIED["values"] += 1
    cfg = _config(key, value)
    if not math.isfinite(value):
        with pytest.raises(ConfigError, match=rf"^{key} must be a finite number"):
            validate(cfg)
        return
    try:
        validate(cfg)
    except ConfigError as e:  # out of range: refused naming this key or the one it must exceed
        assert str(e).split(" ")[0] in {key, "sweep.lr.max", "sweep.budget.samples"}, str(e)


def test_the_float_keys_cover_every_group():
    assert {"sweep.lr.min", "sweep.lr.max", "sweep.memory_gb", "optimizer.eps"} <= set(FLOAT_KEYS)
    assert {"task.noise_std", "task.spectrum_decay", "task.test_fraction"} <= set(FLOAT_KEYS)


def _damaged(kind: str, blob: bytes, tmp_path) -> str:
    """A file of the given kind holding random bytes, or a table with one thing wrong."""
    if kind in ("csv", "parquet", "npz"):
        path = tmp_path / f"data.{kind}"
        path.write_bytes(blob)
        return str(path)
    rng = np.random.default_rng(len(blob))
    frame = pd.DataFrame(rng.normal(size=(64, 3)), columns=["a", "b", "c"])
    frame["label"] = rng.integers(0, 3, 64)
    if kind == "nan feature":
        frame.loc[len(blob) % 64, "b"] = np.nan
    elif kind == "no target":
        frame = frame.drop(columns="label")
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return str(path)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    kind=st.sampled_from(["csv", "parquet", "npz", "nan feature", "no target"]),
    blob=st.binary(min_size=0, max_size=400),
)
def test_damaged_data_files_are_refused_in_one_line_naming_them(tmp_path_factory, kind, blob):
    TRIED["files"] += 1
    path = _damaged(kind, blob, tmp_path_factory.mktemp("data"))
    cfg = make_config(
        "sweep=smoke",
        "task=file",
        f"task.path={path}",
        "task.kind=classification",
        "task.target=label",
    )
    with pytest.raises(ConfigError) as e:
        engine.build(cfg)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(("task.path", "task.target", "task.features"))
    assert "data." in msg or "label" in msg, msg


def test_report_how_many_were_tried():
    """Runs last in this file: the counts the closing notes quote."""
    print(f"\nproperty inputs tried: {TRIED}")
    assert TRIED["values"] > 0 and TRIED["files"] > 0

"""The user's own data: a .npz (arrays x and y), .csv or .parquet file (a target column)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import signal
import threading
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from lrscale.config import ConfigError
from tasks.arrays import from_arrays, split
from tasks.base import Task, finite

NAME = "file"

EXTENSIONS = (".npz", ".csv", ".parquet")


@contextlib.contextmanager
def _ctrl_c_seen():
    """A list that gets an entry when Ctrl-C arrives: pandas' C reader turns the interrupt of
    its read into a parse error, which must not be reported as a damaged file."""
    seen: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return

    def on_sigint(signum, frame):
        seen.append(signum)
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, old)


class Table(NamedTuple):
    """One data file, read once: its examples, the feature columns used (None for .npz: x has no
    names), the digest of its bytes and what a user should hear about its columns."""

    x: np.ndarray
    y: np.ndarray
    features: list[str] | None
    sha256: str
    notes: tuple[str, ...]


def _frame(raw: bytes, path: Path, key: str) -> pd.DataFrame:
    with _ctrl_c_seen() as seen:
        try:
            f = io.BytesIO(raw)
            return pd.read_csv(f) if path.suffix.lower() == ".csv" else pd.read_parquet(f)
        except Exception as e:  # pandas and pyarrow raise many kinds on a damaged file
            if seen:
                raise KeyboardInterrupt from None
            why = " ".join(str(e).split())[:200]
            kind = path.suffix[1:]
            raise ConfigError(f"{key}: {path} cannot be read as {kind} ({why})") from None


def _npz(raw: bytes, path: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as f:
            missing = [a for a in ("x", "y") if a not in f.files]
            if missing:
                raise ConfigError(
                    f"{key}: {path} has no array {', '.join(missing)} (it has "
                    f"{', '.join(f.files) or 'none'}; an .npz task needs x and y)"
                )
            x, y = f["x"], f["y"]
    except ConfigError:
        raise
    except Exception as e:
        why = " ".join(str(e).split())[:200]
        raise ConfigError(f"{key}: {path} cannot be read as npz ({why})") from None
    if x.ndim < 1 or y.ndim != 1 or len(x) != len(y):
        raise ConfigError(
            f"{key}: {path}: x must have one row per example and y be 1-D of the same length "
            f"(x {x.shape}, y {y.shape})"
        )
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise ConfigError(f"{key}: {path}: x is {x.dtype}, not real numbers")
    return x, y


def _row_index(name, col: pd.Series) -> bool:
    """A column that numbers the rows: pandas' name for a header left empty (a saved index), or
    integers that are exactly 0..n-1 or 1..n in some order."""
    if str(name).startswith("Unnamed: "):
        return True
    if not pd.api.types.is_integer_dtype(col) or len(col) < 2:
        return False
    v = np.sort(col.to_numpy())
    return v[0] in (0, 1) and np.array_equal(v, np.arange(v[0], v[0] + len(v)))


def _default_features(df: pd.DataFrame, target: str, path: Path) -> tuple[list[str], list[str]]:
    """(features, notes): every numeric column but the target and row indices; the columns left
    out are named in a note."""
    features, text, index = [], [], []
    for c in df.columns:
        if c == target:
            continue
        if not pd.api.types.is_numeric_dtype(df[c]):
            text.append(c)
        elif _row_index(c, df[c]):
            index.append(c)
        else:
            features.append(c)
    if not features:
        raise ConfigError(f"task.features: {path} has no numeric column besides the target")
    left = [f"{c!r} (not numeric)" for c in text] + [f"{c!r} (a row index)" for c in index]
    notes = []
    if left:
        notes.append(
            f"task.path: {path}: left out of the features: {', '.join(left)}; name the features "
            "yourself with task.features=[...]"
        )
    return features, notes


def _columns(df: pd.DataFrame, t, path: Path, key: str, features: list[str] | None):
    """(x, y, features, notes) of a table: the features are named by the config, or (for a test
    file) by the training file, or chosen by `_default_features`; matched by name."""
    if not t.target:
        raise ConfigError(f"task.target: name the target column of {path}")
    names = ", ".join(map(str, df.columns))
    if t.target not in df.columns:
        which = "task.target" if key == "task.path" else key
        raise ConfigError(f"{which}: no column {t.target!r} in {path} (columns: {names})")
    notes: list[str] = []
    if features is None and t.features is not None:
        if t.target in t.features:
            raise ConfigError(
                f"task.features: {t.target!r} is the target (task.target); it cannot be a feature"
            )
        features = list(t.features)
    if features is None:
        features, notes = _default_features(df, t.target, path)
    missing = [c for c in features if c not in df.columns]
    if missing:
        which = "task.features" if key == "task.path" else key
        of = "" if key == "task.path" else f" (the features of {t.path})"
        raise ConfigError(
            f"{which}: no column {', '.join(map(repr, missing))} in {path}{of} (columns: {names})"
        )
    for c in features:
        if not pd.api.types.is_numeric_dtype(df[c]):
            which = "task.features" if key == "task.path" else key
            raise ConfigError(f"{which}: column {c!r} of {path} is not numeric")
        if pd.api.types.is_integer_dtype(df[c]) and (
            df[c].astype(np.float64).nunique() < df[c].nunique()
        ):
            raise ConfigError(
                f"{key}: column {c!r} of {path} holds integers beyond 2^53, which lose their "
                "differences as floating-point numbers"
            )
    y = df[t.target]
    if t.kind == "regression" and not (
        pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    ):
        raise ConfigError(
            f"task.target: column {t.target!r} of {path} is not numeric "
            "(task.kind=regression needs numbers)"
        )
    if t.kind == "classification" and y.isna().any():
        row = int(np.flatnonzero(y.isna().to_numpy())[0])
        raise ConfigError(f"task.target: column {t.target!r} of {path} is empty at row {row}")
    labels = y.astype(str) if y.dtype == object else y
    x = df[features].to_numpy(np.float64, na_value=np.nan)
    return x, labels.to_numpy(), features, notes


def load(path_str: str, key: str, t, features: list[str] | None = None) -> Table:
    """One file, read once and checked, or a one-line ConfigError naming it. `features`: the
    columns to take by name (those of the training file, for a test file)."""
    path = Path(path_str).expanduser()
    if not path.exists():
        raise ConfigError(f"{key}: no such file: {path.absolute()}")
    if path.is_dir():
        raise ConfigError(f"{key}: {path} is a directory, not a data file")
    if path.suffix.lower() not in EXTENSIONS:
        raise ConfigError(
            f"{key}: {path}: unknown extension {path.suffix or '(none)'!r} "
            f"(use {', '.join(EXTENSIONS)})"
        )
    try:
        raw = path.read_bytes()  # once: the digest is of the bytes trained on
    except OSError as e:
        raise ConfigError(f"{key}: {path} cannot be read ({e.strerror or e})") from None
    notes: list[str] = []
    if path.suffix.lower() == ".npz":
        for name in ("features", "target"):
            if getattr(t, name) is not None:
                raise ConfigError(
                    f"task.{name}: {path} is an .npz, whose arrays x and y have no columns to "
                    f"name: leave task.{name} unset"
                )
        x, y = _npz(raw, path, key)
        used = None
    else:
        df = _frame(raw, path, key)
        if df.empty:
            raise ConfigError(f"{key}: {path} has no rows")
        x, y, used, notes = _columns(df, t, path, key, features)
    where = f"{key}: {path_str}"
    finite(x.reshape(len(x), -1), where, "features")
    if t.kind == "regression":
        if not np.issubdtype(y.dtype, np.number) or y.dtype == bool:
            raise ConfigError(f"{where}: y is {y.dtype}, not numbers (task.kind=regression)")
        finite(y, where, "target")
    elif np.issubdtype(y.dtype, np.floating):
        finite(y, where, "labels")
    digest = hashlib.sha256(raw).hexdigest()[:16]
    return Table(x, y, used, digest, tuple(notes))


def _constant(x: np.ndarray, names: list[str] | None, path: str) -> list[str]:
    """A note naming the features that never vary (they carry nothing), if any."""
    x2 = x.reshape(len(x), -1)
    flat = np.flatnonzero(np.ptp(x2, axis=0) == 0) if len(x2) > 1 else []
    if not len(flat):
        return []
    which = [repr(names[i]) if names else f"column {i}" for i in flat[:10]]
    more = f" and {len(flat) - 10} more" if len(flat) > 10 else ""
    return [f"task.path: {path}: constant, so they carry nothing: {', '.join(which)}{more}"]


def build(cfg) -> Task:
    t = cfg.task
    train = load(t.path, "task.path", t)
    identity = {"task_path_sha256": train.sha256}
    if train.features is not None:
        identity["task_features_used"] = json.dumps(train.features)
    if t.test_path:
        test = _test(t, train)
        identity["task_test_path_sha256"] = test.sha256
        x_y, held_out = (train.x, train.y), (test.x, test.y)
    else:
        x_y, held_out = split(train.x, train.y, t.test_fraction, t.data_seed)
    return from_arrays(
        "file",
        t.kind,
        x_y,
        held_out,
        where=f"task.path: {t.path}",
        where_eval=f"task.test_path: {t.test_path}" if t.test_path else None,
        max_batch=max(cfg.sweep.batch_sizes),
        dtype=cfg.sweep.dtype,
        standardize=t.standardize,
        identity=identity,
        notes=train.notes + tuple(_constant(train.x, train.features, t.path)),
    )


def _test(t, train: Table) -> Table:
    """The held-out file, its columns matched by name to the training file's."""
    test_is_npz = Path(t.test_path).suffix.lower() == ".npz"
    if (train.features is None) != test_is_npz and Path(t.test_path).suffix.lower() in EXTENSIONS:
        raise ConfigError(
            f"task.test_path: {t.test_path} and task.path: {t.path} must both be .npz or both "
            "tables (.csv, .parquet): columns are matched by name"
        )
    test = load(t.test_path, "task.test_path", t, features=train.features)
    if train.x.shape[1:] != test.x.shape[1:]:
        raise ConfigError(
            f"task.test_path: {t.test_path} has examples of shape {test.x.shape[1:]}, "
            f"{t.path} of {train.x.shape[1:]}"
        )
    return test

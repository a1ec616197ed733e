"""The user's own data: a .npz (arrays x and y), .csv or .parquet file (a target column)."""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from sweeps.config import ConfigError
from tasks.base import Task, finite, from_arrays, split

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


def _frame(path: Path, key: str) -> pd.DataFrame:
    with _ctrl_c_seen() as seen:
        try:
            return pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
        except Exception as e:  # pandas and pyarrow raise many kinds on a damaged file
            if seen:
                raise KeyboardInterrupt from None
            why = " ".join(str(e).split())[:200]
            kind = path.suffix[1:]
            raise ConfigError(f"{key}: {path} cannot be read as {kind} ({why})") from None


def _npz(path: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
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


def _columns(df: pd.DataFrame, t, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(features, target) of a table, as the config names them."""
    if not t.target:
        raise ConfigError(f"task.target: name the target column of {path}")
    names = ", ".join(map(str, df.columns))
    if t.target not in df.columns:
        raise ConfigError(f"task.target: no column {t.target!r} in {path} (columns: {names})")
    if t.features is not None:
        for c in t.features:
            if c not in df.columns:
                raise ConfigError(f"task.features: no column {c!r} in {path} (columns: {names})")
        features = list(t.features)
    else:
        others = [c for c in df.columns if c != t.target]
        features = [c for c in others if pd.api.types.is_numeric_dtype(df[c])]
        if not features:
            raise ConfigError(f"task.features: {path} has no numeric column besides the target")
    for c in features:
        if not pd.api.types.is_numeric_dtype(df[c]):
            raise ConfigError(f"task.features: column {c!r} of {path} is not numeric")
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
    return df[features].to_numpy(np.float64, na_value=np.nan), labels.to_numpy()


def load(path_str: str, key: str, t) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of one file, checked, or a one-line ConfigError naming it."""
    x, y = _read(path_str, key, t)
    where = f"{key}: {path_str}"
    finite(x.reshape(len(x), -1), where, "features")
    if t.kind == "regression":
        if not np.issubdtype(y.dtype, np.number) or y.dtype == bool:
            raise ConfigError(f"{where}: y is {y.dtype}, not numbers (task.kind=regression)")
        finite(y, where, "target")
    elif np.issubdtype(y.dtype, np.floating):
        finite(y, where, "labels")
    return x, y


def _read(path_str: str, key: str, t) -> tuple[np.ndarray, np.ndarray]:
    path = Path(path_str).expanduser()
    if not path.exists():
        raise ConfigError(f"{key}: no such file: {path}")
    if path.is_dir():
        raise ConfigError(f"{key}: {path} is a directory, not a data file")
    if path.suffix.lower() not in EXTENSIONS:
        raise ConfigError(
            f"{key}: {path}: unknown extension {path.suffix or '(none)'!r} "
            f"(use {', '.join(EXTENSIONS)})"
        )
    if path.suffix.lower() == ".npz":
        return _npz(path, key)
    df = _frame(path, key)
    if df.empty:
        raise ConfigError(f"{key}: {path} has no rows")
    return _columns(df, t, path)


def build(cfg) -> Task:
    t = cfg.task
    x, y = load(t.path, "task.path", t)
    if t.test_path:
        train, held_out = (x, y), load(t.test_path, "task.test_path", t)
        if train[0].shape[1:] != held_out[0].shape[1:]:
            raise ConfigError(
                f"task.test_path: {t.test_path} has examples of shape {held_out[0].shape[1:]}, "
                f"{t.path} of {train[0].shape[1:]}"
            )
    else:
        train, held_out = split(x, y, t.test_fraction, t.data_seed)
    return from_arrays(
        "file",
        t.kind,
        train,
        held_out,
        where=f"task.path: {t.path}",
        max_batch=max(cfg.sweep.batch_sizes),
        dtype=cfg.sweep.dtype,
        standardize=t.standardize,
    )

"""Read results and curves tables below any mix of run dirs, multirun dirs and parquet files."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lrscale.results import CURVE_COLUMNS, CURVES, RESULT_COLUMNS, RESULTS


class AnalysisError(Exception):
    """Input the analysis cannot use; the message names the file or directory and says why."""


# Settings columns the analysis relies on (lrscale.config.settings writes more; they are kept).
SETTING_COLUMNS = {
    "model": "string",
    "optimizer": "string",
    "task": "string",
    "budget_kind": "string",
    "budget": "int64",
    "lr_min": "float64",
    "lr_max": "float64",
    "lr_num": "int64",
}
# Written since classification arrived; a table from before has none of them and is a
# regression/MSE table, so they are filled in: {column: (dtype, value when absent)}.
OPTIONAL = {
    "loss": ("string", "mse"),
    "task_kind": ("string", "regression"),
    "final_eval_accuracy": ("Float64", pd.NA),
}
# grid: written since curve points share one grid of sample counts; absent before (NaN here, and
# the across-data analysis falls back to step x batch size).
CURVE_OPTIONAL = {"eval_accuracy": ("Float64", pd.NA), "grid": ("float64", np.nan)}
# name -> how labels say it
LOSSES = {
    "mse": "MSE",
    "cross_entropy": "cross-entropy, nats",
    "bits_per_byte": "cross-entropy, bits per byte",
}
TASK_KINDS = ("regression", "classification", "language")
NATS_PER_BIT = np.log(2.0)
ACCURACY = ("final_eval_accuracy", "eval_accuracy")
# Optional even once lrscale.results declares them, so that old tables stay readable.
REQUIRED = {k: v for k, v in {**SETTING_COLUMNS, **RESULT_COLUMNS}.items() if k not in OPTIONAL}
CURVE_REQUIRED = {k: v for k, v in CURVE_COLUMNS.items() if k not in CURVE_OPTIONAL}
KEYS = ["sweep_id", "batch_size", "lr", "seed"]
LABEL_COLUMNS = ["sweep_id", "label", "model", "optimizer", "task", "budget_kind", "budget"]

# Arrow type checks per declared dtype; integers may come back as any width, nulls as null type.
_ARROW_OK = {
    "string": lambda t: (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or (pa.types.is_dictionary(t) and pa.types.is_string(t.value_type))
    ),
    "int64": pa.types.is_integer,
    "Int64": lambda t: pa.types.is_integer(t) or pa.types.is_null(t),
    "float64": lambda t: pa.types.is_floating(t) or pa.types.is_integer(t),
    "bool": pa.types.is_boolean,
    "Float64": lambda t: pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_null(t),
}


def _one_line(e: Exception) -> str:
    """pyarrow's messages span lines; an error here is one line."""
    return " ".join(str(e).split())


def _skip(p: Path) -> bool:
    """Hidden paths (.hydra, .tmp files being written) never hold results."""
    return any(part.startswith(".") for part in p.parts)


def find(paths: Iterable[str | Path], name: str = RESULTS) -> list[Path]:
    """Every file called `name` below the given dirs, plus the given files, without repeats."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            hits = sorted(f for f in p.rglob(name) if not _skip(f.relative_to(p)))
            if not hits:
                raise AnalysisError(f"{p}: no {name} found in this directory or below it")
            out += hits
        else:
            raise AnalysisError(f"{p}: no such file or directory")
    seen: dict[Path, Path] = {}
    for f in out:
        seen.setdefault(f.resolve(), f)
    return list(seen.values())


def check_schema(schema: pa.Schema, path: Path, required: dict[str, str]) -> None:
    """Raise AnalysisError naming `path` if a required column is missing or of the wrong type."""
    names = set(schema.names)
    missing = [c for c in required if c not in names]
    if missing:
        kind = "not an lrscale table" if len(missing) == len(required) else "missing columns"
        raise AnalysisError(f"{path}: {kind}: no column {', '.join(missing)}")
    bad = [
        f"{c} is {schema.field(c).type}, expected {dt}"
        for c, dt in required.items()
        if not _ARROW_OK[dt](schema.field(c).type)
    ]
    if bad:
        raise AnalysisError(f"{path}: wrong column types: {'; '.join(bad)}")


def with_defaults(df: pd.DataFrame, optional: dict = OPTIONAL) -> pd.DataFrame:
    """df with each optional column it lacks set to its default (hand-built tables lack them)."""
    missing = {
        c: np.full(len(df), v, object) if dt == "string" else pd.array([v] * len(df), dtype=dt)
        for c, (dt, v) in optional.items()
        if c not in df.columns
    }
    return df.assign(**missing) if missing else df


def check_values(df: pd.DataFrame, path: Path) -> None:
    """Raise AnalysisError naming `path` for a loss or task kind we do not know, or an accuracy
    outside [0, 1]."""
    for c, known in (("loss", LOSSES), ("task_kind", TASK_KINDS)):
        if c in df.columns and (bad := sorted(set(df[c]) - set(known))):
            raise AnalysisError(f"{path}: unknown {c} {bad[0]!r} (known: {', '.join(known)})")
    for c in ACCURACY:
        if c in df.columns:
            v = df[c].to_numpy(float, na_value=np.nan)
            if (out := v[(v < 0) | (v > 1)]).size:
                raise AnalysisError(f"{path}: {c} {out[0]:g} is outside [0, 1]")


def read_table(path: Path, required: dict[str, str], optional: dict = OPTIONAL) -> pd.DataFrame:
    """One checked parquet file as a DataFrame with the declared dtypes, optional columns filled."""
    try:
        schema = pq.read_schema(path)
    except (OSError, ValueError, pa.ArrowException) as e:  # ValueError: undecodable names
        raise AnalysisError(f"{path}: not a readable parquet file ({_one_line(e)})") from None
    check_schema(schema, path, required)
    present = {c: dt for c, (dt, _) in optional.items() if c in schema.names}
    check_schema(schema, path, present)
    try:
        table = pq.read_table(path)
        table.validate(full=True)  # catches, e.g., invalid UTF-8 in a string column
        df = table.to_pandas()
        for c, dt in {**required, **present}.items():
            df[c] = df[c].astype(str if dt == "string" else dt)
    except Exception as e:
        raise AnalysisError(f"{path}: corrupt parquet file ({_one_line(e)})") from None
    if df.empty:
        raise AnalysisError(f"{path}: the table has no rows")
    check_values(df, path)
    return with_defaults(df, optional)


def _concat(frames: list[pd.DataFrame], files: list[Path]) -> pd.DataFrame:
    """Concatenate, refusing columns whose type differs between files."""
    first: dict[str, tuple[str, Path]] = {}
    for df, f in zip(frames, files, strict=True):
        for c, dt in df.dtypes.items():
            if df[c].isna().all():  # an all-null column fits any type
                continue
            kind = "string" if pd.api.types.is_string_dtype(dt) else dt.kind
            if c not in first:
                first[c] = (kind, f)
            elif first[c][0] != kind:
                raise AnalysisError(
                    f"{f}: mixed schemas: column {c} is {dt} here but {first[c][0]} "
                    f"in {first[c][1]}"
                )
    return pd.concat(frames, ignore_index=True)


def _read_all(paths, name: str, required: dict[str, str], optional: dict, skip_bad: bool):
    files = find(paths, name)
    frames, used = [], []
    for f in files:
        try:
            df = read_table(f, required, optional)
        except AnalysisError as e:
            if not skip_bad:
                raise
            warnings.warn(f"skipped {e}", stacklevel=3)
            continue
        df["source"] = str(f.parent)
        frames.append(df)
        used.append(f)
    if not frames:
        where = ", ".join(map(str, paths))
        raise AnalysisError(f"{where}: no readable {name} (all files were skipped)")
    return _concat(frames, used), used


def _task(per: pd.DataFrame) -> pd.Series:
    """The task as labels name it: a file or text task by its file's name."""
    task = per["task"].astype(str)
    if "task_path" in per.columns:
        name = per["task_path"].map(lambda p: Path(p).name if isinstance(p, str) else None)
        task = task.where(~task.isin(["file", "text"]) | name.isna(), name)
    return task


def labels(df: pd.DataFrame) -> pd.Series:
    """A short name per sweep: model+optimizer (on a task other than the pinned regression),
    plus the settings that tell apart namesakes."""
    per = df.drop_duplicates("sweep_id").set_index("sweep_id")
    task = _task(per)
    base = per["model"] + "+" + per["optimizer"]
    base = base.where(task.eq("regression"), base + " on " + task)
    lane = {*RESULT_COLUMNS, "final_eval_accuracy", "source", "label"}
    settings = [c for c in per.columns if c not in lane]
    out = base.copy()
    for _, ids in base.groupby(base).groups.items():
        if len(ids) < 2:
            continue
        grp = per.loc[ids, settings]
        vary = [c for c in settings if grp[c].astype(str).nunique() > 1][:3]
        for i in ids:
            extra = ", ".join(f"{c}={grp.at[i, c]}" for c in vary) or i[:8]
            out[i] = f"{base[i]} ({extra})"
    if out.duplicated().any():  # same settings shown, different ids: fall back to the hash
        out = out + " [" + out.index.str[:8] + "]"
    return df["sweep_id"].map(out)


def in_bits(df: pd.DataFrame, rows: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """Losses of a byte-level language task in bits per byte: the lanes train on cross-entropy
    in nats, the analysis shows bits (nats / ln 2; one token is one byte); eta* is the same."""
    if rows.any():
        df[columns] = df[columns].astype(float)
        df.loc[rows, columns] = df.loc[rows, columns] / NATS_PER_BIT
    return df


def load(paths: Iterable[str | Path] | str | Path, skip_bad: bool = False) -> pd.DataFrame:
    """Every results table below `paths` as one tidy frame with a `label` per sweep."""
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    if not paths:
        raise AnalysisError("no input paths given")
    df, files = _read_all(paths, RESULTS, REQUIRED, OPTIONAL, skip_bad)
    n = len(df)
    df = df.drop_duplicates(KEYS, keep="first").reset_index(drop=True)
    if len(df) < n:
        warnings.warn(
            f"{n - len(df)} rows appear in more than one of {len(files)} files; kept the first",
            stacklevel=2,
        )
    # lrscale writes +inf for a diverged lane and never NaN: a NaN loss, or a lane without its
    # lr, batch size or seed, is foreign or damaged.
    lr = df["lr"].to_numpy(float, na_value=np.nan)
    nan = df[["final_eval_loss", "final_train_loss", "batch_size", "seed"]].isna().any(axis=1)
    nan = nan.to_numpy() | ~(np.isfinite(lr) & (lr > 0))
    if nan.any():
        where = sorted(df.loc[nan, "source"].unique())
        what = f"{nan.sum()} rows with a NaN loss, or without a finite lr > 0, batch size or seed,"
        what += f" in {', '.join(f'{w}/{RESULTS}' for w in where)}"
        if not skip_bad:
            raise AnalysisError(f"{what} (lrscale never writes NaN; --skip-bad drops these rows)")
        warnings.warn(f"dropped {what}", stacklevel=2)
        df = df[~nan].reset_index(drop=True)
    # The contract is +inf for diverged lanes; any other non-finite loss counts as diverged.
    for c in ("final_eval_loss", "final_train_loss"):
        v = df[c].to_numpy(float)
        df[c] = np.where(df["diverged"].to_numpy() | ~np.isfinite(v), np.inf, v)
    # ... and an accuracy of 0 where it has one (the contract's value for a diverged lane)
    acc = df["final_eval_accuracy"]
    df["final_eval_accuracy"] = acc.mask(np.isinf(df["final_eval_loss"]) & acc.notna(), 0.0)
    lang = df["task_kind"].eq("language").to_numpy()
    df = in_bits(df, lang, ["final_eval_loss", "final_train_loss"])
    df.loc[lang, "loss"] = "bits_per_byte"
    df["label"] = labels(df)
    df = df.sort_values(["label", "batch_size", "lr", "seed"]).reset_index(drop=True)
    df.attrs["dropped_nan_rows"] = int(nan.sum())
    return df


def load_curves(paths: Iterable[str | Path] | str | Path, skip_bad: bool = False) -> pd.DataFrame:
    """Every curves table below `paths` (loss at log-spaced steps per lane)."""
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    df, _ = _read_all(paths, CURVES, CURVE_REQUIRED, CURVE_OPTIONAL, skip_bad)
    df = in_bits(df, df["task"].eq("text").to_numpy(), ["train_loss", "eval_loss"])
    return df.sort_values(["sweep_id", "batch_size", "lr", "seed", "step"]).reset_index(drop=True)


def sweeps(df: pd.DataFrame) -> pd.DataFrame:
    """One row per sweep: its labels and the size of its grid."""
    g = df.groupby(LABEL_COLUMNS, sort=True, dropna=False)
    return g.agg(
        batch_sizes=("batch_size", "nunique"),
        lrs=("lr", "nunique"),
        seeds=("seed", "nunique"),
        lanes=("lr", "size"),
        diverged=("diverged", "sum"),
        source=("source", "first"),
    ).reset_index()

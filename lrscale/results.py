"""Results I/O: the two tables of a job and their run metadata, written atomically.

A job directory holds
  results.parquet   one row per batch_size x lr x seed (RESULT_COLUMNS plus the sweep settings)
  _curves.parquet   losses at up to curve_points points per lane, on a grid of sample counts
                    shared by every batch size (CURVE_COLUMNS)
The leading underscore keeps the curves out of `pandas.read_parquet(<dir>)`, which therefore
reads the results of every job below a directory as one table. Run metadata (versions, device,
git commit, compile and run seconds per batch size, the full config) is JSON in the key-value
metadata of both files under the key `lrscale`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from lrscale.files import atomic_write

if TYPE_CHECKING:
    import pandas as pd

RESULTS = "results.parquet"
CURVES = "_curves.parquet"
# the gradient noise scale measured on a sweep (sweeps.noise_scale), beside its results: per seed
# and pooled over seeds (a null seed), at init and after one lane's training
NOISE_SCALE = "_noise_scale.parquet"
META_KEY = b"lrscale"

# Columns every results table has, after the settings columns of `lrscale.config.settings`.
RESULT_COLUMNS = {
    "sweep_id": "string",
    "batch_size": "int64",
    "lr": "float64",
    "lr_index": "int64",
    "seed": "int64",
    "steps": "int64",
    "samples": "int64",
    "final_train_loss": "float64",
    "final_eval_loss": "float64",
    "diverged": "bool",
    "diverged_step": "Int64",  # null unless diverged
}
# Written since the real-data tasks: the loss's name, the task's kind and accuracy (null where
# the task has none, 0 for diverged lanes). Tables of the regression task written before lack them.
METRIC_COLUMNS = {"loss": "string", "task_kind": "string", "final_eval_accuracy": "Float64"}
CURVE_COLUMNS = {
    "sweep_id": "string",
    "model": "string",
    "optimizer": "string",
    "task": "string",
    "budget_kind": "string",
    "batch_size": "int64",
    "lr": "float64",
    "seed": "int64",
    "step": "int64",
    # the value of the curve grid shared by every batch size that this point stands for: samples
    # under a sample budget (at step ~ grid / batch_size), steps under a step budget; 0 at step 0
    "grid": "float64",
    "train_loss": "float64",  # mean minibatch loss since the previous point (+inf once diverged)
    "eval_loss": "float64",  # population MSE (linear) or held-out MSE (MLP) at this step
}
CURVE_METRIC_COLUMNS = {"eval_accuracy": "Float64"}  # like final_eval_accuracy


def write_table(df: pd.DataFrame, path: Path, meta: dict) -> None:
    """Write df to path, whole or not at all (lrscale.files.atomic_write), with the run
    metadata."""
    import pyarrow as pa  # here, not at the top: the command line's start-up does without it
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), META_KEY: json.dumps(meta, default=str).encode()}
    )
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def read_meta(path: Path) -> dict:
    """The run metadata stored in a results or curves file."""
    import pyarrow.parquet as pq  # here, not at the top: the command line's start-up does without

    md = pq.read_schema(path).metadata or {}
    return json.loads(md[META_KEY]) if META_KEY in md else {}

"""The pinned regression task gives the numbers it always gave (a stored table of small sweeps).

Regenerate the table only when the pinned task itself changes on purpose:
    python -m tests.test_regression_pinned
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tests.conftest import SMALL, make_config

STORED = Path(__file__).parent / "data" / "regression_reference.parquet"
CASES = {
    "linear-sgd-online": [],
    "mlp-adam-online": ["model=mlp", "optimizer=adam"],
    "mlp-sgd-ntrain-steps": [
        "model=mlp",
        "task.n_train=48",
        "sweep.budget.samples=null",
        "sweep.budget.steps=40",
    ],
}
COLUMNS = ["case", "batch_size", "lr", "seed", "final_train_loss", "final_eval_loss", "diverged"]


def table(tmp: Path) -> pd.DataFrame:
    from sweeps.sweep import run_sweep

    frames = []
    for name, extra in CASES.items():
        cfg = make_config(*SMALL, "sweep.batch_sizes=[1,8]", *extra)
        df = run_sweep(cfg, tmp / name)
        frames.append(df.assign(case=name)[COLUMNS])
    return pd.concat(frames, ignore_index=True)


def test_pinned_regression_results_are_unchanged(tmp_path):
    new, old = table(tmp_path), pd.read_parquet(STORED)
    pd.testing.assert_frame_equal(
        new[COLUMNS[:4] + ["diverged"]], old[COLUMNS[:4] + ["diverged"]], check_dtype=False
    )
    # Equal to the bit with the XLA that wrote the table; older XLAs (jax 0.8, 0.9) differ by up
    # to 8e-5 relative in a few float32 lanes. A change to the task itself moves every number.
    for c in ("final_train_loss", "final_eval_loss"):
        np.testing.assert_allclose(new[c], old[c], rtol=2e-4, err_msg=c)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        table(Path(d)).to_parquet(STORED, index=False)
    print(f"wrote {STORED}")

"""One clear, stable answer per sweep: its numbers are its own, its intervals stay inside what was
measured, and the report and the console open with its law and exponent."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import tables
from analysis.pipeline import analyse
from tests.data.analysis import synth

SMALL = dict(batch_sizes=(1, 4, 16, 64, 256), lrs=(1e-4, 10.0, 21), seeds=3)


def _rows(a, sweep_id: str) -> dict[str, pd.DataFrame]:
    """Every analysis table's rows of one sweep."""
    return {
        name: df[df["sweep_id"] == sweep_id].reset_index(drop=True)
        for name, df in tables.frames(a).items()
        if "sweep_id" in df.columns
    }


def test_a_sweeps_numbers_are_its_own_whatever_is_analysed_beside_it(tmp_path):
    one = synth.write(tmp_path / "one", synth.results(lambda B: 0.01 / (1 + 64 / B), **SMALL))
    sid = pd.read_parquet(one / "results.parquet")["sweep_id"].iloc[0]
    others = [
        synth.write(tmp_path / "two", synth.results(lambda B: 1e-3 * B**0.5, model="mlp", **SMALL)),
        synth.write(
            tmp_path / "three",
            synth.results(lambda B: 2e-3 * B**0.3, optimizer="adam", seed=3, **SMALL),
        ),
    ]
    alone, beside = analyse([one], n_boot=200), analyse([one, *others], n_boot=200)
    a, b = _rows(alone, sid), _rows(beside, sid)
    assert set(a) == set(b) and len(a["optima_budget.parquet"]) == 5
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)
    assert np.isfinite(a["optima_budget.parquet"]["eta_lo"]).all()

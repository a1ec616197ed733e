"""The last input holes: ignored keys, foreign NaN losses, and what each command's --help says."""

from __future__ import annotations

import numpy as np
import pytest

from analysis import plot, report
from analysis.load import AnalysisError, load
from sweeps import bench, noise_scale
from sweeps.options import unused
from tests.conftest import make_config
from tests.data.analysis import synth


def test_keys_the_chosen_option_ignores_are_named_in_one_line_each_group():
    cfg = make_config("optimizer=sgd", "optimizer.b1=0.5", "optimizer.eps=0.1", "model.width=8")
    assert unused(cfg) == [
        "optimizer.b1, optimizer.eps: ignored by optimizer=sgd (it uses momentum, nesterov)",
        "model.width: ignored by model=linear (it uses none of them)",
    ]
    assert unused(make_config("model=mlp", "optimizer=adam", "optimizer.b1=0.5")) == []


def test_a_nan_loss_is_refused_naming_the_file_or_dropped_and_counted(tmp_path):
    df = synth.results(lambda B: 1e-3 * B**0.5)
    df.loc[df.index[[2, 7, 11]], "final_eval_loss"] = np.nan
    synth.write(tmp_path / "run", df)
    with pytest.raises(AnalysisError, match=r"3 rows with a NaN loss, .* in .*run/results.parquet"):
        load(tmp_path)
    with pytest.warns(UserWarning, match="dropped 3 rows"):
        kept = load(tmp_path, skip_bad=True)
    assert len(kept) == len(df) - 3 and kept.attrs["dropped_nan_rows"] == 3
    assert not kept["final_eval_loss"].isna().any()


@pytest.mark.parametrize(
    "main,name",
    [
        (plot.main, "analysis.plot"),
        (report.main, "analysis.report"),
        (noise_scale.main, "sweeps.noise_scale"),
        (bench.main, "sweeps.bench"),
    ],
)
def test_help_says_what_the_command_does_its_arguments_and_an_example(main, name, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and out.startswith(f"usage: python -m {name}")
    assert "options:" in out and f"example: python -m {name}" in out
    assert f"lrscale-{name.split('.')[-1].replace('_', '-')}" in out

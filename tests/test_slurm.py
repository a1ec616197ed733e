"""Multirun through hydra-submitit-launcher: jobs in separate processes, one merged sweep dir."""

from __future__ import annotations

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from lrscale.config import register
from lrscale.results import RESULTS
from tests.conftest import CONF, SMALL, cli


@pytest.mark.slow
def test_submitit_local_multirun_merges_both_jobs(tmp_path):
    sweep_dir = tmp_path / "multi"
    r = cli(
        "-m", "hydra/launcher=submitit_local", *SMALL, "model=linear,mlp",
        f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (sweep_dir / "0" / RESULTS).exists() and (sweep_dir / "1" / RESULTS).exists()
    assert (sweep_dir / ".submitit").is_dir()  # submitit's logs, hidden from the reader
    df = pd.read_parquet(sweep_dir)
    assert sorted(df["model"].unique()) == ["linear", "mlp"]
    assert len(df) == 2 * 3 * 6 * 2
    assert df["sweep_id"].nunique() == 2


def test_launcher_configs_compose_with_overrides(tmp_path):
    register()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "hydra/launcher=slurm",
                "hydra.launcher.partition=gpu",
                "hydra.launcher.gpus_per_node=2",
                f"hydra.sweep.dir={tmp_path}",
            ],
            return_hydra_config=True,
        )
        launcher = cfg.hydra.launcher
        assert launcher._target_.endswith("SlurmLauncher")
        assert launcher.partition == "gpu" and launcher.gpus_per_node == 2
        assert launcher.submitit_folder == f"{tmp_path}/.submitit/%j"
        for key in ("timeout_min", "cpus_per_task", "mem_gb", "array_parallelism"):
            assert launcher[key] is not None, key
        local = compose("config", overrides=["hydra/launcher=local"], return_hydra_config=True)
        assert local.hydra.launcher._target_.endswith("LocalLauncher")

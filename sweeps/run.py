"""Command line: `python -m sweeps.run [overrides]`; one Hydra job = one sweep."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from sweeps.config import ConfigError, register, to_config, validate
from sweeps.results import RESULTS

register()


def _tidy_sweep_root(hc) -> None:
    """Move multirun.yaml into .hydra/: pandas.read_parquet(<sweep dir>) then sees parquet only."""
    if hc.mode.name != "MULTIRUN":
        return
    root = Path(hc.sweep.dir)
    (root / ".hydra").mkdir(exist_ok=True)
    try:
        os.replace(root / "multirun.yaml", root / ".hydra" / "multirun.yaml")
    except FileNotFoundError:
        pass  # another job of the sweep moved it first


def _discard(out_dir: Path) -> None:
    """Remove what Hydra wrote for a job refused at start-up, and only that."""
    if all(p.name == ".hydra" for p in out_dir.iterdir()):
        shutil.rmtree(out_dir)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(dcfg: DictConfig) -> None:
    hc = HydraConfig.get()
    logging.getLogger("jax").setLevel(logging.WARNING)  # no note on absent TPU plugins
    out_dir = Path(hc.runtime.output_dir)
    try:
        cfg = validate(to_config(dcfg))
    except ConfigError as e:
        _discard(out_dir)
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    _tidy_sweep_root(hc)
    from sweeps.sweep import run_sweep, summary  # jax loads only for a config that passed

    df = run_sweep(cfg, out_dir)
    print(summary(df).to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"results: {out_dir / RESULTS}")


if __name__ == "__main__":
    main()

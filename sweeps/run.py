"""Command line: `python -m sweeps.run [overrides]`; one Hydra job = one sweep."""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from sweeps.config import ConfigError, register, to_config, validate
from sweeps.hooks import draw_figures, fail, tidy_sweep_root  # also registers the dir resolver
from sweeps.results import RESULTS

register()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(dcfg: DictConfig) -> None:
    hc = HydraConfig.get()
    logging.getLogger("jax").setLevel(logging.WARNING)  # no note on absent TPU plugins
    out_dir = Path(hc.runtime.output_dir)
    try:
        cfg = validate(to_config(dcfg))
    except ConfigError as e:
        fail(str(e), out_dir)
    tidy_sweep_root(hc)
    from sweeps.sweep import Interrupted, OutputError, ResumeError, run_sweep, summary

    try:
        df = run_sweep(cfg, out_dir)
    except (ConfigError, ResumeError, OutputError) as e:
        fail(str(e), out_dir)
    except Interrupted as e:
        again = [*hc.overrides.task, f"hydra.run.dir={out_dir}"]
        print(f"{e}; resume with:\n  python -m sweeps.run {shlex.join(again)}", file=sys.stderr)
        sys.exit(128 + e.signum)
    print(summary(df).to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"results: {out_dir / RESULTS}")
    if cfg.plot and hc.mode.name != "MULTIRUN":  # a multirun is drawn whole by PlotSweep
        draw_figures(out_dir)


if __name__ == "__main__":
    main()

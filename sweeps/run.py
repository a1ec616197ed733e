"""Command line: `python -m sweeps.run [overrides]` or `lrscale-sweep`; one Hydra job, one sweep."""

from __future__ import annotations

import logging
import os
import shlex
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from sweeps.checks import unused, validate
from sweeps.config import ConfigError, register, to_config
from sweeps.hooks import draw_figures, fail, tidy_sweep_root  # also registers the dir resolver
from sweeps.results import RESULTS

register()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(dcfg: DictConfig) -> None:
    hc = HydraConfig.get()
    logging.getLogger("jax").setLevel(logging.WARNING)  # no note on absent TPU plugins
    out_dir = Path(hc.runtime.output_dir)
    try:
        cfg = validate(to_config(dcfg))
    except ConfigError as e:
        fail(str(e), out_dir)
    for note in unused(cfg):
        print(f"note: {note}", file=sys.stderr)
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


def hydra_error(e: Exception) -> str:
    """Hydra's error for a bad override or option, in one line: `<key>: <what is wrong>`."""
    if isinstance(e, MissingConfigException) and e.missing_cfg_file:
        group, _, option = e.missing_cfg_file.rpartition("/")
        options = ", ".join(e.options or [])
        return f"{group or 'config'}: no option {option!r} (options: {options})"
    cause = e.__cause__ if isinstance(e.__cause__, OmegaConfBaseException) else e
    key = getattr(cause, "full_key", None) or "overrides"
    return f"{key}: {str(cause).splitlines()[0] if str(cause) else type(cause).__name__}"


def cli() -> None:
    """The console entry point: Hydra's own errors become one `error: <key>: ...` line."""
    full = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra then raises instead of printing its report
    try:
        main()
    except (HydraException, OmegaConfBaseException) as e:
        if full:
            raise
        print(f"error: {hydra_error(e)}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    cli()

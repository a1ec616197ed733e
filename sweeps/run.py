"""Command line: `python -m sweeps.run [overrides]` or `lrscale-sweep`; one Hydra job, one sweep."""

from __future__ import annotations

import logging
import os
import re
import shlex
import sys
import threading
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sweeps.checks import unused, validate
from sweeps.config import ConfigError, register, to_config
from sweeps.hooks import (  # also registers the directory resolver
    draw_figures,
    fail,
    results_safe,
    tidy_sweep_root,
)
from sweeps.results import RESULTS

register()

# What a Ctrl-C outside the sweep's own signal handling leaves behind, said by `cli`.
_interrupted = {"note": "no results were written"}


def dir_override(key: str, path: str) -> str:
    """`key=path` as one shell word that Hydra parses back to path (spaces, non-ASCII, quotes)."""
    if re.fullmatch(r"[A-Za-z0-9_\-+./:%@~]+", path):
        return f"{key}={path}"
    q = "'" if "'" not in path else '"'
    escaped = path.replace(q, "\\" + q)
    word = f"{key}={q}{escaped}{q}"  # Hydra's quoted value
    return f'"{word}"' if not re.search(r'["$`\\!]', word) else shlex.quote(word)


def resume_command(hc, out_dir: Path) -> str:
    """The shell command that resumes this run, or in a multirun every job of it."""
    if hc.mode.name == "MULTIRUN":
        dirs = ("hydra.sweep.dir=", "hydra.run.dir=")
        args = [shlex.quote(a) for a in sys.argv[1:] if not a.startswith(dirs)]
        args += [dir_override("hydra.sweep.dir", str(Path(hc.sweep.dir).absolute()))]
    else:
        args = [*map(shlex.quote, hc.overrides.task), dir_override("hydra.run.dir", str(out_dir))]
    return f"python -m sweeps.run {' '.join(args)}"


def save_records(hc, dcfg: DictConfig, out_dir: Path) -> None:
    """Hydra's records of the job (and of its multirun), written once the job holds its
    directory."""
    tidy_sweep_root(hc)
    rec = out_dir / ".hydra"
    rec.mkdir(exist_ok=True)
    OmegaConf.save(dcfg, rec / "config.yaml")
    OmegaConf.save(OmegaConf.create({"hydra": OmegaConf.to_container(hc)}), rec / "hydra.yaml")
    OmegaConf.save(hc.overrides.task, rec / "overrides.yaml")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(dcfg: DictConfig) -> None:
    hc = HydraConfig.get()
    logging.getLogger("jax").setLevel(logging.WARNING)  # no note on absent TPU plugins
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # nor on its font cache
    out_dir = Path(hc.runtime.output_dir)
    try:
        cfg = validate(to_config(dcfg))
    except ConfigError as e:
        fail(str(e), out_dir)
    for note in unused(cfg):
        print(f"note: {note}", file=sys.stderr)
    from sweeps.rows import summary
    from sweeps.rundir import OutputError, ResumeError
    from sweeps.sweep import Interrupted, run_sweep

    # the figures' imports and first work go ahead in the background while the sweep trains
    ahead = threading.Thread(target=_prepare_figures, args=(cfg,), daemon=True)
    if cfg.plot.enabled:
        ahead.start()
    resume = resume_command(hc, out_dir)
    if hc.mode.name == "MULTIRUN":
        _interrupted["note"] = f"finished jobs are kept; resume with:\n  {resume}"
    try:
        df = run_sweep(cfg, out_dir, started=lambda: save_records(hc, dcfg, out_dir))
    except (ConfigError, OutputError) as e:
        fail(str(e), out_dir)
    except ResumeError as e:  # the directory is another sweep's or process's: leave it alone
        tidy_sweep_root(hc, refused=True)
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as e:
        print(f"{e}; resume with:\n  {resume}", file=sys.stderr)
        sys.exit(128 + e.signum)
    print(summary(df).to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"results: {out_dir / RESULTS}")
    _interrupted["note"] = results_safe(out_dir)
    if cfg.plot.enabled:
        ahead.join()  # in a multirun too: its figures, drawn whole by PlotSweep, never race it
        if hc.mode.name != "MULTIRUN":
            draw_figures(out_dir, cfg.plot.formats, cfg.plot.figures)


def hydra_error(e: Exception) -> str:
    """Hydra's error for a bad override or option, in one line: `<key>: <what is wrong>`."""
    if isinstance(e, MissingConfigException) and e.missing_cfg_file:
        group, _, option = e.missing_cfg_file.rpartition("/")
        options = ", ".join(e.options or [])
        return f"{group or 'config'}: no option {option!r} (options: {options})"
    cause = e.__cause__ if isinstance(e.__cause__, OmegaConfBaseException) else e
    key = getattr(cause, "full_key", None) or "overrides"
    return f"{key}: {str(cause).splitlines()[0] if str(cause) else type(cause).__name__}"


def _prepare_figures(cfg) -> None:
    """Import the figure modules and warm them up (analysis.plot.warm_up); a failure is left to
    the figures themselves, which report it."""
    try:
        from analysis.plot import warm_up
        from sweeps.config import settings

        warm_up(settings(cfg), cfg.sweep.batch_sizes)
    except Exception:
        pass


def plot_shorthand(argv: list[str]) -> list[str]:
    """`plot=false` (true, a multirun's `plot=true,false`, `+plot=...`) is short for
    `plot.enabled=...`; `plot={...}` sets the whole node and stays as it is."""
    return [re.sub(r"^(\+{0,2})plot=(?!\{)", r"\1plot.enabled=", a) for a in argv]


def cli() -> None:
    """The console entry point: Hydra's own errors become one `error: <key>: ...` line, and a
    Ctrl-C says what it left behind."""
    sys.argv[1:] = plot_shorthand(sys.argv[1:])
    full = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra then raises instead of printing its report
    try:
        main()
    except (HydraException, OmegaConfBaseException) as e:
        if full:
            raise
        print(f"error: {hydra_error(e)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"\ninterrupted: {_interrupted['note']}", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    cli()

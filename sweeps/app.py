"""The sweep command: one Hydra job trains one sweep (`python -m sweeps.run` starts it)."""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lrscale import interrupts
from lrscale.checks import validate
from lrscale.config import ConfigError, register, settings, to_config
from lrscale.results import RESULTS
from sweeps import callbacks, command, multirun
from sweeps.drawing import draw_figures, prepare_figures, results_safe

register()
callbacks.register_resolver()

# What an interrupt leaves behind, said by `cli`, and the job directory to tidy if it holds nothing.
_left: dict = {"note": "no results were written", "dir": None}


def save_records(hc, dcfg: DictConfig, out_dir: Path) -> None:
    """Hydra's records of the job (and of its multirun), written once the job holds its
    directory."""
    callbacks.tidy_sweep_root(hc)
    rec = out_dir / ".hydra"
    if not rec.exists():
        rec.mkdir()
        callbacks.wrote_records(out_dir)
    OmegaConf.save(dcfg, rec / "config.yaml")
    OmegaConf.save(OmegaConf.create({"hydra": OmegaConf.to_container(hc)}), rec / "hydra.yaml")
    OmegaConf.save(hc.overrides.task, rec / "overrides.yaml")


def fail(msg: str, hc, out_dir: Path) -> None:
    """Refuse the job in one line (exit 2), leaving nothing it made; in a multirun, say how the
    jobs before it are resumed."""
    callbacks.discard(out_dir)
    if hc.mode.name == "MULTIRUN" and hc.job.num > 0:
        msg += (
            "; the jobs before it are kept: once this is fixed, resume with:\n  "
            + command.resume_command(hc, out_dir)
        )
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(2)


@hydra.main(version_base="1.3", config_path="pkg://sweeps.conf", config_name="config")
def main(dcfg: DictConfig) -> None:
    hc = HydraConfig.get()
    logging.getLogger("jax").setLevel(logging.WARNING)  # no note on absent TPU plugins
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # nor on its font cache
    out_dir = Path(hc.runtime.output_dir)
    _left["dir"] = out_dir
    try:
        cfg = validate(to_config(dcfg))
    except ConfigError as e:
        fail(str(e), hc, out_dir)
    from sweeps.options import unused

    for note in unused(cfg):
        print(f"note: {note}", file=sys.stderr)
    from sweeps.resume import NoRoomError
    from sweeps.rows import summary
    from sweeps.rundir import ResumeError
    from sweeps.sweep import Interrupted, run_sweep

    interrupts.check()
    # the figures' imports and first work go ahead in the background while the sweep trains
    args = (settings(cfg), cfg.sweep.batch_sizes)
    ahead = threading.Thread(target=prepare_figures, args=args, daemon=True)
    if cfg.plot.enabled:
        ahead.start()
    resume = command.resume_command(hc, out_dir)
    if hc.mode.name == "MULTIRUN":
        _left["note"] = f"finished jobs are kept; resume with:\n  {resume}"
    try:
        df = run_sweep(cfg, out_dir, started=lambda: save_records(hc, dcfg, out_dir))
    except (ConfigError, NoRoomError) as e:
        fail(str(e), hc, out_dir)
    except ResumeError as e:  # the directory is another sweep's or process's: leave it alone
        callbacks.tidy_sweep_root(hc, refused=True)
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as e:
        if not e.done:
            callbacks.discard(out_dir)
        print(f"{e}; resume with:\n  {resume}", file=sys.stderr)
        interrupts.exit_now(128 + e.signum)
    _left["dir"] = None  # holds results now: an interrupt leaves it as it is
    _left["note"] = results_safe(out_dir)
    print(summary(df).to_string(float_format=lambda v: f"{v:.4g}", na_rep="–"))
    print(f"results: {out_dir / RESULTS}")
    if cfg.plot.enabled:
        ahead.join()  # in a multirun too: its figures, drawn whole by PlotSweep, never race it
        if hc.mode.name != "MULTIRUN":
            draw_figures(out_dir, cfg.plot.formats, cfg.plot.figures)


def cli() -> None:
    """The console entry point (after `sweeps.run` installed lrscale.interrupts): a multirun's
    jobs checked before any starts, Hydra's own errors as one `error: <key>: ...` line, and an
    interrupt as one line saying what it left behind."""
    argv = sys.argv[1:] = command.normalised(sys.argv[1:])
    full = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra then raises instead of printing its report
    try:
        why = command.renamed_option(argv) or (
            multirun.check(argv) if "-m" in argv or "--multirun" in argv else None
        )
        if why:
            print(f"error: {why}", file=sys.stderr)
            sys.exit(2)
        interrupts.check()
        try:
            main()
        finally:  # a full disk under stdout is said here, not at the interpreter's exit
            sys.stdout.flush()
    except (HydraException, OmegaConfBaseException) as e:
        if full:
            raise
        print(f"error: {command.hydra_error(e, argv)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        if _left["dir"] is not None:
            callbacks.discard(_left["dir"])
        interrupts.stop("", _left["note"])
    except OSError as e:  # what nothing else catches: the output cannot be written (a full disk)
        print(f"error: {e.strerror or e}", file=sys.stderr)
        interrupts.exit_now(2)

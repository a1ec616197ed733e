"""Hydra hooks of the command line: run-directory choice, start-up checks, figures at the end."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from sweeps.config import ConfigError, to_config
from sweeps.results import RESULTS


def latest_dir(base: str, fresh: str, resume: bool) -> str:
    """The newest run below base that holds results when resuming, else base/fresh."""
    if resume:
        runs = sorted(p.parent for p in Path(base).glob(f"*/{RESULTS}"))
        runs += sorted(p.parent.parent for p in Path(base).glob(f"*/*/{RESULTS}"))
        if runs:
            return str(max(runs, key=lambda p: p.name))
    return f"{base}/{fresh}"


OmegaConf.register_new_resolver("lrscale_dir", latest_dir, replace=True)


def _writable(path: Path) -> str | None:
    """Why path cannot hold a run's output, or None when it can."""
    p = path.absolute()
    while not p.exists():
        p = p.parent
    if not p.is_dir():
        return f"{p} is not a directory"
    if not os.access(p, os.W_OK | os.X_OK):
        return f"{p} is not writable"
    return None


def _other_sweep(config: DictConfig, run_dir: Path) -> str | None:
    """Why run_dir must not take this config's results (it holds another sweep's), or None."""
    from sweeps.config import sweep_id
    from sweeps.sweep import previous_ids

    ids = previous_ids(run_dir)
    try:
        mine = sweep_id(
            to_config(OmegaConf.masked_copy(config, [k for k in config if k != "hydra"]))
        )
    except ConfigError:
        return None  # reported, with the key's name, once the job starts
    if ids and ids != {mine}:
        return f"{run_dir} holds results of another sweep ({', '.join(sorted(ids))}; not {mine})"
    return None


class StartupChecks(Callback):
    """Refuse an output directory before Hydra writes into it: unwritable, or another sweep's."""

    def _check(self, path: str) -> None:
        why = _writable(Path(path))
        if why:
            print(f"error: output directory {path} cannot be written: {why}", file=sys.stderr)
            sys.exit(2)

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        self._check(config.hydra.run.dir)
        why = _other_sweep(config, Path(config.hydra.run.dir))
        if why:
            print(f"error: {why}: nothing was changed; choose another directory", file=sys.stderr)
            sys.exit(2)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self._check(config.hydra.sweep.dir)


def draw_figures(path: Path) -> None:
    """The figures of the results below path; a sweep that cannot be plotted only says why."""
    import warnings

    from analysis.load import AnalysisError
    from analysis.plot import plot_dirs

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            files = plot_dirs([path])
    except AnalysisError as e:
        print(f"no figures: {e}", file=sys.stderr)
        return
    for w in caught:
        print(f"note: {w.message}", file=sys.stderr)
    print(f"figures: {files[0].parent if files else 'none'}")


class PlotSweep(Callback):
    """Once every job of a multirun is done, draw the figures of the whole sweep directory."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        if config.get("plot", True):
            draw_figures(Path(config.hydra.sweep.dir))


def tidy_sweep_root(hc) -> None:
    """Move multirun.yaml into .hydra/: pandas.read_parquet(<sweep dir>) then sees parquet only."""
    if hc.mode.name != "MULTIRUN":
        return
    root = Path(hc.sweep.dir)
    (root / ".hydra").mkdir(exist_ok=True)
    try:
        os.replace(root / "multirun.yaml", root / ".hydra" / "multirun.yaml")
    except FileNotFoundError:
        pass  # another job of the sweep moved it first


def discard(out_dir: Path) -> None:
    """Remove what Hydra wrote for a job refused at start-up, and only that."""
    if out_dir.is_dir() and all(p.name == ".hydra" for p in out_dir.iterdir()):
        shutil.rmtree(out_dir)
        # and the folders made for it (outputs/<model>-<optimizer>/), if nothing else is there
        for parent in out_dir.absolute().parents:
            if parent == Path.cwd() or not parent.is_relative_to(Path.cwd()):
                break
            try:
                parent.rmdir()
            except OSError:
                break


def fail(msg: str, out_dir: Path) -> None:
    discard(out_dir)
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(2)

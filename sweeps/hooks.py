"""Hydra hooks of the command line: run-directory choice, start-up checks, figures at the end."""

from __future__ import annotations

import functools
import gc
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from sweeps.config import ConfigError, settings, to_config
from sweeps.results import RESULTS


@functools.cache  # one answer per process: Hydra resolves the directory more than once
def latest_dir(base: str, fresh: str, resume: bool) -> str:
    """When resuming, the run below base whose results were written last; else a new directory
    base/fresh, made here so that two processes started in the same second never share one
    (the second gets base/fresh-2). Within one process the answer is cached."""
    if resume:
        runs = [*Path(base).glob(f"*/{RESULTS}"), *Path(base).glob(f"*/*/{RESULTS}")]
        if runs:
            newest = max(runs, key=lambda p: p.stat().st_mtime)
            return str(newest.parent.parent if newest.parent.name.isdigit() else newest.parent)
    for i in range(1, 1000):
        path = Path(base) / (fresh if i == 1 else f"{fresh}-{i}")
        try:
            path.mkdir(parents=True)
            return str(path)
        except FileExistsError:
            continue
        except OSError:
            break  # unwritable: the start-up check says so
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


class StartupChecks(Callback):
    """Refuse an output directory before Hydra writes into it: unwritable, another sweep's,
    unreadable results, or no directory at all."""

    def _check(self, key: str, path: str) -> None:
        if not str(path).strip():
            print(f"error: {key} must be a directory (got {path!r})", file=sys.stderr)
            sys.exit(2)
        why = _writable(Path(path))
        if why:
            print(f"error: output directory {path} cannot be written: {why}", file=sys.stderr)
            sys.exit(2)

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        from sweeps.rundir import refusal

        self._check("hydra.run.dir", config.hydra.run.dir)
        try:
            cfg = to_config(OmegaConf.masked_copy(config, [k for k in config if k != "hydra"]))
        except ConfigError:
            return  # reported, with the key's name, once the job starts
        # the config's settings only: the data's and the model's are compared once built
        why = refusal(Path(config.hydra.run.dir), settings(cfg))
        if why:
            print(f"error: {why}", file=sys.stderr)
            sys.exit(2)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self._check("hydra.sweep.dir", config.hydra.sweep.dir)


def results_safe(path: Path) -> str:
    """What a user needs to hear when the figures of finished results were not drawn."""
    quoted = shlex.quote(str(path))
    return f"the results are complete in {path}; draw the figures later with: lrscale-plot {quoted}"


def draw_figures(path: Path, formats=("png",), figures: str = "main") -> None:
    """The figures of the results below path (`figures`: main or all, see PlotConfig). Figures
    come after the results are safe on disk, so a failure to draw them (bad results, no room, no
    permission) is said in one line."""
    import warnings

    from analysis.load import AnalysisError
    from analysis.output import OutputError
    from analysis.plot import plot_dirs

    t = time.perf_counter()
    # What lives now (JAX, Hydra, the results) outlives the figures: the collector need not walk
    # it each time their many small objects set it off (0.5 s of the default sweep's figures).
    gc.freeze()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            files = plot_dirs([path], formats=formats, main_only=figures == "main")
    except AnalysisError as e:
        if isinstance(e, OutputError):  # the results are fine; only their figures failed
            print(f"no figures: {e}; {results_safe(path)}", file=sys.stderr)
        else:
            print(f"no figures: {e}", file=sys.stderr)
        return
    except Exception as e:
        why = (str(e).splitlines() or [""])[0] or type(e).__name__
        print(f"no figures ({type(e).__name__}: {why}); {results_safe(path)}", file=sys.stderr)
        return
    finally:
        gc.unfreeze()
    for w in caught:
        print(f"note: {w.message}", file=sys.stderr)
    took = time.perf_counter() - t
    print(f"figures: {files[0].parent if files else 'none'} ({took:.1f} s)")
    if figures == "main":
        q = shlex.quote(str(path))
        print(f"every figure and the tables: lrscale-plot {q}; the report: lrscale-report {q}")


class PlotSweep(Callback):
    """Once every job of a multirun is done, draw the figures of the whole sweep directory."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        if OmegaConf.select(config, "plot.enabled", default=True):
            formats = OmegaConf.select(config, "plot.formats", default=["png"])
            which = OmegaConf.select(config, "plot.figures", default="main")
            draw_figures(Path(config.hydra.sweep.dir), list(formats), which)


def tidy_sweep_root(hc, refused: bool = False) -> None:
    """Move multirun.yaml into .hydra/: pandas.read_parquet(<sweep dir>) then sees parquet only.

    Called once a job holds its directory; a refused job instead drops the record Hydra wrote
    for its launch where an earlier launch's record is kept, so the sweep directory is unchanged.
    """
    if hc.mode.name != "MULTIRUN":
        return
    root = Path(hc.sweep.dir)
    if refused:
        if (root / ".hydra" / "multirun.yaml").exists():
            (root / "multirun.yaml").unlink(missing_ok=True)
        return
    (root / ".hydra").mkdir(exist_ok=True)
    try:
        os.replace(root / "multirun.yaml", root / ".hydra" / "multirun.yaml")
    except FileNotFoundError:
        pass  # another job of the sweep moved it first


def discard(out_dir: Path) -> None:
    """Remove what Hydra wrote for a job refused at start-up, and only that."""
    if out_dir.is_dir() and all(p.name == ".hydra" for p in out_dir.iterdir()):  # Hydra's only
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

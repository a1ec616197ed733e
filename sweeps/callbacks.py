"""The sweep command's Hydra callbacks: the run directory's choice and start-up checks, and the
figures of a finished multirun. They also note which directories this process made, so that a
refused or interrupted run removes those (when empty), and never a directory of the user's."""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from lrscale.config import ConfigError, settings, to_config
from lrscale.results import RESULTS

_made: set[Path] = set()  # directories this process made, or Hydra made for it
_before: dict[Path, set[str]] = {}  # a sweep directory that existed -> what it held then
_records: set[Path] = set()  # run directories whose .hydra/ this process made


def _missing(path: str | Path) -> list[Path]:
    """The directories of path that do not exist yet."""
    p, out = Path(path).absolute(), []
    while not p.exists():
        out.append(p)
        p = p.parent
    return out


def made(path: str | Path) -> bool:
    """Whether this process made the directory path (or Hydra did, for this run)."""
    p = Path(path).absolute()
    return any(q in _made for q in (p, *p.parents)) or p.name not in _before.get(p.parent, {p.name})


def wrote_records(out_dir: Path) -> None:
    """Note that this run made out_dir/.hydra (Hydra's records of the job)."""
    _records.add(Path(out_dir).absolute())


def discard(out_dir: Path) -> None:
    """Remove what this process wrote for a run that was refused or interrupted before its
    first results: its .hydra/ records, then each directory it made, once empty."""
    out = Path(out_dir).absolute()
    if out in _records:
        shutil.rmtree(out / ".hydra", ignore_errors=True)
        _records.discard(out)
    for p in (out, *out.parents):
        if not made(p):
            break
        try:
            p.rmdir()  # only when empty
        except OSError:
            break


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
        new = _missing(path)
        try:
            path.mkdir(parents=True)
            _made.update(new)
            return str(path)
        except FileExistsError:
            continue
        except OSError:
            break  # unwritable: the start-up check says so
    return f"{base}/{fresh}"


def register_resolver() -> None:
    """`${lrscale_dir:...}` of conf/config.yaml: latest_dir."""
    OmegaConf.register_new_resolver("lrscale_dir", latest_dir, replace=True)


def _writable(path: Path) -> str | None:
    """Why path cannot hold a run's output, or None when it can: a directory is made and
    removed in its nearest existing parent (permission bits do not tell, as root or in /proc)."""
    p = path.absolute()
    while not p.exists():
        p = p.parent
    if not p.is_dir():
        return f"{p} is not a directory"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".lrscale-", dir=p))
    except OSError as e:
        return f"{p} is not writable ({e.strerror or e})"
    return None


def _check(key: str, path: str) -> None:
    if not str(path).strip():
        print(f"error: {key} must be a directory (got {path!r})", file=sys.stderr)
        sys.exit(2)
    why = _writable(Path(path))
    if why:
        print(f"error: output directory {path} cannot be written: {why}", file=sys.stderr)
        sys.exit(2)


class StartupChecks(Callback):
    """Refuse an output directory before Hydra writes into it: unwritable, another sweep's or
    another process's, unreadable results, or no directory at all."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        from sweeps.rundir import refusal

        path = config.hydra.run.dir
        _check("hydra.run.dir", path)
        _made.update(_missing(path))  # Hydra makes them next
        try:
            cfg = to_config(OmegaConf.masked_copy(config, [k for k in config if k != "hydra"]))
        except ConfigError:
            return  # reported, with the key's name, once the job starts
        # the config's settings only: the data's and the model's are compared once built
        why = refusal(Path(path), settings(cfg))
        if why:
            print(f"error: {why}", file=sys.stderr)
            sys.exit(2)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        path = Path(config.hydra.sweep.dir)
        _check("hydra.sweep.dir", str(path))
        if path.is_dir() and not made(path):
            _before[path.absolute()] = {p.name for p in path.iterdir()}
        _made.update(_missing(path))  # Hydra makes them next


class PlotSweep(Callback):
    """Once every job of a multirun is done, draw the figures of the whole sweep directory."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from sweeps.drawing import draw_figures

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

"""What a run directory already holds, for resuming: the complete lanes of each batch size and
seed; and whether its disk has room for the rest."""

from __future__ import annotations

import shutil
from pathlib import Path

from lrscale import results
from lrscale.config import Config
from sweeps.rundir import ResumeError, unreadable


class NoRoomError(Exception):
    """The output directory's disk cannot take the results."""


def expected_bytes(cfg: Config) -> int:
    """A generous size of the tables a sweep writes (parquet, before compression)."""
    lanes = len(cfg.sweep.batch_sizes) * cfg.sweep.lr.num * cfg.sweep.seeds
    return lanes * (600 + 120 * cfg.sweep.curve_points)


def check_room(cfg: Config, out_dir: Path) -> None:
    where = Path(out_dir).absolute()
    while not where.exists():  # the directory may not exist yet
        where = where.parent
    need, free = expected_bytes(cfg), shutil.disk_usage(where).free
    if free < 2 * need:  # twice: each table is rewritten through a temporary copy
        raise NoRoomError(
            f"{out_dir}: {free / 2**20:.1f} MiB free on its disk, the results need about "
            f"{2 * need / 2**20:.1f} MiB"
        )


def previous(cfg: Config, out_dir: Path):
    """(rows, curves, timings) already in out_dir: rows and curves by batch size, each holding
    the seeds whose lanes are all complete (every learning rate, with curves)."""
    path, curves_path = out_dir / results.RESULTS, out_dir / results.CURVES
    if not path.exists():
        return {}, {}, []
    if not curves_path.exists():
        raise ResumeError(
            f"{path} has no {results.CURVES} beside it: nothing was changed; restore it, or "
            "move the results away or choose another directory"
        )
    import pandas as pd  # here, not at the top: start-up checks of an empty directory need none

    tables = {}
    for p in (path, curves_path):
        try:
            tables[p] = pd.read_parquet(p)
        except (OSError, ValueError, KeyError) as e:
            raise unreadable(p, e) from None
    old, old_curves, meta = tables[path], tables[curves_path], results.read_meta(path)
    rows, curves = {}, {}
    n_lrs = cfg.sweep.lr.num
    for b, g in old.groupby("batch_size", sort=False):
        c = old_curves[old_curves["batch_size"] == b]
        full = g.groupby("seed")["lr_index"].nunique()
        seeds = [s for s in full.index[full == n_lrs] if (c["seed"] == s).any()]
        if seeds:
            rows[int(b)] = g[g["seed"].isin(seeds)].reset_index(drop=True)
            curves[int(b)] = c[c["seed"].isin(seeds)].reset_index(drop=True)
    timings = [t for t in meta.get("timings", []) if t["batch_size"] in rows]
    return rows, curves, timings

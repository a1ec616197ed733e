"""Run a whole sweep: batch sizes in a Python loop, one compiled program each; rows to parquet."""

from __future__ import annotations

import importlib.metadata
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax
import numpy as np
import pandas as pd
from omegaconf import OmegaConf
from tqdm.auto import tqdm

from lrscale import interrupts, results
from lrscale.checks import validate
from lrscale.config import Config, user_cache_dir
from sweeps import engine, executables, identity, memory, options, programs, resume, rundir
from sweeps.rows import curve_rows, lane_rows

PACKAGES = ("jax", "jaxlib", "optax", "flax", "hydra-core", "numpy", "pandas", "pyarrow")


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def _versions() -> dict:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = None
    return out


def run_metadata(cfg: Config, ident: identity.Identity) -> dict:
    devices = jax.devices()
    return {
        "sweep_id": ident.sweep_id,
        "config": OmegaConf.to_container(OmegaConf.structured(cfg)),
        "versions": _versions(),
        "device_kind": devices[0].device_kind,
        "platform": devices[0].platform,
        "device_count": len(devices),
        "git_commit": _git_commit(),
        "timings": [],
        # the keys the model and the optimizer read: the report shows those settings
        "reads": {g: list(options.reads(g, getattr(cfg, g).name)) for g in ("model", "optimizer")},
    }


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped the sweep; every finished batch size is on disk."""

    def __init__(self, signum: int, done: int, total: int):
        self.signum, self.done, self.total = signum, done, total
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name} with {done} of {total} batch sizes written")


class _Signals:
    """First SIGINT/SIGTERM: stop after the batch size in progress; a second one: stop now
    (Interrupted, raised where the loop is; tables are replaced whole, so only complete ones
    are left). `done` counts the batch sizes written, of `total`."""

    def __init__(self, done: int, total: int):
        self.signum, self.done, self.total = None, done, total

    def __enter__(self):
        interrupts.check()  # a signal that came before (and was swallowed on its way)
        if threading.current_thread() is threading.main_thread():
            self.old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for s, h in getattr(self, "old", {}).items():
            signal.signal(s, h)

    def _handle(self, signum, frame):
        if self.signum is not None:
            print(f"\n{signal.Signals(signum).name} again: stopping now.", file=sys.stderr)
            raise Interrupted(signum, self.done, self.total)
        self.signum = signum
        print(
            f"\n{signal.Signals(signum).name}: stopping after the batch size in progress "
            "(send it again to stop now).",
            file=sys.stderr,
        )

    def wait(self, out):
        """block_until_ready, polling so that signal handlers run while XLA computes."""
        leaves = jax.tree.leaves(out)
        while not all(x.is_ready() for x in leaves):
            time.sleep(0.02)
        return out


def cache_dir() -> Path:
    """Where the persistent compilation cache lives: $LRSCALE_CACHE_DIR or the user cache."""
    if os.environ.get("LRSCALE_CACHE_DIR"):
        return Path(os.environ["LRSCALE_CACHE_DIR"])
    return user_cache_dir() / "jax"


def _ordered(parts: dict, batch_sizes: list[int]) -> pd.DataFrame:
    """Concatenate per-batch-size parts in the config's order, then any others kept from before."""
    keys = [b for b in batch_sizes if b in parts] + [b for b in parts if b not in batch_sizes]
    return pd.concat([parts[b] for b in keys], ignore_index=True)


def setup_jax(cfg: Config) -> None:
    if cfg.compile_cache:
        jax.config.update("jax_compilation_cache_dir", str(cache_dir()))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def _work(cfg: Config, prob: engine.Problem, batch_size: int, lanes: int) -> float:
    """Expected FLOPs of a part: every lane's forward-backward passes and parameter updates, and
    its evaluations on the held-out set at each curve point."""
    m, steps = prob.model, cfg.sweep.budget.steps_for(batch_size)
    evals = cfg.sweep.curve_points * (prob.task.columns["eval_size"] or 0) * m.flops
    return lanes * (steps * (m.train_flops * batch_size + 10 * m.n_params) + evals)


def run_sweep(cfg: Config, out_dir: str | Path, started=None) -> pd.DataFrame:
    """Train every batch size x lr x seed of cfg; write the tables into out_dir; return results.

    The directory is claimed first (`sweeps.rundir`): another process or another sweep there is
    refused before any file changes. A directory that already holds results of the same sweep
    is resumed: complete lanes are kept, per batch size and seed, and only the missing seeds
    train; seeds kept beyond `sweep.seeds` stay in the tables. `started()`, if given, runs once
    the directory is claimed. The compile and run seconds of each part are in the returned
    frame's attrs["timings"].
    """
    validate(cfg)
    with jax.enable_x64(cfg.sweep.dtype == "float64"):
        prob = engine.build(cfg)  # bad data or a bad model fail here, before anything is written
    ident = identity.of(cfg, prob)
    for note in prob.task.notes:
        print(f"note: {note}", file=sys.stderr)
    for b in cfg.sweep.batch_sizes:
        memory.check_fits(cfg, prob, b)
    with jax.enable_x64(cfg.sweep.dtype == "float64"):
        engine.check_first_outputs(cfg, prob)
    out_dir = Path(out_dir)
    resume.check_room(cfg, out_dir)
    with rundir.claim(ident, out_dir):
        rows, curves, timings = resume.previous(cfg, out_dir)
        if started:
            started()
        return _train(cfg, prob, ident, out_dir, rows, curves, timings)


def _train(cfg: Config, prob, ident, out_dir: Path, rows: dict, curves: dict, timings: list):
    setup_jax(cfg)
    lrs = engine.lr_grid(cfg)
    meta = run_metadata(cfg, ident)
    meta["timings"] = timings
    batch_sizes = list(cfg.sweep.batch_sizes)
    want = np.arange(cfg.sweep.seeds)
    done = {b: set(r["seed"].tolist()) for b, r in rows.items()}
    todo = {b: s for b in batch_sizes if len(s := np.setdiff1d(want, list(done.get(b, ())))) > 0}
    extra = sorted({s for b in batch_sizes for s in done.get(b, ())} - set(want.tolist()))
    work = {b: _work(cfg, prob, b, len(lrs) * len(s)) for b, s in todo.items()}
    bar = tqdm(
        total=sum(work.values()),
        unit="FLOP",
        unit_scale=True,
        disable=not cfg.progress,
        dynamic_ncols=True,
    )
    if rows and cfg.progress:
        bar.write(f"resuming {out_dir}: {len(rows)} batch sizes started, {len(todo)} to train")
    if extra:
        print(
            f"note: {out_dir} keeps seeds {', '.join(map(str, extra))} trained before "
            f"(sweep.seeds={cfg.sweep.seeds}); its tables hold them",
            file=sys.stderr,
        )

    points = {b: engine.curve_points(cfg, b) for b in todo}  # (steps, grid values)

    store = executables.Store(cache_dir() / "executables", ident.settings)
    store = store if cfg.compile_cache else None

    def prepare(b):
        return pool.submit(programs.prepare, cfg, prob, b, lrs, points[b][0], todo[b], store)

    # The next batch sizes compile in worker threads, one per core, while this one trains (XLA
    # compiles without holding the GIL), so compile time hides behind training; at most one
    # prepared program per thread waits ahead, which bounds the device memory they hold.
    order = list(todo)
    threads = max(1, min(os.cpu_count() or 1, len(order)))
    pool = ThreadPoolExecutor(threads)
    ahead = {b: prepare(b) for b in order[:threads]}
    finished = sum(b in rows and b not in todo for b in batch_sizes)
    try:
        with _Signals(finished, len(batch_sizes)) as sig:
            for i, b in enumerate(order):
                nxt = order[i + threads] if i + threads < len(order) else None
                seeds, lanes = todo[b], len(lrs) * len(todo[b])
                steps = cfg.sweep.budget.steps_for(b)
                if not ahead[b].done():
                    bar.set_description_str(f"compiling B={b}")
                    bar.refresh()
                waited = time.perf_counter()
                p = ahead.pop(b).result()
                waited = time.perf_counter() - waited
                if nxt is not None:
                    ahead[nxt] = prepare(nxt)
                bar.set_description_str(f"training B={b} lanes={lanes} steps={steps}")
                out, run_s = programs.run_prepared(p, sig)
                new = lane_rows(cfg, ident, prob.task, b, lrs, seeds, out)
                rows[b] = _merge(rows.get(b), new)
                curves[b] = _merge(curves.get(b), curve_rows(new, prob.task, points[b], out))
                meta["timings"].append(
                    {"batch_size": b, "compile_s": p.compile_s, "wait_s": waited, "run_s": run_s}
                )
                # Rewritten after every batch size: an interrupted sweep keeps what it finished.
                results.write_table(_ordered(curves, batch_sizes), out_dir / results.CURVES, meta)
                results.write_table(_ordered(rows, batch_sizes), out_dir / results.RESULTS, meta)
                sig.done += 1
                bar.update(work[b])
                if sig.signum is not None:
                    raise Interrupted(sig.signum, sig.done, sig.total)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a compile still running is abandoned
        bar.close()
    df = _ordered(rows, batch_sizes)
    df.attrs["timings"] = meta["timings"]
    return df


def _merge(old: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """The kept lanes of a batch size and its newly trained seeds, in seed order."""
    if old is None:
        return new
    both = pd.concat([old, new], ignore_index=True)
    return both.sort_values("seed", kind="stable", ignore_index=True)

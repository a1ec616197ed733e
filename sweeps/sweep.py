"""Run a whole sweep: batch sizes in a Python loop, one compiled program each; rows to parquet."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
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

from sweeps import batch, engine, results
from sweeps.checks import validate
from sweeps.config import Config, settings, sweep_id, user_cache_dir

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


def run_metadata(cfg: Config) -> dict:
    devices = jax.devices()
    return {
        "sweep_id": sweep_id(cfg),
        "config": OmegaConf.to_container(OmegaConf.structured(cfg)),
        "versions": _versions(),
        "device_kind": devices[0].device_kind,
        "platform": devices[0].platform,
        "device_count": len(devices),
        "git_commit": _git_commit(),
        "timings": [],
    }


def lane_rows(
    cfg: Config, task, batch_size: int, lrs: np.ndarray, out: engine.Lanes
) -> pd.DataFrame:
    """One row per (seed, lr) lane of one batch size; diverged lanes carry +inf losses."""
    seeds = np.arange(cfg.sweep.seeds)
    S, L = len(seeds), len(lrs)
    steps = cfg.sweep.budget.steps_for(batch_size)
    div = np.asarray(out.diverged).reshape(-1)
    df = pd.DataFrame(
        {
            "sweep_id": sweep_id(cfg),
            **settings(cfg),
            **task.columns,
            "batch_size": batch_size,
            "lr": np.tile(lrs, S),
            "lr_index": np.tile(np.arange(L), S),
            "seed": np.repeat(seeds, L),
            "steps": steps,
            "samples": steps * batch_size,
            "final_train_loss": np.asarray(out.final_train_loss, np.float64).reshape(-1),
            "final_eval_loss": np.asarray(out.final_eval_loss, np.float64).reshape(-1),
            "final_eval_accuracy": _accuracy(task, out.final_eval_accuracy),
            "diverged": div,
            "diverged_step": pd.array(
                np.where(div, np.asarray(out.diverged_step).reshape(-1), 0), dtype="Int64"
            ),
        }
    )
    df.loc[~df["diverged"], "diverged_step"] = pd.NA
    # A finite-but-huge lane that never tripped the divergence rule can still overflow to inf;
    # NaN must never reach a table.
    for c in ("final_train_loss", "final_eval_loss"):
        df[c] = df[c].fillna(np.inf)
    nullable = [c for c in ("task_n_train", "train_size", "eval_size") if c in df]
    return df.astype({**dict.fromkeys(nullable, "Int64"), "sweep_id": "string"})


def _accuracy(task, acc) -> pd.array:
    """Accuracy as a nullable column: null where the task has none (regression), never NaN."""
    a = np.asarray(acc, np.float64).reshape(-1)
    if task.kind != "classification":
        return pd.array([pd.NA] * len(a), dtype="Float64")
    return pd.array(np.nan_to_num(a, nan=0.0), dtype="Float64")


def curve_rows(rows: pd.DataFrame, task, points: np.ndarray, out: engine.Lanes) -> pd.DataFrame:
    """Long table of the loss curves: one row per lane and curve point."""
    P = len(points)
    keys = rows[[c for c in results.CURVE_COLUMNS if c in rows]]
    df = keys.loc[keys.index.repeat(P)].reset_index(drop=True)
    df["step"] = np.tile(points, len(rows))
    df["train_loss"] = np.asarray(out.curve_train, np.float64).reshape(-1)
    df["eval_loss"] = np.asarray(out.curve_eval, np.float64).reshape(-1)
    df["eval_accuracy"] = _accuracy(task, out.curve_accuracy)
    return df.fillna({"train_loss": np.inf, "eval_loss": np.inf})


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per batch size: best lr on the grid (mean eval loss over seeds), its loss, diverged lanes."""
    mean = df.groupby(["batch_size", "lr"])["final_eval_loss"].mean().reset_index()
    best = mean.loc[mean.groupby("batch_size")["final_eval_loss"].idxmin()].set_index("batch_size")
    t = pd.DataFrame(df.attrs["timings"]).set_index("batch_size")
    return pd.DataFrame(
        {
            "best_lr": best["lr"],
            "best_loss": best["final_eval_loss"],
            "diverged": df.groupby("batch_size")["diverged"].sum().astype(str)
            + "/"
            + df.groupby("batch_size").size().astype(str),
            "steps": df.groupby("batch_size")["steps"].first(),
            "compile_s": t["compile_s"],
            "run_s": t["run_s"],
        }
    )


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped the sweep; every finished batch size is on disk."""

    def __init__(self, signum: int, done: int, total: int):
        self.signum, self.done, self.total = signum, done, total
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name} with {done} of {total} batch sizes written")


class ResumeError(Exception):
    """The output directory holds results of another sweep."""


class OutputError(Exception):
    """The output directory cannot take the results (no room on its disk)."""


def expected_bytes(cfg: Config) -> int:
    """A generous size of the tables a sweep writes (parquet, before compression)."""
    lanes = len(cfg.sweep.batch_sizes) * cfg.sweep.lr.num * cfg.sweep.seeds
    return lanes * (600 + 120 * cfg.sweep.curve_points)


def check_room(cfg: Config, out_dir: Path) -> None:
    need, free = expected_bytes(cfg), shutil.disk_usage(out_dir).free
    if free < 2 * need:  # twice: each table is rewritten through a temporary copy
        raise OutputError(
            f"{out_dir}: {free / 2**20:.1f} MiB free on its disk, the results need about "
            f"{2 * need / 2**20:.1f} MiB"
        )


class _Signals:
    """First SIGINT/SIGTERM: stop after the batch size in progress; a second one: stop now."""

    def __init__(self):
        self.signum = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for s, h in getattr(self, "old", {}).items():
            signal.signal(s, h)

    def _handle(self, signum, frame):
        if self.signum is not None:
            # Results are replaced atomically, so dying here leaves only complete files.
            print(f"\n{signal.Signals(signum).name} again: stopping now.", file=sys.stderr)
            os._exit(128 + signum)
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


def previous_ids(out_dir: Path) -> set[str]:
    """The sweep ids of the results already in out_dir (empty if none)."""
    path = Path(out_dir) / results.RESULTS
    if not path.exists():
        return set()
    return set(pd.read_parquet(path, columns=["sweep_id"])["sweep_id"].astype(str))


def _previous(cfg: Config, out_dir: Path):
    """Rows and curves already in out_dir, by batch size, for the batch sizes that are complete."""
    ids = previous_ids(out_dir)
    if not ids:
        return {}, {}, []
    if ids != {sweep_id(cfg)}:
        raise ResumeError(
            f"{out_dir} holds results of another sweep ({', '.join(sorted(ids))}; "
            f"this is {sweep_id(cfg)}): nothing was changed; choose another directory"
        )
    path = out_dir / results.RESULTS
    old = pd.read_parquet(path)
    curves_path = out_dir / results.CURVES
    old_curves = pd.read_parquet(curves_path) if curves_path.exists() else old.iloc[:0]
    lanes = cfg.sweep.lr.num * cfg.sweep.seeds
    rows, curves = {}, {}
    for b, g in old.groupby("batch_size", sort=False):
        c = old_curves[old_curves["batch_size"] == b] if len(old_curves) else None
        if len(g) == lanes and c is not None and len(c):
            rows[int(b)], curves[int(b)] = g.reset_index(drop=True), c.reset_index(drop=True)
    timings = [t for t in results.read_meta(path).get("timings", []) if t["batch_size"] in rows]
    return rows, curves, timings


def _ordered(parts: dict, batch_sizes: list[int]) -> pd.DataFrame:
    """Concatenate per-batch-size parts in the config's order, then any others kept from before."""
    keys = [b for b in batch_sizes if b in parts] + [b for b in parts if b not in batch_sizes]
    return pd.concat([parts[b] for b in keys], ignore_index=True)


def setup_jax(cfg: Config) -> None:
    if cfg.compile_cache:
        jax.config.update("jax_compilation_cache_dir", str(cache_dir()))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def run_sweep(cfg: Config, out_dir: str | Path) -> pd.DataFrame:
    """Train every batch size x lr x seed of cfg; write the tables into out_dir; return results.

    A directory that already holds results of the same sweep is resumed: complete batch sizes
    are kept, the rest are trained. The compile and run seconds of each batch size are in the
    returned frame's attrs["timings"].
    """
    validate(cfg)
    with jax.enable_x64(cfg.sweep.dtype == "float64"):
        prob = engine.build(cfg)  # bad data or a bad model fail here, before anything is written
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for tmp in out_dir.glob(".*.tmp"):  # left by a process killed mid-write
        tmp.unlink()
    check_room(cfg, out_dir)
    rows, curves, timings = _previous(cfg, out_dir)
    setup_jax(cfg)
    lrs = engine.lr_grid(cfg)
    meta = run_metadata(cfg)
    meta["timings"] = timings
    batch_sizes = list(cfg.sweep.batch_sizes)
    todo = [b for b in batch_sizes if b not in rows]
    total = sum(cfg.sweep.budget.steps_for(b) for b in todo)
    bar = tqdm(total=total, unit="step", disable=not cfg.progress, dynamic_ncols=True)
    if rows and cfg.progress:
        bar.write(f"resuming {out_dir}: {len(rows)} batch sizes done, {len(todo)} to go")

    def points_of(b: int) -> np.ndarray:
        return engine.curve_steps(cfg.sweep.budget.steps_for(b), cfg.sweep.curve_points)

    # The next batch size compiles in a worker thread while this one trains (XLA compiles
    # without holding the GIL), so compile time hides behind training.
    pool = ThreadPoolExecutor(1)
    ahead = {b: pool.submit(batch.prepare, cfg, prob, b, lrs, points_of(b)) for b in todo[:1]}
    try:
        with _Signals() as sig:
            for b, nxt in zip(todo, [*todo[1:], None], strict=True):
                steps, points = cfg.sweep.budget.steps_for(b), points_of(b)
                bar.set_postfix_str(f"B={b} lanes={len(lrs) * cfg.sweep.seeds} steps={steps}")
                p = ahead.pop(b).result()
                if nxt is not None:
                    ahead[nxt] = pool.submit(batch.prepare, cfg, prob, nxt, lrs, points_of(nxt))
                out, run_s = batch.run_prepared(p, sig)
                rows[b] = lane_rows(cfg, prob.task, b, lrs, out)
                curves[b] = curve_rows(rows[b], prob.task, points, out)
                meta["timings"].append({"batch_size": b, "compile_s": p.compile_s, "run_s": run_s})
                # Rewritten after every batch size: an interrupted sweep keeps what it finished.
                results.write_table(_ordered(curves, batch_sizes), out_dir / results.CURVES, meta)
                results.write_table(_ordered(rows, batch_sizes), out_dir / results.RESULTS, meta)
                bar.update(steps)
                if sig.signum is not None:
                    raise Interrupted(sig.signum, len(rows), len(batch_sizes))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a compile still running is abandoned
        bar.close()
    df = _ordered(rows, batch_sizes)
    df.attrs["timings"] = meta["timings"]
    return df

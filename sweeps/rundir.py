"""A run directory: claimed by one process and one sweep; what it already holds, for resuming.

A sweep claims its directory before it computes anything: an exclusive lock (held while the
process lives, released by the kernel when it dies, even by kill -9) and an identity record
(`.lrscale-sweep.json`, created exclusively by the first sweep to write there: its id and
settings). A second process in the same directory, or another sweep, is refused before it
changes a file, with the settings that differ.
"""

from __future__ import annotations

import json
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from lrscale import results
from sweeps.identity import Identity

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the identity record still guards the sweep
    fcntl = None

if TYPE_CHECKING:
    import pandas as pd

LOCK = ".lrscale.lock"
IDENTITY = ".lrscale-sweep.json"


class ResumeError(Exception):
    """The output directory holds another sweep's results, or results that cannot be read."""


class BusyError(ResumeError):
    """Another process is writing into the output directory."""


# Settings that the built task and model add (`sweeps.identity`), in words.
BUILT = {
    "task_path_sha256": "the bytes of task.path (sha256)",
    "task_test_path_sha256": "the bytes of task.test_path (sha256)",
    "task_features_used": "the features used",
    "task_corpus_sha256": "the bytes of the corpus (sha256)",
    "model_source_sha256": "the source of model.target (sha256)",
    "model_n_params": "the parameters of model.target",
}


def setting_key(name: str) -> str:
    """The config key of a settings column: task_noise_std -> task.noise_std."""
    if name in BUILT:
        return BUILT[name]
    for group in ("task", "model", "optimizer"):
        if name.startswith(group + "_"):
            return f"{group}.{name[len(group) + 1 :]}"
    if name in ("model", "optimizer", "task"):
        return f"{name}.name"
    if name.startswith("lr_"):
        return f"sweep.lr.{name[3:]}"
    return f"sweep.{name}"


def differences(here: dict, there: dict) -> str:
    """'sweep.lr.num: 6 here, 7 there; ...' for the settings that differ."""

    def norm(v):
        return json.dumps(v, sort_keys=True, default=str)

    out = []
    for k in sorted(set(here) | set(there)):
        a, b = here.get(k, "absent"), there.get(k, "absent")
        if norm(a) != norm(b):
            out.append(f"{setting_key(k)}: {a} here, {b} there")
    return "; ".join(out)


def _plain(v):
    """A table cell as a JSON value (numpy scalars to Python, nulls to None)."""
    import pandas as pd  # loaded already: the cell comes from a table read by `held`

    if v is pd.NA or (isinstance(v, float) and v != v):
        return None
    return v.item() if hasattr(v, "item") else v


def unreadable(path: Path, e: Exception) -> ResumeError:
    why = (str(e).splitlines() or [type(e).__name__])[0]
    return ResumeError(
        f"{path} cannot be read as lrscale results ({why}): nothing was changed; "
        "move it away or choose another directory"
    )


def holder(out_dir: Path) -> str | None:
    """Who holds out_dir's lock ('pid 12 on host'), or None when no live process does."""
    path = Path(out_dir) / LOCK
    if fcntl is None or not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    except BlockingIOError:
        return os.read(fd, 200).decode(errors="replace").strip() or "unknown"
    except OSError:  # a file system without locks
        return None
    finally:
        os.close(fd)


def _busy(out_dir: Path, who: str) -> BusyError:
    return BusyError(
        f"{out_dir} is in use by another process ({who}): nothing was changed; "
        "wait for it to finish, or choose another directory"
    )


def held(out_dir: Path) -> dict | None:
    """The identity ({"sweep_id", "settings"}) of what out_dir holds, or None if it holds no
    results: empty, or claimed by a sweep that was killed before its first write.

    Directories written before identity records are read from their results' settings columns.
    Raises ResumeError naming the file when it cannot be read.
    """
    ident, path = Path(out_dir) / IDENTITY, Path(out_dir) / results.RESULTS
    if not path.exists() and holder(out_dir) is None:
        return None
    try:
        if ident.exists():
            rec = json.loads(ident.read_text())
            if isinstance(rec, dict) and isinstance(rec.get("sweep_id"), str):
                return rec
            raise ValueError("not an identity record")
        if not path.exists():
            return None
        import pandas as pd  # here, not at the top: start-up checks of a new directory need none

        df = pd.read_parquet(path)
        ids = sorted(set(df["sweep_id"].astype(str)))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise unreadable(ident if ident.exists() else path, e) from None
    if len(ids) != 1:
        return {"sweep_id": ", ".join(ids), "settings": {}}
    first = df.iloc[0]
    cols = [c for c in settings_columns(df) if c in df]
    return {"sweep_id": ids[0], "settings": {c: _plain(first[c]) for c in cols}}


def settings_columns(df: pd.DataFrame) -> list[str]:
    """The columns of a results table that are settings (all but the per-lane ones)."""
    lane = set(results.RESULT_COLUMNS) | set(results.METRIC_COLUMNS)
    return [c for c in df.columns if c not in lane and c != "sweep_id"]


def _other(out_dir: Path, rec: dict, settings: dict, sweep_id: str | None) -> str | None:
    """Why the sweep of settings (and sweep_id) is not the one recorded in rec, or None.
    Without a sweep_id only the settings both hold are compared (the config's, before the task
    and model are built)."""
    if sweep_id is not None and rec["sweep_id"] == sweep_id:
        return None
    theirs = rec["settings"]
    if sweep_id is None:
        keys = settings.keys() & theirs.keys()
        diff = differences({k: settings[k] for k in keys}, {k: theirs[k] for k in keys})
        if not diff:
            return None
    else:
        shared = {k: v for k, v in theirs.items() if k in settings} or theirs
        diff = (differences(settings, shared) if theirs else "") or (
            f"sweep id {sweep_id} here, {rec['sweep_id']} there"
        )
    return (
        f"{out_dir} holds results of another sweep ({diff}): nothing was changed; "
        "choose another directory"
    )


def refusal(out_dir: Path, settings: dict, sweep_id: str | None = None) -> str | None:
    """Why out_dir cannot take the results of the sweep with these settings (another process's,
    another sweep's, unreadable), or None. Without a sweep_id, only the settings are compared."""
    who = holder(out_dir)
    if who:
        return str(_busy(out_dir, who))
    try:
        rec = held(out_dir)
    except ResumeError as e:
        return str(e)
    return None if rec is None else _other(out_dir, rec, settings, sweep_id)


def _lock(out_dir: Path):
    """An open file descriptor holding out_dir's exclusive lock; BusyError if it is taken."""
    fd = os.open(out_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    if fcntl is None:
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        who = os.read(fd, 200).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise _busy(out_dir, who) from None
    except OSError:  # a file system without locks: the identity record alone guards the sweep
        pass
    return fd


def _record(ident: Identity, out_dir: Path) -> None:
    """Create the identity record, exclusively; refuse if the directory is another sweep's."""
    rec = {"sweep_id": ident.sweep_id, "settings": ident.settings}
    # written whole beside it, then linked into place: a reader never sees half a record, and
    # link fails if another sweep made its record first
    tmp = out_dir / f".{IDENTITY}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(rec, default=str))
    try:
        os.link(tmp, out_dir / IDENTITY)
    except FileExistsError:
        why = _other(out_dir, held(out_dir) or rec, ident.settings, ident.sweep_id)
        if why:
            raise ResumeError(why) from None
    finally:
        tmp.unlink()


@contextmanager
def claim(ident: Identity, out_dir: Path):
    """Hold out_dir for this process and sweep while the block runs.

    Refuses (BusyError, ResumeError) before changing any file; temporary files of a killed
    writer, and the record of a sweep killed before its first write, are removed only once the
    lock is held, so a live writer never loses one.
    """
    why = refusal(out_dir, ident.settings, ident.sweep_id)  # before the lock file is made
    if why:
        raise ResumeError(why)
    out_dir.mkdir(parents=True, exist_ok=True)
    fresh = not (out_dir / results.RESULTS).exists()
    fd = _lock(out_dir)
    try:
        if fresh:  # a record without results: of a sweep killed before its first write
            (out_dir / IDENTITY).unlink(missing_ok=True)
        _record(ident, out_dir)
        os.ftruncate(fd, 0)  # who holds it, for the message of a process refused meanwhile
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
        for tmp in out_dir.glob(".*.tmp"):  # left by a process killed mid-write
            tmp.unlink()
        yield
    except BaseException:
        if fresh and not (out_dir / results.RESULTS).exists():  # nothing of ours to keep
            for name in (IDENTITY, LOCK):
                (out_dir / name).unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)  # releases the lock

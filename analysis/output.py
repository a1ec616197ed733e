"""Writing the analysis outputs (figures, report, caches): directories made or refused with one
line naming the path, files written whole or not at all.

Every failure is an OutputError, an AnalysisError, so whoever already reports bad input in one
line (the analysis commands, the sweep command drawing its figures) reports these the same way.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

from analysis.load import AnalysisError
from lrscale.files import atomic_write


class OutputError(AnalysisError):
    """An output that cannot be written; the message names the path and says why."""


def reason(e: OSError) -> str:
    """An OSError in a few words: 'no space left on device', 'permission denied at /x'."""
    words = {errno.ENOSPC: "no space left on device", errno.EROFS: "read-only file system"}
    why = words.get(e.errno) or (e.strerror or str(e)).lower()
    return (
        f"{why} at {e.filename}"
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS) and (e.filename)
        else why
    )


def _file_in_the_way(path: Path) -> Path | None:
    """path itself or the nearest of its parents that exists and is not a directory."""
    for p in (path, *path.parents):
        if p.exists():
            return None if p.is_dir() else p
    return None


def make_dir(path: str | Path, what: str) -> Path:
    """path as a directory (made with its parents); OutputError naming what stands in the way."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if (f := _file_in_the_way(path)) is not None:
            raise OutputError(
                f"{f}: is a file, not a directory; cannot write {what} in {path}"
            ) from None
        raise OutputError(f"{path}: cannot create the directory for {what} ({reason(e)})") from None
    return path


def replace(path: str | Path, write: Callable[[Path], object], what: str) -> Path:
    """Write path by write(tmp) into a hidden temporary file beside it, then os.replace: a reader
    sees the old file or the new one, never half of one; on failure the temporary file goes."""
    path = Path(path)
    try:
        atomic_write(path, write)  # its temporary file is hidden: the loaders skip it
    except OSError as e:
        if path.is_dir():
            raise OutputError(f"{path}: is a directory; cannot write {what} there") from None
        if (f := _file_in_the_way(path.parent)) is not None:
            raise OutputError(
                f"{f}: is a file, not a directory; cannot write {what} in {path.parent}"
            ) from None
        raise OutputError(
            f"{path}: cannot write {what} ({reason(e)}); nothing half-written was left"
        ) from None
    return path


def write_text(path: str | Path, text: str, what: str) -> Path:
    """replace() for a text file (UTF-8)."""
    return replace(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), what)


# The analysis writes its tables (and report) into a folder of its own: `_analysis`, or one
# named by --out. A file it would replace there must be one of its own; a folder that holds a
# sweep's results must not take them (pandas.read_parquet(<run dir>) reads every parquet there).
MARK = b"lrscale_analysis"  # in the key-value metadata of every analysis table


def folder_for_tables(path: Path, what: str) -> None:
    """Refuse a folder that holds a sweep's results as the place of the analysis' outputs."""
    from lrscale.results import CURVES, RESULTS

    if (path / RESULTS).exists() or (path / CURVES).exists():
        raise OutputError(
            f"{path}: holds a sweep's results; {what} and the analysis tables go in a folder of "
            f"their own (by default {path / '_analysis'}); nothing was changed"
        )


def own(path: Path) -> None:
    """Refuse (OutputError) a file at path that is not an output of the analysis: one is absent,
    in `_analysis`, or an analysis table by its metadata."""
    if not path.exists() or path.parent.name == "_analysis":
        return
    try:
        import pyarrow.parquet as pq

        if MARK in (pq.read_schema(path).metadata or {}):
            return
    except Exception:  # noqa: BLE001 - not parquet at all: not ours
        pass
    raise OutputError(
        f"{path}: exists and is not one of lrscale's analysis outputs; nothing was changed: "
        "choose another --out"
    )

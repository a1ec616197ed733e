"""The bytes of a text task's corpus: the user's file, or the running Python's standard library.

The default corpus needs no download and is on every machine: the `.py` sources of the standard
library (its test suites and installed packages left out: distributions ship them apart),
concatenated in sorted path order. Another Python version has other sources, so its size and
content hash, which identify the sweep, differ.
"""

from __future__ import annotations

import functools
import hashlib
import sysconfig
from pathlib import Path
from typing import NamedTuple

LEFT_OUT = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}


class Corpus(NamedTuple):
    data: bytes
    name: str  # the file, or "python <version> stdlib"
    sha256: str  # first 16 hex digits of the bytes' sha256

    @property
    def size(self) -> int:
        return len(self.data)


class CorpusError(ValueError):
    """A corpus that cannot be read; the message names the file."""


def stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(
        p for p in root.rglob("*.py") if not LEFT_OUT & set(p.relative_to(root).parts[:-1])
    )


def _corpus(data: bytes, name: str) -> Corpus:
    return Corpus(data, name, hashlib.sha256(data).hexdigest()[:16])


@functools.cache
def _stdlib(version: str) -> Corpus:
    files = stdlib_files()
    if not files:
        raise CorpusError(
            "task.path: this Python has no standard library sources to read (compiled-only "
            "install); name a text file with task.path=<file>"
        )
    return _corpus(b"".join(p.read_bytes() for p in files), f"python {version} stdlib")


@functools.cache
def _file(path: Path, size: int, mtime_ns: int) -> Corpus:
    return _corpus(path.read_bytes(), str(path))


def load(path: str | None) -> Corpus:
    """The corpus of task.path (None: the standard library's sources), read once per process."""
    if not path:
        return _stdlib(sysconfig.get_python_version())
    p = Path(path).expanduser()
    if not p.exists():
        raise CorpusError(f"task.path: no such file: {p}")
    if p.is_dir():
        raise CorpusError(f"task.path: {p} is a directory, not a text file")
    try:
        st = p.stat()
        c = _file(p.resolve(), st.st_size, st.st_mtime_ns)
    except OSError as e:
        raise CorpusError(f"task.path: {p} cannot be read ({e.strerror or e})") from None
    if not c.size:
        raise CorpusError(f"task.path: {p} is empty")
    return c

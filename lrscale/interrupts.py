"""Ctrl-C and SIGTERM in every command: one line saying what is left, and exit 130 or 143.

`install()` runs first in each command, before its heavy imports. A signal then raises
KeyboardInterrupt in the main thread, SIGTERM as well as SIGINT, and is remembered: a
KeyboardInterrupt that a library swallowed (JAX's and pyarrow's callbacks print "Exception
ignored ...") is raised again at the next `check()`. Code that must finish a step first (the
sweep's loop) installs its own handler meanwhile and asks `received()` on entry.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

_received: list[int] = []


def _raise(signum, frame):
    _received.append(signum)
    raise KeyboardInterrupt


def install() -> None:
    """Turn SIGINT and SIGTERM into KeyboardInterrupt, remembering which came."""
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, _raise)


def received() -> int | None:
    """The signal that came, or None."""
    return _received[-1] if _received else None


def check() -> None:
    """Raise KeyboardInterrupt if a signal came (and was swallowed on its way)."""
    if _received:
        raise KeyboardInterrupt


def stop(prog: str, note: str) -> None:
    """End the command on the signal that came: one line, exit 128 + its number."""
    signum = received() or signal.SIGINT
    name = signal.Signals(signum).name
    print(f"\n{prog + ': ' if prog else ''}interrupted by {name}: {note}", file=sys.stderr)
    sys.exit(128 + signum)


def run(prog: str, main: Callable[[], int | None], note: Callable[[], str]) -> int | None:
    """main() with interrupts installed; an interrupt (or one swallowed on the way) ends it with
    one line, `note()` saying what it left, and exit 130 or 143."""
    install()
    try:
        out = main()
        check()
        return out
    except KeyboardInterrupt:
        stop(prog, note())

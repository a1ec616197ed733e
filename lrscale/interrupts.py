"""Ctrl-C and SIGTERM in every command: one line saying what is left, and exit 130 or 143.

`install()` runs first in each command, before its heavy imports. A signal then raises
KeyboardInterrupt in the main thread, SIGTERM as well as SIGINT, and is remembered: a
KeyboardInterrupt that a library swallowed (JAX's and pyarrow's callbacks print "Exception
ignored ...") is raised again at the next `check()`. Code that must finish a step first (the
sweep's loop) installs its own handler meanwhile and asks `received()` on entry.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

_received: list[int] = []


def _raise(signum, frame):
    _received.append(signum)
    raise KeyboardInterrupt


def _unraisable(u) -> None:
    """An interrupt raised inside a callback Python cannot raise from (a garbage collection's,
    JAX's) is remembered, not printed: `check` raises it again."""
    if not issubclass(u.exc_type, KeyboardInterrupt):
        sys.__unraisablehook__(u)


def install() -> None:
    """Turn SIGINT and SIGTERM into KeyboardInterrupt, remembering which came."""
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, _raise)
    sys.unraisablehook = _unraisable


def received() -> int | None:
    """The signal that came, or None."""
    return _received[-1] if _received else None


def check() -> None:
    """Raise KeyboardInterrupt if a signal came (and was swallowed on its way)."""
    if _received:
        raise KeyboardInterrupt


def stop(prog: str, note: str) -> None:
    """End the command on the signal that came: one line, exit 128 + its number, at once (a
    compile still running in a worker thread must not outlive the interpreter's shutdown)."""
    signum = received() or signal.SIGINT
    name = signal.Signals(signum).name
    print(f"\n{prog + ': ' if prog else ''}interrupted by {name}: {note}", file=sys.stderr)
    exit_now(128 + signum)


def exit_now(code: int) -> None:
    """Flush what was printed and end the process with code, without the interpreter's shutdown."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def run(prog: str, main: Callable[[], int | None], note: Callable[[], str]) -> int | None:
    """main() with interrupts installed; an interrupt (or one swallowed on the way) ends it with
    one line, `note()` saying what it left, and exit 130 or 143."""
    install()
    try:
        try:
            out = main()
        finally:  # a full disk under stdout is said here, not at the interpreter's exit
            sys.stdout.flush()
        check()
        return out
    except KeyboardInterrupt:
        stop(prog, note())
    except OSError as e:  # what no command catches: its output cannot be written (a full disk)
        print(f"{prog}: error: {e.strerror or e}", file=sys.stderr)
        exit_now(2)

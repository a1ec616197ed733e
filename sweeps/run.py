"""Command line: `python -m sweeps.run [overrides]` or `lrscale-sweep`; one Hydra job, one sweep.

Ctrl-C and SIGTERM are handled (lrscale.interrupts) before Hydra and JAX are imported; the
command itself is `sweeps.app`.
"""

from __future__ import annotations

from lrscale import interrupts


def cli() -> None:
    interrupts.install()
    try:
        from sweeps import app
    except KeyboardInterrupt:
        interrupts.stop("", "no results were written")
    app.cli()


if __name__ == "__main__":
    cli()

"""Draw every figure of the sweeps found below the given paths, and write the analysis tables.

python -m analysis.plot DIR... [--out OUT] [--format png,svg] [--skip-bad]
                       [--metric loss|accuracy]
"""

from __future__ import annotations

import sys
from pathlib import Path

from analysis.cli import run


def main(argv=None) -> int:
    def body(args, a):
        from analysis import figures, tables
        from analysis.pipeline import ANALYSIS, FIGURES, out_dir, write_tables

        out = Path(args.out) if args.out else out_dir(args.paths, FIGURES)
        tables.check(
            a, Path(args.out) if args.out else out_dir(args.paths, ANALYSIS), "the figures"
        )
        fmts = args.format.split(",")
        files = figures.draw(a, out, fmts)
        written = write_tables(a, args.paths, args.out)
        for f in [*(f for fs in files.values() for f in fs), *written]:
            print(f"wrote {f}")

    return run(
        argv,
        "analysis.plot",
        "Draw every figure of the sweeps below the given paths.",
        body,
        "directory for the figures and the analysis tables (default: the figures in <common "
        "dir of the inputs>/_analysis/figures, the tables in <common dir>/_analysis)",
    )


if __name__ == "__main__":
    sys.exit(main())

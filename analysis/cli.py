"""The frame of the analysis commands (plot, report): arguments, one-line errors with exit 2, and
interrupts (lrscale.interrupts), installed before the heavy imports."""

from __future__ import annotations

import argparse
import sys
import time
import warnings

from lrscale import interrupts


def _args(argv, prog: str, what: str, out_help: str):
    from analysis import across, figures_base, metric

    ap = argparse.ArgumentParser(
        prog=f"python -m {prog}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=what,
        epilog=f"example: python -m {prog} outputs/homework   (installed as lrscale-"
        f"{prog.split('.')[-1]})",
    )
    ap.add_argument("paths", nargs="+", help="run dirs, multirun dirs or results.parquet files")
    ap.add_argument("--out", help=out_help)
    ap.add_argument(
        "--format",
        default=",".join(figures_base.FORMATS),
        help="comma-separated image formats (default: %(default)s)",
    )
    ap.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip unreadable or foreign parquet files instead of stopping",
    )
    ap.add_argument(
        "--metric",
        choices=list(metric.METRICS),
        default="loss",
        help="what eta* optimises: the seed-mean final eval loss (minimised) or, for "
        "classification, the final eval accuracy (maximised) (default: %(default)s)",
    )
    ap.add_argument("--boot", type=int, default=1000, help="bootstrap resamples (default: 1000)")
    ap.add_argument(
        "--level", type=float, default=0.95, help="confidence level of intervals (default: 0.95)"
    )
    ap.add_argument(
        "--crit-margin",
        type=float,
        default=across.EPS,
        help="B_crit(D) counts the steps to reach (1 + this) x the best loss at D "
        "(default: %(default)s)",
    )
    args = ap.parse_args(argv)
    if not args.crit_margin > 0:
        ap.error(f"--crit-margin must be > 0 (got {args.crit_margin})")
    if not 0 < args.level < 1:
        ap.error(f"--level must be between 0 and 1 (got {args.level})")
    if args.boot < 0:
        ap.error(f"--boot must be >= 0 (got {args.boot})")
    bad = sorted(set(args.format.split(",")) - set(figures_base.supported_formats()))
    if bad:
        ap.error(f"--format: cannot write {', '.join(bad)}")
    return args


def run(argv, prog: str, what: str, body, out_help: str) -> int:
    """The frame of an analysis command: `body(args, analysis)` on the analysis of args.paths.
    Bad input is one line and exit code 2, never a traceback; an interrupt is one line and exit
    130 or 143 (what was written is whole: every file is replaced atomically)."""
    return interrupts.run(
        prog,
        lambda: _run(argv, prog, what, body, out_help),
        lambda: "every file written so far is whole; nothing half-written was left",
    )


def _run(argv, prog: str, what: str, body, out_help: str) -> int:
    args = _args(argv, prog, what, out_help)
    from analysis.advice import notes
    from analysis.load import AnalysisError
    from analysis.pipeline import analyse

    t = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            a = analyse(
                args.paths,
                skip_bad=args.skip_bad,
                n_boot=args.boot,
                level=args.level,
                by=args.metric,
                margin=args.crit_margin,
            )
            body(args, a)
        except AnalysisError as e:
            err = str(e)
        else:
            err = None
    for w in caught:
        if issubclass(w.category, UserWarning):
            print(f"{prog}: warning: {w.message}", file=sys.stderr)
    if err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    for n in notes(a):
        print(f"note: {n}")
    # a sweep that cannot show a batch-size dependence: an error where no sweep can
    fatal = len(a.problems) == a.summary["sweep_id"].nunique()
    for p in a.problems:
        print(f"{prog}: {'error' if fatal else 'warning'}: {p}", file=sys.stderr)
    print(f"done in {time.perf_counter() - t:.1f} s")
    return 2 if fatal and a.problems else 0

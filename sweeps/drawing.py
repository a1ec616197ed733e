"""The figures at the end of a sweep command: drawn once the results are safe on disk, so that a
failure to draw them is one line saying where the results are."""

from __future__ import annotations

import gc
import shlex
import sys
import time
import warnings
from pathlib import Path


def results_safe(path: Path) -> str:
    """What a user needs to hear when the figures of finished results were not drawn."""
    quoted = shlex.quote(str(path))
    return f"the results are complete in {path}; draw the figures later with: lrscale-plot {quoted}"


def prepare_figures(settings: dict, batch_sizes) -> None:
    """Import the figure modules and warm them up (analysis.pipeline.warm_up), in a thread while
    the sweep trains; a failure is left to the figures themselves, which report it."""
    try:
        from analysis.pipeline import warm_up

        warm_up(settings, batch_sizes)
    except Exception:
        pass


def draw_figures(path: Path, formats=("png",), figures: str = "main") -> None:
    """The figures of the results below path (`figures`: main or all, see PlotConfig); a failure
    to draw them (bad results, no room, no permission) is said in one line."""
    from analysis.load import AnalysisError
    from analysis.output import OutputError
    from analysis.pipeline import plot_dirs

    t = time.perf_counter()
    # What lives now (JAX, Hydra, the results) outlives the figures: the collector need not walk
    # it each time their many small objects set it off (0.5 s of the default sweep's figures).
    gc.freeze()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            files = plot_dirs([path], formats=formats, main_only=figures == "main")
    except AnalysisError as e:
        if isinstance(e, OutputError):  # the results are fine; only their figures failed
            print(f"no figures: {e}; {results_safe(path)}", file=sys.stderr)
        else:
            print(f"no figures: {e}", file=sys.stderr)
        return
    except Exception as e:
        why = (str(e).splitlines() or [""])[0] or type(e).__name__
        print(f"no figures ({type(e).__name__}: {why}); {results_safe(path)}", file=sys.stderr)
        return
    finally:
        gc.unfreeze()
    for w in caught:
        print(f"note: {w.message}", file=sys.stderr)
    took = time.perf_counter() - t
    print(f"figures: {files[0].parent if files else 'none'} ({took:.1f} s)")
    if figures == "main":
        q = shlex.quote(str(path))
        print(f"every figure and the tables: lrscale-plot {q}; the report: lrscale-report {q}")

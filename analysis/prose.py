"""How the report reads: a number and its interval, the small-batch slope and the textbook rule
it matches, whether a sweep has a fitted law, the confidence level; markdown tables and figure
links, and the file name of a sweep's figures."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from analysis import laws


def fitted(r) -> bool:
    """Whether a summary row has a fitted law (its law is None or NaN otherwise)."""
    return isinstance(r["law"], str) and r["law"] in laws.LAWS


def level_of(a) -> float:
    """The confidence level of an Analysis or of an optima table."""
    o = a.opt if hasattr(a, "opt") else a
    return float(o["level"].iloc[0]) if len(o) else 0.95


def fmt(v, spec=".3g") -> str:
    """A number for prose and tables; a dash where there is none."""
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, spec)


def interval(lo, hi, spec=".3g") -> str:
    return f"[{fmt(lo, spec)}, {fmt(hi, spec)}]"


def slope_text(r) -> str:
    if not np.isfinite(r["slope"]):
        return "no small-batch slope (fewer than 2 usable batch sizes)"
    return (
        f"d log eta*/d log B = {r['slope']:.2f} {interval(r['slope_lo'], r['slope_hi'], '.2f')} "
        f"over B = {r['slope_B_min']:g}..{r['slope_B_max']:g}"
    )


def rule_text(r) -> str:
    """Which textbook rule the small-batch slope interval is consistent with, or where it lies."""
    lo, hi = r["slope_lo"], r["slope_hi"]
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return ""
    rules = (
        (1.0, "linear scaling (Goyal et al. 2017)"),
        (0.5, "square-root scaling (Malladi et al. 2022)"),
        (0.0, "no dependence on B"),
    )
    fits = [name for v, name in rules if lo <= v <= hi]
    if fits:
        return "; consistent with " + " and with ".join(fits)
    if lo > 1:
        return "; steeper than linear scaling"
    if lo > 0.5:
        return "; between square-root and linear scaling"
    return "; between flat and square-root scaling" if lo > 0 else "; decreasing with B"


def slug(label: str) -> str:
    """A file-name-safe form of a sweep label."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "sweep"


def table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)


def link(files: list[Path], base: Path, alt: str) -> str:
    png = next((f for f in files if f.suffix == ".png"), files[0])
    return f"![{alt}]({Path(os.path.relpath(png, base)).as_posix()})"

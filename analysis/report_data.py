"""The report's sections across the data budget D, formatted from the tables of
`analysis.tables` (the very frames written to _analysis/*.parquet)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis import across, across_laws
from analysis.prose import fmt, interval, link, slug, table

EXPONENTS = [  # (law in laws.parquet, parameter, what it says)
    ("joint power law", "alpha", "alpha: eta* ~ B^alpha below the knee (joint law)"),
    ("joint power law", "beta", "beta: eta* ~ D^beta below the knee (joint law)"),
    ("eta_max ~ D^k", "exponent", "eta_max(D) ~ D^k (McCandlish law per D)"),
    ("B_noise ~ D^k", "exponent", "B_noise(D) ~ D^k (McCandlish law per D)"),
    ("B_opt ~ D^gamma", "exponent", "gamma: B_opt(D) ~ D^gamma"),
    ("B_crit (S-E fit) ~ D^k", "exponent", "B_crit(D) ~ D^k, S-E fit"),
    ("B_crit (Zhang 20%) ~ D^k", "exponent", "B_crit(D) ~ D^k, steps 20% over linear"),
]


def _b(v, top: float) -> str:
    """A batch size that may be a bound: +inf is 'above the batch sizes', 0 'below them'."""
    if v is None or pd.isna(v):
        return "–"
    return f"> {top:g}" if v == np.inf else ("< 1" if v == 0 else fmt(float(v)))


def _iv(lo, hi, top: float) -> str:
    return f"[{_b(lo, top)}, {_b(hi, top)}]"


def _param(L: pd.DataFrame, law: str, p: str) -> tuple[float, float, float] | None:
    r = L[(L["law"] == law) & (L["parameter"] == p)]
    if r.empty:
        return None
    x = r.iloc[0]
    return float(x["value"]), float(x["lo"]), float(x["hi"])


def exponents(L: pd.DataFrame) -> list[list[str]]:
    """One row per exponent of a sweep: what it is, the value, its interval, and the exact
    theory's where the sweep has one."""
    rows = []
    theory = L["law"].str.endswith(across_laws.THEORY).any()
    for law, p, what in EXPONENTS:
        v = _param(L, law, p)
        row = [what, fmt(v[0], ".3f") if v else "–", interval(v[1], v[2], ".3f") if v else ""]
        if theory:
            t = _param(L, law + across_laws.THEORY, p)
            row.append(fmt(t[0], ".3f") if t else "–")
        rows.append(row)
    return rows


def section(d, label: str, figs: dict, base: Path, level: float) -> list[str]:
    """The "Scaling across data" section of one sweep (d: its analysis.tables.Across)."""
    out = ["### Scaling across data", ""]
    if d is None or d.optima.empty:
        return out + ["No loss curves: nothing across the data budget.", ""]
    o, t, L = d.optima, d.table, d.laws
    steps = o["budget_kind"].iloc[0] == "steps"
    out += [
        "The learning rate is constant, so each lane's loss after D samples is the run with "
        f"budget D: eta*(B | D) at {o[across.d_axis(o)].nunique()} data budgets from one sweep, "
        "with the estimator and bootstrap of eta*(B). B_opt(D) is the batch size with the lowest "
        f"loss at its best lr for budget D (refined in log B); B_crit(D) needs, of each batch "
        f"size, the steps to reach {1 + _margin(t):g} x the best loss at D, fitted by the S-E "
        "trade-off (McCandlish et al. 2018) and read where the steps exceed perfect linear "
        f"scaling by 20% (Zhang et al. 2024). Intervals: {level:.0%}, bootstrap over seeds.",
        "",
    ]
    if steps:
        out += [
            "This sweep has a step budget: its grid is in steps, so D = steps x B differs "
            "between batch sizes at one grid point (the D axis is B-dependent).",
            "",
        ]
    rows = exponents(L)
    head = ["exponent", "value", f"{level:.0%} interval", "exact theory"][: len(rows[0])]
    out += [table(head, rows), ""]
    out += _ratios(o)
    joint, fam = _aic(L, "joint power law"), _aic(L, "saturating family")
    if joint is not None and fam is not None:
        better = "the joint power law" if joint < fam else "the McCandlish law per D"
        out += [
            f"Below the knee, AIC prefers {better} (joint power law {joint:.1f}, McCandlish "
            f"family {fam:.1f}).",
            "",
        ]
    if len(t):
        sizes = np.sort(o["batch_size"].unique()).astype(float)
        rows = []
        for x in t.itertuples():
            # the largest batch size that reaches D: a bound beyond it is "> that"
            top = sizes[sizes <= x.samples].max(initial=sizes[0]) if not steps else sizes[-1]
            row = [
                f"{x.samples:,}",
                x.batches,
                f"{_b(x.B_opt, top)} {_iv(x.B_opt_lo, x.B_opt_hi, top)}",
            ]
            row[-1] += (
                f" ({x.B_opt_edge} edge)" if isinstance(x.B_opt_edge, str) and x.B_opt_edge else ""
            )
            row += [f"{_b(x.B_crit_se, top)} {_iv(x.B_crit_se_lo, x.B_crit_se_hi, top)}"]
            row += [f"{_b(x.B_crit_zhang, top)} {_iv(x.B_crit_zhang_lo, x.B_crit_zhang_hi, top)}"]
            if "B_opt_theory" in t:
                row += [_b(x.B_opt_theory, top), _b(getattr(x, "B_crit_se_theory", np.nan), top)]
            rows.append(row)
        d = "D (steps)" if steps else "D (samples)"
        head = [d, "batch sizes", "B_opt", "B_crit (S-E)", "B_crit (20% rule)"]
        head += ["B_opt theory", "B_crit (S-E) theory"] if "B_opt_theory" in t else []
        out += [table(head, rows), ""]
    s = slug(label)
    for name, alt in (
        ("eta_vs_batch_by_data", "eta*(B) at every data budget"),
        ("eta_map", "eta* over batch size and data budget"),
        ("batch_vs_data", "B_opt and B_crit vs data budget"),
    ):
        if f"{s}_{name}" in figs:
            out += [link(figs[f"{s}_{name}"], base, f"{label}: {alt}"), ""]
    return out


def _ratios(o: pd.DataFrame) -> list[str]:
    """Measured eta*(B | D) against the exact theory's, where the sweep has it."""
    if "eta_theory" not in o or not o["eta_theory"].notna().any():
        return []
    u = o[o["usable"] & o["eta_theory"].notna()]
    if u.empty:
        return []
    r = (u["eta"] / u["eta_theory"]).to_numpy(float)
    inside = ((u["eta_lo"] <= u["eta_theory"]) & (u["eta_theory"] <= u["eta_hi"])).mean()
    q = np.percentile(r, [10, 50, 90])
    return [
        f"Measured eta*(B | D) / exact theory over {len(u)} (B, D) cells: median {q[1]:.3f}, "
        f"10-90% {q[0]:.3f}-{q[2]:.3f}; the theory lies inside the measured interval in "
        f"{inside:.0%} of them.",
        "",
    ]


def _margin(t: pd.DataFrame) -> float:
    return float(t["margin"].iloc[0]) if "margin" in t and len(t) else across.EPS


def _aic(L: pd.DataFrame, law: str) -> float | None:
    r = L[L["law"] == law]["aic"].dropna()
    return float(r.iloc[0]) if len(r) else None


def comparison(data, labels: dict) -> list[str]:
    """Exponents of every sweep side by side, with the literature's values."""
    if data is None or data.laws.empty:
        return []
    picks = [EXPONENTS[1], EXPONENTS[4], EXPONENTS[5], EXPONENTS[6], EXPONENTS[0]]
    head = ["sweep", "beta (eta* ~ D^beta)", "gamma (B_opt ~ D^gamma)", "B_crit S-E", "B_crit 20%"]
    head += ["alpha (eta* ~ B^alpha)"]
    rows = []
    for sid, L in data.laws.groupby("sweep_id", sort=False):
        if sid not in labels:
            continue
        row = [labels[sid]]
        for law, p, _ in picks:
            v = _param(L, law, p)
            row.append(f"{fmt(v[0], '.2f')} {interval(v[1], v[2], '.2f')}" if v else "–")
        rows.append(row)
    if not rows:
        return []
    refs = [f"{q} ~ D^{k}: {src}" for q, k, src in across_laws.LITERATURE]
    out = ["## Scaling across data: exponents of every sweep", ""]
    out += [table(head, rows), ""]
    out += ["Reported in language-model pre-training: " + "; ".join(refs) + ".", ""]
    return out

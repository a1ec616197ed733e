r"""Laws across the data budget D, fitted to the per-D quantities of `analysis.across`.

- Per D, the law of McCandlish et al. 2018, eta*(B | D) = eta_max(D) / (1 + B_noise(D) / B)
  (`analysis.laws.fit`), then power laws in D of eta_max(D) and B_noise(D).
- The joint power law log eta* = a + alpha log B + beta log D (the form of Li et al. 2025's Step
  Law) over the batch sizes below the knee (B < B_noise(D)), compared by AIC with the per-D
  McCandlish family on the same points.
- B_opt(D) ~ D^gamma and B_crit(D) ~ D^kappa (both definitions), fitted to every bootstrap
  replicate of `across.replicates`: the intervals are percentiles over the resamples of seeds.

Every fit is in log-log space, by (weighted) least squares; a power law y = c D^k becomes the
rows `prefactor` (c) and `exponent` (k) of the laws table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis import across, laws
from analysis.across import percentiles

MIN_D = 3  # grid values a law in D needs
# laws.parquet: one row per sweep x law x parameter; samples is the D of a per-D law (null for
# a law across D), lo and hi the interval, aic where laws compete (null otherwise).
COLUMNS = ["sweep_id", "law", "samples", "parameter", "value", "lo", "hi", "aic"]
DTYPES = {"sweep_id": "string", "law": "string", "samples": "Int64", "parameter": "string"}
# Exponents reported in the literature, for the figures and the report: (quantity, exponent,
# source). Each was fitted across model and data sizes in language-model pre-training.
LITERATURE = [
    ("B_opt", 0.383, "Bergsma et al. 2025 (Power Lines)"),
    ("B_opt", 0.571, "Li et al. 2025 (Step Law)"),
    ("eta", 0.307, "Li et al. 2025 (Step Law)"),
]


def wls(X: np.ndarray, y: np.ndarray, w: np.ndarray | None = None, level: float = 0.95):
    """Weighted least squares y ~ X b: (b, lo, hi, aic) with t intervals."""
    n, k = X.shape
    w = np.ones(n) if w is None else np.asarray(w, float)
    sw = np.sqrt(w)
    b, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
    r = (y - X @ b) * sw
    wrss = float(r @ r)
    dof = max(n - k, 1)
    cov = np.linalg.pinv((X * w[:, None]).T @ X) * wrss / dof
    half = stats.t.ppf((1 + level) / 2, dof) * np.sqrt(np.maximum(np.diag(cov), 0))
    aic = n * np.log(max(wrss, 1e-300) / n) + 2 * (k + 1)
    return b, b - half, b + half, float(aic)


def _rows(sweep_id, law, names, value, lo, hi, aic=np.nan, samples=None) -> list[dict]:
    return [
        dict(
            sweep_id=sweep_id,
            law=law,
            samples=samples,
            parameter=n,
            value=float(v),
            lo=float(a),
            hi=float(b),
            aic=aic,
        )
        for n, v, a, b in zip(names, value, lo, hi, strict=True)
    ]


def power_in_d(sweep_id, law: str, D, y, lo=None, hi=None, level=0.95) -> list[dict]:
    """y = c D^k by least squares in log-log (weights from the intervals of y where given)."""
    D, y = np.asarray(D, float), np.asarray(y, float)
    w = None if lo is None else laws.weights(np.asarray(lo, float), np.asarray(hi, float), level)
    ok = np.isfinite(y) & (y > 0)
    if ok.sum() < MIN_D:
        return []
    X = np.column_stack([np.ones(ok.sum()), np.log(D[ok])])
    b, blo, bhi, aic = wls(X, np.log(y[ok]), None if w is None else w[ok], level)
    pre = np.exp([b[0], blo[0], bhi[0]])
    return _rows(
        sweep_id, law, ["prefactor", "exponent"], [pre[0], b[1]], [pre[1], blo[1]],
        [pre[2], bhi[1]], aic,
    )  # fmt: skip


def exponent_boot(sweep_id, law: str, rep: pd.DataFrame, col: str, level=0.95) -> list[dict]:
    """y(D) = c D^k fitted to the data (r = 0) and to every resample; percentile intervals.
    Only finite values strictly inside the batch sizes (not an edge or a bound) take part."""
    ok = rep[col].between(0, np.inf, inclusive="neither")
    if col == "B_opt":
        ok &= rep["B_opt_edge"].eq("")
    # one least-squares line per resample at once: rows r, columns D, masked where not usable
    Y = np.log(rep[col].where(ok)).to_frame().assign(r=rep["r"], D=rep["samples"])
    Y = Y.pivot_table(index="r", columns="D", values=col, aggfunc="first")
    x, M = np.log(Y.columns.to_numpy(float)), np.isfinite(Y.to_numpy(float))
    y = np.where(M, Y.to_numpy(float), 0.0)
    n = M.sum(1)
    with np.errstate(all="ignore"):
        xm, ym = (M * x).sum(1) / n, y.sum(1) / n
        k = ((M * (x - xm[:, None])) * (y - ym[:, None] * M)).sum(1) / (
            (M * (x - xm[:, None]) ** 2).sum(1)
        )
    c = np.exp(ym - k * xm)
    fits = np.where((n >= MIN_D)[:, None], np.column_stack([c, k]), np.nan)
    if len(fits) == 0 or Y.index[0] != 0 or n[0] < MIN_D:
        return []
    point, boot = fits[0], fits[1:]
    lo_hi = [percentiles(boot[:, j], level) for j in range(2)]
    return _rows(
        sweep_id, law, ["prefactor", "exponent"], point, [a for a, _ in lo_hi],
        [b for _, b in lo_hi],
    )  # fmt: skip


def eta_laws(opt_d: pd.DataFrame, sweep_id: str, level: float = 0.95) -> list[dict]:
    """The McCandlish law per D, its parameters as power laws in D, and the joint power law
    below the knee against the per-D family (AIC on the same points)."""
    key = across.d_axis(opt_d)
    g = opt_d[opt_d["usable"]]
    rows, per_d = [], {}
    for D, h in g.groupby(key, sort=True):
        if h["batch_size"].nunique() < laws.MIN_POINTS:
            continue
        w = laws.weights(h["eta_lo"], h["eta_hi"], level, laws.GRID_FRACTION * laws.grid_step(h))
        f = laws.fit("saturating", h["batch_size"], h["eta"], w, n_boot=200, level=level)
        per_d[D] = f
        names = ["eta_max", "B_noise"]
        rows += _rows(
            sweep_id, "saturating", names, [f[n] for n in names], [f[f"{n}_lo"] for n in names],
            [f[f"{n}_hi"] for n in names], f["aic"], samples=int(round(D)),
        )  # fmt: skip
    if len(per_d) < MIN_D:
        return rows
    Ds = np.array(sorted(per_d))
    for n in ("eta_max", "B_noise"):
        v = [per_d[D][n] for D in Ds]
        lo, hi = [per_d[D][f"{n}_lo"] for D in Ds], [per_d[D][f"{n}_hi"] for D in Ds]
        rows += power_in_d(sweep_id, f"{n} ~ D^k", Ds, v, lo, hi, level)
    # Below the knee of each D's law: the joint power law against the per-D family.
    below = g[g[key].isin(Ds)]
    knee = below[key].map({D: per_d[D]["B_noise"] for D in Ds})
    below = below[below["batch_size"] < knee]
    if len(below) < 5 or below[key].nunique() < 2:
        return rows
    y = np.log(below["eta"].to_numpy(float))
    w = laws.weights(below["eta_lo"], below["eta_hi"], level)
    X = np.column_stack([np.ones(len(below)), np.log(below["batch_size"]), np.log(below[key])])
    b, blo, bhi, aic = wls(X, y, w, level)
    rows += _rows(sweep_id, "joint power law", ["a", "alpha", "beta"], b, blo, bhi, aic)
    pred = [
        np.log(laws.predict("saturating", per_d[D], B))
        for B, D in zip(below["batch_size"], below[key], strict=True)
    ]
    r = (y - np.asarray(pred, float)) * np.sqrt(w)
    n, k = len(y), 2 * below[key].nunique() + 1
    fam = n * np.log(max(float(r @ r), 1e-300) / n) + 2 * k
    rows += _rows(sweep_id, "saturating family", ["laws"], [len(Ds)], [np.nan], [np.nan], fam)
    return rows


THEORY = " [theory]"  # suffix of the laws fitted to the exact theory's values


def theory_laws(table: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """The laws in D of the exact theory's B_opt(D) and B_crit(D), where the table has them."""
    rows = []
    for sid, t in table.groupby("sweep_id", sort=True):
        for col, law in (
            ("B_opt", "B_opt ~ D^gamma"),
            ("B_crit_se", "B_crit (S-E fit) ~ D^k"),
            ("B_crit_zhang", "B_crit (Zhang 20%) ~ D^k"),
        ):
            y = t.get(f"{col}_theory")
            if y is None:
                continue
            y = y.to_numpy(float)
            inside = np.isfinite(y) & (y > 0)
            if col == "B_opt":  # an optimum at the edge of the batch sizes is not a point of a law
                inside &= t["B_opt_edge_theory"].fillna("").eq("").to_numpy()
            rows += power_in_d(sid, law + THEORY, t["samples"][inside], y[inside], level=level)
    return pd.DataFrame(rows, columns=COLUMNS).astype(DTYPES)


def laws_table(
    opt_d: pd.DataFrame, table: pd.DataFrame, reps: pd.DataFrame, level: float = 0.95
) -> pd.DataFrame:
    """Every law fitted across D, one row per sweep x law x parameter (x D for per-D laws)."""
    rows = []
    for sid, o in opt_d.groupby("sweep_id", sort=True):
        rows += eta_laws(o, sid, level)
        rep = reps[reps["sweep_id"] == sid] if len(reps) else reps
        if len(rep):
            rows += exponent_boot(sid, "B_opt ~ D^gamma", rep, "B_opt", level)
            rows += exponent_boot(sid, "B_crit (S-E fit) ~ D^k", rep, "B_crit_se", level)
            rows += exponent_boot(sid, "B_crit (Zhang 20%) ~ D^k", rep, "B_crit_zhang", level)
    return pd.DataFrame(rows, columns=COLUMNS).astype(DTYPES)

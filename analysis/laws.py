"""Scaling laws of the optimal learning rate eta*(B): fits in log space, bootstrap intervals, AIC.

power       eta* = c * B^alpha
saturating  eta* = eta_max / (1 + B_noise / B)                       (McCandlish et al. 2018)
surge       eta* = eta_max / (0.5 * (sqrt(B_noise/B) + sqrt(B/B_noise)))  (Li et al. 2024)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, stats

from analysis.estimator import vertex

LAWS = ("power", "saturating", "surge")
PARAMS = {
    "power": ("c", "alpha"),
    "saturating": ("eta_max", "B_noise"),
    "surge": ("eta_max", "B_noise"),
}
TITLES = {
    "power": "power law",
    "saturating": "linear then saturating (McCandlish et al. 2018)",
    "surge": "surge (Li et al. 2024)",
}
MIN_POINTS = 3
SPAN = 2.0  # decades beyond the data that B_noise may take; past that the law is flat or linear
GRID_FRACTION = 0.25  # a refined argmin resolves about a quarter of an lr grid step, no better


def log_g(lb: np.ndarray, u: np.ndarray, law: str) -> np.ndarray:
    """log(eta*/eta_max) at log batch size lb for log B_noise u."""
    if law == "saturating":
        return -np.logaddexp(0.0, u - lb)
    # 0.5 * (sqrt(Bn/B) + sqrt(B/Bn)) = cosh((u - lb) / 2), written stably
    t = np.abs(u - lb) / 2
    return -(t + np.log1p(np.exp(-2 * t)) - np.log(2.0))


def predict(law: str, p: dict, B) -> np.ndarray:
    """eta*(B) of a law with parameters p."""
    B = np.asarray(B, float)
    if law == "power":
        return p["c"] * B ** p["alpha"]
    return p["eta_max"] * np.exp(log_g(np.log(B), np.log(p["B_noise"]), law))


def local_slope(law: str, p: dict, B) -> np.ndarray:
    """d log eta* / d log B of a law at B."""
    B = np.asarray(B, float)
    if law == "power":
        return np.full_like(B, p["alpha"])
    Bn = p["B_noise"]
    return Bn / (B + Bn) if law == "saturating" else 0.5 * (Bn - B) / (Bn + B)


def _line(x, Y, w):
    """Weighted least-squares intercept and slope of each row of Y (..., n) on x (n,)."""
    W = w.sum()
    xm = (w * x).sum() / W
    ym = (Y * w).sum(-1) / W
    b = ((Y - ym[..., None]) * w * (x - xm)).sum(-1) / (w * (x - xm) ** 2).sum()
    return ym - b * xm, b


def _profile(law, lb, Y, w, polish=False):
    """(log eta_max, log B_noise) of each row of Y: B_noise on a grid, eta_max in closed form."""
    lo, hi = lb.min() - SPAN * np.log(10), lb.max() + SPAN * np.log(10)
    U = np.linspace(lo, hi, 241)
    R = Y[..., None, :] - log_g(lb, U[:, None], law)  # (..., m, n)
    a = (R * w).sum(-1) / w.sum()
    wrss = (w * (R - a[..., None]) ** 2).sum(-1)
    u, _ = vertex(U, wrss, np.argmin(wrss, axis=-1))
    if polish:

        def cost(v):
            r = Y - log_g(lb, v, law)
            return (w * (r - (w * r).sum() / w.sum()) ** 2).sum()

        step = U[1] - U[0]
        b = (max(lo, float(u) - step), min(hi, float(u) + step))
        u = np.asarray(optimize.minimize_scalar(cost, bounds=b, method="bounded").x)
    a = (w * (Y - log_g(lb, np.asarray(u)[..., None], law))).sum(-1) / w.sum()
    edge = 0.5 * (U[1] - U[0])
    return a, u, (u <= lo + edge) | (u >= hi - edge)


def _fit_logs(law, lb, Y, w, polish=False):
    """Log-space parameters of each row of Y: (p1, p2, at_bound)."""
    if law == "power":
        a, b = _line(lb, Y, w)
        return a, b, np.zeros(np.shape(a), bool)
    return _profile(law, lb, Y, w, polish)


def _params(law, p1, p2):
    if law == "power":
        return {"c": np.exp(p1), "alpha": p2}
    return {"eta_max": np.exp(p1), "B_noise": np.exp(p2)}


def _logpred(law, lb, p1, p2):
    if law == "power":
        return p1[..., None] + p2[..., None] * lb
    return p1[..., None] + log_g(lb, p2[..., None], law)


def grid_step(opt: pd.DataFrame) -> np.ndarray:
    """The log spacing of each row's lr grid."""
    return np.log(opt["lr_hi"] / opt["lr_lo"]).to_numpy(float) / np.maximum(opt["n_lr"] - 1, 1)


def weights(eta_lo, eta_hi, level: float = 0.95, floor=0.01) -> np.ndarray:
    """Inverse variances of log eta* from interval bounds, each at least `floor` (log units).

    A seed bootstrap with few seeds, or a minimum pinned to a grid point, gives intervals far
    narrower than the grid can resolve; the floor (a fraction of the lr grid step) keeps such
    points from dictating the fit.
    """
    lo, hi = np.asarray(eta_lo, float), np.asarray(eta_hi, float)
    with np.errstate(all="ignore"):
        s = (np.log(hi) - np.log(lo)) / (2 * stats.norm.ppf(0.5 + level / 2))
    ok = np.isfinite(s) & (s > 0)
    if not ok.any():
        return np.ones(len(lo))
    s = np.where(ok, s, np.median(s[ok]))
    s = np.maximum(s, np.maximum(floor, 0.25 * np.median(s[ok])))
    return 1.0 / s**2


def fit(law: str, B, eta, w=None, n_boot: int = 500, level: float = 0.95, rng=None) -> dict:
    """Fit one law in log space (weights w on log eta*), residual-bootstrap intervals, AIC."""
    lb, y = np.log(np.asarray(B, float)), np.log(np.asarray(eta, float))
    n = len(y)
    w = np.ones(n) if w is None else np.asarray(w, float)
    rng = np.random.default_rng(0) if rng is None else rng
    p1, p2, bound = _fit_logs(law, lb, y, w, polish=True)
    yhat = _logpred(law, lb, p1, p2)
    wrss = float((w * (y - yhat) ** 2).sum())
    k = len(PARAMS[law]) + 1  # + the residual scale
    out = dict(law=law, n=n, wrss=wrss, k=k, at_bound=bool(bound))
    out["aic"] = n * np.log(max(wrss, 1e-300) / n) + 2 * k
    out |= {name: float(v) for name, v in _params(law, p1, p2).items()}
    # Standardised residuals, inflated for the fitted parameters, resampled onto the fit.
    e = (y - yhat) * np.sqrt(w) * np.sqrt(n / max(n - k + 1, 1))
    e = e - e.mean()
    Ys = yhat + rng.choice(e, size=(n_boot, n)) / np.sqrt(w)
    b1, b2, _ = _fit_logs(law, lb, Ys, w)
    q = [50 * (1 - level), 50 * (1 + level)]
    for name, (l1, l2) in zip(
        PARAMS[law], np.percentile(np.stack([b1, b2]), q, axis=1).T, strict=True
    ):
        log_param = name != "alpha"
        out[f"{name}_lo"], out[f"{name}_hi"] = np.exp([l1, l2]) if log_param else (l1, l2)
    return out


def slope(B, eta, w=None, k: int = 4, level: float = 0.95) -> dict:
    """Local slope d log eta*/d log B over the k smallest batch sizes, with a normal interval.

    With weights from the eta* intervals the spread is the larger of the measured one and the
    scatter about the line; without, the scatter alone (Student t).
    """
    i = np.argsort(B)[:k]
    x, y = np.log(np.asarray(B, float)[i]), np.log(np.asarray(eta, float)[i])
    n = len(x)
    out = dict(
        slope=np.nan, slope_lo=np.nan, slope_hi=np.nan, slope_B_min=np.nan, slope_B_max=np.nan
    )
    if n < 2:
        return out
    known = w is not None
    w = np.ones(n) if w is None else np.asarray(w, float)[i]
    a, b = _line(x, y, w)
    dof = n - 2
    chi = (w * (y - a - b * x) ** 2).sum() / dof if dof > 0 else np.nan
    scale = np.sqrt(max(1.0, chi)) if known and dof > 0 else 1.0 if known else np.sqrt(chi)
    se = scale / np.sqrt((w * (x - (w * x).sum() / w.sum()) ** 2).sum())
    z = stats.norm.ppf(0.5 + level / 2) if known else stats.t.ppf(0.5 + level / 2, max(dof, 1))
    return dict(
        slope=b,
        slope_lo=b - z * se,
        slope_hi=b + z * se,
        slope_B_min=float(np.exp(x.min())),
        slope_B_max=float(np.exp(x.max())),
    )


def _g(v) -> str:
    return f"{v:.3g}"


def formula(law: str, p: dict) -> str:
    """The fitted law as a matplotlib math string."""
    if law == "power":
        return rf"$\eta^* = {_g(p['c'])}\,B^{{{p['alpha']:.2f}}}$"
    e, b = _g(p["eta_max"]), _g(p["B_noise"])
    if law == "saturating":
        return rf"$\eta^* = {e}\,/\,(1 + {b}/B)$"
    return rf"$\eta^* = {e}\,/\,(\frac{{1}}{{2}}(\sqrt{{{b}/B}} + \sqrt{{B/{b}}}))$"


def text_formula(law: str, p: dict) -> str:
    """The fitted law in plain text."""
    if law == "power":
        return f"eta* = {_g(p['c'])} * B^{p['alpha']:.2f}"
    e, b = _g(p["eta_max"]), _g(p["B_noise"])
    if law == "saturating":
        return f"eta* = {e} / (1 + {b}/B)"
    return f"eta* = {e} / (0.5 * (sqrt({b}/B) + sqrt(B/{b})))"


SHAPES = {
    "flat": "no dependence on B",
    "linear": "linear scaling, eta* proportional to B",
    "linear-then-saturating": "linear scaling at small B, saturating at large B",
    "sqrt": "square-root scaling, eta* proportional to sqrt(B)",
    "surge": "a surge: rising like sqrt(B) to a peak, then falling",
    "power": "a power law in B",
    "falling": "falling with B",
}


def classify(law: str, p: dict, B_min: float, B_max: float) -> str:
    """The shape of a fitted law over [B_min, B_max]: one of the keys of SHAPES."""
    if law == "power":
        a, lo, hi = p["alpha"], p.get("alpha_lo", np.nan), p.get("alpha_hi", np.nan)
        if abs(a) < 0.1 or (lo <= 0 <= hi and abs(a) < 0.2):
            return "flat"
        near = {1.0: "linear", 0.5: "sqrt"}
        return next(
            (s for v, s in near.items() if abs(a - v) < 0.15), "falling" if a < 0 else "power"
        )
    # Only a bend inside the batch sizes counts: past either end, the data see one regime.
    Bn = p["B_noise"]
    inside = B_min <= Bn <= B_max
    if law == "saturating":
        return "linear-then-saturating" if inside else "flat" if Bn < B_min else "linear"
    return "surge" if inside else "falling" if Bn < B_min else "sqrt"


def describe(law: str, p: dict, B_min: float, B_max: float) -> str:
    """The shape of a fitted law over the batch sizes [B_min, B_max], in words."""
    shape = classify(law, p, B_min, B_max)
    if law == "power":
        a, lo, hi = p["alpha"], p.get("alpha_lo", np.nan), p.get("alpha_hi", np.nan)
        ci = f" [{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) else ""
        if shape == "flat":
            mid = predict(law, p, np.sqrt(B_min * B_max))
            return f"flat: eta* ~ {_g(mid)} at every batch size (B^{a:.2f}{ci})"
        rough = {"linear": ", roughly linear in B", "sqrt": ", roughly like sqrt(B)"}
        return f"{'grows' if a > 0 else 'falls'} like B^{a:.2f}{ci}" + rough.get(shape, "")
    e, b = _g(p["eta_max"]), _g(p["B_noise"])
    return {
        "flat": f"flat at eta ~ {e}: saturated already at the smallest batch size B = {B_min:g}",
        "linear": f"linear in B over the whole range B = {B_min:g}..{B_max:g} "
        f"(no saturation yet; B_noise ~ {b} lies beyond it)",
        "linear-then-saturating": f"linear in B up to B ~ {b}, then saturating at eta ~ {e}",
        "sqrt": f"rises like sqrt(B) over the whole range (its peak lies beyond B = {B_max:g})",
        "falling": f"falls like 1/sqrt(B) over the whole range (its peak lies below B = {B_min:g})",
        "surge": f"rises like sqrt(B) up to a peak at B ~ {b} (eta ~ {e}), then falls",
    }[shape]


def fit_all(B, eta, w=None, n_boot: int = 500, level: float = 0.95, seed: int = 0):
    """Every law fitted to one eta*(B), ranked by AIC (best first), each described in words."""
    rng = np.random.default_rng(seed)
    rows = [fit(law, B, eta, w, n_boot, level, rng) for law in LAWS]
    df = pd.DataFrame(rows).sort_values("aic", kind="stable").reset_index(drop=True)
    df["delta_aic"] = df["aic"] - df["aic"].min()
    df["best"] = df.index == 0
    lo, hi = float(np.min(B)), float(np.max(B))
    df["shape"] = [classify(r.law, r._asdict(), lo, hi) for r in df.itertuples(index=False)]
    df["words"] = [describe(r.law, r._asdict(), lo, hi) for r in df.itertuples(index=False)]
    df["formula"] = [text_formula(r.law, r._asdict()) for r in df.itertuples(index=False)]
    return df

"""The coverage study's evaluation (sweeps.coverage trains its lanes): per config, batch size and
group of seeds, whether the eta* interval covers the exact theory's eta*; and its summary:
coverage per nominal level and number of seeds, with a binomial interval, the median interval
width, the bias of eta*, and the seeds a given width needs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis import estimator, interval, theory

LEVELS = (0.8, 0.9, 0.95)
GROUPS = (2, 3, 4, 8)  # seeds per independent repetition of a sweep
WIDTHS = (1.5, 2.0, 3.0)  # interval widths hi/lo the seeds-needed table aims at


def binomial(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval of a proportion k/n."""
    if n == 0:
        return np.nan, np.nan
    a = (1 - level) / 2
    lo = stats.beta.ppf(a, k, n - k + 1) if k > 0 else 0.0
    hi = stats.beta.ppf(1 - a, k + 1, n - k) if k < n else 1.0
    return float(lo), float(hi)


def summary(ev: pd.DataFrame) -> pd.DataFrame:
    """Per level x seeds (and all seeds pooled): trials, coverage with its 95% binomial interval,
    median width hi/lo, median log10(eta*/theory) and its median in lr grid steps."""
    rows = []
    u = ev[ev["usable"]]
    for level, g in u.groupby("level"):
        every = ev[ev["level"] == level]
        for n, h in g.groupby("seeds"):
            rows.append(_row(level, str(n), h, every[every["seeds"] == n]))
        rows.append(_row(level, "all", g, every))
    return pd.DataFrame(rows)


def _row(level, n, g: pd.DataFrame, every: pd.DataFrame) -> dict:
    k, m = int(g["covered"].sum()), len(g)
    lo, hi = binomial(k, m)
    return dict(
        level=level,
        seeds=n,
        trials=m,
        configs=g["config"].nunique(),
        batch_sizes=len(g.drop_duplicates(["config", "batch_size"])),
        usable=m / max(len(every), 1),
        coverage=k / m if m else np.nan,
        cov_lo=lo,
        cov_hi=hi,
        width=float(g["width"].median()),
        bias=float(g["log_ratio"].median()),
        bias_steps=float((g["log_ratio"] / g["step"]).median()),
        abs_err_steps=float((g["log_ratio"].abs() / g["step"]).median()),
        grid_err_steps=float(g["grid_error"].abs().median()),
    )


def needed(ev: pd.DataFrame, widths=WIDTHS) -> pd.DataFrame:
    """Per level and target width: the fewest seeds whose median interval is that narrow; past
    the largest group, extrapolated with the log width shrinking as 1/sqrt(seeds)."""
    rows = []
    u = ev[ev["usable"]]
    for level, g in u.groupby("level"):
        med = g.groupby("seeds")["width"].median().sort_index()
        for w in widths:
            ok = med[med <= w]
            if len(ok):
                n, how = int(ok.index[0]), "measured"
            else:
                n0, w0 = int(med.index[-1]), float(med.iloc[-1])
                n, how = int(np.ceil(n0 * (np.log(w0) / np.log(w)) ** 2)), "extrapolated"
            rows.append(dict(level=level, width=w, seeds=n, how=how))
    return pd.DataFrame(rows)


def text(s: pd.DataFrame, need: pd.DataFrame, ev: pd.DataFrame, method: str, secs: float) -> str:
    """The summary as markdown."""
    u = ev[ev["usable"]]
    per = ev.drop_duplicates(["config", "batch_size"])
    head = (
        f"# eta* interval coverage ({method})\n\n"
        f"{ev['config'].nunique()} configs, {len(per)} batch sizes ({int(per['in_range'].sum())} "
        f"with the theory's eta* inside the lr range), "
        f"{len(u.drop_duplicates(['config', 'batch_size', 'seeds', 'group']))} usable "
        f"seed-group x batch-size estimates; {secs:.0f} s.\n\n"
        "| level | seeds | trials | usable | coverage | 95% binomial | median width | "
        "bias (log10) | bias (grid steps) | median error (grid steps) | "
        "without seed noise (grid steps) |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r.level:.0%} | {r.seeds} | {r.trials} | {r.usable:.0%} | {r.coverage:.3f} | "
        f"[{r.cov_lo:.3f}, {r.cov_hi:.3f}] | {r.width:.2f}x | {r.bias:+.3f} | "
        f"{r.bias_steps:+.2f} | {r.abs_err_steps:.2f} | {r.grid_err_steps:.2f} |"
        for r in s.itertuples()
    ]
    need_lines = [
        f"| {r.level:.0%} | {r.width:g}x | {r.seeds} | {r.how} |" for r in need.itertuples()
    ]
    return (
        head
        + "\n".join(lines)
        + "\n\nSeeds for a median interval width (hi/lo):\n\n| level | width | seeds | |\n"
        + "|---|---|---|---|\n"
        + "\n".join(need_lines)
        + "\n"
    )


def truth(c, lrs: np.ndarray) -> pd.DataFrame:
    """Per batch size of config c (a row of the lanes table, or the study's dict, with its
    batch sizes): the exact theory's eta*, and the refined argmin of its expected loss on the
    sweep's lr grid (what the estimator would report without seed noise)."""
    from tasks.regression import spectrum

    per = {"samples": c["budget"]} if c["kind"] == "samples" else {"steps": c["budget"]}
    lam, B = spectrum(c["dim"], c["decay"]), np.asarray(c["batch_sizes"])
    eta = theory.optimal_lr(B, lam, c["noise"], **per)
    T = theory.budget_steps(B, **per)
    L = theory.expected_loss(lrs[None, :], B[:, None], T[:, None], lam, c["noise"])
    _, xv, _ = estimator.argmin_refined(np.log10(lrs), L)
    return pd.DataFrame(dict(batch_size=B, eta_theory=eta, eta_exact_grid=10**xv))


def evaluate(
    lanes: pd.DataFrame,
    levels=LEVELS,
    groups=GROUPS,
    method: str = interval.METHOD,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (config, batch size, seed group, level): eta*, its interval, and whether it
    covers the theory's eta*."""
    rng = np.random.default_rng(seed)
    lanes = _with_truth(lanes)
    rows = []
    for (cfg, b), g in lanes.groupby(["config", "batch_size"], sort=True):
        P = g.pivot_table(index="lr", columns="seed", values="loss", aggfunc="first")
        lr, L = P.index.to_numpy(float), P.to_numpy(float)
        true = float(g["eta_theory"].iloc[0])
        exact = float(g["eta_exact_grid"].iloc[0])
        inside = lr[0] < true < lr[-1]
        step = np.log10(lr[-1] / lr[0]) / (len(lr) - 1)
        for n in groups:
            for r in range(L.shape[1] // n):
                sub = L[:, r * n : (r + 1) * n]
                for level in levels:
                    o = estimator.one(lr, sub, n_boot, level, rng, method=method)
                    rows.append(
                        dict(
                            config=cfg,
                            batch_size=b,
                            seeds=n,
                            group=r,
                            level=level,
                            eta=o.get("eta", np.nan),
                            eta_lo=o.get("eta_lo", np.nan),
                            eta_hi=o.get("eta_hi", np.nan),
                            status=o["status"],
                            eta_theory=true,
                            eta_exact_grid=exact,
                            in_range=inside,
                            step=step,
                        )
                    )
    out = pd.DataFrame(rows)
    out["usable"] = out["status"].eq("ok") & out["in_range"]
    out["covered"] = (out["eta_lo"] <= out["eta_theory"]) & (out["eta_theory"] <= out["eta_hi"])
    out["log_ratio"] = np.log10(out["eta"] / out["eta_theory"])
    out["width"] = out["eta_hi"] / out["eta_lo"]
    out["grid_error"] = np.log10(out["eta_exact_grid"] / out["eta_theory"]) / out["step"]
    out["method"] = method
    return out


def _with_truth(lanes: pd.DataFrame) -> pd.DataFrame:
    """The lanes with the exact theory's eta* of their config and batch size (as a lanes table
    written with them keeps them)."""
    if {"eta_theory", "eta_exact_grid"} <= set(lanes.columns):
        return lanes
    parts = []
    for _, g in lanes.groupby("config", sort=False):
        c = g.iloc[0].to_dict() | {"batch_sizes": sorted(g["batch_size"].unique())}
        t = truth(c, np.sort(g["lr"].unique()))
        g = g.drop(columns=["eta_theory", "eta_exact_grid"], errors="ignore")
        parts.append(g.merge(t, on="batch_size", how="left"))
    return pd.concat(parts, ignore_index=True)

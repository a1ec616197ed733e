"""Coverage of the eta* intervals, checked against the exact theory of the regression task.

    python -m analysis.coverage [--configs 24] [--seed 2] [--out outputs/coverage] [--method scaled]
    python -m analysis.coverage --lanes outputs/coverage/lanes.parquet --method percentile

Draws random configs of the pinned regression task with the linear model and SGD (dim, spectrum
decay, label noise, a step or a sample budget, batch sizes, lr grid range and density), trains
each as one sweep of SEEDS seeds, and splits the seeds into disjoint groups of 2, 3, 4 and 8:
each group is an independent repetition of a sweep with that many seeds. For every group and
batch size whose eta* the analysis deems usable, it checks whether the reported interval covers
the exact theory's eta* (analysis.theory.optimal_lr, inside the lr range), at each nominal
level. The losses of every lane go to lanes.parquet (rerun the estimator on them with --lanes),
one row per group x batch size x level to coverage.parquet; the summary (analysis.coverage_table)
is printed and written as coverage.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import estimator, interval, theory
from analysis.coverage_table import LEVELS, needed, summary, text
from lrscale import interrupts

SEEDS = 16  # per sweep; split into disjoint groups of GROUPS seeds
GROUPS = (2, 3, 4, 8)
POW2 = [2**k for k in range(10)]  # batch sizes 1..512
DENSITY = (4, 6, 8, 12)  # lrs per decade
MAX_WORK = 2**16  # steps x batch size of a step budget: seconds per sweep on a laptop CPU
MIN_STEPS = 8


def draw(rng: np.random.Generator) -> dict:
    """One random config of the regression task, in ranges a user would sweep."""
    c = dict(
        dim=int(rng.choice([8, 16, 32, 64])),
        decay=round(float(rng.uniform(0.0, 2.0)), 2),
        noise=round(float(10 ** rng.uniform(-1.3, 0.3)), 3),
        density=int(rng.choice(DENSITY)),
        lr_min=float(10 ** rng.choice([-4.0, -3.5, -3.0])),
        lr_max=float(rng.choice([1.0, 3.0])),
    )
    if rng.random() < 0.5:
        steps = int(round(10 ** rng.uniform(1.7, 3.0)))
        ok = [b for b in POW2 if b * steps <= MAX_WORK]
        c |= dict(kind="steps", budget=steps)
    else:
        samples = int(2 ** rng.integers(11, 16))
        ok = [b for b in POW2 if samples // b >= MIN_STEPS]
        c |= dict(kind="samples", budget=samples)
    k = min(len(ok), int(rng.integers(3, 6)))
    c["batch_sizes"] = sorted(int(b) for b in rng.choice(ok, k, replace=False))
    return c


def overrides(c: dict, seeds: int = SEEDS) -> list[str]:
    decades = np.log10(c["lr_max"] / c["lr_min"])
    samples, steps = (c["budget"], "null") if c["kind"] == "samples" else ("null", c["budget"])
    return [
        "model=linear",
        "optimizer=sgd",
        f"task.dim={c['dim']}",
        f"task.spectrum_decay={c['decay']}",
        f"task.noise_std={c['noise']}",
        f"sweep.batch_sizes=[{','.join(map(str, c['batch_sizes']))}]",
        f"sweep.lr.min={c['lr_min']}",
        f"sweep.lr.max={c['lr_max']}",
        f"sweep.lr.num={int(round(decades * c['density'])) + 1}",
        f"sweep.seeds={seeds}",
        f"sweep.budget.samples={samples}",
        f"sweep.budget.steps={steps}",
        "sweep.curve_points=2",
        "progress=false",
        "plot.enabled=false",
    ]


def config(over: list[str]):
    """The typed, validated config of these overrides, composed as `sweeps.run` does."""
    from hydra import compose, initialize_config_dir

    from lrscale.checks import validate
    from lrscale.config import register, to_config

    register()
    conf = Path(__file__).resolve().parents[1] / "sweeps" / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        return validate(to_config(compose("config", overrides=over)))


def truth(c: dict, lrs: np.ndarray) -> pd.DataFrame:
    """Per batch size of config c: the exact theory's eta*, and the refined argmin of its
    expected loss on the sweep's lr grid (what the estimator would report without seed noise)."""
    from tasks.regression import spectrum

    per = {"samples": c["budget"]} if c["kind"] == "samples" else {"steps": c["budget"]}
    lam, B = spectrum(c["dim"], c["decay"]), np.asarray(c["batch_sizes"])
    eta = theory.optimal_lr(B, lam, c["noise"], **per)
    T = theory.budget_steps(B, **per)
    L = theory.expected_loss(lrs[None, :], B[:, None], T[:, None], lam, c["noise"])
    _, xv, _ = estimator.argmin_refined(np.log10(lrs), L)
    return pd.DataFrame(dict(batch_size=B, eta_theory=eta, eta_exact_grid=10**xv))


def draws(n: int, seed: int = 0) -> list[dict]:
    """n random configs (see draw), reproducible from seed."""
    rng = np.random.default_rng(seed)
    return [draw(rng) for _ in range(n)]


def lanes(configs: list[dict], seeds: int = SEEDS, log=print) -> pd.DataFrame:
    """Train each config as one sweep; one row per (config, batch size, lr, seed), with the
    theory's eta* of its batch size."""
    from sweeps.sweep import run_sweep

    out = []
    for i, c in enumerate(configs):
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            res = run_sweep(config(overrides(c, seeds)), Path(tmp) / "run")
        df = res[["batch_size", "lr", "seed", "final_eval_loss"]].rename(
            columns={"final_eval_loss": "loss"}
        )
        df = df.merge(truth(c, np.sort(df["lr"].unique())), on="batch_size", how="left")
        df = df.assign(config=i, **{k: v for k, v in c.items() if k != "batch_sizes"})
        out.append(df)
        log(
            f"config {i + 1}/{len(configs)}: dim {c['dim']} decay {c['decay']} noise "
            f"{c['noise']} {c['kind']} {c['budget']} B {c['batch_sizes']} "
            f"({time.perf_counter() - t0:.1f} s)"
        )
    return pd.concat(out, ignore_index=True)


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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m analysis.coverage", description=__doc__.split("\n")[0]
    )
    p.add_argument("--configs", type=int, default=24, help="random configs to train (default 24)")
    p.add_argument(
        "--seed",
        type=int,
        default=2,
        help="draws the configs (default 2: configs that played no part in choosing "
        "analysis.interval.GRID_SD, which seeds 0 and 1 did)",
    )
    p.add_argument("--out", type=Path, default=Path("outputs/coverage"))
    p.add_argument("--lanes", type=Path, help="reuse these trained lanes instead of training")
    p.add_argument("--method", choices=interval.METHODS, default=interval.METHOD)
    p.add_argument("--boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    a.out.mkdir(parents=True, exist_ok=True)
    if a.lanes:
        lan = pd.read_parquet(a.lanes)
    else:
        err = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
        lan = lanes(draws(a.configs, a.seed), log=err)
        lan.to_parquet(a.out / "lanes.parquet", index=False)
    ev = evaluate(lan, method=a.method, n_boot=a.boot)
    ev.to_parquet(a.out / "coverage.parquet", index=False)
    md = text(summary(ev), needed(ev), ev, a.method, time.perf_counter() - t0)
    (a.out / "coverage.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(interrupts.run("analysis.coverage", main, lambda: "files written so far are kept"))

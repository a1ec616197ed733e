"""Coverage of the eta* intervals, checked against the exact theory of the regression task.

    python -m sweeps.coverage [--configs 24] [--seed 2] [--out outputs/coverage] [--method scaled]
    python -m sweeps.coverage --lanes outputs/coverage/lanes.parquet --method percentile

Draws random configs of the pinned regression task with the linear model and SGD (dim, spectrum
decay, label noise, a step or a sample budget, batch sizes, lr grid range and density), trains
each as one sweep of SEEDS seeds, and splits the seeds into disjoint groups of 2, 3, 4 and 8:
each group is an independent repetition of a sweep with that many seeds. For every group and
batch size whose eta* the analysis deems usable, it checks whether the reported interval covers
the exact theory's eta* (analysis.theory.optimal_lr, inside the lr range), at each nominal
level. The losses of every lane go to lanes.parquet (rerun the estimator on them with --lanes),
one row per group x batch size x level to coverage.parquet (analysis.coverage evaluates them);
the summary is printed and written as coverage.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lrscale import interrupts
from lrscale.checks import validate
from sweeps.compose import compose

SEEDS = 16  # per sweep; split into disjoint groups of seeds (analysis.coverage.GROUPS)
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


def draws(n: int, seed: int = 0) -> list[dict]:
    """n random configs (see draw), reproducible from seed."""
    rng = np.random.default_rng(seed)
    return [draw(rng) for _ in range(n)]


def lanes(configs: list[dict], seeds: int = SEEDS, log=print) -> pd.DataFrame:
    """Train each config as one sweep; one row per (config, batch size, lr, seed), with the
    config's settings (from which analysis.coverage computes the exact theory's eta*)."""
    from sweeps.sweep import run_sweep

    out = []
    for i, c in enumerate(configs):
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            res = run_sweep(validate(compose(overrides(c, seeds))), Path(tmp) / "run")
        df = res[["batch_size", "lr", "seed", "final_eval_loss"]].rename(
            columns={"final_eval_loss": "loss"}
        )
        df = df.assign(config=i, **{k: v for k, v in c.items() if k != "batch_sizes"})
        out.append(df)
        log(
            f"config {i + 1}/{len(configs)}: dim {c['dim']} decay {c['decay']} noise "
            f"{c['noise']} {c['kind']} {c['budget']} B {c['batch_sizes']} "
            f"({time.perf_counter() - t0:.1f} s)"
        )
    return pd.concat(out, ignore_index=True)


def main(argv=None) -> int:
    """The study's command: train (or reuse) the lanes, evaluate them (analysis.coverage), write
    lanes.parquet, coverage.parquet and coverage.md."""
    from analysis.coverage import evaluate, needed, summary, text
    from analysis.interval import METHOD, METHODS

    p = argparse.ArgumentParser(
        prog="python -m sweeps.coverage", description=__doc__.split("\n")[0]
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
    p.add_argument("--method", choices=METHODS, default=METHOD)
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
    sys.exit(interrupts.run("sweeps.coverage", main, lambda: "files written so far are kept"))

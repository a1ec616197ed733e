"""The noise-scale command: `python -m sweeps.noise_scale RUN_DIR` (or lrscale-noise-scale).

Gradient noise scale B_simple, B_noise of a saved sweep at init and after training
(sweeps.noise_measure), written beside its results for the analysis to read.
"""

from __future__ import annotations

import argparse
import sys

from lrscale import interrupts

PROG = "sweeps.noise_scale"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog=f"python -m {PROG}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Gradient noise scale B_simple, B_noise of a sweep at init and after training.",
        epilog=f"example: python -m {PROG} outputs/homework/0 --n 4096   "
        "(installed as lrscale-noise-scale)",
    )
    p.add_argument("run_dir", help="one sweep: its run directory or its results.parquet")
    p.add_argument("--batch-size", type=int, default=None, help="lane batch size (default: min)")
    p.add_argument("--lr", type=float, default=None, help="lane lr (default: best at that B)")
    p.add_argument("--seeds", type=int, default=None, help="seeds to measure (default: all)")
    p.add_argument("--n", type=int, default=4096, help="examples per measurement (at least 2)")
    a = p.parse_args(argv)
    from sweeps.noise_measure import MeasureError, sweep_noise_scales

    try:
        table, path = sweep_noise_scales(a.run_dir, a.batch_size, a.lr, a.seeds, a.n)
    except MeasureError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    per_seed = table[table["seed"].notna()].drop(columns=["sweep_id", "G2", "trS", "GHG", "trHS"])
    print(per_seed.to_string(index=False))
    pooled = table[table["seed"].isna()]
    said = "; ".join(
        f"{r.point} B_simple = {r.B_simple:.4g}, B_noise = {r.B_noise:.4g}"
        for r in pooled.itertuples()
    )
    print(f"pooled over seeds: {said}\nwrote {path}")
    return 0


def cli() -> int:
    """The `lrscale-noise-scale` console entry point; an interrupt is one line (exit 130/143)."""
    return interrupts.run(PROG, main, lambda: "nothing was written")


if __name__ == "__main__":
    sys.exit(cli())

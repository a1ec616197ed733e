"""Benchmark: the vmapped sweep against a per-run loop, and its FLOP/s against the matmul peak.

    python -m sweeps.bench [--quick] [--out outputs/bench/bench.parquet] [--devices 1,2]
    python -m sweeps.bench --scan docs/perf_scaling.png    # cost vs lanes, B, steps, width

For linear+SGD and mlp+Adam, every batch size 1..1024 trains 32 learning rates x 4 seeds for a
fixed number of steps in one compiled program (as `sweeps.sweep` does); a byte-level transformer
with Adam (task=text) trains 8 x 2 lanes for an eighth of the steps at batch sizes up to 64
sequences, with no per-run loop to compare. Per batch size: compile seconds from a cold and from
a warm persistent cache, run seconds, lane-steps per second, achieved GFLOP/s from the analytic
count of `step_flops` and `eval_flops`, utilisation of the float32 matmul peak measured in the
same process, the least memory traffic of `lane_traffic` per second (gbs) beside a STREAM triad's
bandwidth (stream_gbs), and the speed-up over `loop_fns`, the same training written without vmap
(one jitted step per call, one (lr, seed) run at a time), timed on a few lanes and scaled to the
grid. Rows with batch_size <NA> total the whole sweep.

Speed-ups: cold = every run of the loop compiles its own step (a script launched per (lr, seed),
e.g. by a Hydra multirun over lr and seed), the vmapped sweep compiles once per batch size with an
empty cache; warm = both read their programs from a warm cache, so the loop pays no compile and
the vmapped sweep pays its warm-cache compile (tracing and lowering are not cached); run = run
seconds only. Device counts > 1 split the CPU with XLA_FLAGS, which must be set before JAX
starts, so they run in a subprocess. The scan writes scan.parquet beside --out.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from lrscale import interrupts


def parse(argv):
    p = argparse.ArgumentParser(
        prog="python -m sweeps.bench",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n")[0],
        epilog="example: python -m sweeps.bench --quick   (installed as lrscale-bench)",
    )
    p.add_argument("--quick", action="store_true", help="2 batch sizes, 32 steps: under a minute")
    p.add_argument("--scan", type=Path, help="instead: the scaling scan, its figure to this path")
    p.add_argument(
        "--e2e",
        action="store_true",
        help="instead: the command line end to end against a PyTorch loop (sweeps/bench_e2e.py)",
    )
    p.add_argument(
        "--e2e-runs", type=int, default=16, help="runs per batch size the PyTorch loop trains"
    )
    p.add_argument("--out", type=Path, default=Path("outputs/bench/bench.parquet"))
    p.add_argument("--steps", type=int, help="steps per lane (default 256, quick 32)")
    p.add_argument("--batch-sizes", type=lambda s: [int(b) for b in s.split(",")])
    p.add_argument(
        "--workloads",
        type=lambda s: s.split(","),
        help="comma-separated (default: every one of sweeps.bench_measure.WORKLOADS)",
    )
    p.add_argument(
        "--devices",
        help="XLA device counts to split the CPU into (default 1,2; quick 1); >1 runs a subprocess",
    )
    p.add_argument("--loop-lanes", type=int, default=2, help="lanes the per-run loop is timed on")
    p.add_argument("--loop-steps", type=int, default=200, help="steps per timed loop lane (cap)")
    p.add_argument(
        "--override", action="append", default=[], help="a Hydra override for every workload"
    )
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None):
    """The benchmark's table (a pandas DataFrame), its rows appended to the parquet files."""
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parse(argv)
    import jax

    from sweeps.bench_e2e import e2e
    from sweeps.bench_e2e import table as e2e_table
    from sweeps.bench_measure import WORKLOADS
    from sweeps.bench_scan import plot_scan, scan
    from sweeps.bench_sweep import append, run, stamp

    a.workloads = a.workloads or list(WORKLOADS)
    if a.e2e:
        df = stamp(e2e(a.e2e_runs), a.quick)
        print(e2e_table(df))
        append(df, a.out.with_name("e2e.parquet"))
        return df
    # A private, empty persistent cache: compiles are cold first, then warm, never the user's.
    with tempfile.TemporaryDirectory(prefix="lrscale-bench-") as cache:
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        if a.scan:
            df = stamp(scan(), a.quick)
            plot_scan(df, a.scan)
            print(df.to_string(index=False))
            append(df, a.out.with_name("scan.parquet"))
        else:
            df = run(a, argv)
            append(df, a.out)
    return df


def cli() -> None:
    """The `lrscale-bench` console entry point; an interrupt is one line (exit 130 or 143)."""
    interrupts.run("sweeps.bench", main, lambda: "rows of earlier runs in the tables are kept")


if __name__ == "__main__":
    cli()

"""The benchmark: its quick mode end to end, and the lane axis of the linear model as a matmul."""

from __future__ import annotations

import subprocess
import sys

import jax
import numpy as np
import pandas as pd
import pytest

from lrscale import optimizers
from sweeps import bench_measure as bench
from sweeps import bench_sweep, engine
from tests.conftest import ROOT


def test_lanes_of_the_linear_model_are_one_matrix_product(small):
    cfg = small("model=linear", "sweep.lr.num=6", "sweep.seeds=3")
    B, L, S = 16, 6, 3
    found = bench.lane_matmuls(cfg, B)
    # X_BxD @ W_DxL per seed: only the seed axis may be a batch dimension of the dot.
    assert found and all(n <= 1 for _, n in found), found
    assert any(sorted(s) == sorted((S, L, B)) for s, _ in found), found
    # No dot anywhere treats the lr axis as a batch of matrix-vector products.
    points = engine.curve_steps(cfg.sweep.budget.steps_for(B), cfg.sweep.curve_points)
    prob = engine.build(cfg)
    lrs, seeds = engine.lr_grid(cfg), np.arange(S, dtype=np.uint32)
    hlo = engine.program(cfg, prob, B, points).lower(lrs, seeds, prob.task.data).compile()
    assert all(n < 2 for _, n in bench.dots(hlo.as_text()))


def test_dots_parses_shapes_and_batch_dimensions():
    hlo = (
        "%d = f32[4,32,256]{2,1,0} dot(%a, %b), lhs_batch_dims={0}, lhs_contracting_dims={2}\n"
        "ROOT %e = f32[8,16]{1,0} dot(%c, %d), lhs_contracting_dims={1}, rhs_contracting_dims={0}"
    )
    assert bench.dots(hlo) == [((4, 32, 256), 1), ((8, 16), 0)]


def test_flop_counts():
    cfg = bench.config("linear-sgd", 8, "task.dim=8")
    assert bench.step_flops(cfg, 4) == 4 * (2 * 8 + 2 * 8) + 2 * 8
    mlp = bench.config("mlp-adam", 8, "task.dim=8", "model.width=16", "model.depth=2")
    P = 8 * 16 + 16 * 16 + 16  # matmul weights
    model = engine.build(mlp).model
    params = model.init(jax.random.key(0), np.float32)
    assert model.n_params == P + 2 * 16 + 1 == sum(p.size for p in jax.tree.leaves(params))
    assert bench.step_flops(mlp, 2) == 2 * (6 * P - 2 * 8 * 16) + 12 * model.n_params
    assert bench.eval_flops(mlp) == mlp.task.n_eval * 2 * P
    # least traffic in float32 bytes: 10 passes over the parameters per Adam step, 4 over each
    # example's 2 x 16 + 1 activations; per eval one over the weights, 2 over the activations
    points = np.array([0, 4, 8])
    step, evals = 10 * model.n_params + 4 * 2 * 33, model.n_params + 2 * mlp.task.n_eval * 33
    assert bench.lane_traffic(mlp, 2, points) == 4 * (8 * step + 3 * evals)
    arrays = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2, "rmsprop": 1, "lion": 1}
    for name, n in arrays.items():
        o = bench.config("linear-sgd", 8, f"optimizer={name}").optimizer
        assert optimizers.REGISTRY[name].moments(o) == n, name
    sgd = bench.config("linear-sgd", 8, "task.dim=8", "optimizer.momentum=0.9")
    assert bench.lane_traffic(sgd, 4, points) == 4 * (8 * (8 * 8 + 4 * 4) + 3 * 8)


@pytest.mark.slow
def test_quick_bench_runs_and_prints_every_column(tmp_path):
    out = tmp_path / "bench.parquet"
    r = subprocess.run(
        [sys.executable, "-m", "sweeps.bench", "--quick", "--out", str(out), "--batch-sizes",
         "4", "--steps", "8", "--loop-steps", "8", "--override", "task.dim=8",
         "--override", "model.width=16", "--workloads", "linear-sgd,mlp-adam"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    header = r.stdout.splitlines()[0].split()
    assert header == bench_sweep.COLUMNS
    df = pd.read_parquet(out)
    assert set(bench_sweep.COLUMNS) <= set(df.columns)
    assert {"device_kind", "jax_version", "timestamp"} <= set(df.columns)
    assert sorted(df["workload"].unique()) == ["linear-sgd", "mlp-adam"]
    assert df["batch_size"].isna().sum() == 2  # one whole-sweep row each
    columns = df[bench_sweep.COLUMNS].drop(columns=["batch_size", "lane_dot_gflops"])
    assert not columns.isna().any().any()
    # the MLP's hidden-layer product on its own, per batch size (no such product elsewhere)
    mlp = df["workload"].eq("mlp-adam") & df["batch_size"].notna()
    dot = df["lane_dot_gflops"]
    assert (dot[mlp] > 0).all() and dot[~mlp].isna().all()


@pytest.mark.slow
def test_the_transformer_workload_row():
    """Its own lanes, steps and batch sizes; lane-steps/s and utilisation; no per-run loop."""
    over = ("model.width=16", "model.heads=2", "task.context=16")
    df = bench_sweep.bench(["transformer-adam"], [2, 256], 64, 2, 8, over)
    rows, total = df.dropna(subset="batch_size"), df[df["batch_size"].isna()].iloc[0]
    assert rows["batch_size"].tolist() == [2, 64] and (rows["lanes"] == 16).all()
    assert (rows["steps"] == 8).all()  # an eighth of 64
    assert ((rows["util"] > 0) & (rows["util"] < 1)).all()
    cfg = bench.config("transformer-adam", 64, *over)
    B, points = 64, engine.curve_steps(8, cfg.sweep.curve_points)
    flop = 16 * (8 * bench.step_flops(cfg, B) + len(points) * bench.eval_flops(cfg))
    r = rows.iloc[1]
    assert r["gflops"] == pytest.approx(flop / r["run_s"] / 1e9)
    assert r["lane_steps_per_s"] == pytest.approx(16 * 8 / r["run_s"])
    assert np.isnan(total["speedup_run"]) and total["lane_steps_per_s"] > 0

"""The end-to-end baseline: the regression sweep written as a PyTorch notebook user writes it.

    python -m sweeps.bench_torch '<json spec>'      (run by `python -m sweeps.bench --e2e`)

One (lr, seed) run at a time, eager PyTorch, a Python loop over steps, the held-out loss read
back (.item()) at every curve point; the task, model, optimizer and step count of the lrscale
sweep it is compared with. It imports torch and numpy only, so the process's start-up is what a
user's script pays. It prints one JSON object: seconds from process start to the first run, and
per batch size the seconds of each run it was asked to train and the final eval loss of each.
"""

from __future__ import annotations

import json
import sys
import time

T0 = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402


def model(spec: dict) -> nn.Module:
    d = spec["dim"]
    if spec["model"] == "linear":  # lrscale's linear model: w.x from zero
        m = nn.Linear(d, 1, bias=False)
        nn.init.zeros_(m.weight)
        return m
    layers, width = [], d
    for _ in range(spec["depth"]):
        layers += [nn.Linear(width, spec["width"]), nn.ReLU()]
        width = spec["width"]
    return nn.Sequential(*layers, nn.Linear(width, 1))


def optimizer(spec: dict, params, lr: float) -> torch.optim.Optimizer:
    if spec["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=lr)
    return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8)


def train(spec: dict, B: int, lr: float, seed: int) -> float:
    """One run: the final held-out loss (NaN or inf where it diverged)."""
    d, noise = spec["dim"], spec["noise_std"]
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    lam = np.arange(1, d + 1, dtype=np.float64) ** -spec["spectrum_decay"]
    sqrt_lam = torch.tensor(np.sqrt(lam * d / lam.sum()), dtype=torch.float32)
    w_star = torch.randn(d, generator=g) / d**0.5

    def sample(n):
        x = torch.randn(n, d, generator=g) * sqrt_lam
        return x, x @ w_star + noise * torch.randn(n, generator=g)

    x_eval, y_eval = sample(spec["n_eval"])
    net = model(spec)
    opt = optimizer(spec, net.parameters(), lr)
    evals = set(spec["curve_steps"][str(B)])
    losses = []
    for step in range(spec["steps"] + 1):
        if step in evals:
            with torch.no_grad():
                if spec["model"] == "linear":  # exact population loss, as lrscale's
                    diff = net.weight[0] - w_star
                    loss = (sqrt_lam**2 * diff * diff).sum() + noise**2
                else:
                    loss = ((net(x_eval)[:, 0] - y_eval) ** 2).mean()
            losses.append(loss.item())
        if step == spec["steps"]:
            break
        x, y = sample(B)
        loss = ((net(x)[:, 0] - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return losses[-1]


def main(spec: dict) -> dict:
    started = time.perf_counter() - T0
    out = {"start_s": started, "runs": {}}
    for B in spec["batch_sizes"]:
        secs, finals = [], []
        for lr, seed in spec["runs"]:
            t = time.perf_counter()
            finals.append(train(spec, B, lr, seed))
            secs.append(time.perf_counter() - t)
        out["runs"][str(B)] = {"seconds": secs, "final_loss": finals}
    return out


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))

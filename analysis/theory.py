r"""Exact expected population loss of minibatch SGD on the pinned linear-regression task.

Setting (shared design notes): x ~ N(0, H) with H = diag(lam), teacher w* with E[w* w*^T] = I/D,
y = x.w* + s eps, f(x) = w.x, w_0 = 0, loss = mean over the batch of (f(x) - y)^2 (no 1/2), fresh
samples every step, w <- w - eta g.

Derivation. Let d = w - w*. For one example the loss gradient is g = 2 x (x.d - s eps), so the
minibatch gradient is g_B = (2/B) sum_b x_b (x_b.d - s eps_b) and d' = d - eta g_B. Given d,

    E[g_b] = 2 H d,
    E[g_b g_b^T] = 4 E[x x^T d d^T x x^T] + 4 s^2 E[x x^T] = 4 (2 H d d^T H + (d^T H d) H + s^2 H),

the second line by Isserlis (E[x x^T A x x^T] = 2 H A H + tr(HA) H for symmetric A). Examples of
one batch are independent, so with the B(B-1) cross pairs contributing (2Hd)(2Hd)^T,

    E[g_B g_B^T] = 4 H d d^T H + (4/B) (H d d^T H + (d^T H d + s^2) H).

Averaging over d with M = E[d d^T] (d_t is independent of the batch at step t):

    M' = (I - 2 eta H) M (I - 2 eta H) + (4 eta^2/B) (H M H + (tr(HM) + s^2) H).

H is diagonal, so entry (i, j) of M' depends on M_ij alone, except tr(HM) = lam.m with m = diag M.
Hence m evolves by itself (off-diagonal entries never feed back), and only m enters the loss:

    m_{t+1} = A m_t + c,
    A = diag((1 - 2 eta lam)^2 + (4 eta^2/B) lam^2) + (4 eta^2/B) lam lam^T,
    c = (4 eta^2/B) s^2 lam,
    E[L_t] = lam.m_t + s^2,   m_0 = E[(w*)^2] = 1/D (or (w*)^2 for one fixed teacher).

A is symmetric and positive semidefinite (a non-negative diagonal plus a rank-one PSD term), so
A = Q diag(mu) Q^T with 0 <= mu, and for any T, with the geometric sum S_T(mu) = sum_{k<T} mu^k,

    E[L_T] = s^2 + sum_j (Q^T lam)_j [mu_j^T (Q^T m_0)_j + S_T(mu_j) (Q^T c)_j].

One eigendecomposition per (eta, B) thus gives the loss at every T at O(D) cost each.

Divergence edge. The mean-square dynamics is stable iff the spectral radius of A is below 1. The
Perron root of diag(delta) + a u u^T (a > 0) solves the secular equation
1 = a sum_i u_i^2 / (mu - delta_i), so rho(A) < 1 iff max_i delta_i < 1 and
a sum_i lam_i^2 / (1 - delta_i) < 1, where a = 4 eta^2/B and delta_i is the diagonal of A. With
1 - delta_i = 4 eta lam_i (1 - eta lam_i (1 + 1/B)) this reads

    (eta / B) sum_i lam_i / (1 - eta (1 + 1/B) lam_i) < 1,   eta (1 + 1/B) lam_max < 1,

whose boundary eta_max(B) is the unique root in (0, B / ((B+1) lam_max)). It obeys

    B / (tr H + (B+1) lam_max) <= eta_max(B) <= min(B / tr H, B / ((B+1) lam_max)),

with equality on the left for an isotropic spectrum (eta_max = B / (D + B + 1)): linear in B while
B is below the effective rank tr(H)/lam_max, then saturating at the full-batch edge 1/lam_max
(the Hessian of the loss without 1/2 is 2H, so gradient descent diverges at eta = 1/lam_max).

Momentum (optax's trace form). Heavy ball: v' = beta v + g_B, w' = w - eta v'. Nesterov:
v' = beta v + g_B, w' = w - eta (g_B + beta v'). With g_B = 2 H d + xi, E[xi | d, v] = 0 and
E[xi xi^T] = (4/B) (H M H + (tr(HM) + s^2) H) as above, each coordinate i of z = (d, v) obeys
z_i' = F_i z_i + e xi_i with

    heavy ball: F_i = [[1 - 2 eta lam_i, -eta beta], [2 lam_i, beta]],       e = (-eta, 1),
    Nesterov:   F_i = [[1 - 2 eta (1+beta) lam_i, -eta beta^2], [2 lam_i, beta]],
                e = (-eta (1+beta), 1),

so the per-coordinate second moments (a, b, c) = (E d_i^2, E d_i v_i, E v_i^2) obey
P_i' = F_i P_i F_i^T + e e^T q_i, q_i = (4/B) (lam_i^2 a_i + lam_i (lam.a + s^2)): again closed and
linear, now in 3D variables coupled only through lam.a (v_0 = 0). The 3D x 3D map is not
symmetric; its eigendecomposition gives the loss at any T in the same way (complex modes come in
conjugate pairs). beta = 0 recovers the recursion above.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.optimize import brentq, minimize_scalar


def transition(eta: float, B: float, lam_D: np.ndarray, noise_std: float):
    """(A_DxD, c_D) of the mean-square recursion m_{t+1} = A m_t + c."""
    lam_D = np.asarray(lam_D, np.float64)
    a = 4.0 * eta**2 / B
    A = np.diag((1 - 2 * eta * lam_D) ** 2 + a * lam_D**2) + a * np.outer(lam_D, lam_D)
    return A, a * noise_std**2 * lam_D


def momentum_transition(
    eta: float, B: float, lam_D: np.ndarray, noise_std: float, beta: float, nesterov: bool = False
):
    """(K_NxN, c_N) of the recursion of x = (a_D, b_D, c_D) under momentum beta, N = 3D."""
    lam_D = np.asarray(lam_D, np.float64)
    D = lam_D.size
    if nesterov:
        f11, f12, e1 = 1 - 2 * eta * (1 + beta) * lam_D, -eta * beta**2, -eta * (1 + beta)
    else:
        f11, f12, e1 = 1 - 2 * eta * lam_D, -eta * beta, -eta
    f21, f22, e2 = 2 * lam_D, beta, 1.0
    f12, f22 = np.full(D, f12), np.full(D, f22)
    # P' = F P F^T for P = [[a, b], [b, c]], written on (a, b, c)
    blocks = [
        [f11**2, 2 * f11 * f12, f12**2],
        [f11 * f21, f11 * f22 + f12 * f21, f12 * f22],
        [f21**2, 2 * f21 * f22, f22**2],
    ]
    K = np.block([[np.diag(x) for x in row] for row in blocks])
    # + e e^T q with q = (4/B) (lam^2 a + lam (lam.a + s^2))
    r = 4.0 / B
    ee = np.array([e1**2, e1 * e2, e2**2])
    for k in range(3):
        K[k * D : (k + 1) * D, :D] += ee[k] * r * (np.diag(lam_D**2) + np.outer(lam_D, lam_D))
    c = np.concatenate([ee[k] * r * noise_std**2 * lam_D for k in range(3)])
    return K, c


def _geom(mu_KxN: np.ndarray, T_Kx1: np.ndarray) -> np.ndarray:
    """sum_{k<T} mu^k, exact at mu = 1 and overflowing to inf above it."""
    near = np.abs(1.0 - mu_KxN) < 1e-12
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        s = (1.0 - mu_KxN**T_Kx1) / np.where(near, 1.0, 1.0 - mu_KxN)
    return np.where(near, T_Kx1 * 1.0, s)


def _m0(lam_D: np.ndarray, m0_D) -> np.ndarray:
    return np.full(lam_D.shape, 1.0 / lam_D.size) if m0_D is None else np.asarray(m0_D, float)


def _modes(eta: float, B: float, lam_D, s: float, m0_D, beta: float, nesterov: bool):
    """(mu_N, u_N, v_N) with E[L_T] = s^2 + Re sum_j u_j mu_j^T + v_j S_T(mu_j)."""
    # scipy, one small matrix at a time: numpy's batched eigh threads each small problem and
    # stalls on a busy machine
    if beta == 0.0:
        A, c = transition(eta, B, lam_D, s)
        mu, Q = scipy.linalg.eigh(A, check_finite=False)
        ql = Q.T @ lam_D
        return np.clip(mu, 0.0, None), ql * (Q.T @ m0_D), ql * (Q.T @ c)  # A is PSD
    K, c = momentum_transition(eta, B, lam_D, s, beta, nesterov)
    mu, V = scipy.linalg.eig(K, check_finite=False)
    lV = lam_D @ V[: lam_D.size]  # the loss reads a = x[:D]
    x0 = np.concatenate([m0_D, np.zeros(2 * lam_D.size)])
    coef = scipy.linalg.solve(V, np.stack([x0, c], 1), check_finite=False)
    return mu, lV * coef[:, 0], lV * coef[:, 1]


def expected_loss(
    eta,
    B,
    T,
    lam,
    noise_std: float,
    m0=None,
    momentum: float = 0.0,
    nesterov: bool = False,
    chunk: int = 1 << 15,
) -> np.ndarray:
    """E[population MSE] after T steps, broadcasting over eta, B and T (m0: E[(w0 - w*)^2])."""
    lam_D = np.asarray(lam, np.float64)
    m0_D = _m0(lam_D, m0)
    eta_K, B_K, T_K = (a.ravel() for a in np.broadcast_arrays(*map(np.asarray, (eta, B, T))))
    shape = np.broadcast_shapes(np.shape(eta), np.shape(B), np.shape(T))
    if np.any(T_K < 0) or np.any(T_K != np.round(T_K)):
        raise ValueError("T must hold non-negative integers")
    # One eigendecomposition per distinct (eta, B); every T then costs O(D).
    pairs, inv = np.unique(
        np.stack([eta_K, B_K], 1).astype(np.float64), axis=0, return_inverse=True
    )
    modes = [_modes(e, b, lam_D, noise_std, m0_D, momentum, nesterov) for e, b in pairs]
    mu_PxN, u_PxN, v_PxN = (np.stack(x) for x in zip(*modes, strict=True))
    inv = inv.ravel()
    out = np.empty(eta_K.size)
    for k in range(0, eta_K.size, chunk):
        p, T = inv[k : k + chunk], T_K[k : k + chunk, None].astype(np.float64)
        mu = mu_PxN[p]
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            terms = u_PxN[p] * mu**T + v_PxN[p] * _geom(mu, T)
            val = noise_std**2 + np.real(terms.sum(1))
        unstable = (np.abs(mu).max(1) > 1.0) & ~np.isfinite(val)
        out[k : k + chunk] = np.where(unstable, np.inf, val)
    return out.reshape(shape)


def expected_curve(
    eta, B, steps, lam, noise_std: float, m0=None, momentum: float = 0.0, nesterov: bool = False
) -> np.ndarray:
    """Expected loss at each of `steps`: shape broadcast(eta, B) + (len(steps),)."""
    eta, B = np.broadcast_arrays(np.asarray(eta, float), np.asarray(B, float))
    steps = np.asarray(steps)
    return expected_loss(
        eta[..., None], B[..., None], steps, lam, noise_std, m0, momentum, nesterov
    )


def spectral_radius(
    eta: float, B: float, lam, momentum: float = 0.0, nesterov: bool = False
) -> float:
    """Spectral radius of the mean-square map: below 1 iff the dynamics is stable."""
    if momentum == 0.0:
        return float(scipy.linalg.eigvalsh(transition(eta, B, lam, 0.0)[0]).max())
    K, _ = momentum_transition(eta, B, lam, 0.0, momentum, nesterov)
    return float(np.abs(scipy.linalg.eigvals(K)).max())


def divergence_edge(B, lam, momentum: float = 0.0, nesterov: bool = False) -> np.ndarray:
    """Largest stable eta per B (SGD: root of (eta/B) sum lam/(1 - eta (1+1/B) lam) = 1)."""
    lam_D = np.asarray(lam, np.float64)
    lmax = lam_D.max()

    def edge(b: float) -> float:
        k = 1.0 + 1.0 / b
        hi = 1.0 / (k * lmax)
        f = lambda eta: eta / b * np.sum(lam_D / (1.0 - eta * k * lam_D)) - 1.0  # noqa: E731
        return brentq(f, 0.0, hi * (1 - 1e-15), xtol=1e-15, rtol=1e-14)

    def edge_momentum(b: float) -> float:
        def g(eta):
            return spectral_radius(eta, b, lam_D, momentum, nesterov) - 1.0

        # bracket the crossing geometrically from the SGD edge at the same effective step
        lo = hi = (1 - momentum) * edge(b)
        while g(hi) < 0:
            lo, hi = hi, hi * 1.5
        while g(lo) >= 0:
            lo, hi = lo / 1.5, lo
        return brentq(g, lo, hi, xtol=1e-15, rtol=1e-10)

    B = np.asarray(B, np.float64)
    return np.vectorize(edge if momentum == 0.0 else edge_momentum, otypes=[float])(B)


def budget_steps(B, samples: int | None = None, steps: int | None = None) -> np.ndarray:
    """Steps of a run at batch size B: samples // B under a sample budget, else steps."""
    if (samples is None) == (steps is None):
        raise ValueError("give exactly one of samples, steps")
    B = np.asarray(B)
    return (samples // B) if samples is not None else np.full(B.shape, steps)


def optimal_lr(
    B,
    lam,
    noise_std: float,
    samples: int | None = None,
    steps: int | None = None,
    m0=None,
    momentum: float = 0.0,
    nesterov: bool = False,
    num: int | None = None,
) -> np.ndarray:
    """eta*(B) minimising the expected final loss under the budget (log grid, then Brent)."""
    B_arr = np.asarray(B, np.float64)
    num = num or (48 if momentum == 0.0 else 32)  # a momentum mode costs a 3D x 3D eig
    T_arr = budget_steps(B_arr.astype(np.int64), samples, steps)
    out = np.full(B_arr.shape, np.nan)
    for idx in np.ndindex(B_arr.shape):
        b, T = B_arr[idx], int(T_arr[idx])
        if T <= 0:
            continue
        edge = float(divergence_edge(b, lam, momentum, nesterov))
        # A short horizon can favour a step beyond the mean-square edge: search past it.
        grid = np.geomspace(edge * 1e-5, edge * 8, num)
        loss = expected_loss(grid, b, T, lam, noise_std, m0, momentum, nesterov)
        i = int(np.argmin(loss))
        lo, hi = np.log(grid[max(i - 1, 0)]), np.log(grid[min(i + 1, num - 1)])

        def f(u, b=b, T=T):
            v = float(expected_loss(np.exp(u), b, T, lam, noise_std, m0, momentum, nesterov))
            return np.log(v) if np.isfinite(v) else 1e300

        r = minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-7})
        out[idx] = np.exp(r.x) if r.fun <= np.log(loss[i]) else grid[i]
    return out


def batch_theory(
    B,
    lam,
    noise_std: float,
    samples: int | None = None,
    steps: int | None = None,
    momentum: float = 0.0,
    nesterov: bool = False,
):
    """Per batch size: steps, eta*, the divergence edge and the expected final loss at eta*."""
    import pandas as pd

    mom = dict(momentum=momentum, nesterov=nesterov)
    B_K = np.asarray(B, np.int64)
    T_K = budget_steps(B_K, samples, steps)
    eta_K = optimal_lr(B_K, lam, noise_std, samples, steps, **mom)
    return pd.DataFrame(
        {
            "batch_size": B_K,
            "steps": T_K,
            "lr_opt": eta_K,
            "lr_edge": divergence_edge(B_K, lam, **mom),
            "loss_opt": expected_loss(eta_K, B_K, T_K, lam, noise_std, **mom),
        }
    )


def sweep_theory(cfg, lrs=None):
    """Theory for a linear + SGD sweep config: per batch size eta*, the divergence edge and the
    expected final loss at eta*; with lrs also the expected final loss of every (B, lr).

    Returns (per_B, per_lane) DataFrames (per_lane is None without lrs). Online data only.
    """
    import pandas as pd

    from tasks.regression import spectrum

    t, o, b = cfg.task, cfg.optimizer, cfg.sweep.budget
    sgd = ("sgd", "momentum", "nesterov")
    covered = t.name == "regression" and cfg.model.name == "linear" and o.name in sgd
    if not covered or t.n_train is not None:
        raise ValueError(
            "the exact theory covers the regression task, the linear model, SGD (+ momentum), "
            "online data"
        )
    lam_D = spectrum(t.dim, t.spectrum_decay)
    beta = float(o.momentum or 0.0)
    mom = dict(momentum=beta, nesterov=o.name == "nesterov" or (o.name == "sgd" and o.nesterov))
    B_K = np.asarray(cfg.sweep.batch_sizes, np.int64)
    per_B = batch_theory(B_K, lam_D, t.noise_std, b.samples, b.steps, **mom)
    T_K = per_B["steps"].to_numpy()
    if lrs is None:
        return per_B, None
    lrs = np.asarray(lrs, np.float64)
    L_KxL = expected_loss(lrs[None, :], B_K[:, None], T_K[:, None], lam_D, t.noise_std, **mom)
    per_lane = pd.DataFrame(
        {
            "batch_size": np.repeat(B_K, lrs.size),
            "lr": np.tile(lrs, B_K.size),
            "expected_loss": L_KxL.ravel(),
        }
    )
    return per_B, per_lane

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
Perron root of D + a u u^T (a > 0) solves the secular equation 1 = a sum_i u_i^2 / (mu - D_i), so
rho(A) < 1 iff max_i D_i < 1 and a sum_i lam_i^2 / (1 - D_i) < 1. With
1 - D_i = 4 eta lam_i (1 - eta lam_i (1 + 1/B)) this reads

    (eta / B) sum_i lam_i / (1 - eta (1 + 1/B) lam_i) < 1,   eta (1 + 1/B) lam_max < 1,

whose boundary eta_max(B) is the unique root in (0, B / ((B+1) lam_max)). It obeys

    B / (tr H + (B+1) lam_max) <= eta_max(B) <= min(B / tr H, B / ((B+1) lam_max)),

with equality on the left for an isotropic spectrum (eta_max = B / (D + B + 1)): linear in B while
B is below the effective rank tr(H)/lam_max, then saturating at the full-batch edge 1/lam_max
(the Hessian of the loss without 1/2 is 2H, so gradient descent diverges at eta = 1/lam_max).
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


def _geom(mu_KxD: np.ndarray, T_Kx1: np.ndarray) -> np.ndarray:
    """sum_{k<T} mu^k, exact at mu = 1 and overflowing to inf above it."""
    near = np.abs(1.0 - mu_KxD) < 1e-12
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        s = (1.0 - mu_KxD**T_Kx1) / np.where(near, 1.0, 1.0 - mu_KxD)
    return np.where(near, T_Kx1 * 1.0, s)


def _eigh(A_PxDxD: np.ndarray):
    """Eigendecomposition of a stack of small symmetric matrices, one LAPACK call each."""
    # numpy's batched eigh threads each small problem and stalls on a busy machine.
    pairs = [scipy.linalg.eigh(A, check_finite=False) for A in A_PxDxD]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def _m0(lam_D: np.ndarray, m0_D) -> np.ndarray:
    return np.full(lam_D.shape, 1.0 / lam_D.size) if m0_D is None else np.asarray(m0_D, float)


def expected_loss(eta, B, T, lam, noise_std: float, m0=None, chunk: int = 1 << 15) -> np.ndarray:
    """E[population MSE] after T SGD steps, broadcasting over eta, B and T (m0: E[(w0-w*)^2])."""
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
    inv = inv.ravel()
    a2 = 4.0 * pairs[:, 0] ** 2 / pairs[:, 1]
    diag_PxD = (1 - 2 * pairs[:, :1] * lam_D) ** 2 + a2[:, None] * lam_D**2
    A_PxDxD = diag_PxD[:, :, None] * np.eye(lam_D.size) + a2[:, None, None] * np.outer(lam_D, lam_D)
    mu_PxD, Q_PxDxD = _eigh(A_PxDxD)
    mu_PxD = np.clip(mu_PxD, 0.0, None)  # A is PSD; clip round-off below zero
    ql_PxD = np.einsum("pij,i->pj", Q_PxDxD, lam_D)
    qm_PxD = np.einsum("pij,i->pj", Q_PxDxD, m0_D)
    qc_PxD = a2[:, None] * noise_std**2 * ql_PxD
    out = np.empty(eta_K.size)
    for k in range(0, eta_K.size, chunk):
        p, T = inv[k : k + chunk], T_K[k : k + chunk, None].astype(np.float64)
        mu = mu_PxD[p]
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            terms = ql_PxD[p] * (mu**T * qm_PxD[p] + _geom(mu, T) * qc_PxD[p])
            val = noise_std**2 + terms.sum(1)
        unstable = (mu.max(1) > 1.0) & ~np.isfinite(val)
        out[k : k + chunk] = np.where(unstable, np.inf, val)
    return out.reshape(shape)


def expected_curve(eta, B, steps, lam, noise_std: float, m0=None) -> np.ndarray:
    """Expected loss at each of `steps`: shape broadcast(eta, B) + (len(steps),)."""
    eta, B = np.broadcast_arrays(np.asarray(eta, float), np.asarray(B, float))
    steps = np.asarray(steps)
    return expected_loss(eta[..., None], B[..., None], steps, lam, noise_std, m0)


def spectral_radius(eta: float, B: float, lam) -> float:
    """Spectral radius of A: below 1 iff the mean-square dynamics is stable."""
    A, _ = transition(eta, B, lam, 0.0)
    return float(scipy.linalg.eigvalsh(A).max())


def divergence_edge(B, lam) -> np.ndarray:
    """Largest stable eta: root of (eta/B) sum lam/(1 - eta (1+1/B) lam) = 1, per B."""
    lam_D = np.asarray(lam, np.float64)
    lmax = lam_D.max()

    def edge(b: float) -> float:
        k = 1.0 + 1.0 / b
        hi = 1.0 / (k * lmax)
        f = lambda eta: eta / b * np.sum(lam_D / (1.0 - eta * k * lam_D)) - 1.0  # noqa: E731
        return brentq(f, 0.0, hi * (1 - 1e-15), xtol=1e-15, rtol=1e-14)

    B = np.asarray(B, np.float64)
    return np.vectorize(edge, otypes=[float])(B)


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
    num: int = 96,
) -> np.ndarray:
    """eta*(B) minimising the expected final loss under the budget (log grid, then Brent)."""
    B_arr = np.asarray(B, np.float64)
    T_arr = budget_steps(B_arr.astype(np.int64), samples, steps)
    out = np.full(B_arr.shape, np.nan)
    for idx in np.ndindex(B_arr.shape):
        b, T = B_arr[idx], int(T_arr[idx])
        if T <= 0:
            continue
        edge = float(divergence_edge(b, lam))
        # A short horizon can favour a step beyond the mean-square edge: search past it.
        grid = np.geomspace(edge * 1e-7, edge * 8, num)
        loss = expected_loss(grid, b, T, lam, noise_std, m0)
        i = int(np.argmin(loss))
        lo, hi = np.log(grid[max(i - 1, 0)]), np.log(grid[min(i + 1, num - 1)])

        def f(u, b=b, T=T):
            v = float(expected_loss(np.exp(u), b, T, lam, noise_std, m0))
            return np.log(v) if np.isfinite(v) else 1e300

        r = minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-7})
        out[idx] = np.exp(r.x) if r.fun <= np.log(loss[i]) else grid[i]
    return out

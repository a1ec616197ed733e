"""The exact SGD theory against Monte Carlo of the pinned task, and the laws it implies."""

import numpy as np
import pytest

from analysis.theory import (
    divergence_edge,
    expected_curve,
    expected_loss,
    optimal_lr,
    spectral_radius,
    sweep_theory,
)
from tasks.regression import spectrum

S = 0.5  # noise_std of the default task


def simulate(eta, B, steps, lam_D, s, R, rng, w_star_RxD=None):
    """Mean and standard error of the population MSE over R independent SGD runs at `steps`."""
    D = lam_D.size
    if w_star_RxD is None:
        w_star_RxD = rng.standard_normal((R, D)) / np.sqrt(D)
    w_RxD = np.zeros((R, D))
    out = []
    for t in range(1, max(steps) + 1):
        x_RxBxD = rng.standard_normal((R, B, D)) * np.sqrt(lam_D)
        y_RxB = np.einsum("rbd,rd->rb", x_RxBxD, w_star_RxD) + s * rng.standard_normal((R, B))
        r_RxB = np.einsum("rbd,rd->rb", x_RxBxD, w_RxD) - y_RxB
        # gradient of mean_b (x_b.w - y_b)^2: no 1/2 in the loss, so a factor 2
        w_RxD = w_RxD - eta * (2.0 / B) * np.einsum("rbd,rb->rd", x_RxBxD, r_RxB)
        if t in steps:
            L_R = ((w_RxD - w_star_RxD) ** 2 * lam_D).sum(1) + s**2
            out.append((L_R.mean(), L_R.std(ddof=1) / np.sqrt(R)))
    return np.array(out).T


@pytest.mark.parametrize("B, frac", [(1, 0.5), (4, 0.6), (16, 0.8)])
def test_expected_loss_matches_monte_carlo(B, frac):
    lam_D, steps = spectrum(8, 1.0), [5, 20, 100]
    eta = frac * float(divergence_edge(B, lam_D))
    mean, se = simulate(eta, B, steps, lam_D, S, 4000, np.random.default_rng(B))
    z = (mean - expected_curve(eta, B, steps, lam_D, S)) / se
    assert np.all(np.abs(z) < 4), z
    # The test has the power to see a gradient off by 2, and a wrong batch average of the noise.
    for wrong in (
        expected_curve(2 * eta, B, steps, lam_D, S),
        expected_curve(eta / 2, B, steps, lam_D, S),
        expected_curve(eta, 2 * B, steps, lam_D, S),
    ):
        assert np.max(np.abs(mean - wrong) / se) > 10


def test_fixed_teacher_uses_its_own_initial_error():
    lam_D, B, eta, steps = spectrum(6, 2.0), 2, 0.05, [30]
    rng = np.random.default_rng(7)
    w_star_D = rng.standard_normal(6) / np.sqrt(6)
    mean, se = simulate(eta, B, steps, lam_D, S, 4000, rng, np.tile(w_star_D, (4000, 1)))
    th = expected_loss(eta, B, 30, lam_D, S, m0=w_star_D**2)
    assert abs(mean[0] - th) < 4 * se[0]


def test_expected_loss_broadcasts_and_starts_at_initial_loss():
    lam_D = spectrum(16, 1.0)
    L = expected_loss(np.array([0.01, 0.02])[:, None], np.array([1, 8, 64]), 50, lam_D, S)
    assert L.shape == (2, 3)
    assert np.all(L < 1 + S**2)
    np.testing.assert_allclose(expected_loss(0.01, 4, 0, lam_D, S), 1 + S**2)  # lam.m0 = 1
    # one step by hand: E L_1 = lam.(A m0 + c) + s^2
    eta, B, m0 = 0.03, 3, np.full(16, 1 / 16)
    a = 4 * eta**2 / B
    m1 = ((1 - 2 * eta * lam_D) ** 2 + a * lam_D**2) * m0 + a * lam_D * (lam_D @ m0 + S**2)
    np.testing.assert_allclose(expected_loss(eta, B, 1, lam_D, S), lam_D @ m1 + S**2, rtol=1e-12)
    # the closed form equals iterating the recursion
    m = m0.copy()
    for _ in range(500):
        m = ((1 - 2 * eta * lam_D) ** 2 + a * lam_D**2) * m + a * lam_D * (lam_D @ m + S**2)
    np.testing.assert_allclose(expected_loss(eta, B, 500, lam_D, S), lam_D @ m + S**2, rtol=1e-10)


def test_divergence_edge_is_where_the_loss_explodes():
    lam_D = spectrum(64, 1.0)
    Bs = np.array([1, 4, 32, 1024])
    edge_B = divergence_edge(Bs, lam_D)
    for B, e in zip(Bs, edge_B, strict=True):
        assert spectral_radius(e, B, lam_D) == pytest.approx(1.0, abs=1e-9)
        assert expected_loss(0.95 * e, B, 100_000, lam_D, S) < 10
        assert expected_loss(1.02 * e, B, 100_000, lam_D, S) > 1e6
    # B / (tr H + (B+1) lam_max) <= edge <= min(B / tr H, B / ((B+1) lam_max))
    tr, lmax = lam_D.sum(), lam_D.max()
    assert np.all(edge_B >= Bs / (tr + (Bs + 1) * lmax))
    assert np.all(edge_B <= np.minimum(Bs / tr, Bs / ((Bs + 1) * lmax)))
    assert edge_B[-1] == pytest.approx(1 / lmax, rel=0.01)  # full batch: eta < 1/lam_max


def test_divergence_edge_isotropic_closed_form():
    Bs = np.array([1, 2, 8, 64, 512])
    np.testing.assert_allclose(divergence_edge(Bs, np.ones(32)), Bs / (32 + Bs + 1), rtol=1e-10)


def test_optimal_lr_sample_budget_linear_then_saturating():
    lam_D = spectrum(64, 1.0)
    Bs = np.array([1, 4, 64, 512, 1024])
    eta_B = optimal_lr(Bs, lam_D, S, samples=16384)
    slope = np.diff(np.log(eta_B)) / np.diff(np.log(Bs))
    assert slope[0] == pytest.approx(1.0, abs=0.15)
    assert slope[-1] < 0.15  # saturated against the curvature limit
    assert np.all(eta_B < divergence_edge(Bs, lam_D) * 1.5)
    # it is a minimum of the final expected loss
    T_B = 16384 // Bs
    L0 = expected_loss(eta_B, Bs, T_B, lam_D, S)
    for f in (0.97, 1.03):
        assert np.all(expected_loss(f * eta_B, Bs, T_B, lam_D, S) > L0)


def test_optimal_lr_step_budget_grows_slowly():
    lam_D = spectrum(64, 1.0)
    eta_B = optimal_lr(np.array([1, 1024]), lam_D, S, steps=1000)
    assert 1.5 < eta_B[1] / eta_B[0] < 10  # far below the 1024x of linear scaling


def simulate_momentum(eta, B, beta, nesterov, steps, lam_D, s, R, rng):
    """Mean and standard error of the population MSE of optax-style momentum SGD."""
    D = lam_D.size
    w_star_RxD = rng.standard_normal((R, D)) / np.sqrt(D)
    w_RxD, v_RxD, out = np.zeros((R, D)), np.zeros((R, D)), []
    for t in range(1, max(steps) + 1):
        x_RxBxD = rng.standard_normal((R, B, D)) * np.sqrt(lam_D)
        y_RxB = np.einsum("rbd,rd->rb", x_RxBxD, w_star_RxD) + s * rng.standard_normal((R, B))
        r_RxB = np.einsum("rbd,rd->rb", x_RxBxD, w_RxD) - y_RxB
        g_RxD = (2.0 / B) * np.einsum("rbd,rb->rd", x_RxBxD, r_RxB)
        v_RxD = beta * v_RxD + g_RxD
        w_RxD = w_RxD - eta * (g_RxD + beta * v_RxD if nesterov else v_RxD)
        if t in steps:
            L_R = ((w_RxD - w_star_RxD) ** 2 * lam_D).sum(1) + s**2
            out.append((L_R.mean(), L_R.std(ddof=1) / np.sqrt(R)))
    return np.array(out).T


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_matches_monte_carlo(nesterov):
    lam_D, B, beta, steps = spectrum(8, 1.0), 2, 0.8, [10, 40, 120]
    eta = 0.5 * float(divergence_edge(B, lam_D, beta, nesterov))
    mean, se = simulate_momentum(
        eta, B, beta, nesterov, steps, lam_D, S, 3000, np.random.default_rng(5)
    )
    th = expected_curve(eta, B, steps, lam_D, S, momentum=beta, nesterov=nesterov)
    assert np.all(np.abs(mean - th) < 4 * se), (mean - th) / se
    other = expected_curve(eta, B, steps, lam_D, S, momentum=beta, nesterov=not nesterov)
    assert np.max(np.abs(mean - other) / se) > 10


def test_momentum_limits():
    lam_D = spectrum(16, 1.0)
    # beta -> 0 is plain SGD
    a = expected_loss(0.02, 4, 200, lam_D, S, momentum=1e-12)
    assert a == pytest.approx(expected_loss(0.02, 4, 200, lam_D, S), rel=1e-9)
    # full batch: heavy ball is stable below (1+beta)/lam_max, Nesterov below that / (1+2 beta)
    beta, lmax = 0.9, lam_D.max()
    hb = divergence_edge(1e7, lam_D, beta)
    nest = divergence_edge(1e7, lam_D, beta, nesterov=True)
    assert hb == pytest.approx((1 + beta) / lmax, rel=1e-4)
    assert nest == pytest.approx((1 + beta) / ((1 + 2 * beta) * lmax), rel=1e-4)
    for e, n in ((hb, False), (nest, True)):
        assert (
            spectral_radius(0.99 * e, 1e7, lam_D, beta, n)
            < 1
            < spectral_radius(1.01 * e, 1e7, lam_D, beta, n)
        )
    # at small steps momentum acts as SGD with eta / (1 - beta)
    eta_m = optimal_lr(4, lam_D, S, samples=4096, momentum=beta)
    assert eta_m * 10 == pytest.approx(optimal_lr(4, lam_D, S, samples=4096), rel=0.1)


@pytest.fixture(scope="module")
def engine_sweep():
    """The real engine on a small linear + SGD sweep with many seeds: (cfg, lrs, {B: Lanes})."""
    from sweeps import engine
    from tests.conftest import make_config, program

    cfg = make_config(
        "sweep=smoke",
        "task.dim=8",
        "progress=false",
        "sweep.seeds=256",
        "sweep.lr.num=31",
        "sweep.lr.min=1e-3",
        "sweep.lr.max=1",
        "sweep.budget.samples=1024",
    )
    lrs, seeds = engine.lr_grid(cfg), np.arange(cfg.sweep.seeds, dtype=np.uint32)
    out = {}
    for B in (1, 16):  # compiling dominates: two batch sizes
        points = engine.curve_steps(1024 // B, 8)
        out[B] = (points, program(cfg, B, points)(lrs, seeds))
    return cfg, lrs, out


def _argmin_log(lrs, loss):
    """Minimiser of a parabola through log loss vs log lr at the best grid point and neighbours."""
    i = int(np.clip(np.argmin(loss), 1, len(lrs) - 2))
    u, v = np.log(lrs[i - 1 : i + 2]), np.log(loss[i - 1 : i + 2])
    a, b, _ = np.polyfit(u, v, 2)
    return float(np.exp(-b / (2 * a)))


def test_engine_mean_loss_matches_theory(engine_sweep):
    cfg, lrs, out = engine_sweep
    t, R = cfg.task, cfg.sweep.seeds
    lam_D = spectrum(t.dim, t.spectrum_decay)
    for B, (points, lanes) in out.items():
        L_RxL = np.asarray(lanes.final_eval_loss, np.float64)
        ok = lrs < 0.8 * divergence_edge(B, lam_D)  # heavy tails right at the edge
        mean, se = L_RxL[:, ok].mean(0), L_RxL[:, ok].std(0, ddof=1) / np.sqrt(R)
        th = expected_loss(lrs[ok], B, 1024 // B, lam_D, t.noise_std)
        assert np.all(np.abs(mean - th) < 4 * se), (B, (mean - th) / se)
        # the whole curve of the lane nearest the predicted optimum
        j = int(np.argmin(np.abs(np.log(lrs / optimal_lr(B, lam_D, t.noise_std, samples=1024)))))
        c_RxP = np.asarray(lanes.curve_eval[:, j], np.float64)
        th = expected_curve(lrs[j], B, points, lam_D, t.noise_std)
        assert np.all(np.abs(c_RxP.mean(0) - th) <= 4 * c_RxP.std(0, ddof=1) / np.sqrt(R) + 1e-6)


def test_engine_optimal_lr_matches_theory(engine_sweep):
    cfg, lrs, out = engine_sweep
    t = cfg.task
    lam_D = spectrum(t.dim, t.spectrum_decay)
    Bs = np.array(sorted(out))
    meas = np.array([_argmin_log(lrs, np.asarray(out[B][1].final_eval_loss).mean(0)) for B in Bs])
    th = optimal_lr(Bs, lam_D, t.noise_std, samples=1024)
    assert np.all(np.abs(np.log(meas / th)) < np.log(1.5)), (meas, th)
    slope = np.log(meas[1] / meas[0]) / np.log(Bs[1] / Bs[0])
    assert slope == pytest.approx(1.0, abs=0.15)


def test_sweep_theory_of_a_config():
    from sweeps import engine
    from tests.conftest import make_config

    cfg = make_config("sweep.batch_sizes=[1,32,1024]", "sweep.lr.num=5")
    per_B, lanes = sweep_theory(cfg, engine.lr_grid(cfg))
    lam_D, t = spectrum(cfg.task.dim, cfg.task.spectrum_decay), cfg.task
    samples = cfg.sweep.budget.samples
    np.testing.assert_array_equal(per_B.steps, samples // per_B.batch_size)
    for f in (0.97, 1.03):  # lr_opt minimises the expected final loss
        L = expected_loss(f * per_B.lr_opt, per_B.batch_size, per_B.steps, lam_D, t.noise_std)
        assert (L > per_B.loss_opt).all()
    assert (per_B.lr_opt < per_B.lr_edge).all() and (per_B.loss_opt > t.noise_std**2).all()
    assert len(lanes) == 3 * 5 and (lanes.expected_loss >= per_B.loss_opt.min() - 1e-12).all()
    with pytest.raises(ValueError):
        sweep_theory(make_config("model=mlp"))


def test_engine_momentum_matches_theory():
    name = "momentum"  # heavy ball; Nesterov is checked against Monte Carlo above
    from sweeps import engine
    from tests.conftest import make_config, program

    cfg = make_config(
        f"optimizer={name}", "sweep=smoke", "task.dim=8", "progress=false", "sweep.seeds=256"
    )
    t, B, T = cfg.task, 4, 64
    lam_D = spectrum(t.dim, t.spectrum_decay)
    beta = cfg.optimizer.momentum
    edge = float(divergence_edge(B, lam_D, beta, name == "nesterov"))
    lrs = np.array([0.05, 0.2, 0.5]) * edge
    points = engine.curve_steps(T, 4)
    seeds = np.arange(cfg.sweep.seeds, dtype=np.uint32)
    L_RxL = np.asarray(program(cfg, B, points)(lrs, seeds).final_eval_loss, np.float64)
    th = expected_loss(lrs, B, T, lam_D, t.noise_std, momentum=beta, nesterov=name == "nesterov")
    se = L_RxL.std(0, ddof=1) / np.sqrt(len(seeds))
    assert np.all(np.abs(L_RxL.mean(0) - th) < 4 * se), (L_RxL.mean(0) - th) / se

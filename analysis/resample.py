"""The bootstrap over seeds and its percentile intervals, one place for each, and the random
stream of each cell of the analysis.

A resample draws n seeds from the n with replacement: seeds are the units, since the lanes of one
seed share data and initialisation across learning rates. `draws` gives the indices drawn,
`weights` how often each seed was drawn (the same resampling, for weighted means of curves).
(The fitted laws resample their residuals instead: analysis.laws.)
"""

from __future__ import annotations

import hashlib

import numpy as np


def rng(seed: int, *cell) -> np.random.Generator:
    """The random stream of one cell of the analysis (a sweep's id, a batch size, a data budget):
    a sweep's numbers are its own, whatever other sweeps are analysed beside it."""
    words = [int(hashlib.sha256(str(c).encode()).hexdigest()[:16], 16) for c in cell]
    return np.random.default_rng(np.random.SeedSequence([seed, *words]))


def draws(rng: np.random.Generator, n_seeds: int, n_boot: int) -> np.ndarray:
    """(n_boot, n_seeds) indices of the seeds each resample draws."""
    return rng.integers(0, n_seeds, size=(n_boot, n_seeds))


def weights(rng: np.random.Generator, n_seeds: int, n_boot: int) -> np.ndarray:
    """(n_boot, n_seeds) how often each resample draws each seed."""
    return rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=n_boot).astype(float)


def percentile_interval(
    v: np.ndarray, level: float = 0.95, method: str = "linear"
) -> tuple[float, float]:
    """The central `level` interval of bootstrap values v by their percentiles (numpy's quantile
    method); resamples where the quantity could not be had (NaN) are left out. With
    "inverted_cdf" no value is interpolated: a bound (+inf) stays one."""
    v = np.asarray(v, float)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return (np.nan, np.nan)
    q = np.quantile(v, [(1 - level) / 2, (1 + level) / 2], method=method)
    return float(q[0]), float(q[1])

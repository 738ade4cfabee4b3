"""Map accuracy and area-adjusted estimates from an error matrix (Olofsson et al. 2014).

Olofsson P., Foody G.M., Herold M., Stehman S.V., Woodcock C.E., Wulder M.A. (2014) Good practices for
estimating area and assessing accuracy of land change. Remote Sensing of Environment 148:42-57.

The error matrix holds sample counts ``n[i, j]``: map class i (rows, the strata of a stratified random
sample) against reference class j (columns). ``W[i]`` is the share of the mapped area in class i. The
estimated population proportions are ``p[i, j] = W[i] n[i, j] / n[i, .]`` (eq. 4); the area of
reference class j is ``A p[., j]`` (eq. 9) with the standard error of its proportion
``sqrt(sum_i W[i]^2 (n[i, j] / n[i, .]) (1 - n[i, j] / n[i, .]) / (n[i, .] - 1))`` (eq. 10). Classes
are indices 0..K-1 in one order for rows and columns.
"""

from __future__ import annotations

import numpy as np

#: z of a two-sided 95 % confidence interval, as the paper uses.
Z95 = 1.96


def _check(counts: np.ndarray) -> np.ndarray:
    n = np.asarray(counts, dtype=np.float64)
    if n.ndim != 2 or n.shape[0] != n.shape[1]:
        raise ValueError(f"the error matrix must be square (map x reference), not {n.shape}")
    if (n < 0).any() or not np.isfinite(n).all():
        raise ValueError("the error matrix must hold counts >= 0")
    return n


def conditional(counts: np.ndarray) -> np.ndarray:
    """``n[i, j] / n[i, .]``: the share of class i's map samples that are j in the reference. A map
    class without samples is taken as mapped without error (its row is the identity's)."""
    n = _check(counts)
    rows = n.sum(axis=1, keepdims=True)
    return np.where(rows > 0, n / np.where(rows > 0, rows, 1.0), np.eye(n.shape[0]))


def proportions(mapped: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Estimated proportions of area ``p[i, j] = W[i] n[i, j] / n[i, .]`` (eq. 4); ``mapped``: the
    mapped area (any unit) of each class."""
    a = np.asarray(mapped, dtype=np.float64)
    total = a.sum()
    w = a / total if total > 0 else np.zeros_like(a)
    return w[:, None] * conditional(counts)


def adjusted_area(mapped: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Area of each reference class and its standard error, in the unit of ``mapped`` (eqs. 9-10).

    ``mapped``: (..., K) mapped areas (a leading axis, e.g. zones, is estimated row by row with the
    same error matrix); ``counts``: (K, K) sample counts. A class's rows with fewer than 2 samples add
    nothing to the standard error (its variance is not estimable)."""
    a = np.asarray(mapped, dtype=np.float64)
    n = _check(counts)
    c = conditional(n)
    total = a.sum(axis=-1, keepdims=True)
    w = np.divide(a, total, out=np.zeros_like(a), where=total > 0)
    area = a @ c
    ni = n.sum(axis=1)
    ni = ni[:, None]
    term = np.where(ni > 1, c * (1.0 - c) / np.where(ni > 1, ni - 1.0, 1.0), 0.0)  # (K, K)
    se = np.sqrt((w**2) @ term) * total
    return area, se


def users_accuracy(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """User's accuracy of each map class ``n[i, i] / n[i, .]`` and its standard error (eqs. 2, 6)."""
    n = _check(counts)
    ni = n.sum(axis=1)
    u = np.divide(np.diag(n), ni, out=np.full(ni.shape, np.nan), where=ni > 0)
    se = np.sqrt(np.divide(u * (1.0 - u), ni - 1.0, out=np.full(ni.shape, np.nan), where=ni > 1))
    return u, se


def producers_accuracy(mapped: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Producer's accuracy of each reference class ``p[j, j] / p[., j]`` and its standard error (eqs.
    3, 7; the variance with the estimated total of the reference class, Olofsson et al. 2013, eq. 7)."""
    a = np.asarray(mapped, dtype=np.float64)
    n = _check(counts)
    p = proportions(a, n)
    col = p.sum(axis=0)
    prod = np.divide(np.diag(p), col, out=np.full(col.shape, np.nan), where=col > 0)
    ni = n.sum(axis=1)
    big_n = a / a.sum() if a.sum() > 0 else np.zeros_like(a)  # N_i in shares: only ratios matter
    nj_hat = np.array([np.sum(np.divide(big_n * n[:, j], ni, out=np.zeros_like(ni), where=ni > 0))
                       for j in range(len(ni))])
    u, _ = users_accuracy(n)
    var = np.full(len(ni), np.nan)
    for j in range(len(ni)):
        if nj_hat[j] <= 0 or ni[j] <= 1:
            continue
        first = big_n[j] ** 2 * (1.0 - prod[j]) ** 2 * u[j] * (1.0 - u[j]) / (ni[j] - 1.0)
        others = 0.0
        for i in range(len(ni)):
            if i == j or ni[i] <= 1:
                continue
            share = n[i, j] / ni[i]
            others += big_n[i] ** 2 * share * (1.0 - share) / (ni[i] - 1.0)
        var[j] = (first + prod[j] ** 2 * others) / nj_hat[j] ** 2
    return prod, np.sqrt(var)


def overall_accuracy(mapped: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """Overall accuracy ``sum_j p[j, j]`` and its standard error (eqs. 1, 5)."""
    a = np.asarray(mapped, dtype=np.float64)
    n = _check(counts)
    w = a / a.sum()
    u, _ = users_accuracy(n)
    ni = n.sum(axis=1)
    oa = float(np.nansum(w * u))
    var = float(np.sum(np.divide(w**2 * u * (1.0 - u), ni - 1.0, out=np.zeros_like(ni),
                                 where=(ni > 1) & np.isfinite(u))))
    return oa, float(np.sqrt(var))


def draw_conditionals(counts: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Draws of the matrix ``n[i, j] / n[i, .]``: each row from the Dirichlet distribution with the
    row's counts (the posterior of its multinomial under a uniform-free prior; zero counts stay zero,
    a row without samples stays the identity's). Returns (draws, K, K); each draw's rows sum to 1, and
    their mean is :func:`conditional` (ours: how the land-cover error enters the Monte Carlo)."""
    n = _check(counts)
    k = n.shape[0]
    out = np.empty((int(draws), k, k))
    for i in range(k):
        row = n[i]
        nz = np.flatnonzero(row > 0)
        out[:, i, :] = 0.0
        if nz.size == 0:
            out[:, i, i] = 1.0
        elif nz.size == 1:
            out[:, i, nz[0]] = 1.0
        else:
            out[:, i, nz] = rng.dirichlet(row[nz], size=int(draws))
    return out

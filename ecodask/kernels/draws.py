"""Monte Carlo draws of ESV per zone, summarized as they are made (numba).

The draws of one zone are built in a buffer of (years, services + 1, draws), summarized (mean, two
quantiles, and for pairs of years the change's mean, quantiles and share below zero) and dropped:
nothing of size zones x draws is ever held. Quantiles are numpy's default (linear interpolation
between order statistics, Hyndman & Fan type 7), found by a selection that brackets the two ranks
from a sorted subsample and sorts only the values between the brackets (Floyd & Rivest 1975), with a
full sort where the brackets miss.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange

#: Draws in the subsample that brackets the ranks: the first ones (the draws are independent and
#: identically distributed, so any of them are a random subsample).
SUBSAMPLE = 256
#: LLVM may reorder sums and fuse multiply-adds, but must keep infinities (the open brackets).
_FAST = {"reassoc", "contract", "nsz", "arcp"}


@njit(nogil=True, cache=True)
def _brackets(sub: np.ndarray, q: float) -> tuple:
    """Values of the sorted subsample ``sub`` that bracket quantile ``q`` of the whole with a margin of
    3 binomial standard deviations (+1), open (infinite) at the ends."""
    m = sub.size
    centre = q * (m - 1)
    margin = 3.0 * np.sqrt(m * q * (1.0 - q)) + 1.0
    i_lo = int(np.floor(centre - margin))
    i_hi = int(np.ceil(centre + margin))
    lo = sub[i_lo] if i_lo > 0 else -np.inf
    hi = sub[i_hi] if i_hi < m - 1 else np.inf
    return lo, hi


@njit(nogil=True, cache=True, fastmath=_FAST)
def _counts(x: np.ndarray, lo1: float, hi1: float, lo2: float, hi2: float) -> tuple:
    """Sum, values < 0, values unlike the first, and values below / up to each bracket (vectorized)."""
    total = 0.0
    neg = neq = a = b = c = d = 0
    x0 = x[0]
    for i in range(x.size):
        v = x[i]
        total += v
        neg += v < 0
        neq += v != x0
        a += v < lo1
        b += v <= hi1
        c += v < lo2
        d += v <= hi2
    return total, neg, neq, a, b, c, d


@njit(nogil=True, cache=True)
def _collect(x: np.ndarray, lo1: float, hi1: float, lo2: float, hi2: float, band1: np.ndarray,
             band2: np.ndarray) -> tuple:
    """The values within each bracket, into ``band1`` and ``band2`` (one slot more than the counts of
    :func:`_counts`: every value is stored, the index moves on only for those inside; no branch)."""
    m1 = m2 = 0
    for i in range(x.size):
        v = x[i]
        band1[m1] = v
        m1 += (v >= lo1) & (v <= hi1)
        band2[m2] = v
        m2 += (v >= lo2) & (v <= hi2)
    return m1, m2


@njit(nogil=True, cache=True)
def _pair(band: np.ndarray, m: int, r: int) -> tuple:
    """The r-th and (r+1)-th smallest of the first ``m`` values of ``band`` (r + 1 < m, or r = m - 1:
    then both are the r-th)."""
    part = np.partition(band[:m], r)
    a = part[r]
    b = a
    if r + 1 < m:
        b = part[r + 1]
        for i in range(r + 2, m):
            b = min(b, part[i])
    return a, b


@njit(nogil=True, cache=True)
def _summary(x: np.ndarray, q_lo: float, q_hi: float, band1: np.ndarray, band2: np.ndarray) -> tuple:
    """(mean, quantile q_lo, quantile q_hi, share of values < 0) of the draws ``x`` (finite): two
    passes over ``x``, a sort of a subsample and a selection in each bracket, or a full sort where a
    bracket misses its ranks or outgrows ``band1``/``band2``."""
    n = x.size
    sub = np.sort(x[:SUBSAMPLE].copy())
    lo1, hi1 = _brackets(sub, q_lo)
    lo2, hi2 = _brackets(sub, q_hi)
    total, neg, neq, a, b, c, d = _counts(x, lo1, hi1, lo2, hi2)
    mean = total / n
    if neq == 0:
        return mean, x[0], x[0], neg / n
    h1 = (n - 1) * q_lo
    h2 = (n - 1) * q_hi
    k1 = int(np.floor(h1))
    k2 = int(np.floor(h2))
    cap = band1.size - 1
    if (a <= k1 and min(k1 + 1, n - 1) < b and b - a <= cap and c <= k2 and min(k2 + 1, n - 1) < d
            and d - c <= cap):
        m1, m2 = _collect(x, lo1, hi1, lo2, hi2, band1, band2)
        x1, y1 = _pair(band1, m1, k1 - a)
        x2, y2 = _pair(band2, m2, k2 - c)
    else:
        s = np.sort(x)
        x1, y1 = s[k1], s[min(k1 + 1, n - 1)]
        x2, y2 = s[k2], s[min(k2 + 1, n - 1)]
    return mean, x1 + (h1 - k1) * (y1 - x1), x2 + (h2 - k2) * (y2 - x2), neg / n


@njit(nogil=True, cache=True, fastmath=_FAST)
def _row(eff: np.ndarray, w: np.ndarray, scale: np.ndarray, row: np.ndarray) -> None:
    """``row[d] = scale[d] * sum_k eff[k] * w[k, d]``: one service's draws in one zone and year."""
    n_d = row.size
    for d in range(n_d):
        row[d] = 0.0
    for k in range(eff.size):
        a = eff[k]
        if a != 0.0:
            for d in range(n_d):
                row[d] += a * w[k, d]
    for d in range(n_d):
        row[d] *= scale[d]


@njit(parallel=True, cache=True)
def _summarize(eff, g_of, w, scale, pairs, q_lo, q_hi, n_blocks, level, change):
    n_t, n_z, n_k, _ = eff.shape
    n_f, _, n_d = w.shape
    n_p = pairs.shape[0]
    for blk in prange(n_blocks):
        buf = np.empty((n_f + 1, n_t, n_d), dtype=w.dtype)
        diff = np.empty(n_d, dtype=w.dtype)
        band1 = np.empty(max(n_d // 4, 64), dtype=w.dtype)
        band2 = np.empty(max(n_d // 4, 64), dtype=w.dtype)
        e = np.empty(n_k, dtype=w.dtype)
        for z in range(blk, n_z, n_blocks):
            for t in range(n_t):
                tot = buf[n_f, t]
                tot[:] = 0.0
                for f in range(n_f):
                    for k in range(n_k):
                        e[k] = eff[t, z, k, g_of[f]]
                    _row(e, w[f], scale[t], buf[f, t])
                    tot += buf[f, t]
            for f in range(n_f + 1):
                for t in range(n_t):
                    level[:, t, z, f] = _summary(buf[f, t], q_lo, q_hi, band1, band2)[:3]
                for p in range(n_p):
                    a = buf[f, pairs[p, 0]]
                    b = buf[f, pairs[p, 1]]
                    for d in range(n_d):
                        diff[d] = b[d] - a[d]
                    m, lo, hi, share = _summary(diff, q_lo, q_hi, band1, band2)
                    change[0, p, z, f] = m
                    change[1, p, z, f] = lo
                    change[2, p, z, f] = hi
                    change[3, p, z, f] = share


def summarize_draws(
    eff: np.ndarray,
    g_of: np.ndarray,
    w: np.ndarray,
    scale: np.ndarray,
    pairs: np.ndarray,
    quantiles: tuple[float, float] = (0.05, 0.95),
) -> dict[str, np.ndarray]:
    """Mean and quantiles of ESV draws per year, zone and service (and their sum), and of its change.

    Draw d of service f's ESV in zone z and year t is
    ``ESV[d, t, z, f] = scale[t, d] * sum_k eff[t, z, k, g_of[f]] * w[f, k, d]``, the last "service"
    (index F) is the sum over services. The draws of a zone are made and summarized in one buffer of
    float32 (4 B x (F + 1) x years x draws) on each of numba's threads.

    ``eff``: (years, zones, classes, groups) areas in ha (a class's area repeated over the groups, or
    its effective area under a spatial adjustment); ``g_of``: int (F,) each service's group; ``w``:
    (F, classes, draws) coefficients drawn (CNY/ha/yr, or equivalents with ``scale`` the standard
    equivalent); ``scale``: (years, draws); ``pairs``: int (P, 2) year indices (from, to). Returns
    float64 arrays: ``mean``, ``low``, ``high`` of shape (years, zones, F + 1) in the unit of ESV, and
    ``change_mean``, ``change_low``, ``change_high`` and ``fell`` (the share of draws whose change is
    below zero) of shape (P, zones, F + 1).
    """
    eff = np.asarray(eff)
    w = np.ascontiguousarray(w, dtype=np.float32)
    scale = np.ascontiguousarray(scale, dtype=np.float32)
    g_of = np.asarray(g_of, dtype=np.int64)
    pairs = np.ascontiguousarray(np.asarray(pairs, dtype=np.int64).reshape(-1, 2))
    if eff.ndim != 4 or w.ndim != 3:
        raise ValueError(f"eff must be (years, zones, classes, groups) and w (services, classes, draws); "
                         f"got {eff.shape} and {w.shape}")
    n_t, n_z, n_k, n_g = eff.shape
    n_f, _, n_d = w.shape
    if w.shape[1] != n_k or g_of.shape != (n_f,) or scale.shape != (n_t, n_d):
        raise ValueError(f"shapes do not fit: eff {eff.shape}, g_of {g_of.shape}, w {w.shape}, "
                         f"scale {scale.shape}")
    if n_d < 2:
        raise ValueError("needs at least 2 draws")
    if g_of.size and (g_of.min() < 0 or g_of.max() >= n_g):
        raise ValueError(f"g_of must index the {n_g} groups of eff")
    if pairs.size and (pairs.min() < 0 or pairs.max() >= n_t):
        raise ValueError(f"pairs must index the {n_t} years")
    q_lo, q_hi = (float(q) for q in quantiles)
    if not 0.0 <= q_lo <= q_hi <= 1.0:
        raise ValueError(f"quantiles must be 0 <= low <= high <= 1, not {quantiles}")
    if not (np.isfinite(eff).all() and np.isfinite(w).all() and np.isfinite(scale).all()):
        raise ValueError("eff, w and scale must be finite")
    level = np.empty((3, n_t, n_z, n_f + 1))
    change = np.empty((4, len(pairs), n_z, n_f + 1))
    _summarize(np.ascontiguousarray(eff, dtype=np.float32), g_of, w, scale, pairs, q_lo, q_hi,
               max(min(get_num_threads(), n_z), 1), level, change)
    return {"mean": level[0], "low": level[1], "high": level[2], "change_mean": change[0],
            "change_low": change[1], "change_high": change[2], "fell": change[3]}

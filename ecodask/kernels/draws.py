"""Monte Carlo draws of ESV per zone, summarized as they are made (numba).

The draws of one zone are built in a buffer of (services + 1, years, draws), summarized (mean, two
quantiles, and for pairs of years the change's mean, quantiles and share below zero) and dropped:
nothing of size zones x draws is ever held. Quantiles are numpy's default (linear interpolation
between order statistics, Hyndman & Fan type 7), found exactly by a histogram selection: one pass
counts the draws in fine bins over the range of a subsample, the bins holding the two ranks are
gathered in a second pass and only those few values are partitioned.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange

#: Draws in the subsample whose range the histogram spans: the first ones (the draws are independent
#: and identically distributed, so any of them are a random subsample).
SUBSAMPLE = 256
#: Bins of the histogram over the subsample's range (plus one below it and one above it).
BINS = 2048
#: LLVM may reorder sums and fuse multiply-adds, but must keep infinities and NaN semantics.
_FAST = {"reassoc", "contract", "nsz", "arcp"}


@njit(nogil=True, cache=True, fastmath=_FAST)
def _sums(x: np.ndarray) -> tuple:
    """Sum, values below zero and values unlike the first (one vectorized pass)."""
    total = 0.0
    neg = neq = 0
    x0 = x[0]
    for i in range(x.size):
        v = x[i]
        total += v
        neg += v < 0
        neq += v != x0
    return total, neg, neq


@njit(nogil=True, cache=True, fastmath=_FAST)
def _histogram(x: np.ndarray, lo: float, inv: float, hist: np.ndarray, idx: np.ndarray) -> None:
    """Each value's bin into ``idx``: 1 + floor((v - lo) x inv) clamped to 0 .. BINS + 1, in the
    precision of ``x`` (monotone in v: all the selection needs; a vectorized pass), then the counts per
    bin into ``hist``."""
    lo_ = x.dtype.type(lo)
    inv_ = x.dtype.type(inv)
    below = x.dtype.type(-1.0)
    above = x.dtype.type(BINS)
    for i in range(x.size):
        idx[i] = np.int32(min(max((x[i] - lo_) * inv_, below), above)) + 1
    hist[:] = 0
    for i in range(x.size):
        hist[idx[i]] += 1


@njit(nogil=True, cache=True)
def _bin_of(hist: np.ndarray, r: int) -> tuple:
    """(bin, values in the bins before it) of the value of rank ``r`` (0-based, ascending)."""
    c = 0
    for b in range(hist.size):
        if c + hist[b] > r:
            return b, c
        c += hist[b]
    return hist.size - 1, c - hist[-1]


@njit(nogil=True, cache=True)
def _gather(x: np.ndarray, idx: np.ndarray, a1: int, b1: int, a2: int, b2: int, band1: np.ndarray,
            band2: np.ndarray) -> tuple:
    """The values in bins ``a1`` .. ``b1`` into ``band1`` and those in ``a2`` .. ``b2`` into ``band2``
    (one pass over the bins ``idx`` of :func:`_histogram`); their numbers."""
    m1 = m2 = 0
    w1 = np.uint32(b1 - a1)
    w2 = np.uint32(b2 - a2)
    for i in range(x.size):
        b = idx[i]
        if np.uint32(b - a1) <= w1:
            band1[m1] = x[i]
            m1 += 1
        if np.uint32(b - a2) <= w2:
            band2[m2] = x[i]
            m2 += 1
    return m1, m2


@njit(nogil=True, cache=True)
def _ranks(hist: np.ndarray, n: int, q: float) -> tuple:
    """For quantile ``q`` of ``n`` values: (h, k, k2, bin of rank k, bin of rank k2, values before the
    first of them)."""
    h = (n - 1) * q
    k = int(np.floor(h))
    k2 = min(k + 1, n - 1)
    b1, below = _bin_of(hist, k)
    b2, _ = _bin_of(hist, k2)
    return h, k, k2, b1, b2, below


@njit(nogil=True, cache=True)
def _interpolate(band: np.ndarray, m: int, h: float, k: int, k2: int, below: int) -> float:
    """numpy's default quantile at ``h`` from the ``m`` values of ``band`` that follow the ``below``
    smallest: x_(k) + (h - k) (x_(k2) - x_(k))."""
    r = k - below
    part = np.partition(band[:m], r)
    a = part[r]
    b = a
    if k2 > k:
        b = part[r + 1]
        for i in range(r + 2, m):
            b = min(b, part[i])
    return a + (h - k) * (b - a)


@njit(nogil=True, cache=True)
def _summary(x: np.ndarray, q_lo: float, q_hi: float, hist: np.ndarray, idx: np.ndarray, band1: np.ndarray,
             band2: np.ndarray) -> tuple:
    """(mean, quantile q_lo, quantile q_hi, share of values < 0) of the draws ``x`` (finite);
    scratch space: ``hist`` BINS + 2 counts, ``idx`` ``x.size`` bins, ``band1``, ``band2`` ``x.size``
    values each."""
    n = x.size
    total, neg, neq = _sums(x)
    mean = total / n
    if neq == 0:
        return mean, x[0], x[0], neg / n
    sub = x[:SUBSAMPLE]
    lo = sub.min()
    hi = sub.max()
    inv = (BINS - 1) / (hi - lo) if hi > lo else 0.0
    _histogram(x, lo, inv, hist, idx)
    h1, k1, j1, a1, b1, below1 = _ranks(hist, n, q_lo)
    h2, k2, j2, a2, b2, below2 = _ranks(hist, n, q_hi)
    m1, m2 = _gather(x, idx, a1, b1, a2, b2, band1, band2)
    return (mean, _interpolate(band1, m1, h1, k1, j1, below1), _interpolate(band2, m2, h2, k2, j2, below2),
            neg / n)


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
        hist = np.empty(BINS + 2, dtype=np.int64)
        idx = np.empty(n_d, dtype=np.int32)
        band1 = np.empty(n_d, dtype=w.dtype)
        band2 = np.empty(n_d, dtype=w.dtype)
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
                    level[:, t, z, f] = _summary(buf[f, t], q_lo, q_hi, hist, idx, band1, band2)[:3]
                for p in range(n_p):
                    a = buf[f, pairs[p, 0]]
                    b = buf[f, pairs[p, 1]]
                    for d in range(n_d):
                        diff[d] = b[d] - a[d]
                    m, lo, hi, share = _summary(diff, q_lo, q_hi, hist, idx, band1, band2)
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

"""Monte Carlo draws of ESV per zone, summarized as they are made (numba).

The draws of one zone are built one service at a time in a buffer of (years, draws), with their sum
over the services in a second one, each summarized (mean, two quantiles, and for pairs of years the
change's mean, quantiles and share below zero) and dropped: nothing of size zones x draws is ever
held, and a service's buffer (1.6 MB at 39 years and 10,000 draws) stays in the core's cache while it
is summarized. A draw's row sums four classes a pass over the row (:func:`_level`). Quantiles are
numpy's default (linear interpolation between order statistics, Hyndman & Fan type 7), found exactly
by a histogram selection: one pass counts the draws in fine bins over the range of a subsample, one
scan of the counts finds the bins of the ranks, the bins holding them are gathered in a second pass
and only those few values are sorted."""

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
def _bins(x: np.ndarray, lo: float, inv: float, idx: np.ndarray) -> None:
    """Each value's bin into ``idx``: 1 + floor((v - lo) x inv) clamped to 0 .. BINS + 1, in the
    precision of ``x`` (monotone in v: all the selection needs; a vectorized pass)."""
    lo_ = x.dtype.type(lo)
    inv_ = x.dtype.type(inv)
    below = x.dtype.type(-1.0)
    above = x.dtype.type(BINS)
    for i in range(x.size):
        idx[i] = np.int32(min(max((x[i] - lo_) * inv_, below), above)) + 1


@njit(nogil=True, cache=True)
def _count(idx: np.ndarray, hist: np.ndarray) -> None:
    """The number of values in each bin of :func:`_bins` into ``hist``."""
    hist[:] = 0
    for i in range(idx.size):
        hist[idx[i]] += 1


@njit(nogil=True, cache=True)
def _bins_of(hist: np.ndarray, ranks: np.ndarray, bins: np.ndarray, before: np.ndarray) -> None:
    """For each rank of ``ranks`` (0-based, ascending, sorted, each below the number of values the
    histogram counts), its value's bin into ``bins`` and the number of values in the bins before that
    one into ``before``: one scan of the histogram."""
    c = 0
    j = 0
    n_r = ranks.size
    for b in range(hist.size):
        nxt = c + hist[b]
        while j < n_r and ranks[j] < nxt:
            bins[j] = b
            before[j] = c
            j += 1
        if j == n_r:
            return
        c = nxt


@njit(nogil=True, cache=True)
def _gather(x: np.ndarray, idx: np.ndarray, a1: int, b1: int, a2: int, b2: int, band1: np.ndarray,
            band2: np.ndarray) -> tuple:
    """The values in bins ``a1`` .. ``b1`` into ``band1`` and those in ``a2`` .. ``b2`` into ``band2``
    (one pass over the bins ``idx`` of :func:`_bins`); their numbers."""
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


#: Bands up to this many values are sorted in place; longer ones (ties) partitioned by numpy.
SMALL_BAND = 48


@njit(nogil=True, cache=True)
def _interpolate(band: np.ndarray, m: int, h: float, k: int, k2: int, below: int) -> float:
    """numpy's default quantile at ``h`` from the ``m`` values of ``band`` that follow the ``below``
    smallest: x_(k) + (h - k) (x_(k2) - x_(k))."""
    r = k - below
    if m <= SMALL_BAND:  # insertion sort, in place
        for i in range(1, m):
            v = band[i]
            j = i - 1
            while j >= 0 and band[j] > v:
                band[j + 1] = band[j]
                j -= 1
            band[j + 1] = v
        a = band[r]
        b = band[r + 1] if k2 > k else a
        return a + (h - k) * (b - a)
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
             band2: np.ndarray, sel: np.ndarray) -> tuple:
    """(mean, quantile q_lo, quantile q_hi, share of values < 0) of the draws ``x`` (finite);
    scratch space: ``hist`` BINS + 2 counts, ``idx`` ``x.size`` bins, ``band1``, ``band2`` ``x.size``
    values each, ``sel`` (3, 4) integers (the ranks, their bins, the values before those)."""
    n = x.size
    total, neg, neq = _sums(x)
    mean = total / n
    if neq == 0:
        return mean, x[0], x[0], neg / n
    sub = x[:SUBSAMPLE]
    lo = sub.min()
    hi = sub.max()
    inv = (BINS - 1) / (hi - lo) if hi > lo else 0.0
    _bins(x, lo, inv, idx)
    _count(idx, hist)
    h1 = (n - 1) * q_lo
    h2 = (n - 1) * q_hi
    k1 = int(np.floor(h1))
    k2 = int(np.floor(h2))
    ranks, bins, before = sel[0], sel[1], sel[2]
    ranks[0] = k1
    ranks[1] = min(k1 + 1, n - 1)
    ranks[2] = k2
    ranks[3] = min(k2 + 1, n - 1)
    if ranks[1] <= ranks[2]:  # one scan for the four ranks
        _bins_of(hist, ranks, bins, before)
    else:  # few values: the two quantiles' ranks overlap
        _bins_of(hist, ranks[:2], bins[:2], before[:2])
        _bins_of(hist, ranks[2:], bins[2:], before[2:])
    m1, m2 = _gather(x, idx, bins[0], bins[1], bins[2], bins[3], band1, band2)
    return (mean, _interpolate(band1, m1, h1, k1, ranks[1], before[0]),
            _interpolate(band2, m2, h2, k2, ranks[3], before[2]), neg / n)


@njit(nogil=True, cache=True, fastmath=_FAST)
def _level(e: np.ndarray, w: np.ndarray, ks: np.ndarray, n: int, scale: np.ndarray, row: np.ndarray,
           tot: np.ndarray) -> None:
    """``row[d] = scale[d] * sum_j e[j] * w[ks[j], d]`` over the first ``n`` entries of ``e`` and
    ``ks`` (a multiple of 4, padded with zero areas), then ``tot[d] += row[d]``: one service's draws in
    one zone and year, four classes a pass over the row."""
    n_d = row.size
    if n == 0:
        for d in range(n_d):
            row[d] = 0.0
        return
    for j in range(0, n, 4):
        a0, a1, a2, a3 = e[j], e[j + 1], e[j + 2], e[j + 3]
        w0, w1, w2, w3 = w[ks[j]], w[ks[j + 1]], w[ks[j + 2]], w[ks[j + 3]]
        if j == 0 and n == 4:
            for d in range(n_d):
                r = (a0 * w0[d] + a1 * w1[d] + a2 * w2[d] + a3 * w3[d]) * scale[d]
                row[d] = r
                tot[d] += r
        elif j == 0:
            for d in range(n_d):
                row[d] = a0 * w0[d] + a1 * w1[d] + a2 * w2[d] + a3 * w3[d]
        elif j + 4 < n:
            for d in range(n_d):
                row[d] += a0 * w0[d] + a1 * w1[d] + a2 * w2[d] + a3 * w3[d]
        else:
            for d in range(n_d):
                r = (row[d] + a0 * w0[d] + a1 * w1[d] + a2 * w2[d] + a3 * w3[d]) * scale[d]
                row[d] = r
                tot[d] += r


@njit(nogil=True, cache=True)
def _series(buf, f, z, pairs, q_lo, q_hi, hist, idx, band1, band2, sel, diff, level, change):
    """Summarize the draws ``buf`` (years, draws) of item ``f`` in zone ``z``: each year's level and
    each pair's change."""
    n_t, n_d = buf.shape
    for t in range(n_t):
        level[:, t, z, f] = _summary(buf[t], q_lo, q_hi, hist, idx, band1, band2, sel)[:3]
    for p in range(pairs.shape[0]):
        a = buf[pairs[p, 0]]
        b = buf[pairs[p, 1]]
        for d in range(n_d):
            diff[d] = b[d] - a[d]
        m, lo, hi, share = _summary(diff, q_lo, q_hi, hist, idx, band1, band2, sel)
        change[0, p, z, f] = m
        change[1, p, z, f] = lo
        change[2, p, z, f] = hi
        change[3, p, z, f] = share


@njit(parallel=True, cache=True)
def _summarize(eff, g_of, w, scale, pairs, q_lo, q_hi, n_blocks, level, change):
    n_t, n_z, n_k, _ = eff.shape
    n_f, _, n_d = w.shape
    n_pad = (n_k + 3) // 4 * 4
    for blk in prange(n_blocks):
        buf = np.empty((n_t, n_d), dtype=w.dtype)  # one service's draws, every year
        tot = np.empty((n_t, n_d), dtype=w.dtype)  # their sum over the services
        diff = np.empty(n_d, dtype=w.dtype)
        hist = np.empty(BINS + 2, dtype=np.int64)
        idx = np.empty(n_d, dtype=np.int32)
        band1 = np.empty(n_d, dtype=w.dtype)
        band2 = np.empty(n_d, dtype=w.dtype)
        sel = np.empty((3, 4), dtype=np.int64)
        e = np.zeros(n_pad, dtype=w.dtype)
        ks = np.zeros(n_pad, dtype=np.int64)
        for z in range(blk, n_z, n_blocks):
            tot[:] = 0.0
            for f in range(n_f):
                g = g_of[f]
                for t in range(n_t):
                    n = 0
                    for k in range(n_k):  # the classes with area, padded to a multiple of 4
                        a = eff[t, z, k, g]
                        if a != 0.0:
                            e[n] = a
                            ks[n] = k
                            n += 1
                    while n % 4:
                        e[n] = 0.0
                        ks[n] = 0
                        n += 1
                    _level(e, w[f], ks, n, scale[t], buf[t], tot[t])
                _series(buf, f, z, pairs, q_lo, q_hi, hist, idx, band1, band2, sel, diff, level, change)
            _series(tot, n_f, z, pairs, q_lo, q_hi, hist, idx, band1, band2, sel, diff, level, change)


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
    (index F) is the sum over services. The draws of a zone are made and summarized in two buffers of
    float32 (4 B x years x draws each: a service's, the sum's) on each of numba's threads.

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

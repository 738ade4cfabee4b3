"""Monte Carlo draws of ESV per zone, summarized as they are made (numba).

The draws of one zone are built one service at a time in a buffer of (years, draws), with their sum over
the services in a second one, both in float64 (a county's ESV of ~1e10 CNY has a float32 step of 1,024
CNY, as large as the change a few pixels make: the changes are differences of these rows); each year's
row is summarized as soon as it is made (mean, two quantiles, and for each pair of years ending then the
change's mean, quantiles and share below zero), while it is in the core's cache. Nothing of size zones x
draws is ever held. A draw's row sums four classes a pass over the row (:func:`_level`).

Quantiles are numpy's default (linear interpolation between order statistics, Hyndman & Fan type 7),
equal to ``numpy.quantile``'s on the same draws to the last bit, found by one of two selections:

- **the pilot** (a year's level, from the year before's): the year before's quantiles scaled by the
  ratio of the means, each bracketed by a few ranks either side at the year before's density; one
  vectorized pass counts the draws below the four bounds and marks those inside, and when each
  bracket holds its two order statistics (and few draws) only the marked draws are selected from;
- **the histogram** (otherwise, or when the pilot misses): one pass counts the draws in fine bins over
  the range of a subsample, a scan of the counts from the nearer end finds the bins of the ranks, the
  draws in those bins are marked in one vectorized pass and selected from as the pilot's are.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange

#: Draws in the subsample whose range the histogram spans: the first ones (the draws are independent
#: and identically distributed, so any of them are a random subsample).
SUBSAMPLE = 256
#: Bins of the histogram over the subsample's range (plus one below it and one above it).
BINS = 4096
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
def _bin_of(hist: np.ndarray, r: int, n: int) -> tuple:
    """The bin of the value of rank ``r`` (0-based, below ``n``, the number of values the histogram
    counts) and the number of values in the bins before it: a scan of the counts from the nearer end."""
    if 2 * r < n:
        c = 0
        for b in range(hist.size):
            nxt = c + hist[b]
            if r < nxt:
                return b, c
            c = nxt
    c = n
    for b in range(hist.size - 1, -1, -1):
        c -= hist[b]
        if r >= c:
            return b, c
    return 0, 0  # unreachable: r < n


@njit(nogil=True, cache=True, fastmath=_FAST)
def _mark_bins(idx: np.ndarray, a1: int, b1: int, a2: int, b2: int, mask: np.ndarray) -> None:
    """Mark each value by its bin ``idx`` (:func:`_bins`) into ``mask`` as :func:`_count_mask` does:
    1 in bins ``a1`` .. ``b1``, 2 in ``a2`` .. ``b2``, 3 in both (one vectorized pass)."""
    u1 = np.uint32(a1)
    u2 = np.uint32(a2)
    w1 = np.uint32(b1 - a1)
    w2 = np.uint32(b2 - a2)
    for i in range(idx.size):
        b = np.uint32(idx[i])
        mask[i] = np.uint8(b - u1 <= w1) | (np.uint8(b - u2 <= w2) << np.uint8(1))


@njit(nogil=True, cache=True)
def _lerp(a: float, b: float, t: float) -> float:
    """numpy's linear interpolation (``numpy.quantile``'s ``_lerp``), in float64: from ``b`` when the
    weight ``t`` is at least one half, so that the result equals numpy's to the last bit."""
    d = b - a
    if t >= 0.5:
        return b - d * (1.0 - t)
    return a + d * t


@njit(nogil=True, cache=True)
def _select(band: np.ndarray, m: int, r: int) -> float:
    """The value of rank ``r`` (0-based) among the first ``m`` values of ``band``, which it reorders in
    place so that the ``r`` smaller ones come first: a quickselect with three-way partitions (many equal
    values cost one pass) around the median of three."""
    lo = 0
    hi = m - 1
    while lo < hi:
        a, b, c = band[lo], band[(lo + hi) // 2], band[hi]
        p = max(min(a, b), min(max(a, b), c))
        lt = lo
        i = lo
        gt = hi
        while i <= gt:  # [lo, lt) < p, [lt, i) == p, (gt, hi] > p
            v = band[i]
            if v < p:
                band[i] = band[lt]
                band[lt] = v
                lt += 1
                i += 1
            elif v > p:
                band[i] = band[gt]
                band[gt] = v
                gt -= 1
            else:
                i += 1
        if r < lt:
            hi = lt - 1
        elif r > gt:
            lo = gt + 1
        else:
            return band[r]
    return band[r]


@njit(nogil=True, cache=True)
def _interpolate(band: np.ndarray, m: int, h: float, k: int, k2: int, below: int) -> float:
    """numpy's default quantile at ``h`` from the ``m`` values of ``band`` that follow the ``below``
    smallest: x_(k) + (h - k) (x_(k2) - x_(k)) in float64, x_(k2) (k2 is k or k + 1) the least value
    after x_(k) once :func:`_select` has put the smaller ones before it."""
    r = k - below
    a = np.float64(_select(band, m, r))
    b = a
    if k2 > k:
        b = np.float64(band[r + 1])
        for i in range(r + 2, m):
            b = min(b, np.float64(band[i]))
    return _lerp(a, b, h - k)


#: Draws a series may hold: fewer than 2**24 (there a thread's two buffers of years x draws in float64
#: hold 10 GB at 39 years).
MAX_DRAWS = 2**24

#: A pilot's bracket spans this share of the draws either side of each quantile it expects (at least
#: 8 ranks), and is used when it holds at most :data:`PILOT_BAND` times that many values.
PILOT_MARGIN = 0.0032
PILOT_BAND = 4


@njit(nogil=True, cache=True, fastmath=_FAST)
def _count_mask(x: np.ndarray, t: np.ndarray, mask: np.ndarray) -> tuple:
    """The numbers of values of ``x`` below each of the four thresholds ``t`` (of x's type), and each
    value's brackets into ``mask``: 1 in [t0, t1), 2 in [t2, t3), 3 in both (one vectorized pass)."""
    t0, t1, t2, t3 = t[0], t[1], t[2], t[3]
    c0 = c1 = c2 = c3 = np.int64(0)  # integer lanes as wide as the draws' (float32 lanes: twice the time)
    for i in range(x.size):
        v = x[i]
        a0 = v < t0
        a1 = v < t1
        a2 = v < t2
        a3 = v < t3
        c0 += a0
        c1 += a1
        c2 += a2
        c3 += a3
        mask[i] = np.uint8(a1 & ~a0) | (np.uint8(a3 & ~a2) << np.uint8(1))
    return c0, c1, c2, c3


#: De Bruijn's sequence for 64 bits and its table: the index of a word's lowest set bit in a multiply,
#: a shift and a look-up (:func:`_scan`).
_DE_BRUIJN = 0x03F79D71B4CB0A89
_LOWEST = np.array(sorted(range(64), key=lambda b: ((1 << b) * _DE_BRUIJN % 2**64) >> 58), dtype=np.int64)


@njit(nogil=True, cache=True)
def _scan(x: np.ndarray, mask: np.ndarray, band1: np.ndarray, band2: np.ndarray) -> tuple:
    """The values :func:`_count_mask` marked 1 into ``band1`` and 2 into ``band2`` (3 into both); their
    numbers. The marks are read eight at a time, and only the marked bytes of a word are visited."""
    n = x.size
    nw = n // 8
    words = mask[: nw * 8].view(np.uint64)
    tail = np.uint64(0)  # the last n % 8 marks, as a word of their own
    for i in range(nw * 8, n):
        tail |= np.uint64(mask[i]) << np.uint64(8 * (i - nw * 8))
    m1 = m2 = 0
    for j in range(nw + 1):
        wd = words[j] if j < nw else tail
        while wd:
            low = wd & (~wd + np.uint64(1))  # the lowest set bit alone
            bit = _LOWEST[(low * np.uint64(_DE_BRUIJN)) >> np.uint64(58)]
            i = j * 8 + (bit >> 3)
            k = mask[i]
            if k & 1:
                band1[m1] = x[i]
                m1 += 1
            if k & 2:
                band2[m2] = x[i]
                m2 += 1
            wd &= ~(np.uint64(0xFF) << np.uint64(bit & ~7))  # that byte done
    return m1, m2


@njit(nogil=True, cache=True)
def _ranks(n: int, q_lo: float, q_hi: float) -> tuple:
    """numpy's positions h = (n - 1) q of the two quantiles and the ranks k = floor(h) and k + 1 (at
    most n - 1) of the order statistics each interpolates between."""
    h1 = (n - 1) * q_lo
    h2 = (n - 1) * q_hi
    k1 = int(np.floor(h1))
    k2 = int(np.floor(h2))
    return h1, h2, k1, min(k1 + 1, n - 1), k2, min(k2 + 1, n - 1)


@njit(nogil=True, cache=True)
def _piloted(x: np.ndarray, mean: float, q_lo: float, q_hi: float, pilot: np.ndarray, band1: np.ndarray,
             band2: np.ndarray, mask: np.ndarray, t: np.ndarray) -> tuple:
    """(found, low, high) by the pilot: the series before's quantiles scaled by the ratio of the means,
    bracketed by the ranks :data:`PILOT_MARGIN` either side at the series before's density; one
    counting pass checks that each bracket holds its two order statistics and few values, and only
    those values are selected from (:func:`_scan`, :func:`_select`). Updates ``pilot`` (see
    :func:`_summary`) when found."""
    n = x.size
    h1, h2, k1, r1, k2, r2 = _ranks(n, q_lo, q_hi)
    if pilot[1] == 0.0:  # no ratio to scale by
        return False, 0.0, 0.0
    ratio = mean / pilot[1]
    if not (ratio > 0.0 and np.isfinite(ratio)):
        return False, 0.0, 0.0
    g = max(8.0, PILOT_MARGIN * n)
    c1 = pilot[2] * ratio
    c2 = pilot[3] * ratio
    d1 = g / pilot[4] * ratio
    d2 = g / pilot[5] * ratio
    t[0] = c1 - d1
    t[1] = c1 + d1
    t[2] = c2 - d2
    t[3] = c2 + d2
    if not (t[0] < t[1] and t[2] < t[3]):
        return False, 0.0, 0.0
    n0, n1, n2, n3 = _count_mask(x, t, mask)
    most = PILOT_BAND * 2.0 * g
    if not (n0 <= k1 and n1 > r1 and n2 <= k2 and n3 > r2 and n1 - n0 <= most and n3 - n2 <= most):
        return False, 0.0, 0.0
    m1, m2 = _scan(x, mask, band1, band2)
    low = _interpolate(band1, m1, h1, k1, r1, n0)
    high = _interpolate(band2, m2, h2, k2, r2, n2)
    pilot[1] = mean
    pilot[2] = low
    pilot[3] = high
    pilot[4] = m1 / (np.float64(t[1]) - np.float64(t[0]))
    pilot[5] = m2 / (np.float64(t[3]) - np.float64(t[2]))
    return True, low, high


@njit(nogil=True, cache=True)
def _summary(x: np.ndarray, q_lo: float, q_hi: float, pilot: np.ndarray, hist: np.ndarray, idx: np.ndarray,
             band1: np.ndarray, band2: np.ndarray, mask: np.ndarray, t: np.ndarray) -> tuple:
    """(mean, quantile q_lo, quantile q_hi, share of values < 0) of the draws ``x`` (finite).

    ``pilot``: float64 (6,) [valid, mean, low, high, values per unit of ESV near low and near high] of
    a series alike (the same item's level the year before), tried first (:func:`_piloted`) when valid,
    and set to this series' own; else the histogram selection. Scratch space: ``hist`` BINS + 2
    counts, ``idx`` ``x.size`` bins, ``band1``, ``band2`` ``x.size`` values each, ``mask`` ``x.size``
    marks, ``t`` 4 thresholds of x's type."""
    n = x.size
    total, neg, neq = _sums(x)
    mean = total / n
    if neq == 0:
        pilot[0] = 0.0
        return mean, np.float64(x[0]), np.float64(x[0]), neg / n
    if pilot[0] > 0.0:
        found, low, high = _piloted(x, mean, q_lo, q_hi, pilot, band1, band2, mask, t)
        if found:
            return mean, low, high, neg / n
    sub = x[:SUBSAMPLE]
    lo = sub.min()
    hi = sub.max()
    # bins per unit; at most 1e38, so that a float32 (v - lo) x inv never makes 0 x inf (NaN, no bin)
    inv = min((BINS - 1) / (hi - lo), 1e38) if hi > lo else 0.0
    _bins(x, lo, inv, idx)
    _count(idx, hist)
    h1, h2, k1, r1, k2, r2 = _ranks(n, q_lo, q_hi)
    a1, before1 = _bin_of(hist, k1, n)
    b1, _ = _bin_of(hist, r1, n)
    a2, before2 = _bin_of(hist, k2, n)
    b2, _ = _bin_of(hist, r2, n)
    _mark_bins(idx, a1, b1, a2, b2, mask)
    m1, m2 = _scan(x, mask, band1, band2)
    low = _interpolate(band1, m1, h1, k1, r1, before1)
    high = _interpolate(band2, m2, h2, k2, r2, before2)
    # the pilot for the next series: the density of the bins found, unless open-ended or empty of width
    inner = 0 < a1 and b2 <= BINS and inv > 0.0
    pilot[0] = 1.0 if inner else 0.0
    pilot[1] = mean
    pilot[2] = low
    pilot[3] = high
    pilot[4] = m1 * inv / (b1 - a1 + 1)
    pilot[5] = m2 * inv / (b2 - a2 + 1)
    return mean, low, high, neg / n


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
def _with_area(a: np.ndarray, e: np.ndarray, ks: np.ndarray) -> int:
    """The classes of ``a`` (a zone's areas in a year, per class) with area: their areas into ``e`` and
    their indices into ``ks``, padded with zero areas to a multiple of 4 (:func:`_level`'s passes);
    their number with the padding."""
    n = 0
    for k in range(a.size):
        if a[k] != 0.0:
            e[n] = a[k]
            ks[n] = k
            n += 1
    while n % 4:
        e[n] = 0.0
        ks[n] = 0
        n += 1
    return n


@njit(nogil=True, cache=True)
def _year(buf, y, f, z, pairs, order, start, q_lo, q_hi, pilot, none, hist, idx, band1, band2, mask, t,
          diff, level, change):
    """Summarize item ``f``'s level in zone ``z`` and year ``y`` (``buf[y]``, just made; ``pilot``: its
    level the year before's, see :func:`_summary`) and its change over each pair whose later year is
    ``y`` (``order[start[y]:start[y + 1]]``; no pilot, ``none``), while the rows are in the core's
    cache."""
    m, lo, hi, _ = _summary(buf[y], q_lo, q_hi, pilot, hist, idx, band1, band2, mask, t)
    level[0, y, z, f] = m
    level[1, y, z, f] = lo
    level[2, y, z, f] = hi
    for i in range(start[y], start[y + 1]):
        p = order[i]
        a = buf[pairs[p, 0]]
        b = buf[pairs[p, 1]]
        for d in range(diff.size):
            diff[d] = b[d] - a[d]
        none[0] = 0.0
        m, lo, hi, share = _summary(diff, q_lo, q_hi, none, hist, idx, band1, band2, mask, t)
        change[0, p, z, f] = m
        change[1, p, z, f] = lo
        change[2, p, z, f] = hi
        change[3, p, z, f] = share


@njit(nogil=True, cache=True)
def _zones(eff, g_of, w, scale, pairs, order, start, q_lo, q_hi, first, step, level, change):
    """Zones ``first``, ``first + step``, ... of ``eff``, one after the other on this thread, each
    summarized into ``level`` and ``change`` independently of the others."""
    n_t, n_z, n_k, _ = eff.shape
    n_f, _, n_d = w.shape
    n_pad = (n_k + 3) // 4 * 4
    buf = np.empty((n_t, n_d), dtype=np.float64)  # one service's draws, every year
    tot = np.empty((n_t, n_d), dtype=np.float64)  # their sum over the services
    diff = np.empty(n_d, dtype=np.float64)
    hist = np.empty(BINS + 2, dtype=np.int32)
    idx = np.empty(n_d, dtype=np.int32)
    band1 = np.empty(n_d, dtype=np.float64)
    band2 = np.empty(n_d, dtype=np.float64)
    mask = np.empty(n_d, dtype=np.uint8)
    t = np.empty(4, dtype=np.float64)
    pilot = np.zeros(6)
    none = np.zeros(6)
    e = np.zeros(n_pad, dtype=np.float64)
    ks = np.zeros(n_pad, dtype=np.int64)
    for z in range(first, n_z, step):
        tot[:] = 0.0
        for f in range(n_f):
            g = g_of[f]
            pilot[0] = 0.0
            for y in range(n_t):
                n = _with_area(eff[y, z, :, g], e, ks)
                _level(e, w[f], ks, n, scale[y], buf[y], tot[y])
                _year(buf, y, f, z, pairs, order, start, q_lo, q_hi, pilot, none, hist, idx, band1, band2,
                      mask, t, diff, level, change)
        pilot[0] = 0.0
        for y in range(n_t):
            _year(tot, y, n_f, z, pairs, order, start, q_lo, q_hi, pilot, none, hist, idx, band1, band2,
                  mask, t, diff, level, change)


@njit(parallel=True, cache=True)
def _summarize(eff, g_of, w, scale, pairs, order, start, q_lo, q_hi, n_blocks, level, change):
    """:func:`_zones` on numba's threads, zones dealt out to ``n_blocks`` of them in turn."""
    for blk in prange(n_blocks):
        _zones(eff, g_of, w, scale, pairs, order, start, q_lo, q_hi, blk, n_blocks, level, change)


def check_draws(eff: np.ndarray, g_of: np.ndarray, w: np.ndarray, scale: np.ndarray, pairs: np.ndarray,
                quantiles: tuple[float, float]) -> tuple[np.ndarray, ...]:
    """The arguments of :func:`summarize_draws` checked (ValueError naming what is wrong) and in the
    types its loops take: (eff float64, g_of int64, w float32, scale float32, pairs int64 (P, 2))."""
    eff, w, scale = np.asarray(eff), np.asarray(w), np.asarray(scale)  # converted once checked
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
    if not 2 <= n_d < MAX_DRAWS:
        raise ValueError(f"needs 2 to {MAX_DRAWS - 1:,} draws, not {n_d:,}")
    if g_of.size and (g_of.min() < 0 or g_of.max() >= n_g):
        raise ValueError(f"g_of must index the {n_g} groups of eff")
    if pairs.size and (pairs.min() < 0 or pairs.max() >= n_t):
        raise ValueError(f"pairs must index the {n_t} years")
    q_lo, q_hi = (float(q) for q in quantiles)
    if not 0.0 <= q_lo <= q_hi <= 1.0:
        raise ValueError(f"quantiles must be 0 <= low <= high <= 1, not {quantiles}")
    if not (np.isfinite(eff).all() and np.isfinite(w).all() and np.isfinite(scale).all()):
        raise ValueError("eff, w and scale must be finite")
    w = np.ascontiguousarray(w, dtype=np.float32)
    scale = np.ascontiguousarray(scale, dtype=np.float32)
    return np.ascontiguousarray(eff, dtype=np.float64), g_of, w, scale, pairs


def summarize_draws(
    eff: np.ndarray,
    g_of: np.ndarray,
    w: np.ndarray,
    scale: np.ndarray,
    pairs: np.ndarray,
    quantiles: tuple[float, float] = (0.05, 0.95),
    threaded: bool = True,
) -> dict[str, np.ndarray]:
    """Mean and quantiles of ESV draws per year, zone and service (and their sum), and of its change.

    Draw d of service f's ESV in zone z and year t is
    ``ESV[d, t, z, f] = scale[t, d] * sum_k eff[t, z, k, g_of[f]] * w[f, k, d]``, the last "service"
    (index F) is the sum over services. The draws of a zone are made and summarized in two buffers of
    float64 (8 B x years x draws each: a service's, the sum's) on each of numba's threads, or with
    ``threaded=False`` on the calling thread alone (a Dask task's: numba's threads are then not
    started, so that any number of tasks may call it at once). A zone's summaries do not depend on
    the other zones, nor on how the zones are dealt out.

    ``eff``: (years, zones, classes, groups) areas in ha (a class's area repeated over the groups, or
    its effective area under a spatial adjustment); ``g_of``: int (F,) each service's group; ``w``:
    (F, classes, draws) coefficients drawn (CNY/ha/yr, or equivalents with ``scale`` the standard
    equivalent); ``scale``: (years, draws); ``pairs``: int (P, 2) year indices (from, to). Returns
    float64 arrays: ``mean``, ``low``, ``high`` of shape (years, zones, F + 1) in the unit of ESV, and
    ``change_mean``, ``change_low``, ``change_high`` and ``fell`` (the share of draws whose change is
    below zero) of shape (P, zones, F + 1).
    """
    eff, g_of, w, scale, pairs = check_draws(eff, g_of, w, scale, pairs, quantiles)
    q_lo, q_hi = (float(q) for q in quantiles)
    n_t, n_z = eff.shape[:2]
    n_f = w.shape[0]
    level = np.empty((3, n_t, n_z, n_f + 1))
    change = np.empty((4, len(pairs), n_z, n_f + 1))
    ready = pairs.max(axis=1) if pairs.size else np.zeros(0, np.int64)
    order = np.argsort(ready, kind="stable")  # the pairs by their later year
    start = np.searchsorted(ready[order], np.arange(n_t + 1))
    if threaded:
        _summarize(eff, g_of, w, scale, pairs, order, start, q_lo, q_hi, max(min(get_num_threads(), n_z), 1),
                   level, change)
    else:
        _zones(eff, g_of, w, scale, pairs, order, start, q_lo, q_hi, 0, 1, level, change)
    return {"mean": level[0], "low": level[1], "high": level[2], "change_mean": change[0],
            "change_low": change[1], "change_high": change[2], "fell": change[3]}

"""Per-chunk sums of y by stratum for the Geographical Detector (numba, no dask, no I/O).

A chunk is ``y`` (N,) and the factors ``xs`` (F, N), float64. A row counts only when y and every
factor are finite. Each factor's value becomes a fine bin by its ``Binning`` parameters:

- mode 0 (arithmetic): ``bin = floor((x - lo) * scale)`` clipped to ``[0, nbins - 1]``; integer
  codes use ``scale = 1`` (one bin per integer), continuous values ``nbins`` equal-width bins;
- mode 1 (values): ``bin = `` the index of x among the factor's sorted distinct ``values``.

Sums are of ``d = y - shift`` (shift ≈ the mean of y, so Σd² keeps its precision), float64.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _bin(x: float, mode: int, lo: float, scale: float, nbins: int, values: np.ndarray) -> int:
    if mode == 0:
        b = int(math.floor((x - lo) * scale))
        if b < 0:
            return 0
        if b >= nbins:
            return nbins - 1
        return b
    return int(np.searchsorted(values[:nbins], x))


@njit(cache=True, nogil=True, inline="always")
def _valid(y: np.ndarray, xs: np.ndarray, i: int) -> bool:
    if not np.isfinite(y[i]):
        return False
    for f in range(xs.shape[0]):
        if not np.isfinite(xs[f, i]):
            return False
    return True


@njit(cache=True, nogil=True)
def scan(y: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(counts, lo, hi)`` of a chunk. counts (2F + 3,): non-finite y, non-finite values of each
    factor (F), valid rows, Σy over valid rows, non-integer values of each factor on valid rows
    (F). lo, hi (F,): least and largest factor values on valid rows (+inf, -inf when none)."""
    nf, n = xs.shape
    counts = np.zeros(2 * nf + 3)
    lo = np.full(nf, np.inf)
    hi = np.full(nf, -np.inf)
    for i in range(n):
        ok = True
        if not np.isfinite(y[i]):
            counts[0] += 1
            ok = False
        for f in range(nf):
            if not np.isfinite(xs[f, i]):
                counts[1 + f] += 1
                ok = False
        if not ok:
            continue
        counts[nf + 1] += 1
        counts[nf + 2] += y[i]
        for f in range(nf):
            x = xs[f, i]
            if x < lo[f]:
                lo[f] = x
            if x > hi[f]:
                hi[f] = x
            if x != math.floor(x):
                counts[nf + 3 + f] += 1
    return counts, lo, hi


@njit(cache=True, nogil=True)
def pair_sums(
    y: np.ndarray, xs: np.ndarray, shift: float, mode: np.ndarray, lo: np.ndarray, scale: np.ndarray,
    nbins: np.ndarray, values: np.ndarray, stratum: np.ndarray, pa: np.ndarray, pb: np.ndarray,
    offset: np.ndarray, width: np.ndarray, size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``(pairs, fine)``: pairs (size, 3) [count, Σd, Σd²] per stratum of every overlay of two
    factors, and fine (F, max nbins, 3) the same per factor and fine bin, from one loop (no pairs:
    the fine-bin sums alone). ``stratum[f, bin]``
    is the factor's stratum (0..K_f-1) of a fine bin; overlay p of factors ``pa[p]``, ``pb[p]``
    puts strata (a, b) at ``offset[p] + a * width[p] + b``."""
    nf, n = xs.shape
    out = np.zeros((size, 3))
    fine = np.zeros((nf, nbins.max(), 3))
    s = np.empty(nf, dtype=np.int64)
    for i in range(n):
        if not _valid(y, xs, i):
            continue
        d = y[i] - shift
        d2 = d * d
        for f in range(nf):
            b = _bin(xs[f, i], mode[f], lo[f], scale[f], nbins[f], values[f])
            fine[f, b, 0] += 1.0
            fine[f, b, 1] += d
            fine[f, b, 2] += d2
            s[f] = stratum[f, b]
        for p in range(pa.shape[0]):
            k = offset[p] + s[pa[p]] * width[p] + s[pb[p]]
            out[k, 0] += 1.0
            out[k, 1] += d
            out[k, 2] += d2
    return out, fine

"""Analysis-grid arrays at a coarser cell: ``s`` x ``s`` blocks of cells (the density, the weighted
mean and the mode each in one pass of a numba loop).

A grid whose sides are not multiples of ``s`` gets partial blocks at its right and bottom edges (the
cells there count as they are). Used for the scale effect of the Geographical Detector: the ESV of a
coarse cell is the sum of its cells', its density that sum over the valued area, a continuous driver
the mean of its cells' values and a categorical one their most frequent value, each cell counted
with a weight (its valued pixels: a cell at a zone's edge with 3 valued pixels weighs 3, not as
much as a full one).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def _weighted_sums(a, w, unit, s, total, weight):  # pragma: no cover - compiled
    """``total[R, C] += w a`` and ``weight[R, C] += w`` over each block's cells with a finite value
    and a weight above 0 (``unit``: every weight 1, ``w`` unread), in one pass over the grid."""
    rows, cols = a.shape
    for i in range(rows):
        bi = i // s
        for j in range(cols):
            v = np.float64(a[i, j])
            x = 1.0 if unit else np.float64(w[i, j])
            if np.isfinite(v) and x > 0.0:  # NaN > 0 is False
                bj = j // s
                total[bi, bj] += x * v
                weight[bi, bj] += x


@njit(nogil=True, cache=True)
def _density_sums(esv, pixels, s, total, count):  # pragma: no cover - compiled
    """``total[R, C] +=`` each cell's finite ESV and ``count[R, C] +=`` its valued pixels (those
    above 0), in one pass over the grid."""
    rows, cols = esv.shape
    for i in range(rows):
        bi = i // s
        for j in range(cols):
            v = np.float64(esv[i, j])
            p = np.float64(pixels[i, j])
            bj = j // s
            if np.isfinite(v):
                total[bi, bj] += v
            if p > 0.0:  # NaN > 0 is False
                count[bi, bj] += p


@njit(nogil=True, cache=True)
def _weighted_mode(k, w, unit, s, n_codes, out):  # pragma: no cover - compiled
    """``out[R, C]``: the index (into the ascending codes) whose cells weigh most in each block, the
    smallest of a tie, -1 where none weighs above 0; ``k`` each cell's index (-1: no value). A row of
    blocks at a time: its weights per code are (C, n_codes)."""
    rows, cols = k.shape
    n_r, n_c = out.shape
    acc = np.zeros((n_c, n_codes))
    for bi in range(n_r):
        acc[:] = 0.0
        for i in range(bi * s, min((bi + 1) * s, rows)):
            for j in range(cols):
                c = k[i, j]
                x = 1.0 if unit else np.float64(w[i, j])
                if c >= 0 and x > 0.0:
                    acc[j // s, c] += x
        for bj in range(n_c):
            best = -1
            most = 0.0
            for c in range(n_codes):  # a strictly larger weight wins: a tie keeps the smaller code
                if acc[bj, c] > most:
                    most = acc[bj, c]
                    best = c
            out[bi, bj] = best


def _numbers(x: np.ndarray) -> np.ndarray:
    """``x`` as the loops take it: C-contiguous, its own type where it is a float or an integer (no
    copy of a driver's float32 grid or of the pixel counts), else float64."""
    x = np.ascontiguousarray(x)
    return x if x.dtype.kind in "fiu" else x.astype(np.float64)


def _checked(a: np.ndarray, s: int, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, bool, int]:
    """(a, weights or a dummy, whether every weight is 1, s) for the loops (:func:`_numbers`)."""
    a = _numbers(a)
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D grid, not {a.shape}")
    if int(s) < 1:
        raise ValueError(f"the block side must be >= 1, not {s}")
    if weights is None:
        return a, np.zeros((1, 1)), True, int(s)
    w = _numbers(weights)
    if w.shape != a.shape:
        raise ValueError(f"weights of shape {w.shape} for a grid of shape {a.shape}")
    return a, w, False, int(s)


def _coarse_shape(shape: tuple[int, ...], s: int) -> tuple[int, int]:
    return -(-shape[0] // s), -(-shape[1] // s)


def block_mean(a: np.ndarray, s: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted mean of each block's finite cells, ``Σ w a / Σ w`` (``weights`` w per cell, e.g.
    its valued pixels, a negative or NaN weight counting 0; every cell 1 where None); NaN where the
    block's finite cells weigh 0. One pass over the grid (numba)."""
    a, w, unit, s = _checked(a, s, weights)
    total, weight = np.zeros(_coarse_shape(a.shape, s)), np.zeros(_coarse_shape(a.shape, s))
    _weighted_sums(a, w, unit, s, total, weight)
    return np.divide(total, weight, out=np.full(total.shape, np.nan), where=weight > 0)


def block_mode(a: np.ndarray, s: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Value of each block whose finite cells weigh most (``weights`` per cell, e.g. its valued
    pixels: a cell's value votes with its weight, a negative or NaN weight counting 0; every cell 1
    where None, the most frequent value); the smallest of a tie; NaN where the block's finite cells
    weigh 0. One pass over the grid (numba) once each cell's value is indexed."""
    a, w, unit, s = _checked(a, s, weights)
    ok = np.isfinite(a)
    values = np.unique(a[ok])  # a categorical driver's few codes, ascending
    k = np.where(ok, np.searchsorted(values, np.where(ok, a, 0.0)), -1).astype(np.int64)
    best = np.empty(_coarse_shape(a.shape, s), dtype=np.int64)
    _weighted_mode(k, w, unit, s, len(values), best)
    return np.where(best >= 0, values[np.maximum(best, 0)] if len(values) else np.nan, np.nan)


def block_density(esv: np.ndarray, pixels: np.ndarray, s: int, pixel_area_ha: float) -> np.ndarray:
    """ESV density of each block, CNY/ha/yr: its cells' finite ESV (CNY/yr) summed over their valued
    pixels' area (``pixels`` above 0, x ``pixel_area_ha`` ha); NaN where no pixel is valued. One pass
    over the grid (numba)."""
    esv, pixels, _, s = _checked(esv, s, pixels)
    total, count = np.zeros(_coarse_shape(esv.shape, s)), np.zeros(_coarse_shape(esv.shape, s))
    _density_sums(esv, pixels, s, total, count)
    return np.divide(total, count * float(pixel_area_ha), out=np.full(total.shape, np.nan), where=count > 0)

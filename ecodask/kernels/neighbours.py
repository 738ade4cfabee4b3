"""Queen-contiguity (8-neighbour) sums on one padded block of an analysis grid (numba).

Every kernel takes a block padded by one cell on each side, as
``dask.array.map_overlap(depth=1, boundary=np.nan)`` delivers it, and returns the interior
(shape ``(rows - 2, cols - 2)``, plus a trailing axis where stated). Only finite cells are
observations: a NaN (or infinite) cell is no data, is nobody's neighbour and gets NaN (or 0 in
per-cell sums meant to be added up). Pure functions: no dask, no I/O.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Index of each per-cell term in the last axis of :func:`moran_terms`.
MORAN_CROSS, MORAN_S1, MORAN_S2 = 0, 1, 2


@njit(nogil=True, cache=True, boundscheck=False)
def _count(p, out):  # pragma: no cover - numba
    rows, cols = out.shape
    for i in range(rows):
        for j in range(cols):
            if not np.isfinite(p[i + 1, j + 1]):
                out[i, j] = np.nan
                continue
            k = 0
            for di in range(3):
                for dj in range(3):
                    if (di != 1 or dj != 1) and np.isfinite(p[i + di, j + dj]):
                        k += 1
            out[i, j] = k


@njit(nogil=True, cache=True, boundscheck=False)
def _moran(z, k, out):  # pragma: no cover - numba
    rows, cols = out.shape[0], out.shape[1]
    for i in range(rows):
        for j in range(cols):
            zi = z[i + 1, j + 1]
            ki = k[i + 1, j + 1]
            if not np.isfinite(zi) or ki == 0:  # no data, or an island: no weights at all
                out[i, j, 0] = 0.0
                out[i, j, 1] = 0.0
                out[i, j, 2] = 0.0
                continue
            wi = 1.0 / ki
            lag = 0.0
            s1 = 0.0
            col = 0.0
            for di in range(3):
                for dj in range(3):
                    if di == 1 and dj == 1:
                        continue
                    zj = z[i + di, j + dj]
                    if np.isfinite(zj):
                        wj = 1.0 / k[i + di, j + dj]
                        lag += zj
                        s1 += (wi + wj) * (wi + wj)
                        col += wj
            out[i, j, 0] = zi * lag * wi
            out[i, j, 1] = 0.5 * s1
            out[i, j, 2] = (1.0 + col) * (1.0 + col)


@njit(nogil=True, cache=True, boundscheck=False)
def _gi_star(p, n, mean, sd, out):  # pragma: no cover - numba
    rows, cols = out.shape
    for i in range(rows):
        for j in range(cols):
            if not np.isfinite(p[i + 1, j + 1]):
                out[i, j] = np.nan
                continue
            acc = 0.0
            c = 0
            for di in range(3):
                for dj in range(3):
                    v = p[i + di, j + dj]
                    if np.isfinite(v):
                        acc += v
                        c += 1
            if c >= n:  # the star neighbourhood is every observation: no variance
                out[i, j] = np.nan
                continue
            out[i, j] = (acc - c * mean) / (sd * np.sqrt(c * (n - c) / (n - 1.0)))


def _interior(padded: np.ndarray) -> tuple[int, int]:
    if padded.ndim != 2 or padded.shape[0] < 3 or padded.shape[1] < 3:
        raise ValueError(f"expected a 2-D block padded by one cell, got shape {padded.shape}")
    return padded.shape[0] - 2, padded.shape[1] - 2


def queen_count(padded: np.ndarray) -> np.ndarray:
    """Number of finite queen neighbours (0..8) of each finite interior cell, float64.

    NaN where the cell itself is no data (float so that a further ``map_overlap`` can pad it with
    NaN).
    """
    out = np.empty(_interior(padded), dtype=np.float64)
    _count(np.asarray(padded, dtype=np.float64), out)
    return out


def moran_terms(z_padded: np.ndarray, k_padded: np.ndarray) -> np.ndarray:
    """Per-cell terms of global Moran's I with row-standardised queen weights ``w_ij = 1 / k_i``.

    ``z_padded``: deviations from the global mean (input units); ``k_padded``: neighbour counts
    from :func:`queen_count` on the same grid. Returns float64 ``(rows - 2, cols - 2, 3)``:

    * ``[..., MORAN_CROSS]`` ``z_i * sum_j w_ij z_j`` (input units squared),
    * ``[..., MORAN_S1]`` ``1/2 sum_j (w_ij + w_ji)^2`` (this cell's share of S1),
    * ``[..., MORAN_S2]`` ``(sum_j w_ij + sum_j w_ji)^2`` (this cell's share of S2).

    Zero for no-data cells and for islands (an island's row and column of W are empty), so the
    grid totals are plain sums and S0 is the number of non-island cells.
    """
    rows, cols = _interior(z_padded)
    if k_padded.shape != z_padded.shape:
        raise ValueError(f"z and k blocks differ in shape: {z_padded.shape} vs {k_padded.shape}")
    out = np.empty((rows, cols, 3), dtype=np.float64)
    _moran(np.asarray(z_padded, dtype=np.float64), np.asarray(k_padded, dtype=np.float64), out)
    return out


def gi_star_z(padded: np.ndarray, n: int, mean: float, sd: float) -> np.ndarray:
    """Getis-Ord Gi* z-score of each finite cell, binary queen weights including the cell itself.

    ``z_i = (L_i - c_i * mean) / (sd * sqrt(c_i (n - c_i) / (n - 1)))`` with ``L_i`` the sum over
    the cell and its finite neighbours, ``c_i`` their number, ``n`` the number of observations on
    the whole grid, ``mean`` and ``sd`` (population, ``ddof=0``) their mean and standard deviation.
    Dimensionless; NaN for no-data cells and where ``c_i >= n``.
    """
    out = np.empty(_interior(padded), dtype=np.float64)
    _gi_star(np.asarray(padded, dtype=np.float64), int(n), float(mean), float(sd), out)
    return out

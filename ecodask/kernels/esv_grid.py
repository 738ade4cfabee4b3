"""ESV per pixel by class lookup, fused with its reduction onto the analysis grid (numba).

One pass over a chunk writes the 30 m float32 ESV layers and, in the same loop, sums them into
analysis cells of ``factor`` x ``factor`` pixels (the chunk holds whole cells), so the float grid
is never re-read for aggregation. With a spatial adjustment (a multiplier per service group on
the analysis grid) it also sums the multiplier per (zone, class), which is what per-county ESV
tables need to stay exact.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ecodask.kernels.checks import zone_and_classes


@njit(nogil=True, cache=True, boundscheck=False)
def _esv_plain(zone, classes, grid_lut, sum_lut, valid_lut, factor, grid, coarse, npix):  # pragma: no cover
    n_layers, rows, cols = classes.shape
    n_out = grid_lut.shape[1]
    ncx = coarse.shape[3]
    nan = np.float32(np.nan)
    for t in range(n_layers):
        valid = valid_lut[t]
        for o in range(n_out):
            g = grid_lut[t, o]
            s = sum_lut[t, o]
            for i in range(rows):
                ci = i // factor
                zrow = zone[i]
                crow = classes[t, i]
                grow = grid[t, o, i]
                for cb in range(ncx):
                    j0 = cb * factor
                    j1 = min(j0 + factor, cols)
                    acc = 0.0
                    n = 0
                    for j in range(j0, j1):
                        c = crow[j]
                        inside = zrow[j] != 0
                        grow[j] = g[c] if inside else nan
                        acc += s[c] if inside else 0.0
                        n += valid[c] if inside else 0
                    coarse[t, o, ci, cb] += acc
                    if o == 0:
                        npix[t, ci, cb] += n


@njit(nogil=True, cache=True, boundscheck=False)
def _esv_adjusted(zone, classes, values, multiplier, lut, factor, groups_out,
                  grid, coarse, npix, zone_sums):  # pragma: no cover - numba
    n_layers, rows, cols = classes.shape
    n_groups = values.shape[1]
    n_zones = zone_sums.shape[1]
    ncx = coarse.shape[3]
    nan = np.float32(np.nan)
    n_out = grid.shape[1]
    m = np.empty(n_groups)
    acc = np.empty(n_out)
    bad = 0
    for t in range(n_layers):
        for i in range(rows):
            ci = i // factor
            for cb in range(ncx):
                for g in range(n_groups):
                    m[g] = multiplier[g, ci, cb]
                acc[:] = 0.0
                n = 0
                for j in range(cb * factor, min(cb * factor + factor, cols)):
                    c = classes[t, i, j]
                    z = np.intp(zone[i, j])
                    if z == 0 or np.isnan(values[t, 0, c]):
                        for o in range(n_out):
                            grid[t, o, i, j] = nan
                        continue
                    if z > n_zones:
                        bad += 1
                        continue
                    n += 1
                    k = lut[c]
                    total = 0.0
                    for g in range(n_groups):
                        v = values[t, g, c] * m[g]
                        total += v
                        zone_sums[t, z - 1, k, g] += m[g]
                        if groups_out:
                            grid[t, 1 + g, i, j] = v
                            acc[1 + g] += v
                    grid[t, 0, i, j] = total
                    acc[0] += total
                for o in range(n_out):
                    coarse[t, o, ci, cb] += acc[o]
                npix[t, ci, cb] += n
    return bad


def _check(zone: np.ndarray, classes: np.ndarray, factor: int) -> np.ndarray:
    classes = zone_and_classes(zone, classes)
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    return classes


def _cells(n: int, factor: int) -> int:
    return -(-n // factor)


def esv_grid(
    zone: np.ndarray,
    classes: np.ndarray,
    values: np.ndarray,
    factor: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ESV layers per pixel and their sums per analysis cell, without spatial adjustment.

    ``values``: float64 (layers, n_out, 256), CNY/yr of one pixel of each class code for each
    output layer (e.g. total, then service groups); NaN marks codes without a value (no data).
    Pixels outside zones (``zone == 0``) or with a NaN value are NaN in the grid and not summed.

    Returns ``grid`` float32 (layers, n_out, rows, cols) in CNY/yr per pixel, ``coarse`` float64
    (layers, n_out, ceil(rows/factor), ceil(cols/factor)) in CNY/yr per cell, and ``npix`` int32
    (layers, cells_y, cells_x): valued pixels per cell.
    """
    classes = _check(zone, classes, factor)
    n_layers, rows, cols = classes.shape
    values = np.ascontiguousarray(values, dtype=np.float64)
    if values.shape[0] != n_layers or values.shape[2] != 256:
        raise ValueError(f"values must be ({n_layers}, n_out, 256), got {values.shape}")
    n_out = values.shape[1]
    cy, cx = _cells(rows, factor), _cells(cols, factor)
    grid = np.empty((n_layers, n_out, rows, cols), np.float32)
    coarse = np.zeros((n_layers, n_out, cy, cx), np.float64)
    npix = np.zeros((n_layers, cy, cx), np.int32)
    finite = np.isfinite(values)
    _esv_plain(zone, classes, values.astype(np.float32), np.where(finite, values, 0.0),
               finite[:, 0, :].astype(np.int32), int(factor), grid, coarse, npix)
    return grid, coarse, npix


def esv_grid_adjusted(
    zone: np.ndarray,
    classes: np.ndarray,
    values: np.ndarray,
    multiplier: np.ndarray,
    lut: np.ndarray,
    n_zones: int,
    factor: int,
    groups_out: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ESV per pixel with a multiplier per service group and analysis cell (spatial adjustment).

    ``values``: float64 (layers, groups, 256), CNY/yr of one pixel of each code per service group
    (NaN: no value). ``multiplier``: (groups, cells_y, cells_x), dimensionless, 1 = unadjusted.
    Pixel value of group g: ``values[t, g, code] * multiplier[g, cell]``; total: their sum.
    ``lut``: uint8[256] code -> class index (as for the transition kernel) for ``zone_sums``.

    Returns ``grid`` float32 (layers, 1 [+ groups], rows, cols): total, then the groups when
    ``groups_out``; ``coarse`` float64 sums per cell of the same layers; ``npix`` int32 valued
    pixels per cell; ``zone_sums`` float64 (layers, n_zones, K, groups): the sum of the multiplier
    over the pixels of each zone and class index (the pixel count when the multiplier is 1).
    """
    classes = _check(zone, classes, factor)
    n_layers, rows, cols = classes.shape
    values = np.ascontiguousarray(values, dtype=np.float64)
    n_groups = values.shape[1]
    cy, cx = _cells(rows, factor), _cells(cols, factor)
    multiplier = np.ascontiguousarray(multiplier, dtype=np.float64)
    if multiplier.shape != (n_groups, cy, cx):
        raise ValueError(f"multiplier must be ({n_groups}, {cy}, {cx}), got {multiplier.shape}")
    lut = np.asarray(lut, dtype=np.uint8)
    k = int(lut.max()) + 1
    n_out = 1 + (n_groups if groups_out else 0)
    grid = np.empty((n_layers, n_out, rows, cols), np.float32)
    coarse = np.zeros((n_layers, n_out, cy, cx), np.float64)
    npix = np.zeros((n_layers, cy, cx), np.int32)
    zone_sums = np.zeros((n_layers, int(n_zones), k, n_groups), np.float64)
    bad = _esv_adjusted(zone, classes, values, multiplier, lut, int(factor), bool(groups_out),
                        grid, coarse, npix, zone_sums)
    if bad:
        raise ValueError(f"{bad} zone values larger than n_zones={n_zones}")
    return grid, coarse, npix, zone_sums

"""Transfer histograms and the total ESV grid in one loop over a chunk (numba).

The fused form of :mod:`ecodask.kernels.transitions` and :func:`ecodask.kernels.esv_grid.esv_grid`
for the common case (total ESV only, no spatial adjustment). A run of equal pixels along a row
(same zone, same code in every year, inside one analysis cell) is found once; its length is added
to the histograms and its value once to the cell's sum. The float32 grid is filled row by row, in
the same pass, from each year's value table (a loop of its own, free of the runs' branches). One
read of the chunk serves both results (about 25 % less time than the two kernels in turn on the
Hubei-30m data; BENCHMARKS.md).
"""

from __future__ import annotations

import numpy as np

from ecodask.kernels.checks import zone_and_classes
from ecodask.kernels.transitions import _count_runs, unknown_codes


def transitions_esv(
    zone: np.ndarray,
    classes: np.ndarray,
    lut: np.ndarray,
    pairs: np.ndarray,
    n_zones: int,
    values: np.ndarray,
    factor: int,
    composition: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Transfer histograms, unknown codes, total ESV grid, its analysis-cell sums and pixel counts.

    Arguments as for :func:`ecodask.kernels.transitions.transition_counts`, plus ``values``: float64
    (layers, 256), CNY/yr of one pixel of each code (NaN: no value), and the analysis ``factor``.

    Returns ``counts`` int64 (P, n_zones, K, K), ``unknown`` int64 (layers, 256), ``grid`` float32
    (layers, rows, cols) CNY/yr per pixel (NaN outside zones and where the value is NaN), ``coarse``
    float64 (layers, cells_y, cells_x) CNY/yr per cell and ``npix`` int32 valued pixels per cell.

    ``composition``: optional int32 (layers, cells_y, cells_x, K) to which the pixels of each class
    index per analysis cell (inside the zones) are added, run by run: the cells' class composition
    at almost no cost (a standalone pass, :func:`ecodask.kernels.cell_classes.cell_class_counts`,
    costs a third of this kernel on real texture; BENCHMARKS.md).
    """
    classes = zone_and_classes(zone, classes)
    n_layers, rows, cols = classes.shape
    lut = np.asarray(lut, dtype=np.uint8)
    pairs = np.asarray(pairs, dtype=np.intp).reshape(-1, 2)
    if pairs.size and (pairs.min() < 0 or pairs.max() >= n_layers):
        raise ValueError(f"pairs {pairs.tolist()} index layers outside 0..{n_layers - 1}")
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (n_layers, 256):
        raise ValueError(f"values must be ({n_layers}, 256), got {values.shape}")
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    k = int(lut.max()) + 1
    finite = np.isfinite(values)
    cy, cx = -(-rows // factor), -(-cols // factor)
    grid = np.empty((n_layers, rows, cols), np.float32)
    coarse = np.zeros((n_layers, cy, cx), np.float64)
    npix = np.zeros((n_layers, cy, cx), np.int32)
    if composition is None:
        composition = np.zeros((0, 1, 1, 1), np.int32)
    elif composition.shape != (n_layers, cy, cx, k) or composition.dtype != np.int32:
        raise ValueError(f"composition must be int32 {(n_layers, cy, cx, k)}, not {composition.dtype} "
                         f"{composition.shape}")
    counts, bad = _count_runs(zone, classes, lut, pairs, int(n_zones), k, True,
                              np.where(finite, values, np.nan).astype(np.float32),
                              np.where(finite, values, 0.0), finite.astype(np.int32), int(factor),
                              grid, coarse, npix, composition)
    return counts, unknown_codes(counts, bad, zone, classes, lut, pairs, n_zones), grid, coarse, npix

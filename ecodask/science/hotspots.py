"""ESV hot spots on the analysis grid: global Moran's I and Getis-Ord Gi* with hot/cold classes.

Methods: "Global Moran's I (queen contiguity, with z and p under the normality assumption) and
Getis-Ord Gi* z-scores with hot/cold spot classes at 90/95/99 %".

The input is a 2-D analysis grid ``y`` (numpy or dask; ESV density, CNY/ha/yr) with NaN for no
data. Only finite cells are observations; a cell's neighbours are its finite queen (8-connected)
neighbours, i.e. PySAL's ``lat2W(ny, nx, rook=False)`` restricted to the finite cells. Every
statistic is a sum over cells of per-cell terms computed chunk-wise with
``dask.array.map_overlap(depth=1)`` (kernels in :mod:`ecodask.kernels.neighbours`), so results do
not depend on the chunking and no weights matrix is ever built.

Conventions
-----------
* Islands (finite cells without a finite neighbour) are kept, as esda does: they count in ``n``,
  the mean and the variance, but have empty rows and columns of W (S0 is the number of non-island
  cells). Their number is reported. Gi* of an island is its own standardised value.
* ``p_norm`` of Moran's I is two-sided (esda's default ``two_tailed=True``).
* Degenerate input raises :class:`ecodask.errors.InputError` before anything is returned: no
  finite cell, fewer than 3 finite cells, constant values (variance 0), or (Moran) only islands.
* Hot/cold classes: int8 +3/+2/+1 hot spot at 99/95/90 % confidence, -3/-2/-1 cold spot, 0 not
  significant, :data:`CLASS_NODATA` (-128) where the z-score is NaN (no data).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

#: Class value of no-data cells in :func:`hotspot_classes`.
CLASS_NODATA = np.int8(-128)

#: Confidence level (%) -> two-sided standard-normal critical value, ``norm.ppf(1 - alpha / 2)``.
CRITICAL_Z = {level: float(stats.norm.ppf(1.0 - (1.0 - level / 100.0) / 2.0)) for level in (99, 95, 90)}

#: Summary columns per class value -3..3.
CLASS_COLUMNS = ["cold_99", "cold_95", "cold_90", "not_significant", "hot_90", "hot_95", "hot_99"]

SUMMARY_COLUMNS = ["zone_id", "zone_name", "cells", "hot_99", "hot_95", "hot_90", "not_significant",
                   "cold_90", "cold_95", "cold_99", "mean_gi_z"]


def classify_z(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    out = np.zeros(z.shape, dtype=np.int8)
    mag = np.abs(z)
    sign = np.where(z > 0, 1, -1).astype(np.int8)
    for level, conf in ((1, 90), (2, 95), (3, 99)):
        hit = mag >= CRITICAL_Z[conf]
        out[hit] = level * sign[hit]
    out[~np.isfinite(z)] = CLASS_NODATA
    return out


def zone_class_sums(cls: np.ndarray, zone: np.ndarray, z: np.ndarray | None = None, *,
                     n_zones: int) -> np.ndarray:
    """(n_zones + 2, 8) per zone index (last row: out-of-range indices): cells per class -3..3, sum z."""
    zi = np.asarray(zone).astype(np.int64)
    zi[(zi < 0) | (zi > n_zones)] = n_zones + 1
    valid = cls != CLASS_NODATA
    zv = zi[valid]
    rows = n_zones + 2
    counts = np.bincount(zv * 7 + (cls[valid].astype(np.int64) + 3), minlength=rows * 7).reshape(rows, 7)
    out = np.zeros((rows, 8), dtype=np.float64)
    out[:, :7] = counts
    if z is not None:
        out[:, 7] = np.bincount(zv, weights=z[valid], minlength=rows)
    return out



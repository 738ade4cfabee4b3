"""Analysis cells and the zones: the zone of each cell, per-zone totals of a cell quantity, and the
cells each driver has a value on."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np


def cell_zones(pix_zone: da.Array, factor: int) -> da.Array:
    """The zone of each analysis cell: the zone of its centre pixel (0 outside every zone).
    ``pix_zone``: (rows, cols) zone indices of the pixels; ``factor``: pixels per cell side."""
    c = factor // 2
    return pix_zone[c::factor, c::factor]


def zone_totals(cell_zone: da.Array, values: dict[str, da.Array], n_zones: int,
                weight: float = 1.0) -> dict[str, np.ndarray]:
    """Per zone index (0 .. n_zones, 0 outside every zone) the sum over its cells of each array of
    ``values`` (on the analysis grid, NaN left out) times ``weight``, in one computation."""
    z = cell_zone.ravel().astype("int64")
    sums = {name: da.bincount(z, weights=da.nan_to_num(v.ravel() * weight), minlength=n_zones + 1)
            for name, v in values.items()}
    return {name: np.asarray(total) for name, total in dask.compute(sums)[0].items()}


def driver_cells(drivers: dict[str, da.Array], density: da.Array) -> dict[str, tuple[int, int]]:
    """Per driver (on the analysis grid), the number of cells with a finite value where some year's
    ESV ``density`` (year, y, x) is finite, and the number of infinite cells, in one computation."""
    valued = da.isfinite(density).any(axis=0)
    sums = {n: ((da.isfinite(d) & valued).sum(), da.isinf(d).sum()) for n, d in drivers.items()}
    counts = dask.compute(sums)[0]
    return {n: (int(f), int(i)) for n, (f, i) in counts.items()}

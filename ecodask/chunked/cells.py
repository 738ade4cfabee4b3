"""Analysis cells and the zones: the zone of each cell, and per-zone totals of a cell quantity."""

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

"""The spatial adjustment of ESV coefficients (methods.md section 2): each adjusted service group's
driver on the analysis grid over its pixel-weighted mean inside the zones, the weights counted from
the zone raster in one Dask pass."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr

from ecodask.errors import InputError, problem


def adjustment_multiplier(
    adjustment: dict[str, str],
    drivers: dict[str, tuple[Path, xr.DataArray]],
    zone: da.Array,
    factor: int,
    groups: list[str],
) -> np.ndarray:
    """Spatial adjustment (groups, cells_y, cells_x), dimensionless: for each group of
    ``adjustment`` (group -> driver name) the driver on the analysis grid divided by its mean over
    the zones' pixels (a pixel-weighted mean of the cells), 1 for other groups and cells outside
    the zones. ``drivers``: name -> (source file, analysis-grid DataArray). Reads ``zone`` once to
    weight the cells; a cell with zone pixels and no driver value is an :class:`InputError`."""
    inside = (zone > 0).astype(np.int32)
    weight = da.coarsen(np.sum, inside, {0: factor, 1: factor}, trim_excess=True).compute()
    problems = []
    out = None
    for group, name in adjustment.items():
        path, arr = drivers[name]
        v = arr.values.astype(np.float64)
        w = weight[: v.shape[0], : v.shape[1]]
        if out is None:
            out = np.ones((len(groups), *v.shape))
        missing = (w > 0) & ~np.isfinite(v)
        if missing.any():
            problems.append(problem(path, f"esv.adjustment.{group}", name,
                                    f"no value in {int(missing.sum())} analysis cells inside the zones"))
            continue
        mean = float(np.sum(np.where(w > 0, v, 0.0) * w) / w.sum())
        if not mean > 0:
            problems.append(problem(path, f"esv.adjustment.{group}", name,
                                    f"mean over the zones is {mean}; a multiplier needs a positive mean"))
            continue
        out[groups.index(group)] = np.where(w > 0, v / mean, 1.0)
    if problems:
        raise InputError(problems)
    return out

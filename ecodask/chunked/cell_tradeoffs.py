"""Trade-offs and synergies between services across the analysis cells: one Dask task per year, each
reading its year of ``analysis/class_pixels`` and ranking the services' cell densities on a worker
(:mod:`ecodask.science.tradeoffs`), so nothing per cell passes through the process that runs the
stage."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dask
import numpy as np
import pandas as pd

from ecodask.science.tradeoffs import CELL_COLUMNS, cell_densities, cell_tradeoffs


def _year(path: str, t: int, year: int, vc: np.ndarray, g_of: np.ndarray, services: Sequence[str],
          multiplier: np.ndarray | None) -> pd.DataFrame:
    import zarr

    counts = zarr.open_array(path, mode="r")[t]  # (classes, cells_y, cells_x)
    counts = counts.reshape(counts.shape[0], -1)
    mult = None if multiplier is None else np.asarray(multiplier).reshape(multiplier.shape[0], -1)
    return cell_tradeoffs(year, cell_densities(counts, vc, g_of, mult), services)


def tradeoffs_across_cells(class_pixels: str | Path, years: Sequence[int], vc: np.ndarray, g_of: np.ndarray,
                           services: Sequence[str], multiplier: np.ndarray | None = None) -> pd.DataFrame:
    """Spearman's rho and p of every pair of services across the analysis cells with land cover, per
    year (:data:`~ecodask.science.tradeoffs.CELL_COLUMNS`), one task a year on the current scheduler.

    ``class_pixels``: the Zarr array (year, class, cells_y, cells_x) of pixels per class and cell;
    ``vc``: (years, services, classes) CNY/ha/yr; ``g_of``: each service's group index;
    ``multiplier``: (groups, cells_y, cells_x) the spatial adjustment, or None.
    """
    if not len(years):
        return pd.DataFrame(columns=CELL_COLUMNS)
    mult = None if multiplier is None else dask.delayed(np.asarray(multiplier))  # sent once, not per task
    fn = dask.delayed(_year, pure=True)
    parts = dask.compute(*[fn(str(class_pixels), t, int(y), np.asarray(vc[t], np.float64), np.asarray(g_of),
                              list(services), mult) for t, y in enumerate(years)])
    return pd.concat(parts, ignore_index=True)

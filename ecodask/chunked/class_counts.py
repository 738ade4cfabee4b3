"""Class areas straight from a store's arrays: one Dask pass counting pixels per zone, year and
code (the reference count the tests and benchmarks check the land pass against)."""

from __future__ import annotations

from collections.abc import Mapping

import dask
import dask.array as da
import numpy as np
import pandas as pd

from ecodask.chunked.blockwise import map_sum_blocks
from ecodask.kernels.histogram import zone_class_counts
from ecodask.science.catalogs import ClassScheme
from ecodask.science.landuse import check_codes, class_area_table


def zone_class_pixel_counts(zone: da.Array, landcover: da.Array, n_zones: int) -> np.ndarray:
    """Pixel counts per (year, zone 0..n_zones, class code 0..255), int64, in one pass."""
    (counts,) = dask.compute(map_sum_blocks(zone_class_counts, [zone, landcover], n_zones=n_zones))
    return counts


def class_areas(
    zone: da.Array,
    landcover: da.Array,
    years: list[int],
    zones: pd.DataFrame,
    scheme: ClassScheme,
    pixel_area_ha: float,
    sources: Mapping[int, object] | None = None,
) -> pd.DataFrame:
    """Per-zone class areas per year from the store's ``zone`` and ``landcover`` arrays.

    One pass over the pixels; unknown codes inside the zones raise :class:`InputError` before
    any table is returned.
    """
    counts = zone_class_pixel_counts(zone, landcover, len(zones))
    check_codes(counts, years, scheme, sources or {})
    return class_area_table(counts, years, zones, scheme, pixel_area_ha)

"""Land use: class areas per zone and year (methods.md section 1; transitions follow in section 4).

Areas are pixel counts on the equal-area grid times the pixel area (0.09 ha at 30 m).
"""

from __future__ import annotations

from collections.abc import Mapping

import dask
import dask.array as da
import numpy as np
import pandas as pd

from ecodask.blockwise import map_sum_blocks
from ecodask.errors import InputError, problem
from ecodask.io.catalogs import ClassScheme
from ecodask.kernels.histogram import zone_class_counts

#: Zone id used for whole-region rows.
REGION_ID = "ALL"


def zone_class_pixel_counts(zone: da.Array, landcover: da.Array, n_zones: int) -> np.ndarray:
    """Pixel counts per (year, zone 0..n_zones, class code 0..255), int64, in one pass."""
    (counts,) = dask.compute(map_sum_blocks(zone_class_counts, [zone, landcover], n_zones=n_zones))
    return counts


def check_codes(
    counts: np.ndarray, years: list[int], scheme: ClassScheme, sources: Mapping[int, object]
) -> None:
    """Raise :class:`InputError` for any code inside the zones that the scheme does not know.

    ``counts`` as from :func:`zone_class_pixel_counts`; the error names the year's source file,
    the code and its pixel count.
    """
    known = set(scheme.classes) | {scheme.nodata}
    problems = []
    inside = counts[:, 1:, :].sum(axis=1)  # pixels inside any zone
    for t, year in enumerate(years):
        for code in np.flatnonzero(inside[t]):
            if int(code) not in known:
                n = int(inside[t, code])
                problems.append(problem(sources.get(year, f"landcover {year}"), "class code", int(code),
                                        f"not in class scheme {scheme.name!r} ({n} pixels)"))
    if problems:
        raise InputError(problems)


def class_area_table(
    counts: np.ndarray,
    years: list[int],
    zones: pd.DataFrame,
    scheme: ClassScheme,
    pixel_area_ha: float,
) -> pd.DataFrame:
    """Class areas per zone and year, and for the whole region (zone_id ``ALL``).

    Columns: zone_id, zone_name, year, class_code, class_name, pixels, area_ha (pixels x pixel
    area, ha), share (of the zone's classified area, 0..1). Every class of the scheme appears for
    every zone and year (zero where absent); no-data pixels are not counted.
    """
    codes = sorted(scheme.classes)
    names = [scheme.classes[c].name for c in codes]
    z = zones.sort_values("zone")
    zone_ids = [*z["zone_id"].astype(str), REGION_ID]
    zone_names = [*z["zone_name"], "whole region"]
    per_zone = counts[:, z["zone"].to_numpy(), :][:, :, codes]  # (year, zone, class)
    region = per_zone.sum(axis=1, keepdims=True)
    allz = np.concatenate([per_zone, region], axis=1)
    ny, nz, nc = allz.shape
    pixels = allz.reshape(-1)
    tot = allz.sum(axis=2, keepdims=True)
    share = np.divide(allz, tot, out=np.zeros(allz.shape), where=tot > 0).reshape(-1)
    return pd.DataFrame(
        {
            "zone_id": np.repeat(np.tile(zone_ids, ny), nc),
            "zone_name": np.repeat(np.tile(zone_names, ny), nc),
            "year": np.repeat(np.asarray(years, dtype=np.int64), nz * nc),
            "class_code": np.tile(codes, ny * nz).astype(np.int64),
            "class_name": np.tile(names, ny * nz),
            "pixels": pixels.astype(np.int64),
            "area_ha": pixels * pixel_area_ha,
            "share": share,
        }
    )


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

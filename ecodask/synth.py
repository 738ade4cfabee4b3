"""Deterministic synthetic regions for the ecosystem-service-value workflow.

:func:`make_region` writes a small but realistic-looking study region: CLCD land-cover
rasters for several years, county polygons, raster drivers in assorted CRSs and
resolutions, a county statistics table and the run configuration YAML that ties them
together. Everything is a pure function of the seed: the same arguments give
byte-identical files.

Units used throughout: projected coordinates and distances in metres (CHINA_ALBERS unless
stated), elevation in metres above sea level, precipitation in mm/yr, population density
in persons/km², areas in hectares in the statistics table, money in CNY (yuan), crop
prices in CNY/kg and yields in kg/ha.

The building blocks (:func:`region_grid`, :func:`smooth_noise`, :func:`make_terrain`,
:func:`make_towns`, :func:`make_landcover`, :func:`make_counties`,
:func:`make_county_stats`, ...) take a :class:`numpy.random.Generator` and arrays and
return arrays; only the ``write_*`` helpers and :func:`make_region` touch the disk.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio
import shapely
import yaml
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.features import rasterize
from rasterio.transform import Affine, from_origin
from rasterio.warp import reproject, transform_bounds
from scipy import ndimage, sparse

from ecodask.io.rasters import smallest_uint
from ecodask.kernels.histogram import zone_class_counts
from ecodask.science.grid import CHINA_ALBERS, Grid

__all__ = [
    "CHINA_ALBERS",
    "NDVI_BY_CLASS",
    "Terrain",
    "Towns",
    "assign_roles",
    "class_counts_by_zone",
    "county_codes",
    "make_counties",
    "make_county_stats",
    "make_drivers",
    "make_landcover",
    "make_ndvi",
    "make_population",
    "make_precipitation",
    "make_region",
    "make_terrain",
    "make_towns",
    "region_config",
    "region_grid",
    "reproject_dem",
    "smooth_noise",
    "town_ratio",
    "write_counties",
    "write_geotiff",
]


#: CLCD class codes (0 is nodata).

#: Mean NDVI (unitless, -1..1) per CLCD class used for the synthetic NDVI driver.
NDVI_BY_CLASS: dict[int, float] = {
    1: 0.55,
    2: 0.80,
    3: 0.65,
    4: 0.50,
    5: 0.00,
    6: 0.02,
    7: 0.05,
    8: 0.10,
    9: 0.40,
}

RESOLUTION_M = 30.0
"""Land-cover pixel size in metres."""
SNAP_M = 960.0
"""Region corners are snapped to multiples of this many metres (32 pixels of 30 m)."""
POPULATION_RES_M = 1000.0
"""Pixel size of the population driver in metres."""
PRECIP_RES_DEG = 0.01
"""Pixel size of the precipitation driver in degrees."""
PRECIP_MARGIN_CELLS = 5
"""Margin of the precipitation grid around the region, in cells."""
UTM49N = "EPSG:32649"
WGS84 = "EPSG:4326"
COUNTY_CODE_BASE = 990100
_GPKG_DATE = "2000-01-01T00:00:00.000Z"
# Reference area of the default region (24 km x 18 km) in m², used to scale town counts.
_REFERENCE_AREA_M2 = 24_000.0 * 18_000.0


# --------------------------------------------------------------------------------------
# grid


def region_grid(
    center_lonlat: tuple[float, float],
    width_km: float,
    height_km: float,
    *,
    res: float = RESOLUTION_M,
    snap: float = SNAP_M,
) -> Grid:
    """Rectangle of about ``width_km`` x ``height_km`` kilometres centred on ``center_lonlat``.

    The centre (degrees lon/lat, WGS84) is projected to CHINA_ALBERS; the width and height
    are rounded to whole multiples of ``snap`` metres (at least one) and the lower-left
    corner is snapped to a multiple of ``snap`` metres, so pixel edges of a ``res`` metre
    grid fall on multiples of ``res``.
    """
    lon, lat = center_lonlat
    to_albers = Transformer.from_crs(WGS84, CHINA_ALBERS, always_xy=True)
    cx, cy = to_albers.transform(lon, lat)
    w = max(1, round(width_km * 1000.0 / snap)) * snap
    h = max(1, round(height_km * 1000.0 / snap)) * snap
    x0 = round((cx - w / 2.0) / snap) * snap
    y0 = round((cy - h / 2.0) / snap) * snap
    bounds = (float(x0), float(y0), float(x0 + w), float(y0 + h))
    return Grid(CRS.from_string(CHINA_ALBERS), float(res), round(snap / res), bounds)


# --------------------------------------------------------------------------------------
# random fields


def _bspline_upsampler(n_out: int, n_in: int, step: int) -> sparse.csr_matrix:
    """Sparse (n_out x n_in) cubic B-spline upsampling matrix by an integer ``step``."""
    u = (np.arange(n_out, dtype=np.float64) + 0.5) / step + 1.0
    base = np.floor(u)
    t = u - base
    weights = np.stack(
        [
            (1.0 - t) ** 3 / 6.0,
            (3.0 * t**3 - 6.0 * t**2 + 4.0) / 6.0,
            (-3.0 * t**3 + 3.0 * t**2 + 3.0 * t + 1.0) / 6.0,
            t**3 / 6.0,
        ],
        axis=1,
    )
    cols = base.astype(np.int64)[:, None] + np.arange(-1, 3)[None, :]
    rows = np.repeat(np.arange(n_out), 4)
    return sparse.csr_matrix(
        (weights.ravel().astype(np.float32), (rows, cols.ravel())), shape=(n_out, n_in)
    )


def _stats(a: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of ``a`` estimated on a regular subsample."""
    stride = max(1, int(math.sqrt(a.size / 250_000.0)))
    sub = a[::stride, ::stride]
    mean = float(sub.mean(dtype=np.float64))
    std = float(sub.std(dtype=np.float64))
    return mean, (std if std > 0 else 1.0)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Gaussian-filtered white noise, standardised to about mean 0 and std 1 (float32).

    ``sigma_px`` is the correlation length in pixels. Large sigmas are generated on a
    coarser grid and upsampled with a separable cubic B-spline (continuous first and
    second derivatives), which keeps this fast and memory-light for big rasters.
    """
    rows, cols = shape
    step = max(1, int(sigma_px // 3))
    if step == 1:
        field = rng.standard_normal(shape, dtype=np.float32)
        field = ndimage.gaussian_filter(field, sigma=sigma_px, mode="reflect")
    else:
        coarse = (rows // step + 4, cols // step + 4)
        field = rng.standard_normal(coarse, dtype=np.float32)
        field = ndimage.gaussian_filter(field, sigma=sigma_px / step, mode="reflect")
        field = _bspline_upsampler(rows, coarse[0], step) @ field
        field = np.ascontiguousarray((_bspline_upsampler(cols, coarse[1], step) @ field.T).T)
    mean, std = _stats(field)
    field -= np.float32(mean)
    field *= np.float32(1.0 / std)
    return field.astype(np.float32, copy=False)


def _zscore(a: np.ndarray) -> np.ndarray:
    mean, std = _stats(a)
    return ((a - np.float32(mean)) * np.float32(1.0 / std)).astype(np.float32, copy=False)


def _top_threshold(values: np.ndarray, k: int) -> float:
    """Threshold t such that about ``k`` of ``values`` are >= t (+inf for k <= 0)."""
    n = values.size
    if k <= 0 or n == 0:
        return math.inf
    if k >= n:
        return -math.inf
    return float(np.partition(values, n - k)[n - k])


# --------------------------------------------------------------------------------------
# terrain


@dataclass(frozen=True)
class Terrain:
    """Elevation and river geometry on the land-cover grid.

    ``elevation`` is float32 metres (about 20..900), ``slope`` float32 m/m,
    ``river_distance`` float32 metres from the river centre line and
    ``river_half_width`` metres.
    """

    elevation: np.ndarray
    slope: np.ndarray
    river_distance: np.ndarray
    river_half_width: float


def make_terrain(
    rng: np.random.Generator,
    shape: tuple[int, int],
    res: float = RESOLUTION_M,
    *,
    z_min: float = 20.0,
    z_max: float = 900.0,
) -> Terrain:
    """Smooth hilly elevation (metres) with a meandering river valley running west-east."""
    rows, cols = shape
    # Relief: several scales of smooth noise.
    relief = smooth_noise(rng, shape, 8000.0 / res)
    relief += np.float32(0.5) * smooth_noise(rng, shape, 2500.0 / res)
    relief += np.float32(0.2) * smooth_noise(rng, shape, 600.0 / res)
    lo, hi = float(relief.min()), float(relief.max())
    relief = (relief - np.float32(lo)) * np.float32(1.0 / max(hi - lo, 1e-6))

    # River centre line y(x) in metres from the top edge.
    height_m = rows * res
    wavelength = float(rng.uniform(6000.0, 14000.0))
    amplitude = min(float(rng.uniform(0.06, 0.14)) * height_m, wavelength / (2 * math.pi))
    phase = float(rng.uniform(0, 2 * math.pi))
    y_mid = float(rng.uniform(0.35, 0.65)) * height_m
    x = (np.arange(cols, dtype=np.float64) + 0.5) * res
    wiggle = ndimage.gaussian_filter1d(rng.standard_normal(cols), 2000.0 / res, mode="nearest")
    wiggle /= float(np.abs(wiggle).max()) or 1.0
    centre = y_mid + amplitude * np.sin(2 * math.pi * x / wavelength + phase)
    centre += 0.6 * amplitude * wiggle
    slope_line = np.gradient(centre, res) if cols > 1 else np.zeros(cols)
    perp = (1.0 / np.sqrt(1.0 + slope_line**2)).astype(np.float32)
    y = ((np.arange(rows, dtype=np.float32) + np.float32(0.5)) * np.float32(res))[:, None]
    dist = np.abs(y - centre.astype(np.float32)[None, :])
    dist *= perp[None, :]
    half_width = float(rng.uniform(40.0, 80.0))
    del x, wiggle

    # Valley: elevation pulled down towards the river.
    valley_w = float(rng.uniform(2500.0, 4500.0))
    valley = np.float32(1.0) - np.exp(-np.square(dist * np.float32(1.0 / valley_w)))
    relief *= np.float32(0.12) + np.float32(0.88) * valley
    relief += np.float32(0.05) * valley
    del valley
    lo, hi = float(relief.min()), float(relief.max())
    scale = (z_max - z_min) / max(hi - lo, 1e-6)
    elevation = (relief - np.float32(lo)) * np.float32(scale) + np.float32(z_min)
    del relief

    if rows > 1 and cols > 1:
        gy, gx = np.gradient(elevation, np.float32(res))
        slope = np.hypot(gx, gy).astype(np.float32)
        del gx, gy
    else:
        slope = np.zeros(shape, np.float32)
    return Terrain(elevation.astype(np.float32), slope, dist.astype(np.float32), half_width)


# --------------------------------------------------------------------------------------
# towns


@dataclass(frozen=True)
class Towns:
    """Town centres (fractional pixel row/col), base radii in pixels, growth per decade.

    The radius of town ``i`` after ``dt`` decades is ``radius_px[i] * (1 + growth * dt)``.
    """

    row: np.ndarray
    col: np.ndarray
    radius_px: np.ndarray
    growth: float

    def __len__(self) -> int:
        return int(self.row.size)


def make_towns(
    rng: np.random.Generator,
    elevation: np.ndarray,
    blocked: np.ndarray,
    res: float = RESOLUTION_M,
    *,
    impervious_share: float = 0.05,
) -> Towns:
    """Place 3-5 towns per 432 km² on low, unblocked ground (``blocked``: e.g. water).

    Radii are log-normal and scaled so the discs cover about ``impervious_share`` of the
    grid; towns keep apart from each other and from the edges.
    """
    rows, cols = elevation.shape
    area_px = rows * cols
    ratio = max(1.0, area_px * res * res / _REFERENCE_AREA_M2)
    n = max(1, int(round(int(rng.integers(3, 6)) * ratio)))
    sizes = np.sort(rng.lognormal(0.0, 0.5, n))[::-1]
    radius = np.sqrt(sizes / sizes.sum() * impervious_share * area_px / math.pi)
    low = float(np.quantile(elevation[:: max(1, rows // 200), :: max(1, cols // 200)], 0.4))
    growth = float(rng.uniform(0.08, 0.12))

    placed_r: list[float] = []
    placed_c: list[float] = []
    placed_rad: list[float] = []
    for rad in radius:
        best: tuple[float, float] | None = None
        for attempt in range(400):
            margin = min(0.8 * rad, 0.45 * min(rows, cols))
            r = float(rng.uniform(margin, rows - margin))
            c = float(rng.uniform(margin, cols - margin))
            ri, ci = min(int(r), rows - 1), min(int(c), cols - 1)
            if best is None:
                best = (r, c)
            if blocked[ri, ci]:
                continue
            strict = attempt < 300
            if strict and elevation[ri, ci] > low:
                continue
            if placed_r:
                d = np.hypot(np.asarray(placed_r) - r, np.asarray(placed_c) - c)
                factor = 1.2 if strict else 0.6
                if np.any(d < factor * (np.asarray(placed_rad) + rad)):
                    continue
            best = (r, c)
            break
        assert best is not None
        placed_r.append(best[0])
        placed_c.append(best[1])
        placed_rad.append(float(rad))
    return Towns(np.asarray(placed_r), np.asarray(placed_c), np.asarray(placed_rad), growth)


def town_ratio(
    towns: Towns, shape: tuple[int, int], noise: np.ndarray, max_growth: float
) -> np.ndarray:
    """Per pixel, min over towns of distance / irregular radius (float32, inf far away).

    A pixel is impervious after ``dt`` decades where the ratio is below
    ``1 + towns.growth * dt``; ``noise`` (standardised) makes the outlines irregular and
    ``max_growth`` (the largest such factor) bounds the window around each town.
    """
    rows, cols = shape
    out = np.full(shape, np.inf, dtype=np.float32)
    wobble = np.float32(0.3)
    for r, c, rad in zip(towns.row, towns.col, towns.radius_px, strict=True):
        reach = rad * 1.75 * max_growth + 2.0
        r0, r1 = max(0, int(r - reach)), min(rows, int(r + reach) + 1)
        c0, c1 = max(0, int(c - reach)), min(cols, int(c + reach) + 1)
        if r0 >= r1 or c0 >= c1:
            continue
        yy = (np.arange(r0, r1, dtype=np.float32) + np.float32(0.5 - r))[:, None]
        xx = (np.arange(c0, c1, dtype=np.float32) + np.float32(0.5 - c))[None, :]
        d = np.hypot(yy, xx)
        local = np.clip(noise[r0:r1, c0:c1], -2.5, 2.5)
        ratio = d / (np.float32(rad) * (np.float32(1.0) + wobble * local))
        np.minimum(out[r0:r1, c0:c1], ratio, out=out[r0:r1, c0:c1])
    return out


# --------------------------------------------------------------------------------------
# land cover


def make_landcover(
    rng: np.random.Generator,
    terrain: Terrain,
    years: Sequence[int],
    res: float = RESOLUTION_M,
) -> tuple[dict[int, np.ndarray], Towns]:
    """CLCD land-cover maps (uint8, codes 1..9) for each year, and the towns used.

    The first year is built from the terrain: river and lakes (water) with wetland
    fringes, towns (impervious), small barren patches, cropland on low flat ground,
    forest on high steep ground and shrub/grassland in between. Later years apply nested
    (monotone) changes proportional to the decades elapsed since the first year: town
    growth into cropland/grass/shrub/barren, afforestation of higher cropland and new
    ponds in low cropland.
    """
    years = sorted(int(y) for y in years)
    shape = terrain.elevation.shape
    n_px = shape[0] * shape[1]
    elev_z = _zscore(terrain.elevation)
    slope_z = _zscore(terrain.slope)

    share_water = rng.uniform(0.025, 0.035)
    share_wetland = rng.uniform(0.012, 0.02)
    share_imperv = rng.uniform(0.04, 0.055)
    share_barren = rng.uniform(0.008, 0.015)
    share_crop = rng.uniform(0.47, 0.52)
    share_forest = rng.uniform(0.24, 0.29)
    rate_pond = rng.uniform(0.002, 0.004)  # share of the region per decade
    rate_aff = rng.uniform(0.008, 0.014)

    lc = np.zeros(shape, np.uint8)
    # Water: river, lakes in low ground, wetland fringes.
    dist, hw = terrain.river_distance, np.float32(terrain.river_half_width)
    river = dist <= hw
    fringe_w = np.float32(60.0) * (np.float32(1.0) + np.float32(0.8) * smooth_noise(rng, shape, 5))
    river_fringe = ~river & (dist <= hw + fringe_w)
    del fringe_w
    lake_score = smooth_noise(rng, shape, 700.0 / res) - np.float32(1.2) * elev_z
    cand = ~(river | river_fringe)
    k_lake = max(int(share_water * n_px) - int(river.sum()), 0)
    thr = _top_threshold(lake_score[cand], k_lake)
    water = river | (cand & (lake_score >= thr))
    cand &= ~water
    k_wet = max(int(share_wetland * n_px) - int(river_fringe.sum()), 0)
    thr = _top_threshold(lake_score[cand], k_wet)
    wetland = river_fringe | (cand & (lake_score >= thr))
    lc[water] = 5
    lc[wetland] = 9
    del lake_score, cand, river, river_fringe

    # Towns.
    towns = make_towns(rng, terrain.elevation, water | wetland, res, impervious_share=share_imperv)
    decades = [(y - years[0]) / 10.0 for y in years]
    max_growth = 1.0 + towns.growth * max(decades)
    ratio = town_ratio(towns, shape, smooth_noise(rng, shape, 250.0 / res), max_growth)
    lc[(ratio < 1.0) & (lc == 0)] = 8
    del water, wetland

    # Barren patches.
    land = lc == 0
    score = smooth_noise(rng, shape, 4) + np.float32(0.5) * elev_z
    thr = _top_threshold(score[land], int(share_barren * n_px))
    lc[land & (score >= thr)] = 7

    # Cropland (low, flat), forest (high, steep), shrub/grass in between.
    land = lc == 0
    n_land = int(land.sum())
    terrain_score = elev_z + np.float32(0.6) * slope_z
    terrain_score += np.float32(0.3) * smooth_noise(rng, shape, 400.0 / res)
    k_crop = min(int(share_crop * n_px), n_land)
    k_forest = min(int(share_forest * n_px), n_land - k_crop)
    thr = _top_threshold(-terrain_score[land], k_crop)
    lc[land & (-terrain_score >= thr)] = 1
    land = lc == 0
    thr = _top_threshold(terrain_score[land], k_forest)
    lc[land & (terrain_score >= thr)] = 2
    land = lc == 0
    score = smooth_noise(rng, shape, 500.0 / res) + np.float32(0.5) * terrain_score
    thr = _top_threshold(score[land], int(land.sum()) // 2)
    lc[land & (score >= thr)] = 3
    lc[lc == 0] = 4
    del terrain_score, land

    # Later years: nested changes of base cropland.
    base = lc
    crop = base == 1
    pond_score = smooth_noise(rng, shape, 3) - np.float32(0.7) * elev_z
    aff_score = smooth_noise(rng, shape, 800.0 / res) + elev_z + np.float32(0.5) * slope_z
    crop_pond = pond_score[crop]

    def pond_mask(dt: float) -> np.ndarray:
        return crop & (pond_score >= _top_threshold(crop_pond, int(rate_pond * dt * n_px)))

    pond_max = pond_mask(max(decades))
    aff_cand = crop & ~pond_max
    aff_vals = aff_score[aff_cand]

    def aff_mask(dt: float) -> np.ndarray:
        return aff_cand & (aff_score >= _top_threshold(aff_vals, int(rate_aff * dt * n_px)))

    aff_max = aff_mask(max(decades))
    convertible = np.isin(base, (1, 3, 4, 7)) & ~pond_max & ~aff_max
    del pond_max, aff_max

    maps: dict[int, np.ndarray] = {}
    for year, dt in zip(years, decades, strict=True):
        if dt == 0:
            maps[year] = base.copy()
            continue
        out = base.copy()
        out[aff_mask(dt)] = 2
        out[pond_mask(dt)] = 5
        out[convertible & (ratio < 1.0 + towns.growth * dt)] = 8
        maps[year] = out
    return maps, towns


# --------------------------------------------------------------------------------------
# counties


def make_counties(
    rng: np.random.Generator, bounds: tuple[float, float, float, float], n: int
) -> list[shapely.Polygon]:
    """Voronoi tessellation of ``n`` seeded points clipped to ``bounds`` (metres).

    Points keep a minimum spacing (relaxed when crowded) so counties are not slivers.
    Polygons are ordered north to south, then west to east, by their seed points.
    """
    x0, y0, x1, y1 = bounds
    rect = shapely.box(x0, y0, x1, y1)
    w, h = x1 - x0, y1 - y0
    spacing = 0.6 * math.sqrt(w * h / n)
    pts: list[tuple[float, float]] = []
    while len(pts) < n:
        for attempt in range(200):
            p = (x0 + w * rng.uniform(0.02, 0.98), y0 + h * rng.uniform(0.02, 0.98))
            if not pts:
                break
            arr = np.asarray(pts)
            d = np.hypot(arr[:, 0] - p[0], arr[:, 1] - p[1]).min()
            if d >= spacing * (0.5 if attempt >= 100 else 1.0) or (attempt == 199 and d > 0):
                break
        else:  # pragma: no cover - only with absurd n
            continue
        pts.append(p)
    pts.sort(key=lambda p: (-p[1], p[0]))
    points = shapely.points(np.asarray(pts))
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(points), extend_to=rect))
    tree = shapely.STRtree(cells)
    pt_idx, cell_idx = tree.query(points, predicate="within")
    order = np.full(n, -1)
    order[pt_idx] = cell_idx
    if np.any(order < 0):  # pragma: no cover - points always lie inside their cell
        raise RuntimeError("Voronoi cell matching failed")
    return [shapely.intersection(cells[i], rect).normalize() for i in order]


def county_codes(n: int) -> tuple[list[int], list[str]]:
    """County codes 990101, 990102, ... and names "County 01", "County 02", ..."""
    return [COUNTY_CODE_BASE + i + 1 for i in range(n)], [f"County {i + 1:02d}" for i in range(n)]


def class_counts_by_zone(zones: np.ndarray, lc: np.ndarray, n_zones: int) -> np.ndarray:
    """Pixel counts of each CLCD class (columns 0..9) per zone id 1..n_zones (rows 0..n-1)."""
    return zone_class_counts(zones, lc, n_zones)[0, 1:, :10]


# --------------------------------------------------------------------------------------
# statistics


_PRICE_ANCHORS = {  # CNY/kg in 2000, 2010, 2020
    "rice": (1.10, 2.30, 2.70),
    "wheat": (1.05, 1.95, 2.35),
    "maize": (0.90, 1.85, 2.10),
}
_YIELD = {  # kg/ha base range and annual gain
    "rice": (6200.0, 7400.0, 40.0),
    "wheat": (3800.0, 5000.0, 35.0),
    "maize": (5000.0, 6200.0, 45.0),
}
_SOWN_SHARE = {"rice": (0.55, 0.75), "wheat": (0.20, 0.40), "maize": (0.08, 0.20)}

COUNTY_STATS_COLUMNS = [
    "code",
    "name",
    "year",
    "population",
    "gdp_cny",
    "engel_urban",
    "engel_rural",
    "urbanization_rate",
    "role",
    "cultivated_area_ha",
    "income_per_capita_cny",
    *[f"{c}_{f}" for c in ("rice", "wheat", "maize") for f in
      ("sown_ha", "price_cny_per_kg", "yield_kg_per_ha")],
]


def assign_roles(shares: np.ndarray) -> list[str]:
    """Main-function-zone role per county from first-year class shares (n x 10).

    The most impervious county is ``key_development``, the most forested of the rest
    ``key_ecological``, the most cropland-rich of the rest ``main_agricultural``; the
    others follow their dominant character. With three or more counties every role occurs.
    """
    n = shares.shape[0]
    imperv, forest, crop = shares[:, 8], shares[:, 2] + shares[:, 3], shares[:, 1]
    roles: list[str | None] = [None] * n
    free = list(range(n))
    for role, key in (("key_development", imperv), ("key_ecological", forest),
                      ("main_agricultural", crop)):
        if not free:
            break
        best = max(free, key=lambda i: (key[i], -i))
        roles[best] = role
        free.remove(best)
    for i in free:
        if imperv[i] >= 0.08:
            roles[i] = "key_development"
        elif forest[i] > crop[i]:
            roles[i] = "key_ecological"
        else:
            roles[i] = "main_agricultural"
    return [str(r) for r in roles]


def make_county_stats(
    rng: np.random.Generator,
    codes: Sequence[int],
    names: Sequence[str],
    years: Sequence[int],
    counts: dict[int, np.ndarray],
    res: float = RESOLUTION_M,
) -> pd.DataFrame:
    """County statistics table, one row per county per year (sorted by code, year).

    ``counts[year]`` holds class pixel counts per county (n x 10, see
    :func:`class_counts_by_zone`). Units: population in persons, ``gdp_cny`` and
    ``income_per_capita_cny`` in CNY, Engel coefficients and urbanisation rate as
    fractions in [0, 1], areas in hectares, prices in CNY/kg, yields in kg/ha. Richer,
    more urban counties are those with more impervious land; GDP grows over the years.
    """
    years = sorted(int(y) for y in years)
    n = len(codes)
    first, last = years[0], years[-1]
    span = last - first
    base = counts[first].astype(np.float64)
    shares = base / np.maximum(base.sum(axis=1, keepdims=True), 1.0)
    roles = assign_roles(shares)
    imperv = shares[:, 8]
    rank = np.argsort(np.argsort(imperv, kind="stable"), kind="stable")
    rich = 0.8 * (rank / max(n - 1, 1)) + 0.2 * rng.uniform(0.0, 1.0, n)

    pop0 = np.exp(rng.uniform(math.log(1.5e5), math.log(4.0e5), n)) * (1.0 + 1.2 * rich)
    pop0 = np.clip(pop0, 1.1e5, 9.0e5)
    pop_rate = np.array([{"key_development": 0.008, "main_agricultural": -0.001,
                          "key_ecological": -0.003}[r] for r in roles])
    pop_rate += rng.normal(0.0, 0.001, n)
    urb0 = np.clip(0.22 + 0.40 * rich + rng.normal(0.0, 0.03, n), 0.12, 0.85)
    gdp_pc_last = np.clip(6.0e4 + 5.5e4 * rich * rng.uniform(0.95, 1.05, n), 3.2e4, 1.18e5)
    gdp_rate = min(0.035, math.log(1.9) / span) if span > 0 else 0.0
    engel0 = 0.42 - 0.08 * rich + rng.normal(0.0, 0.01, n)
    sown_share = {c: rng.uniform(lo, hi, n) for c, (lo, hi) in _SOWN_SHARE.items()}
    yield_base = {c: rng.uniform(lo, hi, n) for c, (lo, hi, _) in _YIELD.items()}
    ha_per_px = res * res / 1e4

    rows = []
    for i in range(n):
        for year in years:
            t = year - first
            pop = float(np.clip(pop0[i] * (1.0 + pop_rate[i]) ** t, 1.0e5, 1.0e6))
            gdp_pc = gdp_pc_last[i] * math.exp(-gdp_rate * (last - year))
            urb = float(np.clip(urb0[i] + 0.009 * t, 0.05, 0.95))
            engel_u = float(np.clip(engel0[i] - 0.004 * t, 0.22, 0.6))
            engel_r = float(np.clip(engel_u + 0.03 + 0.04 * (1.0 - rich[i]), 0.25, 0.65))
            income = 0.42 * gdp_pc * (0.85 + 0.3 * urb)
            cultivated = float(counts[year][i, 1]) * ha_per_px
            row = {
                "code": int(codes[i]),
                "name": str(names[i]),
                "year": year,
                "population": int(round(pop)),
                "gdp_cny": int(round(gdp_pc * pop, -3)),
                "engel_urban": round(engel_u, 4),
                "engel_rural": round(engel_r, 4),
                "urbanization_rate": round(urb, 4),
                "role": roles[i],
                "cultivated_area_ha": round(cultivated, 2),
                "income_per_capita_cny": round(income, 2),
            }
            for crop in ("rice", "wheat", "maize"):
                sown = cultivated * sown_share[crop][i] * (1.0 + rng.normal(0.0, 0.02))
                price = float(np.interp(year, (2000, 2010, 2020), _PRICE_ANCHORS[crop]))
                price *= 1.0 + rng.normal(0.0, 0.02)
                yld = yield_base[crop][i] + _YIELD[crop][2] * (year - 2000)
                yld *= 1.0 + rng.normal(0.0, 0.02)
                row[f"{crop}_sown_ha"] = round(max(sown, 0.0), 2)
                row[f"{crop}_price_cny_per_kg"] = round(max(price, 0.1), 4)
                row[f"{crop}_yield_kg_per_ha"] = round(max(yld, 500.0), 1)
            rows.append(row)
    return pd.DataFrame(rows, columns=COUNTY_STATS_COLUMNS)


# --------------------------------------------------------------------------------------
# drivers


def make_ndvi(rng: np.random.Generator, lc: np.ndarray) -> np.ndarray:
    """NDVI (unitless, float32) from class means (:data:`NDVI_BY_CLASS`) plus smooth noise."""
    table = np.zeros(256, np.float32)
    for code, value in NDVI_BY_CLASS.items():
        table[code] = value
    ndvi = table[lc]
    ndvi += np.float32(0.04) * smooth_noise(rng, lc.shape, 10)
    np.clip(ndvi, -0.2, 0.95, out=ndvi)
    return ndvi


def make_population(
    rng: np.random.Generator,
    towns: Towns,
    grid: Grid,
    decades: float,
) -> tuple[np.ndarray, Affine]:
    """Population density (persons/km², float32) on a 1 km CHINA_ALBERS grid.

    The grid covers the region, snapped outwards to multiples of 1000 m. Density is a
    rural background (about 150-450) plus a Gaussian bump per town sized by its radius
    after ``decades`` decades of growth.
    """
    res = POPULATION_RES_M
    x0 = math.floor(grid.bounds[0] / res) * res
    x1 = math.ceil(grid.bounds[2] / res) * res
    y0 = math.floor(grid.bounds[1] / res) * res
    y1 = math.ceil(grid.bounds[3] / res) * res
    cols, rows = int(round((x1 - x0) / res)), int(round((y1 - y0) / res))
    xs = x0 + (np.arange(cols) + 0.5) * res
    ys = y1 - (np.arange(rows) + 0.5) * res
    background = 300.0 + 100.0 * smooth_noise(rng, (rows, cols), 2.0).astype(np.float64)
    density = np.clip(background, 50.0, None)
    tx = grid.bounds[0] + towns.col * grid.resolution
    ty = grid.bounds[3] - towns.row * grid.resolution
    rad_m = towns.radius_px * grid.resolution * (1.0 + towns.growth * decades)
    peak = 4000.0 + 8000.0 * rad_m / max(float(rad_m.max()), 1.0)
    for cx, cy, r, p in zip(tx, ty, rad_m, peak, strict=True):
        d2 = (xs[None, :] - cx) ** 2 + (ys[:, None] - cy) ** 2
        density += p * np.exp(-d2 / (1.5 * r) ** 2)
    return density.astype(np.float32), from_origin(x0, y1, res, res)


def make_precipitation(
    rng: np.random.Generator, elevation: np.ndarray, grid: Grid
) -> tuple[np.ndarray, Affine]:
    """Annual precipitation (mm/yr, float32) on a 0.01° EPSG:4326 grid around the region.

    The grid covers the region plus a margin of a few cells. Precipitation rises with
    the (smoothed, reprojected) elevation at about 0.55 mm/yr per metre, falls slightly
    to the north and carries a little smooth noise.
    """
    w, s, e, n = transform_bounds(CHINA_ALBERS, WGS84, *grid.bounds, densify_pts=21)
    cells = 1.0 / PRECIP_RES_DEG
    iw = math.floor(w * cells) - PRECIP_MARGIN_CELLS
    ie = math.ceil(e * cells) + PRECIP_MARGIN_CELLS
    is_ = math.floor(s * cells) - PRECIP_MARGIN_CELLS
    in_ = math.ceil(n * cells) + PRECIP_MARGIN_CELLS
    transform = from_origin(iw / cells, in_ / cells, PRECIP_RES_DEG, PRECIP_RES_DEG)
    shape = (in_ - is_, ie - iw)
    elev = np.full(shape, np.nan, np.float32)
    reproject(
        elevation,
        elev,
        src_transform=grid.transform,
        src_crs=CRS.from_string(CHINA_ALBERS),
        dst_transform=transform,
        dst_crs=WGS84,
        resampling=Resampling.average,
        dst_nodata=np.nan,
    )
    missing = ~np.isfinite(elev)
    if missing.all():  # pragma: no cover - region smaller than a cell still hits one
        elev[:] = float(np.mean(elevation))
    elif missing.any():
        idx = ndimage.distance_transform_edt(missing, return_distances=False, return_indices=True)
        elev = elev[tuple(idx)]
    elev = ndimage.gaussian_filter(elev, 1.5, mode="nearest")
    lat = (in_ / cells - (np.arange(shape[0]) + 0.5) * PRECIP_RES_DEG)[:, None]
    lat0 = (s + n) / 2.0
    precip = 950.0 + 0.55 * elev - 150.0 * (lat - lat0)
    precip = precip + 15.0 * smooth_noise(rng, shape, 3.0)
    return precip.astype(np.float32), transform


def reproject_dem(elevation: np.ndarray, grid: Grid) -> tuple[np.ndarray, Affine]:
    """Elevation (int16 metres, nodata -9999) reprojected bilinearly to a 30 m UTM 49N grid.

    The UTM grid is the region's bounding box in EPSG:32649, snapped outwards to 30 m
    plus one pixel; pixels outside the (rotated) region are nodata.
    """
    res = grid.resolution
    w, s, e, n = transform_bounds(CHINA_ALBERS, UTM49N, *grid.bounds, densify_pts=21)
    x0 = (math.floor(w / res) - 1) * res
    x1 = (math.ceil(e / res) + 1) * res
    y0 = (math.floor(s / res) - 1) * res
    y1 = (math.ceil(n / res) + 1) * res
    transform = from_origin(x0, y1, res, res)
    shape = (int(round((y1 - y0) / res)), int(round((x1 - x0) / res)))
    dst = np.full(shape, np.nan, np.float32)
    reproject(
        elevation,
        dst,
        src_transform=grid.transform,
        src_crs=CRS.from_string(CHINA_ALBERS),
        dst_transform=transform,
        dst_crs=UTM49N,
        resampling=Resampling.bilinear,
        dst_nodata=np.nan,
    )
    finite = np.isfinite(dst)
    out = np.full(shape, -9999, np.int16)
    out[finite] = np.rint(dst[finite]).astype(np.int16)
    return out, transform


def make_drivers(
    rng: np.random.Generator,
    terrain: Terrain,
    lc_last: np.ndarray,
    towns: Towns,
    grid: Grid,
    decades: float,
) -> dict[str, tuple[np.ndarray, Affine, str]]:
    """All driver rasters as ``{name: (array, transform, crs)}``.

    ``elevation`` int16 m (UTM 49N, 30 m), ``precipitation`` float32 mm/yr (EPSG:4326,
    0.01°), ``ndvi`` float32 (CHINA_ALBERS, the land-cover grid of ``lc_last``),
    ``population`` float32 persons/km² (CHINA_ALBERS, 1000 m).
    """
    dem, dem_tf = reproject_dem(terrain.elevation, grid)
    precip, precip_tf = make_precipitation(rng, terrain.elevation, grid)
    ndvi = make_ndvi(rng, lc_last)
    pop, pop_tf = make_population(rng, towns, grid, decades)
    return {
        "elevation": (dem, dem_tf, UTM49N),
        "precipitation": (precip, precip_tf, WGS84),
        "ndvi": (ndvi, grid.transform, CHINA_ALBERS),
        "population": (pop, pop_tf, CHINA_ALBERS),
    }


# --------------------------------------------------------------------------------------
# writing


def write_geotiff(
    path: Path, array: np.ndarray, transform: Affine, crs: str, nodata: float | int | None
) -> None:
    """Single-band tiled (256x256), deflate-compressed GeoTIFF without timestamp tags."""
    predictor = 3 if array.dtype.kind == "f" else (2 if array.dtype.itemsize > 1 else 1)
    profile = {
        "driver": "GTiff",
        "height": array.shape[0],
        "width": array.shape[1],
        "count": 1,
        "dtype": array.dtype.name,
        "crs": CRS.from_string(crs),
        "transform": transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "predictor": predictor,
    }
    path.unlink(missing_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)


def write_counties(
    path: Path, polygons: Sequence[shapely.Polygon], codes: Sequence[int], names: Sequence[str]
) -> None:
    """Write county polygons (CHINA_ALBERS metres) to a GeoPackage in EPSG:4326.

    Edges are densified every 500 m before reprojecting so the lat/lon polygons follow
    the Albers shapes; the GeoPackage's ``last_change`` timestamp is pinned so output is
    reproducible.
    """
    gdf = gpd.GeoDataFrame(
        {"code": np.asarray(codes, dtype=np.int64), "name": list(names)},
        geometry=shapely.segmentize(np.asarray(polygons, dtype=object), 500.0),
        crs=CHINA_ALBERS,
    ).to_crs(WGS84)
    path.unlink(missing_ok=True)
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": _GPKG_DATE})
    try:
        gdf.to_file(path, driver="GPKG", layer="counties", engine="pyogrio")
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})


def region_config(years: Sequence[int], bounds: tuple[float, float, float, float] | None = None) -> dict:
    """The run configuration (paths relative to the config file's folder); ``bounds`` (m) pins the
    grid to the region rectangle instead of the zones' reprojected extent."""
    cfg = {
        "name": "synthetic-region",
        "grid": {
            "crs": CHINA_ALBERS,
            "resolution": int(RESOLUTION_M),
            "analysis_factor": 32,
            "chunk_size": 4096,
        },
        "landcover": {
            "scheme": "clcd",
            "years": {int(y): f"inputs/landcover_{int(y)}.tif" for y in years},
            "intensity": True,  # the demo shows the intensity analysis
            # and the class scheme's three land-use scenarios, one and two intervals ahead
            "scenarios": {"years": [int(years[-1]) + k * (int(years[-1]) - int(years[-2])) for k in (1, 2)]},
        },
        # the demo shows the ESV's uncertainty: coefficients +/- 50 %, Xie et al. 2015's table as an
        # alternative
        "esv": {"table": "xinzhou_2023", "uncertainty": {"enabled": True, "tables": ["xie2015"]},
                "cell_tradeoffs": True},  # services' trade-offs across the analysis cells
        "zones": {"path": "inputs/counties.gpkg", "id_field": "code", "name_field": "name"},
        "drivers": {
            "elevation": {"path": "inputs/dem_utm49n.tif", "kind": "continuous"},
            "precipitation": {"path": "inputs/precipitation_1km.tif", "kind": "continuous"},
            "ndvi": {"path": "inputs/ndvi_30m.tif", "kind": "continuous"},
            "population": {"path": "inputs/population_1km.tif", "kind": "continuous",
                           "density_of": "population"},  # persons/km²: ESV per capita per zone
        },
        "county_stats": "inputs/county_stats.csv",
        "analysis": {"scales": [2, 4]},  # the demo shows the scale effect of q (960, 1920, 3840 m)
        "output": "output",
        "cluster": {
            "kind": "local",
            "n_workers": 2,
            "threads_per_worker": 1,
            "memory_limit": "4GiB",
        },
    }
    if bounds is not None:
        cfg["grid"]["bounds"] = [float(v) for v in bounds]
    return cfg


_DRIVER_FILES = {
    "elevation": ("dem_utm49n.tif", -9999),
    "precipitation": ("precipitation_1km.tif", -9999.0),
    "ndvi": ("ndvi_30m.tif", -9999.0),
    "population": ("population_1km.tif", -9999.0),
}


def _validate(
    seed: int,
    width_km: float,
    height_km: float,
    years: Sequence[int],
    n_counties: int,
    center_lonlat: tuple[float, float],
) -> list[int]:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    for name, value in (("width_km", width_km), ("height_km", height_km)):
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    if isinstance(years, (str, bytes)) or len(years) < 1:
        raise ValueError(f"years must contain at least one year, got {years!r}")
    for y in years:
        if isinstance(y, bool) or not isinstance(y, numbers.Integral):
            raise ValueError(f"years must be integers, got {years!r}")
    if len(set(int(y) for y in years)) != len(years):
        raise ValueError(f"years must be distinct, got {years!r}")
    if (
        isinstance(n_counties, bool)
        or not isinstance(n_counties, numbers.Integral)
        or n_counties < 2
    ):
        raise ValueError(f"n_counties must be an integer >= 2, got {n_counties!r}")
    try:
        lon, lat = (float(v) for v in center_lonlat)
    except (TypeError, ValueError):
        raise ValueError(f"center_lonlat must be (lon, lat), got {center_lonlat!r}") from None
    if not (-180.0 <= lon <= 180.0 and -80.0 <= lat <= 80.0):
        raise ValueError(f"center_lonlat must be (lon, lat) in degrees, got {center_lonlat!r}")
    return sorted(int(y) for y in years)


def make_region(
    out_dir: str | Path,
    *,
    seed: int = 0,
    width_km: float = 24.0,
    height_km: float = 18.0,
    years: Sequence[int] = (2000, 2010, 2020),
    n_counties: int = 8,
    center_lonlat: tuple[float, float] = (112.5, 30.6),
) -> Path:
    """Write a synthetic region under out_dir and return the path of its run config YAML.

    The region is a rectangle of about ``width_km`` x ``height_km`` kilometres in
    CHINA_ALBERS centred on ``center_lonlat`` (degrees lon, lat), its sides and corners
    snapped to multiples of 960 m. Files written (existing ones are replaced):

    - ``inputs/landcover_{year}.tif``: uint8 CLCD codes, CHINA_ALBERS, 30 m, nodata 0;
    - ``inputs/counties.gpkg``: ``n_counties`` Voronoi counties (EPSG:4326; ``code``,
      ``name``);
    - ``inputs/dem_utm49n.tif``: int16 elevation in metres, EPSG:32649, 30 m, nodata -9999;
    - ``inputs/precipitation_1km.tif``: float32 mm/yr, EPSG:4326, 0.01°;
    - ``inputs/ndvi_30m.tif``: float32 NDVI on the land-cover grid of the last year;
    - ``inputs/population_1km.tif``: float32 persons/km², CHINA_ALBERS, 1000 m;
    - ``inputs/county_stats.csv``: one row per county per year (see
      :func:`make_county_stats`);
    - ``config.yaml``: the run configuration, paths relative to ``out_dir``.

    Years are sorted ascending. The output is a pure function of the arguments: the same
    seed gives byte-identical files.

    Raises:
        ValueError: for non-positive sizes, no or duplicate years, fewer than two
            counties, a negative seed or an invalid centre.
    """
    years_sorted = _validate(seed, width_km, height_km, years, n_counties, center_lonlat)
    out = Path(out_dir)
    inputs = out / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)

    grid = region_grid(center_lonlat, width_km, height_km)
    streams = np.random.SeedSequence(int(seed)).spawn(5)
    rng_terrain, rng_lc, rng_zones, rng_stats, rng_drivers = (
        np.random.default_rng(s) for s in streams
    )

    terrain = make_terrain(rng_terrain, grid.shape, grid.resolution)
    maps, towns = make_landcover(rng_lc, terrain, years_sorted, grid.resolution)
    for year in years_sorted:
        write_geotiff(inputs / f"landcover_{year}.tif", maps[year], grid.transform,
                      CHINA_ALBERS, 0)

    polygons = make_counties(rng_zones, grid.bounds, int(n_counties))
    codes, names = county_codes(int(n_counties))
    write_counties(inputs / "counties.gpkg", polygons, codes, names)
    zones = rasterize(
        ((p, i + 1) for i, p in enumerate(polygons)),
        out_shape=grid.shape,
        transform=grid.transform,
        fill=0,
        dtype=smallest_uint(len(polygons)),
    )
    counts = {y: class_counts_by_zone(zones, maps[y], len(polygons)) for y in years_sorted}
    del zones
    stats = make_county_stats(rng_stats, codes, names, years_sorted, counts, grid.resolution)
    stats.to_csv(inputs / "county_stats.csv", index=False, lineterminator="\n")

    last = years_sorted[-1]
    decades = (last - years_sorted[0]) / 10.0
    drivers = make_drivers(rng_drivers, terrain, maps[last], towns, grid, decades)
    del maps, terrain
    for name, (array, transform, crs) in drivers.items():
        filename, nodata = _DRIVER_FILES[name]
        write_geotiff(inputs / filename, array, transform, crs, nodata)

    config_path = out / "config.yaml"
    config_path.write_text(
        yaml.safe_dump(region_config(years_sorted, grid.bounds), sort_keys=False, width=200), encoding="utf-8"
    )
    return config_path

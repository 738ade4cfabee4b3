"""Data of the national-scale benchmark: a synthetic country on a 30 m CHINA_ALBERS grid of
131,072 x 81,920 px (1.07e10 px a year, 3,932 x 2,458 km), two land-cover years, ~2,800 counties,
four coarse drivers and a county statistics table, generated fast and cached.

    python -m benchmarks.national_data [--out bench-output] [--scale 1.0] [--seed 0] [--workers 2]

Built once under ``<out>/national/data/`` (``--scale`` below 1: ``<out>/national/scale-<s>/data/``)
and rebuilt only when the parameters in ``built.json`` change. Files (``inputs/``):

- ``landcover_{2000,2020}.tif``: uint8 CLCD codes on the grid, nodata 0 outside the country; tiled
  512², ``compress`` (zstd by default), BIGTIFF, sparse: blocks wholly outside the country are
  never written. Land cover is generated per 4096² tile in worker processes: eight smooth
  "national" fields (aridity, elevation, ruggedness, lakes, cities, change, ...) on the 960 m
  analysis grid, interpolated linearly to 240 m cells plus seamless smooth noise there, then to
  60 m cells plus per-cell noise, thresholded into classes at national class shares (a numba
  kernel), each 60 m cell written as 2 x 2 px. 2020 = 2000 with urban growth and a few % of
  changed pixels.
- ``counties.gpkg``: Voronoi counties of random points inside the country (denser in the moist
  east), clipped to the country outline; ``code``/``name`` as :func:`ecodask.synth.write_counties`.
- ``elevation_1km.tif`` (int16 m), ``population_1km.tif`` (persons/km²), ``ndvi_1km.tif`` on a
  1 km CHINA_ALBERS grid and ``precipitation_001deg.tif`` (mm/yr, 0.01°, EPSG:4326).
- ``county_stats.csv``: :func:`ecodask.synth.make_county_stats` from class counts per county
  estimated on the 960 m fields (each county's cropland floored at 0.5 % of its area).

Units: metres (CHINA_ALBERS) unless stated; times in seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

FULL_WIDTH, FULL_HEIGHT = 131_072, 81_920  # px at 30 m: 1.0737e10 px
RESOLUTION = 30.0  # m
FACTOR = 32  # analysis cell, px per side (960 m)
TILE = 4096  # generator tile side, px
DETAIL = 2  # px per side of the finest generated cell (60 m)
YEARS = (2000, 2020)
N_COUNTIES = 2800  # at scale 1
CENTER_LONLAT = (104.0, 35.5)  # deg: the grid's centre
BLOCK = 512  # GeoTIFF block side, px
BUILDER_VERSION = 1  # bump when the data would change

#: CLCD class shares of the country in the first year (fractions; cropland takes the rest).
SHARES = {"water": 0.018, "wetland": 0.006, "impervious": 0.016, "snow": 0.008, "barren": 0.22,
          "grassland": 0.28, "forest": 0.23, "shrub": 0.012}
IMPERVIOUS_LAST = 0.026  # impervious share in the last year (urban growth)
CHANGE_SHARE = 0.03  # share of the country whose class changes by the change tables
#: Classes a changed pixel takes, in moist (aridity < 0) and in dry areas, by CLCD code 0..9.
CHANGE_MOIST = np.array([0, 2, 1, 2, 1, 1, 7, 4, 8, 1], np.uint8)
CHANGE_DRY = np.array([0, 4, 4, 4, 7, 7, 7, 4, 8, 4], np.uint8)
FIELDS = ("aridity", "elevation", "rugged", "lake", "urban", "change", "grass", "shrub")
#: Noise added to each field: (std of the 60 m white noise, std of the smooth 240 m noise).
NOISE = {"aridity": (0.05, 0.3), "elevation": (0.05, 0.2), "rugged": (0.12, 0.8), "lake": (0.1, 0.4),
         "urban": (0.1, 0.4), "change": (0.15, 0.7), "grass": (0.12, 0.8), "shrub": (0.15, 0.8)}
MID_PX = 8  # px per side of a cell of the middle level (240 m)
MID_SIGMAS = (2.5, 0.8)  # correlation lengths of the two smooth noises on the middle level, cells
_HALO = 8  # cells around a window of middle-level noise, for the filter


def _root(out: Path, scale: float) -> Path:
    """Folder of one scale: ``<out>/national`` at scale 1, else ``<out>/national/scale-<s>``."""
    return Path(out) / "national" if scale == 1.0 else Path(out) / "national" / f"scale-{scale:g}"


def national_grid(scale: float = 1.0, chunk: int = 4096):
    """The benchmark grid: CHINA_ALBERS, 30 m, ``scale`` x 131,072 x 81,920 px (each side scaled by
    sqrt(scale), rounded to whole 960 m analysis cells), centred on :data:`CENTER_LONLAT`."""
    from pyproj import CRS, Transformer

    from ecodask.science.grid import CHINA_ALBERS, Grid

    cell = RESOLUTION * FACTOR
    f = math.sqrt(scale)
    wc, hc = max(2, round(FULL_WIDTH * f / FACTOR)), max(2, round(FULL_HEIGHT * f / FACTOR))
    cx, cy = Transformer.from_crs("EPSG:4326", CHINA_ALBERS, always_xy=True).transform(*CENTER_LONLAT)
    x0, y0 = round(cx / cell - wc / 2) * cell, round(cy / cell - hc / 2) * cell
    return Grid(CRS.from_user_input(CHINA_ALBERS), RESOLUTION, FACTOR,
                (float(x0), float(y0), float(x0 + wc * cell), float(y0 + hc * cell)), chunk)


# ------------------------------------------------------------------------------------------
# the country and its fields on the 960 m analysis grid


def country_outline(rng: np.random.Generator, grid):
    """A smooth irregular country (shapely Polygon, m): a perturbed ellipse with 2-3 lobes unioned,
    covering about 70 % of the grid."""
    import shapely

    x0, y0, x1, y1 = grid.bounds
    w, h = x1 - x0, y1 - y0
    theta = np.linspace(0.0, 2 * np.pi, 4096, endpoint=False)

    def blob(cu: float, cv: float, ru: float, rv: float, n_harm: int, amp: float) -> shapely.Polygon:
        r = np.ones_like(theta)
        for k in range(2, 2 + n_harm):
            r += amp / k**1.1 * rng.normal() * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
        u = cu + ru * r * np.cos(theta)
        v = cv + rv * r * np.sin(theta)
        return shapely.Polygon(np.c_[x0 + np.clip(u, 0.01, 0.99) * w, y0 + np.clip(v, 0.01, 0.99) * h])

    parts = [blob(0.50, 0.48, 0.45, 0.40, 14, 0.16),
             blob(0.80, 0.78, 0.15, 0.16, 8, 0.2),  # a north-eastern lobe
             blob(0.20, 0.62, 0.17, 0.22, 8, 0.2)]  # a north-western lobe
    if rng.uniform() < 0.7:
        parts.append(blob(0.72, 0.16, 0.12, 0.10, 6, 0.2))  # a southern lobe
    outline = shapely.union_all([p.buffer(0) for p in parts]).buffer(0.004 * w).buffer(-0.004 * w)
    if outline.geom_type == "MultiPolygon":
        outline = max(outline.geoms, key=lambda g: g.area)
    return shapely.Polygon(outline.exterior).simplify(200.0)


def coarse_mask(outline, grid) -> np.ndarray:
    """The country on the analysis grid: bool (cells_y, cells_x), cell centre inside the outline."""
    from rasterio.features import rasterize

    ag = grid.analysis
    return rasterize([(outline, 1)], out_shape=ag.shape, transform=ag.transform, fill=0,
                     dtype=np.uint8).astype(bool)


def make_fields(rng: np.random.Generator, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """The national fields on the 960 m grid, float32, each about mean 0, std 1. Correlation lengths
    in cells (960 m): aridity ~600 km, elevation ~300 km plus a south-western plateau, ruggedness
    ~50 km, lakes ~5 km, cities ~4 km, change ~5 km."""
    from ecodask.synth import smooth_noise

    rows, cols = shape
    v, u = np.mgrid[0:rows, 0:cols].astype(np.float32)
    u /= cols
    v /= rows  # 0 at the top (north)
    plateau = np.exp(-(((u - 0.28) / 0.2) ** 2 + ((v - 0.62) / 0.16) ** 2)).astype(np.float32)
    f = {
        "aridity": 2.2 * (0.45 - u) + 0.8 * (0.5 - v) + 0.7 * smooth_noise(rng, shape, 600.0),
        "elevation": 0.8 * smooth_noise(rng, shape, 300.0) + 0.3 * smooth_noise(rng, shape, 40.0)
        + 3.0 * plateau,
        "rugged": smooth_noise(rng, shape, 50.0) + 0.5 * smooth_noise(rng, shape, 12.0),
        "lake": smooth_noise(rng, shape, 5.0) + 0.3 * smooth_noise(rng, shape, 60.0),
        "urban": smooth_noise(rng, shape, 4.0) + 0.5 * smooth_noise(rng, shape, 80.0),
        "change": smooth_noise(rng, shape, 5.0),
        "grass": smooth_noise(rng, shape, 30.0),
        "shrub": smooth_noise(rng, shape, 8.0),
    }
    f["rugged"] += 0.5 * f["elevation"]
    f["urban"] -= 0.8 * f["aridity"] + 0.5 * f["elevation"]
    f["grass"] += 0.8 * f["aridity"] + 0.6 * f["elevation"]
    out = {}
    for name in FIELDS:
        a = f[name].astype(np.float32)
        out[name] = (a - a.mean()) / (a.std() or 1.0)
    return out


def with_noise(rng: np.random.Generator, fields: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The 960 m fields plus independent noise of the fine levels' total std (:data:`NOISE`): the
    distribution of a 30 m pixel's field values, for thresholds and estimated class counts."""
    return {k: a + np.float32(math.hypot(*NOISE[k])) * rng.standard_normal(a.shape, np.float32)
            for k, a in fields.items()}


def thresholds(fields: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, float]:
    """Field thresholds giving :data:`SHARES` of the country on the (noisy) 960 m fields, class by
    class in priority order (water, wetland, impervious, snow, barren, grassland, forest, shrub; cropland the
    rest), plus the last year's impervious and the change thresholds."""
    free = mask.copy()
    n = int(mask.sum())
    t: dict[str, float] = {}

    def take(name: str, field: str, share: float) -> None:
        vals = fields[field][free]
        k = min(max(int(share * n), 1), vals.size - 1)
        t[name] = float(np.partition(vals, vals.size - k)[vals.size - k])
        free[fields[field] >= t[name]] = False

    take("water", "lake", SHARES["water"])
    take("wetland", "lake", SHARES["wetland"])
    urban_free = free.copy()
    take("impervious", "urban", SHARES["impervious"])
    vals = fields["urban"][urban_free]
    k = int(IMPERVIOUS_LAST * n)
    t["impervious_last"] = float(np.partition(vals, vals.size - k)[vals.size - k])
    take("snow", "elevation", SHARES["snow"])
    take("barren", "aridity", SHARES["barren"])
    take("grassland", "grass", SHARES["grassland"])
    take("forest", "rugged", SHARES["forest"])
    take("shrub", "shrub", SHARES["shrub"])
    ch = fields["change"][mask]
    t["change"] = float(np.quantile(ch, 1.0 - CHANGE_SHARE))
    return t


#: Order of the thresholds in the array the kernels take.
THRESHOLDS = ("water", "wetland", "impervious", "impervious_last", "snow", "barren", "grassland", "forest",
              "shrub", "change")


@numba.njit(cache=True)
def _codes(v: np.ndarray, t: np.ndarray, moist: np.ndarray, dry: np.ndarray) -> tuple[int, int]:
    """CLCD codes (first year, last year) of one cell from its field values ``v`` (in :data:`FIELDS`
    order) and thresholds ``t`` (in :data:`THRESHOLDS` order): classes by priority (water, wetland,
    impervious, snow, barren, grassland, forest, shrub; cropland the rest); the last year adds urban
    growth and the change tables."""
    c = 1
    if v[7] >= t[8]:
        c = 3
    if v[2] >= t[7]:
        c = 2
    if v[6] >= t[6]:
        c = 4
    if v[0] >= t[5]:
        c = 7
    if v[1] >= t[4]:
        c = 6
    if v[4] >= t[2]:
        c = 8
    if v[3] >= t[1]:
        c = 9
    if v[3] >= t[0]:
        c = 5
    last = c
    if v[4] >= t[3] and c != 5 and c != 9 and c != 6:
        last = 8
    if v[5] >= t[9]:
        last = dry[c] if v[0] >= 0 else moist[c]
    return c, last


@numba.njit(cache=True)
def _classify_flat(fields: np.ndarray, t: np.ndarray, moist: np.ndarray, dry: np.ndarray,
                   out: np.ndarray) -> None:
    for i in range(fields.shape[1]):
        out[0, i], out[1, i] = _codes(fields[:, i], t, moist, dry)


def classify(f: dict[str, np.ndarray], t: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """CLCD codes (uint8) of the first and the last year from field values (any shape)."""
    shape = f[FIELDS[0]].shape
    stack = np.stack([np.ravel(f[k]).astype(np.float32) for k in FIELDS])
    out = np.empty((2, stack.shape[1]), np.uint8)
    _classify_flat(stack, np.array([t[k] for k in THRESHOLDS], np.float32), CHANGE_MOIST, CHANGE_DRY, out)
    return out[0].reshape(shape), out[1].reshape(shape)


@numba.njit(cache=True)
def _fine_codes(mid: np.ndarray, r_lo: np.ndarray, r_f: np.ndarray, c_lo: np.ndarray, c_f: np.ndarray,
                white: np.ndarray, t: np.ndarray, moist: np.ndarray, dry: np.ndarray, seed: np.uint64,
                g_r0: int, g_c0: int, detail: int, out: np.ndarray) -> None:
    """Land cover of a tile into ``out`` (2, rows, cols): every 60 m cell (``detail`` px a side)
    interpolates the middle-level fields ``mid`` (fields, y, x) bilinearly (``*_lo`` the lower cell,
    ``*_f`` the weight of the upper), adds uniform noise of std ``white`` (one 64-bit hash of
    (seed, global cell) gives 8 bytes: one per field) and is classified by :func:`_codes`."""
    rows, cols = out.shape[1], out.shape[2]
    n_f = mid.shape[0]
    v = np.empty(n_f, np.float32)
    golden = np.uint64(0x9E3779B97F4A7C15)
    for i in range(r_lo.size):
        r0, fr = r_lo[i], r_f[i]
        for j in range(c_lo.size):
            c0, fc = c_lo[j], c_f[j]
            z = seed ^ (np.uint64(g_r0 + i) << np.uint64(32)) ^ np.uint64(g_c0 + j)
            z = z + golden
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
            for k in range(n_f):
                a = ((mid[k, r0, c0] * (1 - fc) + mid[k, r0, c0 + 1] * fc) * (1 - fr)
                     + (mid[k, r0 + 1, c0] * (1 - fc) + mid[k, r0 + 1, c0 + 1] * fc) * fr)
                b = np.float32((z >> np.uint64(8 * k)) & np.uint64(255))
                v[k] = a + (b - np.float32(127.5)) * white[k]
            c, last = _codes(v, t, moist, dry)
            for di in range(detail):
                y = i * detail + di
                if y >= rows:
                    break
                for dj in range(detail):
                    x = j * detail + dj
                    if x >= cols:
                        break
                    out[0, y, x] = c
                    out[1, y, x] = last


# ------------------------------------------------------------------------------------------
# land cover tiles


def _span(per: int, start: int, n: int, n_total: int) -> tuple[int, int]:
    """The coarser cells ``[lo, hi)`` that linear interpolation needs for the finer cells
    ``start .. start + n`` (``per`` finer cells per coarser cell; ``n_total`` coarser cells in all)."""
    lo = max(math.floor((start + 0.5) / per - 0.5), 0)
    hi = min(math.floor((start + n - 0.5) / per - 0.5) + 2, n_total)
    return lo, max(hi, lo + 1)


def _up(a: np.ndarray, a_start: int, per: int, start: int, n: int, axis: int) -> np.ndarray:
    """Linear upsampling along ``axis``: ``a`` holds cells ``a_start ..`` of a coarser level
    (centres at integers); returns the finer cells ``start .. start + n`` (``per`` per coarser
    cell), clamped at the ends of ``a``."""
    lo, f = _weights(a.shape[axis], a_start, per, start, n)
    if axis == 0:
        return a[lo] * (1.0 - f)[:, None] + a[lo + 1] * f[:, None]
    return a[:, lo] * (1.0 - f) + a[:, lo + 1] * f


def _weights(m: int, a_start: int, per: int, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower cell (0 .. m - 2) and weight of the upper one (float32) for linear interpolation of
    the finer cells ``start .. start + n`` from ``m`` coarser cells starting at ``a_start``."""
    u = np.clip((np.arange(start, start + n) + 0.5) / per - 0.5 - a_start, 0.0, m - 1.0)
    lo = np.minimum(np.floor(u).astype(np.intp), m - 2)
    return lo, (u - lo).astype(np.float32)


def _hash_normal(seed: int, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    """Standard normal values (float32) of the global cells ``rows x cols`` of a level, each a pure
    function of ``(seed, row, col)`` (splitmix64 + Box-Muller): the same cell gets the same value
    in every tile that reads it, so filtered noise is seamless."""
    r = np.arange(rows[0], rows[1], dtype=np.uint64)[:, None]
    c = np.arange(cols[0], cols[1], dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        x = (r * np.uint64(0x1F123BB5) + c) * np.uint64(2) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)

        def mix(z: np.ndarray) -> np.ndarray:
            z = z + np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            return z ^ (z >> np.uint64(31))

        u1 = ((mix(x) >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
        u2 = ((mix(x + np.uint64(1)) >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
    return (np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)).astype(np.float32)


def _mid_noise(seed: int, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    """Smooth noise (std about 1) on the global middle-level cells ``rows x cols``, seamless: the
    sum of the hashed white noise filtered at each of :data:`MID_SIGMAS`."""
    from scipy import ndimage

    h, off = _HALO, 2**20
    raw = _hash_normal(seed, (rows[0] - h + off, rows[1] + h + off), (cols[0] - h + off, cols[1] + h + off))
    out = np.zeros((rows[1] - rows[0], cols[1] - cols[0]), np.float32)
    for sigma in MID_SIGMAS:
        sm = ndimage.gaussian_filter(raw, sigma, mode="nearest")[h:-h, h:-h]
        out += sm * np.float32(2.0 * math.sqrt(math.pi) * sigma / math.sqrt(len(MID_SIGMAS)))
    return out


_FIELDS: dict[str, np.ndarray] = {}


def _init_worker(fields_dir: str) -> None:
    """Pool initializer: memory-map the 960 m fields."""
    for name in FIELDS:
        _FIELDS[name] = np.load(Path(fields_dir) / f"{name}.npy", mmap_mode="r")


@dataclass(frozen=True)
class TileJob:
    """One generator tile: its index, pixel window on the grid, how it meets the country, the
    outline (WKB, only where the tile crosses the border), the thresholds and the seed."""

    row: int
    col: int
    r0: int
    c0: int
    h: int
    w: int
    border: bytes | None
    transform: tuple[float, ...]
    thresholds: dict[str, float]
    seed: int


def _mid_fields(job: TileJob) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    """Every field on the middle-level cells (240 m) the tile needs: the 960 m field interpolated
    linearly plus the seamless smooth noise; (fields, y, x) float32 and the first global cell."""
    mid_per = FACTOR // MID_PX  # middle-level cells per 960 m cell
    fine_per = MID_PX // DETAIL  # 60 m cells per middle-level cell
    n_coarse = _FIELDS[FIELDS[0]].shape
    f0 = (job.r0 // DETAIL, job.c0 // DETAIL)
    fn = (-(-job.h // DETAIL), -(-job.w // DETAIL))
    s_mid = [_span(fine_per, f0[k], fn[k], n_coarse[k] * mid_per) for k in (0, 1)]
    s_c = [_span(mid_per, s_mid[k][0], s_mid[k][1] - s_mid[k][0], n_coarse[k]) for k in (0, 1)]
    shape = (s_mid[0][1] - s_mid[0][0], s_mid[1][1] - s_mid[1][0])
    out = np.empty((len(FIELDS), *shape), np.float32)
    for k, name in enumerate(FIELDS):
        win = np.asarray(_FIELDS[name][s_c[0][0]:s_c[0][1], s_c[1][0]:s_c[1][1]], np.float32)
        a = _up(win, s_c[0][0], mid_per, s_mid[0][0], shape[0], 0)
        out[k] = _up(a, s_c[1][0], mid_per, s_mid[1][0], shape[1], 1)
        out[k] += NOISE[name][1] * _mid_noise(job.seed * 16 + k, s_mid[0], s_mid[1])
    return out, (s_mid[0][0], s_mid[1][0]), f0


def tile_landcover(job: TileJob) -> np.ndarray:
    """Land cover (2, h, w) uint8 of one tile, before the country mask (see :func:`_fine_codes`)."""
    mid, m0, f0 = _mid_fields(job)
    fine_per = MID_PX // DETAIL
    fn = (-(-job.h // DETAIL), -(-job.w // DETAIL))
    r_lo, r_f = _weights(mid.shape[1], m0[0], fine_per, f0[0], fn[0])
    c_lo, c_f = _weights(mid.shape[2], m0[1], fine_per, f0[1], fn[1])
    white = np.array([NOISE[k][0] * math.sqrt(12.0) / 256.0 for k in FIELDS], np.float32)
    t = np.array([job.thresholds[k] for k in THRESHOLDS], np.float32)
    out = np.empty((2, job.h, job.w), np.uint8)
    _fine_codes(mid, r_lo, r_f, c_lo, c_f, white, t, CHANGE_MOIST, CHANGE_DRY, np.uint64(job.seed * 7919 + 1),
                f0[0], f0[1], DETAIL, out)
    return out


def make_tile(job: TileJob) -> tuple[TileJob, np.ndarray, dict]:
    """Land cover (years, h, w) of one tile, 0 outside the country, and its statistics: pixels
    inside, per-class pixel counts per year, changed pixels."""
    from affine import Affine
    from rasterio.features import rasterize
    from shapely import from_wkb

    from ecodask.kernels.histogram import zone_class_counts

    maps = tile_landcover(job)
    inside = None
    if job.border is not None:
        inside = rasterize([(from_wkb(job.border), 1)], out_shape=(job.h, job.w),
                           transform=Affine(*job.transform), fill=0, dtype=np.uint8)
        maps *= inside[None]
        n_in = int(np.count_nonzero(inside))
    else:
        n_in = job.h * job.w
    counts = zone_class_counts(np.ones((job.h, job.w), np.uint8) if inside is None else inside, maps, 1)
    stats = {"inside": n_in, "changed": int(np.count_nonzero(maps[0] != maps[1])),
             "classes": counts[:, 1, :10].tolist()}
    return job, maps, stats


def tile_jobs(grid, outline, thr: dict[str, float], seed: int, tile: int = TILE) -> tuple[list[TileJob], int]:
    """Jobs of the tiles that meet the country (and the number of tiles wholly outside)."""
    import shapely
    from affine import Affine

    rows, cols = grid.shape
    jobs, outside = [], 0
    prepared = outline
    shapely.prepare(prepared)
    for i in range(-(-rows // tile)):
        for j in range(-(-cols // tile)):
            r0, c0 = i * tile, j * tile
            h, w = min(tile, rows - r0), min(tile, cols - c0)
            t = grid.transform * Affine.translation(c0, r0)
            box = shapely.box(t.c, t.f - h * RESOLUTION, t.c + w * RESOLUTION, t.f)
            if not shapely.intersects(prepared, box):
                outside += 1
                continue
            border = None if shapely.contains(prepared, box) else shapely.to_wkb(
                shapely.clip_by_rect(outline, *box.buffer(2 * RESOLUTION).bounds))
            jobs.append(TileJob(i, j, r0, c0, h, w, border, tuple(t)[:6], thr, seed))
    return jobs, outside


def _bounded(pool, fn, jobs: list, window: int) -> Iterator:
    """``pool.imap_unordered`` with at most ``window`` results waiting: the writer sets the pace."""
    pending, it = [], iter(jobs)
    for job in it:
        pending.append(pool.apply_async(fn, (job,)))
        if len(pending) >= window:
            break
    while pending:
        done = next((p for p in pending if p.ready()), None)
        if done is None:
            pending[0].wait(0.05)
            continue
        pending.remove(done)
        nxt = next(it, None)
        if nxt is not None:
            pending.append(pool.apply_async(fn, (nxt,)))
        yield done.get()


def geotiff_profile(grid, compress: str) -> dict:
    """Profile of the land-cover GeoTIFFs: uint8, nodata 0, tiled 512², compressed, BigTIFF,
    sparse (unwritten blocks read as nodata), compressed with 2 threads."""
    prof = {"driver": "GTiff", "height": grid.height, "width": grid.width, "count": 1, "dtype": "uint8",
            "crs": grid.crs, "transform": grid.transform, "nodata": 0, "tiled": True,
            "blockxsize": BLOCK, "blockysize": BLOCK, "compress": compress, "BIGTIFF": "YES",
            "SPARSE_OK": "TRUE", "NUM_THREADS": "2"}
    if compress == "zstd":
        prof["zstd_level"] = 3
    elif compress == "deflate":
        prof["zlevel"] = 6
    return prof


def write_landcover(inputs: Path, grid, jobs: list[TileJob], fields_dir: Path, compress: str,
                    workers: int = 2) -> dict:
    """Generate the tiles in ``workers`` processes and write one GeoTIFF per year (windowed
    writes); return the summed tile statistics."""
    import rasterio
    from rasterio.windows import Window

    paths = {y: inputs / f"landcover_{y}.tif" for y in YEARS}
    tmp = {y: p.with_suffix(".tif.partial") for y, p in paths.items()}
    prof = geotiff_profile(grid, compress)
    total = {"inside": 0, "changed": 0, "classes": np.zeros((len(YEARS), 10), np.int64)}
    dsts = {y: rasterio.open(tmp[y], "w", **prof) for y in YEARS}
    t0 = time.perf_counter()
    try:
        with mp.get_context("spawn").Pool(workers, _init_worker, (str(fields_dir),)) as pool:
            for n, (job, maps, st) in enumerate(_bounded(pool, make_tile, jobs, 2 * workers), 1):
                for k, y in enumerate(YEARS):
                    dsts[y].write(maps[k], 1, window=Window(job.c0, job.r0, job.w, job.h))
                total["inside"] += st["inside"]
                total["changed"] += st["changed"]
                total["classes"] += np.asarray(st["classes"])
                if n % 20 == 0 or n == len(jobs):
                    el = time.perf_counter() - t0
                    print(f"  land cover tile {n}/{len(jobs)}, {el:.0f} s, "
                          f"{n * job.h * job.w * len(YEARS) / el / 1e6:.0f} Mpx/s", flush=True)
    finally:
        for d in dsts.values():
            d.close()
    for y in YEARS:
        tmp[y].replace(paths[y])
    total["classes"] = total["classes"].tolist()
    return total


# ------------------------------------------------------------------------------------------
# counties, statistics, drivers


def make_national_counties(rng: np.random.Generator, outline, fields: dict[str, np.ndarray], grid,
                           n: int) -> list:
    """``n`` Voronoi counties of random points inside ``outline``, denser where it is moist (low
    aridity), clipped to the outline; ordered north to south, then west to east."""
    import shapely

    ag = grid.analysis
    arid = fields["aridity"]
    x0, y0, x1, y1 = outline.bounds
    pts = np.empty((0, 2))
    while len(pts) < n:
        cand = np.c_[rng.uniform(x0, x1, 4 * n), rng.uniform(y0, y1, 4 * n)]
        cand = cand[shapely.contains_xy(outline, cand[:, 0], cand[:, 1])]
        col = np.clip(((cand[:, 0] - ag.bounds[0]) / ag.resolution).astype(int), 0, arid.shape[1] - 1)
        row = np.clip(((ag.bounds[3] - cand[:, 1]) / ag.resolution).astype(int), 0, arid.shape[0] - 1)
        keep = rng.uniform(size=len(cand)) < 1.0 / (1.0 + np.exp(1.6 * arid[row, col]))
        pts = np.vstack([pts, cand[keep]])
    pts = pts[:n]
    pts = pts[np.lexsort((pts[:, 0], -pts[:, 1]))]
    points = shapely.points(pts)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(points),
                                                       extend_to=shapely.box(*grid.bounds)))
    pt_idx, cell_idx = shapely.STRtree(cells).query(points, predicate="within")
    order = np.full(n, -1)
    order[pt_idx] = cell_idx
    if np.any(order < 0):
        raise RuntimeError("Voronoi cell matching failed")
    return [g.normalize() for g in shapely.intersection(cells[order], outline)]


def county_class_counts(polygons: list, fields: dict[str, np.ndarray], mask: np.ndarray,
                        thr: dict[str, float], grid) -> dict[int, np.ndarray]:
    """Estimated 30 m pixel counts per county and class (n x 10) per year, from the 960 m fields
    (each cell = FACTOR² px); each county's cropland floored at 0.5 % of its pixels."""
    from rasterio.features import rasterize

    from ecodask.io.rasters import smallest_uint
    from ecodask.synth import class_counts_by_zone

    ag = grid.analysis
    zones = rasterize(((p, i + 1) for i, p in enumerate(polygons)), out_shape=ag.shape,
                      transform=ag.transform, fill=0, dtype=smallest_uint(len(polygons)))
    zones[~mask] = 0
    out = {}
    for y, lc in zip(YEARS, classify(fields, thr), strict=True):
        c = class_counts_by_zone(zones, lc, len(polygons)).astype(np.int64) * FACTOR * FACTOR
        area = np.array([p.area for p in polygons]) / RESOLUTION**2
        c[:, 1] = np.maximum(c[:, 1], np.ceil(0.005 * area)).astype(np.int64)
        out[y] = c
    return out


def _reproject(src: np.ndarray, grid, dst_shape: tuple[int, int], dst_transform, dst_crs: str,
               resampling: str = "bilinear") -> np.ndarray:
    """A 960 m field reprojected onto another grid (float32, NaN outside)."""
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    ag = grid.analysis
    dst = np.full(dst_shape, np.nan, np.float32)
    reproject(np.ascontiguousarray(src, np.float32), dst, src_transform=ag.transform, src_crs=ag.crs,
              dst_transform=dst_transform, dst_crs=dst_crs, resampling=Resampling[resampling],
              dst_nodata=np.nan)
    return dst


def write_drivers(inputs: Path, rng: np.random.Generator, fields: dict[str, np.ndarray],
                  lc_last: np.ndarray, grid) -> dict[str, str]:
    """Elevation (int16 m), population (persons/km²), NDVI on a 1 km CHINA_ALBERS grid; precipitation
    (mm/yr) at 0.01° in EPSG:4326; all derived from the 960 m fields. Returns file names by driver."""
    from rasterio.transform import from_origin
    from rasterio.warp import transform_bounds

    from ecodask.science.grid import CHINA_ALBERS
    from ecodask.synth import NDVI_BY_CLASS, smooth_noise, write_geotiff

    res = 1000.0
    x0, y0 = math.floor(grid.bounds[0] / res) * res, math.floor(grid.bounds[1] / res) * res
    x1, y1 = math.ceil(grid.bounds[2] / res) * res, math.ceil(grid.bounds[3] / res) * res
    shape, tf = (round((y1 - y0) / res), round((x1 - x0) / res)), from_origin(x0, y1, res, res)
    elev = 1500.0 + 1100.0 * fields["elevation"] + 150.0 * fields["rugged"]
    elev = _reproject(np.clip(elev, -150.0, 8000.0), grid, shape, tf, CHINA_ALBERS)
    pop = np.exp(5.0 + 1.1 * fields["urban"] - 0.9 * fields["aridity"]).astype(np.float32)
    table = np.zeros(256, np.float32)
    for code, v in NDVI_BY_CLASS.items():
        table[code] = v
    ndvi = table[lc_last] + 0.05 * smooth_noise(rng, lc_last.shape, 3.0)
    files = {"elevation": "elevation_1km.tif", "population": "population_1km.tif",
             "ndvi": "ndvi_1km.tif", "precipitation": "precipitation_001deg.tif"}
    write_geotiff(inputs / files["elevation"], np.where(np.isfinite(elev), np.rint(elev), -9999)
                  .astype(np.int16), tf, CHINA_ALBERS, -9999)
    write_geotiff(inputs / files["population"], _nodata(_reproject(pop, grid, shape, tf, CHINA_ALBERS)),
                  tf, CHINA_ALBERS, -9999.0)
    write_geotiff(inputs / files["ndvi"], _nodata(_reproject(np.clip(ndvi, -0.2, 0.95), grid, shape, tf,
                                                             CHINA_ALBERS)), tf, CHINA_ALBERS, -9999.0)
    w, s, e, n = transform_bounds(CHINA_ALBERS, "EPSG:4326", *grid.bounds, densify_pts=51)
    d = 0.01
    iw, ie = math.floor(w / d) - 5, math.ceil(e / d) + 5
    is_, in_ = math.floor(s / d) - 5, math.ceil(n / d) + 5
    ptf = from_origin(iw * d, in_ * d, d, d)
    precip = np.clip(650.0 - 420.0 * fields["aridity"] - 60.0 * fields["elevation"], 15.0, 2600.0)
    precip = _reproject(precip, grid, (in_ - is_, ie - iw), ptf, "EPSG:4326")
    write_geotiff(inputs / files["precipitation"], _nodata(precip), ptf, "EPSG:4326", -9999.0)
    return files


def _nodata(a: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(a), a, np.float32(-9999.0)).astype(np.float32)


# ------------------------------------------------------------------------------------------
# the whole


def params(scale: float, seed: int, chunk: int, compress: str) -> dict:
    """What the cached data depends on (``built.json`` holds these plus what was built)."""
    g = national_grid(scale, chunk)
    return {"version": BUILDER_VERSION, "scale": scale, "seed": seed, "compress": compress,
            "bounds": list(g.bounds), "years": list(YEARS), "tile": TILE, "detail_px": DETAIL,
            "counties": n_counties(scale)}


def n_counties(scale: float) -> int:
    """County count: :data:`N_COUNTIES` at scale 1, in proportion to the area below (at least 8)."""
    return max(8, round(N_COUNTIES * scale))


def build(out: Path = Path("bench-output"), scale: float = 1.0, seed: int = 0, chunk: int = 4096,
          compress: str = "zstd", workers: int = 2) -> dict:
    """Build (or reuse) the data; return ``built.json``'s content (params, files, summary, seconds)."""
    import shapely

    from ecodask.synth import county_codes, make_county_stats, write_counties

    root = _root(out, scale)
    data = root / "data"
    stamp = data / "built.json"
    want = params(scale, seed, chunk, compress)
    if stamp.exists():
        built = json.loads(stamp.read_text())
        if built.get("params") == want and all((data / f).exists() for f in built["files"].values()):
            return built
    grid = national_grid(scale, chunk)
    _check_disk(data.parent, grid.width * grid.height * len(YEARS) * 0.1)  # ~0.03 B/px-year measured
    shutil.rmtree(data, ignore_errors=True)
    inputs = data / "inputs"
    inputs.mkdir(parents=True)
    print(f"national data: grid {grid.width} x {grid.height} px ({grid.width * grid.height / 1e9:.2f} Gpx a "
          f"year), years {YEARS}, {n_counties(scale)} counties, under {data}", flush=True)
    secs: dict[str, float] = {}
    t0 = time.perf_counter()
    streams = np.random.SeedSequence([seed, 7]).spawn(4)
    rng_outline, rng_fields, rng_zones, rng_misc = (np.random.default_rng(s) for s in streams)
    outline = country_outline(rng_outline, grid)
    mask = coarse_mask(outline, grid)
    fields = make_fields(rng_fields, mask.shape)
    noisy = with_noise(rng_fields, fields)
    thr = thresholds(noisy, mask)
    fields_dir = data / "fields"
    fields_dir.mkdir()
    for name, a in fields.items():
        np.save(fields_dir / f"{name}.npy", a)
    secs["fields"] = time.perf_counter() - t0

    t, cpu0 = time.perf_counter(), _cpu_seconds()
    jobs, outside = tile_jobs(grid, outline, thr, seed)
    lc_stats = write_landcover(inputs, grid, jobs, fields_dir, compress, workers)
    secs["landcover"] = time.perf_counter() - t
    secs["landcover_cpu"] = _cpu_seconds() - cpu0

    t = time.perf_counter()
    polygons = make_national_counties(rng_zones, outline, fields, grid, n_counties(scale))
    codes, names = county_codes(len(polygons))
    write_counties(inputs / "counties.gpkg", polygons, codes, names)
    secs["counties"] = time.perf_counter() - t

    t = time.perf_counter()
    counts = county_class_counts(polygons, noisy, mask, thr, grid)
    stats = make_county_stats(rng_misc, codes, names, list(YEARS), counts, RESOLUTION)
    stats.to_csv(inputs / "county_stats.csv", index=False, lineterminator="\n")
    lc_last = classify(noisy, thr)[1]
    drivers = write_drivers(inputs, rng_misc, fields, lc_last, grid)
    secs["stats_drivers"] = time.perf_counter() - t
    shutil.rmtree(fields_dir)
    secs["total"] = time.perf_counter() - t0

    files = {f"landcover_{y}": f"inputs/landcover_{y}.tif" for y in YEARS}
    files |= {"counties": "inputs/counties.gpkg", "county_stats": "inputs/county_stats.csv"}
    files |= {f"driver_{k}": f"inputs/{v}" for k, v in drivers.items()}
    n_px = grid.width * grid.height
    summary = {
        "width": grid.width, "height": grid.height, "pixels": n_px,
        "inside_pixels": lc_stats["inside"], "inside_share": lc_stats["inside"] / n_px,
        "changed_pixels": lc_stats["changed"],
        "changed_share_of_inside": lc_stats["changed"] / lc_stats["inside"],
        "class_counts": dict(zip(map(str, YEARS), lc_stats["classes"], strict=True)),
        "tiles_generated": len(jobs), "tiles_outside": outside,
        "tiles_on_border": sum(j.border is not None for j in jobs),
        "counties": len(polygons), "country_area_km2": outline.area / 1e6,
        "outline_vertices": int(shapely.get_num_coordinates(outline)),
        "thresholds": thr,
        "mpx_per_s_landcover": n_px * len(YEARS) / secs["landcover"] / 1e6,
        "mpx_per_cpu_s_landcover": n_px * len(YEARS) / secs["landcover_cpu"] / 1e6,
    }
    built = {"params": want, "files": files, "drivers": {k: f"inputs/{v}" for k, v in drivers.items()},
             "summary": summary, "seconds": secs, "workers": workers,
             "built": time.strftime("%Y-%m-%d %H:%M:%S")}
    stamp.write_text(json.dumps(built, indent=2))
    print(f"  built in {secs['total']:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in secs.items())})",
          flush=True)
    return built


def townships(out: Path = Path("bench-output"), scale: float = 1.0, seed: int = 0, chunk: int = 4096,
              compress: str = "zstd", n: int = 40_000) -> str:
    """``n`` Voronoi zones over the country of :func:`build`'s data (built if missing), drawn like
    its counties (denser where moist) from a stream of their own: a grid of townships (China has
    ~40,000). Written once as ``inputs/townships_<n>.gpkg`` (``code``/``name``); returns its path
    relative to the data folder."""
    from ecodask.synth import county_codes, write_counties

    build(out, scale, seed, chunk, compress)
    rel = f"inputs/townships_{n}.gpkg"
    path = _root(out, scale) / "data" / rel
    if path.exists():
        return rel
    grid = national_grid(scale, chunk)
    streams = np.random.SeedSequence([seed, 7]).spawn(4)
    rng_outline, rng_fields = (np.random.default_rng(s) for s in streams[:2])
    outline = country_outline(rng_outline, grid)
    fields = make_fields(rng_fields, coarse_mask(outline, grid).shape)
    polygons = make_national_counties(np.random.default_rng([seed, 11, n]), outline, fields, grid, n)
    codes, names = county_codes(len(polygons))
    tmp = path.with_suffix(".partial.gpkg")
    write_counties(tmp, polygons, codes, names)
    tmp.rename(path)
    return rel


def _cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its finished child processes."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _check_disk(folder: Path, need_bytes: float) -> None:
    """Stop with a clear error when the file system of ``folder`` has less than ``need_bytes`` free."""
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < need_bytes:
        raise SystemExit(f"error: {need_bytes / 1e9:.1f} GB needed under {folder}, "
                         f"{free / 1e9:.1f} GB free")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the full pixel count")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=4096, help="chunk side of the run's grid, px")
    ap.add_argument("--compress", choices=["zstd", "deflate"], default="zstd")
    ap.add_argument("--workers", type=int, default=2, help="generator processes")
    a = ap.parse_args(argv)
    built = build(a.out, a.scale, a.seed, a.chunk, a.compress, a.workers)
    print(json.dumps(built["summary"], indent=2))


if __name__ == "__main__":
    main()

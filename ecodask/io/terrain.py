"""Slope and aspect of a DEM on the analysis grid: derived at the DEM's own resolution, chunk by
chunk, then averaged onto the grid (a lazy, picklable array-like for ``dask.array.from_array``).

For each chunk of the grid, :class:`TerrainRaster` reads the DEM window (in the DEM's CRS and
resolution) that covers the chunk's footprint, plus ``margin`` pixels for the warp's rounding and a
one-pixel halo for Horn's 3x3 window, computes the quantity per DEM pixel
(:func:`ecodask.kernels.terrain.horn`), and warps it onto the chunk with GDAL's ``average``
(exact transformer, weights by the share of each DEM pixel in the cell, NaN left out):

- ``slope``: the mean slope, degrees, of the DEM pixels in the cell;
- ``eastness`` / ``northness``: the mean sin / cos of the pixels' aspect, flat pixels counting 0
  (a number in [-1, 1]: a regressor, unlike an angle);
- ``aspect``: the circular mean direction of the cell's non-flat pixels, ``atan2`` of the mean
  eastness and northness (flat pixels, counting 0 in both, do not change it), degrees clockwise
  from north; NaN where every pixel is flat or the directions cancel (mean resultant < 1e-6).

The halo and the margin make the chunked result equal to that of the whole DEM derived at once
and warped in one piece. The DEM must be in a projected CRS whose unit is the metre, with
elevations in metres (checked by the run before ingest: :func:`terrain_crs_reason`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.errors import RasterioError

from ecodask.errors import InputError, problem
from ecodask.io.rasters import _OnGrid, _slices, open_raster, source_window, warp_array
from ecodask.kernels.terrain import circular_mean_deg, horn
from ecodask.science.grid import Grid

#: What a DEM driver can be derived into (``drivers.<name>.derive`` in a run's configuration).
DERIVED = ("slope", "aspect", "eastness", "northness")
#: Units of each, and how it is brought onto the grid (the store's attributes).
TERRAIN_UNITS = {"slope": "degree", "aspect": "degree clockwise from north", "eastness": "1",
                 "northness": "1"}
TERRAIN_RESAMPLING = {
    "slope": "average of the slope at the DEM's resolution",
    "aspect": "circular mean of the non-flat aspects at the DEM's resolution (atan2 of mean sin, mean cos)",
    "eastness": "average of sin(aspect) at the DEM's resolution, flat pixels 0",
    "northness": "average of cos(aspect) at the DEM's resolution, flat pixels 0",
}


def terrain_crs_reason(crs: object, transform: Affine) -> str | None:
    """Why a DEM with ``crs`` and ``transform`` cannot give slope and aspect, or None: it needs a
    projected CRS in metres (a geographic CRS's degrees are no lengths) and an unrotated grid."""
    if crs is None:
        return "the raster has no CRS"
    if not crs.is_projected:
        return ("slope and aspect need a DEM in a projected CRS in metres, not a geographic one "
                "(reproject it first, e.g. gdalwarp -t_srs EPSG:<UTM zone> -r bilinear)")
    unit, factor = crs.linear_units_factor
    if not math.isclose(factor, 1.0):
        return f"slope and aspect need a projected CRS in metres, not {unit}"
    if transform.b != 0 or transform.d != 0:
        return "slope and aspect need a north-up grid without rotation"
    return None


@dataclass(frozen=True)
class TerrainRaster(_OnGrid):
    """``what`` (one of :data:`DERIVED`) of the DEM in band 1 of ``path``, on ``grid`` (see the
    module's docstring), float32, NaN where there is no value. ``halo``: DEM pixels read beyond
    the chunk's footprint for Horn's window (1); ``margin``: more for the warp's rounding (2);
    the defaults make the chunks equal the whole (less is for tests)."""

    path: str
    grid: Grid
    what: str
    halo: int = 1
    margin: int = 2

    def __post_init__(self) -> None:
        if self.what not in DERIVED:
            raise ValueError(f"what must be one of {', '.join(DERIVED)}, not {self.what!r}")

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        r0, r1, c0, c1 = _slices(key, self.shape)
        if r1 <= r0 or c1 <= c0:
            return np.full((max(r1 - r0, 0), max(c1 - c0, 0)), np.nan, np.float32)
        try:
            return self._read(r0, r1, c0, c1)
        except RasterioError as exc:  # a truncated file, a corrupt compressed tile: the input's fault
            reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        window = f"rows {r0}:{r1}, columns {c0}:{c1}"  # raised outside the handler (see WarpedRaster)
        raise InputError([problem(self.path, f"band 1, window of the analysis grid ({self.what})", window,
                                  f"cannot be read: a truncated file or a corrupt tile? ({reason})")])

    def _read(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        h, w = r1 - r0, c1 - c0
        dst_t = self.grid.transform @ Affine.translation(c0, r0)
        out = np.full((2 if self.what == "aspect" else 1, h, w), np.nan, np.float32)
        with open_raster(self.path) as src:
            z, src_t = self._dem_window(src, dst_t, h, w)
            if z is None:
                return out[0]
            parts = ("eastness", "northness") if self.what == "aspect" else (self.what,)
            derived = np.stack([horn(z, src_t.a, src_t.e, p) for p in parts])
            out = warp_array(derived, src_t, src.crs, dst_t, self.grid.crs, (h, w),
                             Resampling.average).astype(np.float32, copy=False)
        return circular_mean_deg(out[0], out[1]) if self.what == "aspect" else out[0]

    def _dem_window(self, src: rasterio.io.DatasetReader, dst_t: Affine, h: int,
                    w: int) -> tuple[np.ndarray | None, Affine]:
        """The DEM around the chunk's footprint (NaN for no data and outside the DEM), with its
        transform; None when the footprint misses the DEM."""
        ftype = np.float64 if np.dtype(src.dtypes[0]) == np.float64 else np.float32
        # Horn's window needs the halo; the warp's rounding the margin.
        return source_window(src, self.grid.crs, dst_t, h, w, np.dtype(ftype), self.halo, self.margin)

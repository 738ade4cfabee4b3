"""The run's raster grid: an equal-area CRS, a square pixel (m) and an analysis grid whose
cell is an integer multiple of the pixel. Pure geometry; no I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from affine import Affine
from pyproj import CRS

#: CLCD's Albers equal-area projection for China (WGS84 ellipsoid).
CHINA_ALBERS = (
    "+proj=aea +lat_0=0 +lon_0=105 +lat_1=25 +lat_2=47 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
)

#: PROJ method names of projections that preserve area.
EQUAL_AREA_METHODS = frozenset(
    {
        "Albers Equal Area",
        "Lambert Azimuthal Equal Area",
        "Lambert Azimuthal Equal Area (Spherical)",
        "Lambert Cylindrical Equal Area",
        "Lambert Cylindrical Equal Area (Spherical)",
        "Equal Earth",
        "Mollweide",
        "Sinusoidal",
        "Eckert IV",
        "Eckert VI",
        "Goode Homolosine",
        "Interrupted Goode Homolosine",
        "Quartic Authalic",
    }
)


def equal_area_reason(crs: CRS) -> str | None:
    """None if ``crs`` is a projected equal-area CRS in metres, else why not."""
    if not crs.is_projected:
        return "not a projected CRS (areas of geographic pixels vary with latitude)"
    op = crs.coordinate_operation
    method = op.method_name if op is not None else "unknown"
    if method not in EQUAL_AREA_METHODS:
        return f"projection method {method!r} does not preserve area"
    unit = crs.axis_info[0].unit_name if crs.axis_info else "unknown"
    if unit != "metre":
        return f"axis unit {unit!r} is not metre"
    return None


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid.

    ``bounds`` (xmin, ymin, xmax, ymax) in CRS metres, a multiple of the analysis cell
    ``resolution * analysis_factor`` on both axes, so the analysis grid nests exactly.
    """

    crs: CRS
    resolution: float
    analysis_factor: int
    bounds: tuple[float, float, float, float]
    chunk_size: int = 4096

    def __post_init__(self) -> None:
        xmin, ymin, xmax, ymax = self.bounds
        cell = self.analysis_cell
        for v in (xmax - xmin, ymax - ymin):
            if v <= 0 or abs(v / cell - round(v / cell)) > 1e-9:
                raise ValueError(f"grid bounds {self.bounds} are not a positive multiple of {cell} m")
        if self.chunk_size % self.analysis_factor:
            raise ValueError(
                f"chunk_size {self.chunk_size} must be a multiple of analysis_factor "
                f"{self.analysis_factor}"
            )

    @classmethod
    def covering(
        cls,
        crs: CRS,
        resolution: float,
        analysis_factor: int,
        bounds: tuple[float, float, float, float],
        chunk_size: int = 4096,
    ) -> Grid:
        """The smallest grid whose analysis cells (on multiples of the cell size) cover ``bounds``."""
        cell = resolution * analysis_factor
        xmin, ymin, xmax, ymax = bounds
        snapped = (
            math.floor(xmin / cell) * cell,
            math.floor(ymin / cell) * cell,
            math.ceil(xmax / cell) * cell,
            math.ceil(ymax / cell) * cell,
        )
        return cls(crs, resolution, analysis_factor, snapped, chunk_size)

    @property
    def analysis_cell(self) -> float:
        """Analysis cell size, m."""
        return self.resolution * self.analysis_factor

    @property
    def width(self) -> int:
        return round((self.bounds[2] - self.bounds[0]) / self.resolution)

    @property
    def height(self) -> int:
        return round((self.bounds[3] - self.bounds[1]) / self.resolution)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the pixel grid."""
        return self.height, self.width

    @property
    def transform(self) -> Affine:
        return Affine(self.resolution, 0.0, self.bounds[0], 0.0, -self.resolution, self.bounds[3])

    @property
    def pixel_area_ha(self) -> float:
        """Area of one pixel, ha (0.09 at 30 m)."""
        return self.resolution * self.resolution / 10_000.0

    @property
    def analysis(self) -> Grid:
        """The analysis grid (cell = analysis_factor pixels), chunked to match the pixel grid."""
        return Grid(
            self.crs,
            self.analysis_cell,
            1,
            self.bounds,
            max(1, self.chunk_size // self.analysis_factor),
        )

    def coords(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates (x ascending, y descending), m, float64."""
        r, (x0, _, _, y1) = self.resolution, self.bounds
        xs = x0 + (np.arange(self.width) + 0.5) * r
        ys = y1 - (np.arange(self.height) + 0.5) * r
        return xs, ys

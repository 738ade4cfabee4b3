"""Map figures (PNG, matplotlib without pyplot): a grid or county polygons on their projected CRS,
with a title, a legend or colour bar with units, a north arrow pointing to true north at the map's
centre, a scale bar in km, the CRS named under the map, and county boundaries for orientation.

Grids come from the analysis grid (one value per analysis cell) or an overview of the pixel grid,
never the 30 m array itself (see :mod:`ecodask.run.stages.figures`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, Colormap, ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from pyproj import CRS, Transformer

from ecodask.io.atomic import write_atomic

#: Figure resolution, dots per inch.
DPI = 150


def save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as PNG atomically (a partial file renamed); return the path."""
    return write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=DPI, bbox_inches="tight", format="png",
                                                       facecolor="white"))


@dataclass(frozen=True)
class GridFrame:
    """Where a grid lies: ``extent`` (left, right, bottom, top) in CRS units (m) of the cell edges,
    the cell size (m) and the CRS."""

    extent: tuple[float, float, float, float]
    cell_m: float | None
    crs: CRS

    @classmethod
    def around(cls, bounds: Sequence[float], crs: object, margin: float = 0.03) -> GridFrame:
        """A frame around ``bounds`` (minx, miny, maxx, maxy; polygons) with a margin, no cells."""
        minx, miny, maxx, maxy = (float(b) for b in bounds)
        pad = margin * max(maxx - minx, maxy - miny)
        return cls((minx - pad, maxx + pad, miny - pad, maxy + pad), None, CRS.from_user_input(crs))

    @classmethod
    def from_coords(cls, x: np.ndarray, y: np.ndarray, crs: object) -> GridFrame:
        """From cell-centre coordinates (x increasing, y decreasing, regular spacing)."""
        x = np.asarray(x, float)
        y = np.asarray(y, float)
        dx = abs(float(x[1] - x[0])) if x.size > 1 else abs(float(y[0] - y[1]))
        dy = abs(float(y[0] - y[1])) if y.size > 1 else dx
        return cls((float(x.min()) - dx / 2, float(x.max()) + dx / 2, float(y.min()) - dy / 2,
                    float(y.max()) + dy / 2), dx, CRS.from_user_input(crs))


def crs_label(crs: CRS) -> str:
    """A short name of a CRS for a map caption: its name and EPSG code if it has one; an unnamed
    Albers CRS (the run grid's usual PROJ string) by its central meridian and standard parallels."""
    name = crs.name
    op = crs.coordinate_operation
    if (not name or name == "unknown") and op is not None:
        p = {q.name: q.value for q in op.params}
        if "Albers" in op.method_name:
            name = (f"Albers equal-area, lon0 {p.get('Longitude of false origin', 0):g}°, parallels "
                    f"{p.get('Latitude of 1st standard parallel', 0):g}° and "
                    f"{p.get('Latitude of 2nd standard parallel', 0):g}°, {crs.ellipsoid.name}")
        else:
            name = f"{op.method_name}, {crs.ellipsoid.name}"
    epsg = crs.to_epsg(min_confidence=70)
    return f"CRS: {name}" + (f" (EPSG:{epsg})" if epsg else "")


def true_north_degrees(crs: CRS, x: float, y: float) -> float:
    """The angle (degrees, counter-clockwise from the grid's up) of true north at ``(x, y)``."""
    if not crs.is_projected:
        return 0.0
    to_geo = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
    from_geo = Transformer.from_crs(crs.geodetic_crs, crs, always_xy=True)
    lon, lat = to_geo.transform(x, y)
    x2, y2 = from_geo.transform(lon, min(lat + 0.05, 89.9))
    return math.degrees(math.atan2(-(x2 - x), y2 - y))


def nice_length(span_m: float) -> float:
    """A round scale-bar length (1, 2 or 5 × 10^k m) of about a quarter of ``span_m``."""
    target = max(span_m / 4.0, 1e-9)
    base = 10 ** math.floor(math.log10(target))
    return max(m * base for m in (1, 2, 5) if m * base <= target)


def decorate(ax: Axes, frame: GridFrame) -> None:
    """North arrow (top right), scale bar (bottom left) and the CRS under the map; axes off."""
    left, right, bottom, top = frame.extent
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    for spine in ax.spines.values():
        spine.set_color("#888888")
        spine.set_linewidth(0.6)
    w, h = right - left, top - bottom
    # Scale bar: two segments, black and white, with 0, half and full length in km.
    length = nice_length(w)
    x0, y0, bar_h = left + 0.04 * w, bottom + 0.05 * h, 0.012 * h
    for k, colour in enumerate(("black", "white")):
        ax.add_patch(Rectangle((x0 + k * length / 2, y0), length / 2, bar_h, facecolor=colour,
                               edgecolor="black", linewidth=0.6, zorder=5))
    for frac in (0.0, 0.5, 1.0):
        value = frac * length / 1000.0
        label = f"{value:g}" + (" km" if frac == 1.0 else "")
        ax.text(x0 + frac * length, y0 + 1.6 * bar_h, label, ha="center", va="bottom", fontsize=7, zorder=5,
                bbox={"facecolor": "white", "alpha": 0.6, "edgecolor": "none", "pad": 0.5})
    # North arrow, turned to true north at the centre of the map.
    angle = true_north_degrees(frame.crs, left + w / 2, bottom + h / 2)
    cx, cy, r = 0.93, 0.86, 0.06
    dx, dy = -math.sin(math.radians(angle)) * r, math.cos(math.radians(angle)) * r
    ax.annotate("", xy=(cx + dx, cy + dy), xytext=(cx - dx, cy - dy), xycoords="axes fraction",
                arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.5, "mutation_scale": 14}, zorder=6)
    ax.text(cx + 1.5 * dx, cy + 1.5 * dy, "N", transform=ax.transAxes, ha="center", va="center",
            fontsize=10, fontweight="bold", zorder=6)
    cell = f"; cell {frame.cell_m:g} m" if frame.cell_m else ""
    ax.text(0.0, -0.015, f"{crs_label(frame.crs)}{cell}", transform=ax.transAxes,
            ha="left", va="top", fontsize=6.5, color="#444444")


#: The most cells a map draws across: about twice the figure's width in pixels (a 7.5 in map at
#: 150 dpi is ~1,000 px). A larger grid (a national 960 m grid is 4,096 cells across) is drawn from
#: one cell in every ``k`` (the cell at each block's centre), which is what nearest-neighbour
#: display shows of it anyway, without matplotlib's float64 RGBA copies of the whole grid (1.5 GB a
#: map there; BENCHMARKS.md, "The archive's 39 years").
DRAWN_CELLS = 2048


def _drawn(grids: Sequence[np.ndarray | None], frame: GridFrame,
           ) -> tuple[list[np.ndarray | None], tuple[float, float, float, float]]:
    """``grids`` (same shape, on ``frame``) as drawn: every ``k``-th cell, ``k`` the least stride that
    brings them to :data:`DRAWN_CELLS` across, and the extent of the drawn cells (it may reach past
    the frame by less than ``k`` cells, outside the axes)."""
    shape = next(np.shape(g) for g in grids if g is not None)
    k = max(1, -(-max(shape) // DRAWN_CELLS))
    if k == 1:
        return list(grids), frame.extent
    rows = np.minimum(np.arange(-(-shape[0] // k)) * k + k // 2, shape[0] - 1)
    cols = np.minimum(np.arange(-(-shape[1] // k)) * k + k // 2, shape[1] - 1)
    left, right, bottom, top = frame.extent
    dx, dy = k * (right - left) / shape[1], k * (top - bottom) / shape[0]
    extent = (left, left + len(cols) * dx, top - len(rows) * dy, top)
    return [None if g is None else np.asarray(g)[np.ix_(rows, cols)] for g in grids], extent


def _boundaries(ax: Axes, polygons: object | None) -> None:
    if polygons is not None and len(polygons):
        polygons.boundary.plot(ax=ax, color="#333333", linewidth=0.5, zorder=4)


#: The colour of "no data" on every map: not white (outside the region), not a value's colour.
NODATA_COLOUR = "#b0b0b0"


def _nodata_layer(ax: Axes, mask: np.ndarray | None,
                  extent: tuple[float, float, float, float]) -> list[Patch]:
    """Cells of ``mask`` (drawn over ``extent``) in the no-data colour; the legend entry for it (none
    when no cell is)."""
    if mask is None or not np.any(mask):
        return []
    ax.imshow(np.ma.masked_where(~mask, np.ones(mask.shape)), extent=extent,
              cmap=ListedColormap([NODATA_COLOUR]), interpolation="nearest", zorder=0.9)
    return [Patch(facecolor=NODATA_COLOUR, edgecolor="#555555", linewidth=0.4, label="no data")]


def raster_map(
    values: np.ndarray,
    frame: GridFrame,
    path: str | Path,
    *,
    title: str,
    cmap: str | Colormap,
    units: str,
    norm: Normalize | None = None,
    polygons: object | None = None,
    nodata: np.ndarray | None = None,
) -> Path:
    """A continuous grid (NaN transparent) with a colour bar labelled ``units``; cells of the
    boolean grid ``nodata`` (e.g. inside the zones but without land cover) in grey, with a
    legend entry, apart from white (outside the region) and from a value's colour."""
    (values, nodata), extent = _drawn([values, nodata], frame)
    fig = Figure(figsize=(7.5, 6.0))
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(values), extent=extent, cmap=cmap, norm=norm,
                   interpolation="nearest", zorder=1)
    handles = _nodata_layer(ax, nodata, extent)
    if handles:
        ax.legend(handles=handles, loc="lower left", fontsize=8, frameon=True)
    _boundaries(ax, polygons)
    decorate(ax, frame)
    fig.colorbar(im, ax=ax, shrink=0.75, label=units)
    ax.set_title(title, fontsize=10)
    return save(fig, path)


def category_map(
    codes: np.ndarray,
    frame: GridFrame,
    path: str | Path,
    *,
    title: str,
    classes: Sequence[tuple[int, str, str]],
    legend_title: str,
    polygons: object | None = None,
    nodata: int | None = None,
    nodata_where: np.ndarray | None = None,
) -> Path:
    """A categorical grid: ``classes`` are ``(code, label, colour)``; the legend lists the classes
    present in ``codes``; ``nodata`` cells are grey with a legend entry "no data" where
    ``nodata_where`` (a boolean grid, e.g. inside the zones) holds, else blank like codes not in
    ``classes``."""
    codes = np.asarray(codes)
    present = {int(v) for v in np.unique(codes[np.isfinite(codes)] if codes.dtype.kind == "f" else codes)}
    shown = [c for c in classes if c[0] in present and c[0] != nodata]
    (codes, nodata_where), extent = _drawn([codes, nodata_where], frame)
    fig = Figure(figsize=(8.5, 6.0))
    ax = fig.add_subplot()
    if shown:
        index = np.full(codes.shape, np.nan)
        for i, (code, _, _) in enumerate(shown):
            index[codes == code] = i
        cmap = ListedColormap([c[2] for c in shown])
        ax.imshow(np.ma.masked_invalid(index), extent=extent, cmap=cmap,
                  norm=BoundaryNorm(np.arange(len(shown) + 1) - 0.5, len(shown)), interpolation="nearest",
                  zorder=1)
    missing = _nodata_layer(ax, (codes == nodata) & (True if nodata_where is None else nodata_where)
                            if nodata is not None else None, extent)
    _boundaries(ax, polygons)
    decorate(ax, frame)
    handles = [Patch(facecolor=colour, edgecolor="#555555", linewidth=0.4, label=label)
               for _, label, colour in shown] + missing
    ax.legend(handles=handles, title=legend_title, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              fontsize=8, title_fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10)
    return save(fig, path)

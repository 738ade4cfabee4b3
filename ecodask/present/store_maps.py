"""The figures of a run drawn from its store and tables, one call per year or chart, on plain
arguments (paths, numbers, class lists, the counties): each call opens what it reads itself, so it
runs anywhere, e.g. as one Dask task on a worker of the run's cluster
(:mod:`ecodask.run.stages.figures` builds those tasks). Dask computations inside a call run on the
synchronous scheduler: a task never calls back into the cluster it runs on.

Maps are drawn by :mod:`ecodask.present.maps` (matplotlib, Agg backend: no display), charts by
:mod:`ecodask.present.plots`; every file is written atomically. Each call that draws frees its
figures before it returns (:func:`frees_figures`): a worker draws a year after another.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ecodask.io.layers import Layers

#: Percentile of the absolute ESV density (and of its change) that ends a map's colour scale.
LIMIT_PERCENTILE = 99.0

#: How a nested Dask computation runs inside a task (never on the distributed client of the run).
NESTED = "synchronous"


@dataclass(frozen=True)
class RunMaps:
    """What every map of a run shares (plain values, sent to each task).

    ``store``: the run's Zarr store; ``out``: the figures folder; ``name``: the run's name (titles);
    ``crs``: the run grid's CRS (any form pyproj reads); ``classes``: land-use classes
    ``(code, label, colour)``; ``scheme``: the class scheme's name; ``nodata``: its no-data code;
    ``hotspot_classes``: Gi* classes ``(value, label, colour)``; ``step``: 30 m pixels per side of a
    land-use map's cell (1: every pixel)."""

    store: Path | Layers  # a store's folder, or a remote run's layers
    out: Path
    name: str
    crs: str
    classes: tuple[tuple[int, str, str], ...]
    scheme: str
    nodata: int
    hotspot_classes: tuple[tuple[int, str, str], ...]
    step: int


def frees_figures[**P, R](draw: Callable[P, R]) -> Callable[P, R]:
    """``draw`` followed by a full collection of Python's garbage (:func:`gc.collect`), also when
    it raises.

    A matplotlib figure is a web of reference cycles (figure, axes, artists, callbacks), so it is
    not freed when the last name of it goes but at the next collection of the oldest generation;
    by then its objects are old. CPython collects that generation only when the objects that
    reached it since the last such collection exceed a quarter of all the old ones, and a Dask
    worker holds ~330,000 (Dask, pandas, matplotlib, GDAL's bindings): a worker drawing a year's
    maps after another kept 9-12 years of figures (their Agg canvases, image arrays: 4-15 MB a
    year) before it let them go, up to +0.07 GB of a worker's peak at 39 years (BENCHMARKS.md,
    "The archive's 39 years"). The collection costs ~0.1 s (a year's maps: 1-2 s at 1 % of the
    national extent)."""

    @functools.wraps(draw)
    def drawn(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return draw(*args, **kwargs)
        finally:
            gc.collect()

    return drawn


def use_agg() -> None:
    """Matplotlib on the Agg backend (files only, no display) in this process; a no-op when it is."""
    import matplotlib

    matplotlib.use("agg")  # returns at once when Agg is already the backend


def finite_limit(a: np.ndarray, q: float = LIMIT_PERCENTILE) -> float:
    """The ``q``-th percentile of ``|a|`` over its finite cells (0 when none is finite)."""
    v = np.abs(a[np.isfinite(a)])
    return float(np.percentile(v, q)) if v.size else 0.0


def common_limit(*limits: float) -> float:
    """One colour scale for every year: the largest per-year limit (1 when all are 0)."""
    return max(limits, default=0.0) or 1.0


def _frames(spec: RunMaps):  # noqa: ANN202 - (pixel Dataset, analysis Dataset, land-use frame, analysis frame)
    from ecodask.io.store import open_store
    from ecodask.present.maps import GridFrame

    pix, ana = open_store(spec.store)
    frame = GridFrame.from_coords(ana["x"].values, ana["y"].values, spec.crs)
    return pix, ana, pixel_frame(pix["x"].values, pix["y"].values, spec.step, spec.crs), frame


def pixel_frame(x: np.ndarray, y: np.ndarray, step: int, crs: object):  # noqa: ANN201 - maps.GridFrame
    """The frame of the pixel grid (cell-centre coordinates ``x``, ``y``, m) drawn in cells of
    ``step`` pixels (as :func:`ecodask.chunked.overview.landcover_overview` cuts it)."""
    from ecodask.present.maps import GridFrame

    res = abs(float(x[1] - x[0]))
    left, top = float(x[0]) - res / 2, float(y[0]) + res / 2
    ny, nx = -(-len(y) // step), -(-len(x) // step)
    return GridFrame((left, left + nx * step * res, top - ny * step * res, top), step * res,
                     GridFrame.from_coords(x[:2], y[:2], crs).crs)


def inside(polygons, frame) -> np.ndarray:  # noqa: ANN001 - GeoDataFrame, maps.GridFrame
    """Cells of ``frame`` whose centre lies in a zone polygon (boolean grid)."""
    from affine import Affine
    from rasterio.features import geometry_mask

    left, right, bottom, top = frame.extent
    cell = frame.cell_m
    shape = (round((top - bottom) / cell), round((right - left) / cell))
    return ~geometry_mask(list(polygons.geometry), shape, Affine(cell, 0, left, 0, -cell, top))


def region_masks(spec: RunMaps, counties) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001 - GeoDataFrame
    """The cells inside the counties on the land-use maps' grid and on the analysis grid (boolean):
    where a cell without data is drawn grey ("no data") rather than blank."""
    _, _, lc_frame, frame = _frames(spec)
    return inside(counties, lc_frame), inside(counties, frame)


def drawn(draw: Callable[..., Path | list[Path]], *args: object, **kwargs: object) -> dict[str, bytes]:
    """Call ``draw`` where this runs, drawing into a fresh temporary folder: each :class:`RunMaps`
    argument's ``out`` moved there, a ``path`` keyword (a file name) placed there, every keyword
    given as bytes (a Parquet file's, e.g. ``table``) read from memory; return the files it drew by
    name, as bytes (:mod:`ecodask.io.scratch`: a worker needs no disk the flow sees)."""
    import io

    from ecodask.io.scratch import collected

    def work(root: Path) -> dict[str, Path]:
        a = [replace(x, out=root) if isinstance(x, RunMaps) else x for x in args]
        kw = {k: root / str(v) if k == "path" else io.BytesIO(v) if isinstance(v, bytes) else v
              for k, v in kwargs.items()}
        result = draw(*a, **kw)
        return {Path(p).name: Path(p) for p in (result if isinstance(result, list) else [result])}

    return collected(work)[1]


def esv_limit(store: Path | Layers, index: int, q: float = LIMIT_PERCENTILE) -> float:
    """The ``q``-th percentile of the absolute ESV density (CNY/ha/yr) of year number ``index`` of
    the store (its analysis grid)."""
    from ecodask.io.store import ESV_DENSITY, open_store

    _, ana = open_store(store)
    return finite_limit(ana[ESV_DENSITY].data[index].compute(scheduler=NESTED), q)


@frees_figures
def year_maps(spec: RunMaps, index: int, year: int, top: float, counties,  # noqa: ANN001 - GeoDataFrame
              masks: tuple[np.ndarray, np.ndarray]) -> list[Path]:
    """Draw the maps of year number ``index`` (``year``) of the store: ``landuse_<year>.png`` (the
    modal class of each land-use map cell), ``esv_<year>.png`` (ESV density, CNY/ha/yr, colour scale
    0..``top``) and ``hotspots_<year>.png`` (Gi* classes; only when the store has them), with the
    county boundaries; ``masks`` from :func:`region_masks`. Returns the paths written."""
    import dask.array as da
    from matplotlib.colors import Normalize

    from ecodask.chunked.overview import landcover_overview
    from ecodask.io.store import ESV_DENSITY, ESV_HOTSPOT, LANDCOVER
    from ecodask.present import maps
    from ecodask.science.hotspots import CLASS_NODATA

    use_agg()
    pix, ana, lc_frame, frame = _frames(spec)
    lc_inside, in_region = masks
    hot = ana[ESV_HOTSPOT].data[index] if ESV_HOTSPOT in ana else None
    overview, d, h = da.compute(landcover_overview(pix[LANDCOVER].data[index], spec.step, spec.nodata),
                                ana[ESV_DENSITY].data[index], hot, scheduler=NESTED)
    out, name = spec.out, spec.name
    paths = [maps.category_map(overview, lc_frame, out / f"landuse_{year}.png", classes=spec.classes,
                               title=f"Land use {year}, {name}" + (
                                   f" (modal class per {lc_frame.cell_m:g} m cell)" if spec.step > 1 else ""),
                               legend_title=f"class ({spec.scheme})", polygons=counties, nodata=spec.nodata,
                               nodata_where=lc_inside),
             maps.raster_map(d, frame, out / f"esv_{year}.png", cmap="YlGn", norm=Normalize(0.0, top),
                             units="ESV density, CNY/ha/yr", title=f"Ecosystem service value {year}, {name}",
                             polygons=counties, nodata=in_region & ~np.isfinite(d))]
    if h is not None:
        h = np.where(np.isfinite(h), h, CLASS_NODATA).astype(np.int16)
        paths.append(maps.category_map(h, frame, out / f"hotspots_{year}.png", classes=spec.hotspot_classes,
                                       legend_title="Gi* class",
                                       title=f"ESV hot and cold spots {year}, {name} (Getis-Ord Gi*)",
                                       polygons=counties, nodata=int(CLASS_NODATA), nodata_where=in_region))
    return paths


@frees_figures
def change_map(spec: RunMaps, years: Sequence[int], counties) -> Path:  # noqa: ANN001 - GeoDataFrame
    """``esv_change_<first>_<last>.png``: the ESV density of the store's last year minus its first
    (CNY/ha/yr), diverging colours centred on 0 up to the 99th percentile of the absolute change."""
    import dask.array as da
    from matplotlib.colors import TwoSlopeNorm

    from ecodask.io.store import ESV_DENSITY
    from ecodask.present import maps

    use_agg()
    _, ana, _, frame = _frames(spec)
    density = ana[ESV_DENSITY].data
    first, last = da.compute(density[0], density[len(years) - 1], scheduler=NESTED)
    change = last - first
    lim = finite_limit(change) or 1.0
    return maps.raster_map(change, frame, spec.out / f"esv_change_{years[0]}_{years[-1]}.png", cmap="RdBu",
                           norm=TwoSlopeNorm(0.0, -lim, lim), units="ESV density change, CNY/ha/yr",
                           title=f"ESV change {years[0]}–{years[-1]}, {spec.name} (blue gain, red loss)",
                           polygons=counties)


@frees_figures
def esv_chart(table: Path | BinaryIO, region_id: str, path: Path, title: str) -> Path:
    """``esv_by_service.png`` from the table ``esv_by_service`` (parquet): the rows of zone
    ``region_id`` (the whole region)."""
    import pandas as pd

    from ecodask.present import plots

    use_agg()
    esv = pd.read_parquet(table)
    return plots.esv_stacked_bars(esv[esv["zone_id"] == region_id], path, title=title)


@frees_figures
def coverage_chart(table: Path | BinaryIO, region_id: str, counties, min_coverage: float, path: Path,  # noqa: ANN001
                   title: str) -> Path:
    """``coverage.png`` from the table ``coverage`` (parquet): each county's lowest land-cover
    coverage over the years (share 0..1) on the ``counties`` (GeoDataFrame with ``zone_id``)."""
    import pandas as pd

    from ecodask.present import plots

    use_agg()
    coverage = pd.read_parquet(table)
    lowest = (coverage[coverage["zone_id"] != region_id].groupby("zone_id")["coverage"].min()
              .rename("coverage").reset_index())
    geo = counties.astype({"zone_id": str}).merge(lowest, on="zone_id", how="left")
    return plots.coverage_map(geo, path, min_coverage, title=title)


@frees_figures
def flows_chart(table: Path | BinaryIO, region_id: str, classes: Sequence[tuple[int, str, str]], path: Path,
                title: str) -> Path:
    """``landuse_flows.png`` from the table ``transitions`` (parquet): the region's transitions."""
    import pandas as pd

    from ecodask.present import plots

    use_agg()
    tr = pd.read_parquet(table)
    return plots.land_use_flows(tr[tr["zone_id"] == region_id], list(classes), path, title=title)


@frees_figures
def scenario_chart(esv: Path | BinaryIO, table: Path | BinaryIO, region_id: str, path: Path,
                   title: str) -> Path:
    """``scenarios.png`` from the tables ``esv_by_service`` and ``scenario_esv`` (parquet): the whole
    region's (``region_id``) observed total ESV and each scenario's projection."""
    import pandas as pd

    from ecodask.present import plots
    from ecodask.science.landuse import TOTAL

    use_agg()
    e = pd.read_parquet(esv)
    s = pd.read_parquet(table)
    observed = e[(e["zone_id"] == region_id) & (e["level"] == TOTAL)]
    return plots.scenario_lines(observed, s[(s["zone_id"] == region_id) & (s["item"] == TOTAL)], path,
                                title=title)


@frees_figures
def tradeoff_chart(table: Path | BinaryIO, path: Path, title: str, across: str = "zones") -> Path:
    """``service_tradeoffs.png`` from the table ``service_tradeoffs`` (parquet), or
    ``service_tradeoffs_cells.png`` from ``service_tradeoffs_cells`` (``across="analysis cells"``):
    its last year. Dots: p < 0.05 across the zones, ``|rho| >= RHO_MIN`` across the cells."""
    import pandas as pd

    from ecodask.present import plots
    from ecodask.science.tradeoffs import RHO_MIN

    use_agg()
    t = pd.read_parquet(table)
    marked = f"|rho| ≥ {RHO_MIN:g}" if "cells" in across else "p < 0.05"
    return plots.tradeoff_heatmap(t[t["year"] == t["year"].max()], path, title=title, across=across,
                                  marked=marked)

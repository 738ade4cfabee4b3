"""Stage ``figures``: the figures of a run (PNG under ``<output>/figures/``), drawn from the store's
analysis grid and the written tables, never from the 30 m arrays:

- ``landuse_<year>.png``: land use per year in the class scheme's colours (CLCD's colour table), from
  the modal class of each analysis cell (an overview computed chunk by chunk with Dask,
  :func:`landcover_overview`);
- ``esv_<year>.png``: ESV density per year (CNY/ha/yr, one colour scale for all years);
- ``esv_change_<first>_<last>.png``: change of ESV density from the first to the last year
  (CNY/ha/yr, diverging colours centred on 0);
- ``hotspots_<year>.png``: Getis-Ord Gi* hot and cold spots of ESV density per year;
- ``esv_by_service.png``: the region's ESV per year stacked by service (10^8 CNY/yr);
- ``landuse_flows.png``: Sankey diagram of the region's land-use transitions between the years.

The driver and compensation stages draw their own charts beside these (q bars, interaction heat
map, compensation choropleths). Every map has a north arrow, a scale bar, its CRS and the county
boundaries.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecodask.errors import InputError, problem
from ecodask.io.catalogs import load_class_scheme
from ecodask.io.layout import RunFolder
from ecodask.run.config import RunConfig
from ecodask.run.stages import Stage, catalog_entry

#: Hot/cold spot classes (value of ``analysis/esv_hotspot``, label, colour), as ArcGIS draws them.
HOTSPOT_CLASSES = [(3, "hot spot, 99 % confidence", "#d62f27"), (2, "hot spot, 95 %", "#ed7551"),
                   (1, "hot spot, 90 %", "#fab984"), (0, "not significant", "#eeeee4"),
                   (-1, "cold spot, 90 %", "#c0ccbe"), (-2, "cold spot, 95 %", "#849eba"),
                   (-3, "cold spot, 99 %", "#4575b5")]




def _finite_limit(a: np.ndarray, q: float) -> float:
    v = np.abs(a[np.isfinite(a)])
    return float(np.percentile(v, q)) if v.size else 0.0


#: The most cells a land-use map draws across (about the figure's width in pixels).
MAP_CELLS = 1600


def overview_step(size_px: int, factor: int) -> int:
    """Pixels per side of a land-use map's cell: the smallest divisor of the analysis ``factor``
    that draws the grid's ``size_px`` in at most :data:`MAP_CELLS` cells (the factor itself when
    none does: then the map shows analysis cells)."""
    for step in (d for d in range(1, factor + 1) if factor % d == 0):
        if -(-size_px // step) <= MAP_CELLS:
            return step
    return factor


def _pixel_frame(pix, step: int, crs: object):  # noqa: ANN001, ANN202 - xarray Dataset, maps.GridFrame
    """The frame of the pixel grid drawn in cells of ``step`` pixels (as landcover_overview cuts it)."""
    from ecodask.present.maps import GridFrame

    x, y = pix["x"].values, pix["y"].values
    res = abs(float(x[1] - x[0]))
    left, top = float(x[0]) - res / 2, float(y[0]) + res / 2
    ny, nx = -(-len(y) // step), -(-len(x) // step)
    return GridFrame((left, left + nx * step * res, top - ny * step * res, top), step * res,
                     GridFrame.from_coords(x[:2], y[:2], crs).crs)


def _inside(polygons, frame) -> np.ndarray:  # noqa: ANN001 - GeoDataFrame, maps.GridFrame
    """Cells of ``frame`` whose centre lies in a zone polygon (boolean grid)."""
    from affine import Affine
    from rasterio.features import geometry_mask

    left, right, bottom, top = frame.extent
    cell = frame.cell_m
    shape = (round((top - bottom) / cell), round((right - left) / cell))
    return ~geometry_mask(list(polygons.geometry), shape, Affine(cell, 0, left, 0, -cell, top))


def run(cfg: RunConfig, store: Path | None) -> dict[str, Path]:
    """Draw every figure of the run (see the module docstring); returns their paths by file name
    (none when ``report.figures`` is false)."""
    import dask.array as da
    import pandas as pd
    from matplotlib.colors import Normalize, TwoSlopeNorm

    from ecodask.chunked.overview import landcover_overview
    from ecodask.io.store import ANALYSIS_GROUP, ESV_DENSITY, ESV_HOTSPOT, LANDCOVER, open_store
    from ecodask.io.zones import read_zones
    from ecodask.present import maps, plots
    from ecodask.science import landuse
    from ecodask.science.hotspots import CLASS_NODATA

    if not cfg.report.figures:
        return {}

    store = Path(store)
    pix, ana = open_store(store)
    if ESV_DENSITY not in ana:
        raise InputError([problem(store, f"{ANALYSIS_GROUP}/{ESV_DENSITY}", None,
                                  "missing: run the ESV stage first")])
    folder = RunFolder(cfg.output)
    out = folder.figures
    years = [int(y) for y in ana["year"].values]
    frame = maps.GridFrame.from_coords(ana["x"].values, ana["y"].values, cfg.grid.crs)
    z = cfg.zones
    counties = read_zones(z.path, z.id_field, z.name_field, cfg.grid.crs, z.layer)
    scheme = load_class_scheme(cfg.landcover.scheme, cfg.catalogs)
    classes = [(code, c.name.replace("_", " "), c.color) for code, c in sorted(scheme.classes.items())]
    factor = int(pix.attrs["analysis_factor"])
    lc = pix[LANDCOVER].data
    density = ana[ESV_DENSITY].data
    hot = ana[ESV_HOTSPOT].data if ESV_HOTSPOT in ana else None
    # One year at a time: the flow process holds a few analysis grids, not all years' (39 at national
    # scale). A first pass gives one colour scale for every year's ESV map.
    top = max(_finite_limit(density[i].compute(), 99.0) for i in range(len(years))) or 1.0
    paths: dict[str, Path] = {}

    def put(path: Path) -> None:
        paths[path.name] = path

    name = cfg.name
    first = last = None
    # Land use at the finest resolution the figure shows (30 m for a small region), like a GIS's
    # overviews; ESV and hot spots on the analysis grid they are computed on.
    step = overview_step(max(pix.sizes["y"], pix.sizes["x"]), factor)
    lc_frame = _pixel_frame(pix, step, cfg.grid.crs)
    lc_inside = _inside(counties, lc_frame)
    inside = _inside(counties, frame)
    for i, year in enumerate(years):
        overview, d, h = da.compute(landcover_overview(lc[i], step, scheme.nodata), density[i],
                                    hot[i] if hot is not None else None)
        put(maps.category_map(overview, lc_frame, out / f"landuse_{year}.png", classes=classes,
                              title=f"Land use {year}, {name}" + (
                                  f" (modal class per {lc_frame.cell_m:g} m cell)" if step > 1 else ""),
                              legend_title=f"class ({scheme.name})", polygons=counties, nodata=scheme.nodata,
                              nodata_where=lc_inside))
        put(maps.raster_map(d, frame, out / f"esv_{year}.png", cmap="YlGn",
                            norm=Normalize(0.0, top), units="ESV density, CNY/ha/yr",
                            title=f"Ecosystem service value {year}, {name}", polygons=counties,
                            nodata=inside & ~np.isfinite(d)))
        if h is not None:
            h = np.where(np.isfinite(h), h, CLASS_NODATA).astype(np.int16)
            put(maps.category_map(h, frame, out / f"hotspots_{year}.png", classes=HOTSPOT_CLASSES,
                                  legend_title="Gi* class",
                                  title=f"ESV hot and cold spots {year}, {name} (Getis-Ord Gi*)",
                                  polygons=counties, nodata=int(CLASS_NODATA), nodata_where=inside))
        first = d if i == 0 else first
        last = d
    if len(years) > 1:
        change = last - first
        lim = _finite_limit(change, 99.0) or 1.0
        put(maps.raster_map(change, frame, out / f"esv_change_{years[0]}_{years[-1]}.png", cmap="RdBu",
                            norm=TwoSlopeNorm(0.0, -lim, lim), units="ESV density change, CNY/ha/yr",
                            title=f"ESV change {years[0]}–{years[-1]}, {name} (blue gain, red loss)",
                            polygons=counties))
    esv = pd.read_parquet(folder.table_path("esv_by_service"))
    put(plots.esv_stacked_bars(esv[esv["zone_id"] == landuse.REGION_ID], out / "esv_by_service.png",
                               title=f"ESV of the whole region by service, {name} ({cfg.esv.table})"))
    coverage = folder.table("coverage")
    if coverage is not None:
        lowest = (coverage[coverage["zone_id"] != landuse.REGION_ID].groupby("zone_id")["coverage"].min()
                  .rename("coverage").reset_index())
        geo = counties.astype({"zone_id": str}).merge(lowest, on="zone_id", how="left")
        put(plots.coverage_map(geo, out / "coverage.png", cfg.zones.min_coverage,
                               title=f"Land-cover coverage of each zone, {name} (lowest year)"))
    if len(years) > 1:
        tr = pd.read_parquet(folder.table_path("transitions"))
        put(plots.land_use_flows(tr[tr["zone_id"] == landuse.REGION_ID], classes, out / "landuse_flows.png",
                                 title=f"Land-use transitions, {name}"))
    return paths


def config_parts(cfg: RunConfig) -> dict[str, object]:
    c = cfg.model_dump(mode="json")
    return {"report": c["report"], "name": c["name"], "grid.crs": c["grid"]["crs"],
            "landcover.scheme": c["landcover"]["scheme"], "esv.table": c["esv"]["table"],
            "zones.min_coverage": cfg.zones.min_coverage}


def input_files(cfg: RunConfig) -> dict[str, Path]:
    return catalog_entry("class_schemes", cfg.landcover.scheme, cfg)  # the classes' colours


STAGE = Stage("figures", ("driver_analysis",), config_parts, input_files, run)

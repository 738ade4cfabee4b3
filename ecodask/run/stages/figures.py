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
- ``landuse_flows.png``: Sankey diagram of the region's land-use transitions between the years;
- ``scenarios.png``: the region's observed ESV and its projection under each land-use scenario
  (with ``landcover.scenarios``);
- ``service_tradeoffs.png``: Spearman's rho between services across the zones, the last year.
- ``service_tradeoffs_cells.png``: the same across the analysis cells (``esv.cell_tradeoffs``).

The driver and compensation stages draw their own charts beside these (q bars, interaction heat
map, compensation choropleths). Every map has a north arrow, a scale bar, its CRS and the county
boundaries.
"""

from __future__ import annotations

import uuid
from functools import partial
from pathlib import Path

from ecodask.errors import InputError, problem
from ecodask.io.catalogs import load_class_scheme
from ecodask.io.layers import Layers
from ecodask.io.layout import SCENARIOS_FIGURE, RunFolder, tradeoffs_figure
from ecodask.run.config import RunConfig
from ecodask.run.stages import Stage, catalog_entry

#: Hot/cold spot classes (value of ``analysis/esv_hotspot``, label, colour), as ArcGIS draws them.
HOTSPOT_CLASSES = [(3, "hot spot, 99 % confidence", "#d62f27"), (2, "hot spot, 95 %", "#ed7551"),
                   (1, "hot spot, 90 %", "#fab984"), (0, "not significant", "#eeeee4"),
                   (-1, "cold spot, 90 %", "#c0ccbe"), (-2, "cold spot, 95 %", "#849eba"),
                   (-3, "cold spot, 99 %", "#4575b5")]

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


def _zones_here(path: Path, id_field: str, name_field: str | None, crs: str, layer: str | None):  # noqa: ANN202
    """The zones read where this runs (a fetched input fetched again on a worker without it)."""
    from ecodask.io.objstore import here
    from ecodask.io.zones import read_zones

    return read_zones(here(path), id_field, name_field, crs, layer)


def run(cfg: RunConfig, store: Path | Layers | None) -> dict[str, Path]:
    """Draw every figure of the run (see the module docstring); returns their paths by file name
    (none when ``report.figures`` is false).

    The drawing runs as Dask tasks, on the workers of the run's cluster when the stage runs under
    it: the counties read once (one task, its result shared), the per-year limits of the ESV
    colour scale (one small task a year), then one task a year drawing that year's three maps
    (:func:`ecodask.present.store_maps.year_maps`), one for the change map and one per chart, all
    in one ``dask.compute``. Each task draws on its own machine and returns its files as bytes
    (:func:`ecodask.present.store_maps.drawn`), written here; the tables the charts read travel
    to them as bytes. This process only opens the store's metadata, builds the graph and writes
    the files."""
    import dask

    from ecodask.io.scratch import placed
    from ecodask.io.store import ANALYSIS_GROUP, ESV_DENSITY, open_store
    from ecodask.present import store_maps
    from ecodask.science import landuse

    if not cfg.report.figures:
        return {}

    store = store if isinstance(store, Layers) else Path(store)
    pix, ana = open_store(store)
    if ESV_DENSITY not in ana:
        where = store if isinstance(store, Path) else store.base
        raise InputError([problem(where, f"{ANALYSIS_GROUP}/{ESV_DENSITY}", None,
                                  "missing: run the ESV stage first")])
    folder = RunFolder(cfg.output)
    out = folder.figures
    years = [int(y) for y in ana["year"].values]
    scheme = load_class_scheme(cfg.landcover.scheme, cfg.catalogs)
    classes = tuple((code, c.name.replace("_", " "), c.color) for code, c in sorted(scheme.classes.items()))
    # Land use at the finest resolution the figure shows (30 m for a small region), like a GIS's
    # overviews; ESV and hot spots on the analysis grid they are computed on.
    step = overview_step(max(pix.sizes["y"], pix.sizes["x"]), int(pix.attrs["analysis_factor"]))
    spec = store_maps.RunMaps(store=store, out=out, name=cfg.name, crs=str(cfg.grid.crs), classes=classes,
                              scheme=scheme.name, nodata=int(scheme.nodata),
                              hotspot_classes=tuple(HOTSPOT_CLASSES), step=step)
    task = partial(dask.delayed, pure=False)  # they write files: each runs, none is a cached result

    def drawn(draw, *args, **kwargs):  # noqa: ANN001, ANN202 - a drawing function, a Delayed
        # Named for what it draws (the task stream, the dashboard): year_maps-<id>, esv_chart-<id>.
        return task(store_maps.drawn)(draw, *args, dask_key_name=f"{draw.__name__}-{uuid.uuid4().hex}",
                                      **kwargs)

    z = cfg.zones
    counties = task(_zones_here)(z.path, z.id_field, z.name_field, cfg.grid.crs, z.layer,
                                 dask_key_name=f"read_zones-{uuid.uuid4().hex}")
    masks = task(store_maps.region_masks)(spec, counties)
    top = task(store_maps.common_limit)(*(task(store_maps.esv_limit)(store, i) for i in range(len(years))))
    draws = [drawn(store_maps.year_maps, spec, i, year, top, counties, masks) for i, year in enumerate(years)]
    if len(years) > 1:
        draws.append(drawn(store_maps.change_map, spec, years, counties))
    region, name = landuse.REGION_ID, cfg.name

    def table(name: str) -> bytes:
        return folder.table_path(name).read_bytes()

    draws.append(drawn(store_maps.esv_chart, table=table("esv_by_service"), region_id=region,
                       path="esv_by_service.png",
                       title=f"ESV of the whole region by service, {name} ({cfg.esv.table})"))
    if folder.table_path("coverage").is_file():
        title = f"Land-cover coverage of each zone, {name} (lowest year)"
        draws.append(drawn(store_maps.coverage_chart, table=table("coverage"), region_id=region,
                           counties=counties, min_coverage=cfg.zones.min_coverage, path="coverage.png",
                           title=title))
    if folder.table_path("service_tradeoffs").is_file():
        title = f"Trade-offs and synergies between services across the zones, {name}, {max(years)}"
        draws.append(drawn(store_maps.tradeoff_chart, table=table("service_tradeoffs"),
                           path=tradeoffs_figure("service_tradeoffs"), title=title))
    if folder.table_path("service_tradeoffs_cells").is_file():
        title = f"Trade-offs and synergies between services across the analysis cells, {name}, {max(years)}"
        draws.append(drawn(store_maps.tradeoff_chart, table=table("service_tradeoffs_cells"),
                           path=tradeoffs_figure("service_tradeoffs_cells"), title=title,
                           across="analysis cells"))
    if folder.table_path("scenario_esv").is_file():
        draws.append(drawn(store_maps.scenario_chart, esv=table("esv_by_service"),
                           table=table("scenario_esv"), region_id=region, path=SCENARIOS_FIGURE,
                           title=f"ESV of the whole region under land-use scenarios, {name}"))
    if len(years) > 1:
        draws.append(drawn(store_maps.flows_chart, table=table("transitions"), region_id=region,
                           classes=classes, path="landuse_flows.png", title=f"Land-use transitions, {name}"))
    paths: dict[str, Path] = {}
    for files in dask.compute(*draws):
        paths |= placed(files, out)
    return paths


def config_parts(c: dict) -> dict[str, object]:
    return {"report": c["report"], "name": c["name"], "grid.crs": c["grid"]["crs"],
            "landcover.scheme": c["landcover"]["scheme"], "esv.table": c["esv"]["table"],
            "zones.min_coverage": c["zones"]["min_coverage"]}


def input_files(cfg: RunConfig) -> dict[str, Path]:
    return catalog_entry("class_schemes", cfg.landcover.scheme, cfg)  # the classes' colours


STAGE = Stage("figures", ("driver_analysis",), config_parts, input_files, run)

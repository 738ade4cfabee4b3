"""Stage ``ingest``: the inputs (GeoTIFFs in any CRS, zone polygons) onto the run's grid in one
Zarr store, and the zone table (``tables/zones.*``: zone index, id, name, polygon area, ha)."""

from __future__ import annotations

from pathlib import Path

from ecodask.io.layers import Layers
from ecodask.io.layout import RunFolder
from ecodask.run.config import RunConfig
from ecodask.run.stages import Stage, catalog_entry


def config_parts(c: dict) -> dict[str, object]:
    enabled = c["compensation"]["enabled"]
    zones = {k: v for k, v in c["zones"].items() if k not in ("min_coverage", "exclude_partial")}
    return {k: c[k] for k in ("grid", "landcover", "drivers")} | {
        "zones": zones, "county_stats": c["county_stats"] if enabled else None,
        "compensation.enabled": enabled}


def input_files(cfg: RunConfig) -> dict[str, Path]:
    files = {f"landcover.{y}": p for y, p in sorted(cfg.landcover.years.items())}
    files["zones"] = cfg.zones.path
    files |= {f"drivers.{n}": d.path for n, d in sorted(cfg.drivers.items())}
    files |= catalog_entry("class_schemes", cfg.landcover.scheme, cfg)  # its codes are checked here
    if cfg.county_stats is not None and cfg.compensation.enabled:
        files["county_stats"] = cfg.county_stats
    return files


def run(cfg: RunConfig, store: Layers | None = None) -> dict[str, Path | str]:
    """Ingest the inputs into the run's Zarr store (in the output folder, or with a remote run's
    ``store`` into its layer) and write the zone table; return the store.
    The land cover's codes inside the zones are counted in the same pass: a code the class scheme
    lacks, or a year without a classified pixel there, is an input error before the drivers are
    read and long before the transitions + ESV pass; so is a driver without a finite value on the
    grid, or with an infinite one (counted as it is written)."""
    import numpy as np

    from ecodask.io.catalogs import load_class_scheme
    from ecodask.io.store import ingest, open_store, store_zones
    from ecodask.io.tables import write_table
    from ecodask.run.inputs import checked
    from ecodask.run.stages.driver_analysis import check_driver_cells
    from ecodask.science.landuse import check_landcover_counts

    scheme = load_class_scheme(cfg.landcover.scheme, cfg.catalogs)
    def codes(inside: np.ndarray) -> None:
        check_landcover_counts(inside, cfg.years, scheme, cfg.landcover.years)

    def drivers(cells: dict[str, tuple[int, int]]) -> None:
        check_driver_cells(cfg, cells, "on the run's grid")

    layer = store.write if isinstance(store, Layers) else None
    where = ingest(checked(cfg), cfg.output, check_codes=codes, check_drivers=drivers, layer=layer)
    pix, _ = open_store(where)
    write_table(store_zones(pix), RunFolder(cfg.output).tables, "zones")
    return {"store": where}


STAGE = Stage("ingest", (), config_parts, input_files, run)

"""Stage ``ingest``: the inputs (GeoTIFFs in any CRS, zone polygons) onto the run's grid in one
Zarr store, and the zone table (``tables/zones.*``: zone index, id, name, polygon area, ha)."""

from __future__ import annotations

from pathlib import Path

from ecodask.io.layout import RunFolder
from ecodask.run.config import RunConfig
from ecodask.run.stages import Stage


def config_parts(cfg: RunConfig) -> dict[str, object]:
    c = cfg.model_dump(mode="json")
    return {k: c[k] for k in ("grid", "landcover", "zones", "drivers")} | {
        "county_stats": c["county_stats"] if cfg.compensation.enabled else None,
        "compensation.enabled": cfg.compensation.enabled}


def input_files(cfg: RunConfig) -> dict[str, Path]:
    files = {f"landcover.{y}": p for y, p in sorted(cfg.landcover.years.items())}
    files["zones"] = cfg.zones.path
    files |= {f"drivers.{n}": d.path for n, d in sorted(cfg.drivers.items())}
    if cfg.county_stats is not None and cfg.compensation.enabled:
        files["county_stats"] = cfg.county_stats
    return files


def run(cfg: RunConfig, _store: Path | None = None) -> dict[str, Path]:
    """Ingest the inputs into the run's Zarr store and write the zone table; return the store."""
    from ecodask.io.store import ingest, open_store, store_zones
    from ecodask.io.tables import write_table
    from ecodask.run.inputs import checked

    store = ingest(checked(cfg), cfg.output)
    pix, _ = open_store(store)
    write_table(store_zones(pix), RunFolder(cfg.output).tables, "zones")
    return {"store": store}


STAGE = Stage("ingest", (), config_parts, input_files, run)

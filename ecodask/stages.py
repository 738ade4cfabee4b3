"""The steps of a run as plain functions (no Prefect): each takes the config and paths, writes its
outputs atomically and returns their paths. ``flows/`` wraps each one as a Prefect task.

Output folder layout::

    <output>/store.zarr          ingested grids (see ecodask.io.ingest)
    <output>/tables/zones.*      zone index, id, name, polygon area (ha)
    <output>/tables/class_area.* class areas per zone and year (ha)
    <output>/run.json            configuration, versions, input checksums, stage timings
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ecodask import __version__
from ecodask.config import RunConfig, load_config
from ecodask.io.catalogs import load_class_scheme
from ecodask.io.ingest import check_inputs, ingest, open_store, store_zones
from ecodask.io.tables import write_json, write_table
from ecodask.landuse import class_areas
from ecodask.provenance import file_checksum, package_versions

TABLES = "tables"


def validate(config_path: str | Path) -> RunConfig:
    """Load and validate the configuration and every input; nothing is written."""
    cfg = load_config(config_path)
    check_inputs(cfg)
    return cfg


def ingest_stage(cfg: RunConfig) -> Path:
    """Ingest the inputs into the run's Zarr store and write the zone table; return the store."""
    prep = check_inputs(cfg)
    store = ingest(cfg, prep)
    pix, _ = open_store(store)
    write_table(store_zones(pix), cfg.output / TABLES, "zones")
    return store


def class_area_stage(cfg: RunConfig, store: Path) -> dict[str, Path]:
    """Class areas per zone and year (ha) from the store; return the table paths."""
    pix, _ = open_store(store)
    scheme = load_class_scheme(cfg.landcover.scheme, cfg.catalogs)
    table = class_areas(
        pix["zone"].data,
        pix["landcover"].data,
        [int(y) for y in pix["year"].values],
        store_zones(pix),
        scheme,
        float(pix.attrs["pixel_area_ha"]),
        sources=cfg.landcover.years,
    )
    return write_table(table, cfg.output / TABLES, "class_area")


def input_files(cfg: RunConfig) -> dict[str, Path]:
    """Every input file of the run, by config key."""
    files = {f"landcover.years.{y}": p for y, p in sorted(cfg.landcover.years.items())}
    files["zones.path"] = cfg.zones.path
    files |= {f"drivers.{n}.path": d.path for n, d in sorted(cfg.drivers.items())}
    if cfg.county_stats:
        files["county_stats"] = cfg.county_stats
    return files


def write_run_record(
    cfg: RunConfig, timings: dict[str, float], outputs: dict[str, object], started: dt.datetime
) -> Path:
    """Write ``run.json``: configuration, versions, input checksums, stage timings (s), outputs."""
    record = {
        "ecodask_version": __version__,
        "config_file": str(cfg.source) if cfg.source else None,
        "config": cfg.model_dump(mode="json"),
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "stage_seconds": {k: round(v, 3) for k, v in timings.items()},
        "inputs": {k: {"path": str(p), "checksum": file_checksum(p)} for k, p in input_files(cfg).items()},
        "outputs": outputs,
        "versions": package_versions(),
    }
    return write_json(record, cfg.output / "run.json")

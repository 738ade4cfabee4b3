"""The steps of a run as plain functions (no Prefect): each takes the config and paths, writes its
outputs atomically and returns their paths. ``flows/`` wraps each one as a Prefect task.

Output folder layout::

    <output>/store.zarr          ingested grids (see ecodask.io.store)
    <output>/tables/zones.*      zone index, id, name, polygon area (ha)
    <output>/tables/class_area.* class areas per zone and year (ha)
    <output>/tables/{esv_by_service,esv_change,transitions,dynamic_degree,sensitivity,projection}.*
    <output>/store.zarr/esv      ESV per pixel (year, y, x), CNY/yr; analysis/esv* per cell
    <output>/run.json            configuration, versions, input checksums, stage timings
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from ecodask import __version__

from ecodask.science import landuse
from ecodask.science import esv as esvmod
from ecodask.run.config import RunConfig, load_config
from ecodask.errors import InputError, problem
from ecodask.science.esv import land_esv_tables  # noqa: F401 - part of this module's API
from ecodask.io import objstore
from ecodask.io.catalogs import load_class_scheme, load_esv_table
from ecodask.io.grids import commit, discard, stage_esv_arrays, write_analysis_esv
from ecodask.io.store import check_inputs, ingest, open_store, store_zones
from ecodask.io.tables import write_json, write_table
from ecodask.chunked.landpass import land_pass
from ecodask.io.provenance import file_checksum, package_versions

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


def _standard_equivalents(cfg: RunConfig, kind: str, table_value: float | None) -> list[float | None]:
    """Ea (CNY/ha/yr) per year for an equivalent-factor table; None for value tables."""
    if kind == "value":
        return [None] * len(cfg.years)
    se = cfg.esv.standard_equivalent
    if se == "from_county_stats":
        stats = pd.read_csv(cfg.county_stats)
        return [esvmod.standard_equivalent_from_crops(stats, y, cfg.county_stats) for y in cfg.years]
    return [float(se if se is not None else table_value)] * len(cfg.years)


def land_esv_stage(cfg: RunConfig, store: Path) -> dict[str, Path]:
    """Transitions and ESV in one pass over the store (methods.md sections 2-4).

    Writes ``esv`` (year, y, x) and the analysis-grid ESV into the store, and the tables
    class_area, esv_by_service, esv_change, transitions, dynamic_degree, sensitivity and
    projection into ``<output>/tables``. Unknown class codes raise :class:`InputError` and leave
    the store and the tables as they were.
    """
    store = Path(store)
    pix, ana = open_store(store)
    years = [int(y) for y in pix["year"].values]
    if years != cfg.years:
        raise InputError([problem(store, "year", years, f"the store's years differ from the "
                                  f"configuration's {cfg.years}: ingest again")])
    scheme = load_class_scheme(cfg.landcover.scheme, cfg.catalogs)
    table = load_esv_table(cfg.esv.table, cfg.catalogs)
    index = landuse.ClassIndex(scheme)
    zones = store_zones(pix)
    area = float(pix.attrs["pixel_area_ha"])
    factor = int(pix.attrs["analysis_factor"])
    se = table.standard_equivalent.value if table.standard_equivalent else None
    ea = _standard_equivalents(cfg, table.kind, se)
    vc = np.stack([esvmod.coefficient_matrix(table, scheme, index, e) for e in ea])  # (t, f, n)
    groups, g_of, _ = esvmod.service_groups(table)
    values = esvmod.pixel_values(vc, g_of, len(groups), index, area)
    mult = None
    if cfg.esv.adjustment:
        drivers = {name: (cfg.drivers[name].path, ana[name]) for name in cfg.esv.adjustment.values()}
        mult = esvmod.adjustment_multiplier(cfg.esv.adjustment, drivers, pix["zone"].data, factor, groups)
    pairs = landuse.year_pairs(years)
    staged = stage_esv_arrays(store, pix, groups if cfg.esv.group_grids else None)
    try:
        res = land_pass(pix["zone"].data, pix["landcover"].data, lut=index.lut, pairs=pairs,
                        n_zones=len(zones), values=values, factor=factor, multiplier=mult,
                        groups_out=cfg.esv.group_grids, targets=staged)
        landuse.check_unknown(res.unknown, years, scheme, cfg.landcover.years)
        tables = esvmod.land_esv_tables(res, years, pairs, zones, scheme, table, index, vc, area,
                                        cfg.landcover.projection_year)
        paths: dict[str, Path] = {}
        for name, df in tables.items():  # each table written atomically
            paths |= {f"{name}.{k}": v for k, v in write_table(df, cfg.output / TABLES, name).items()}
    except BaseException:
        discard(store, list(staged))
        raise
    commit(store, staged)
    write_analysis_esv(store, ana, pix["year"].values, res.coarse, res.npix,
                       groups if cfg.esv.group_grids else None, area)
    return paths


def esv_summary_markdown(cfg: RunConfig) -> str:
    """A short Markdown summary of the whole region's ESV per year (10^8 CNY/yr) and its change,
    read from the written tables (for a Prefect artifact)."""
    t = pd.read_parquet(cfg.output / TABLES / "esv_by_service.parquet")
    region = t[(t["zone_id"] == landuse.REGION_ID) & (t["level"] != "service")]
    wide = region.pivot_table(index="item", columns="year", values="esv_1e8cny", sort=False)
    lines = [f"### ESV of the whole region, 10^8 CNY/yr ({cfg.esv.table})", "",
             "| item | " + " | ".join(str(y) for y in wide.columns) + " |",
             "|---" * (len(wide.columns) + 1) + "|"]
    for item, row in wide.iterrows():
        lines.append("| " + str(item) + " | " + " | ".join(f"{v:.4f}" for v in row) + " |")
    return "\n".join(lines) + "\n"


def input_files(cfg: RunConfig) -> dict[str, Path]:
    """Every input file of the run, by config key."""
    files = {f"landcover.years.{y}": p for y, p in sorted(cfg.landcover.years.items())}
    files["zones.path"] = cfg.zones.path
    files |= {f"drivers.{n}.path": d.path for n, d in sorted(cfg.drivers.items())}
    if cfg.county_stats:
        files["county_stats"] = cfg.county_stats
    return files


def write_run_record(
    cfg: RunConfig, timings: dict[str, float], outputs: dict[str, object], started: dt.datetime,
    ran: dict[str, bool] | None = None,
) -> Path:
    """Write ``run.json``: configuration, versions, input checksums, stage timings (s), which
    stages ran (false: finished earlier with the same inputs, skipped), outputs. With a remote
    output, outputs are named by their URLs and ``run.json`` is uploaded beside them."""
    remote = cfg.remote_output
    if remote is not None:
        outputs = {k: _published(cfg, remote, v) for k, v in outputs.items()}
    record = {
        "ecodask_version": __version__,
        "config_file": str(cfg.source) if cfg.source else None,
        "config": cfg.model_dump(mode="json"),
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "stage_seconds": {k: round(v, 3) for k, v in timings.items()},
        "stage_ran": ran or {},
        "inputs": {k: {"path": objstore.source(p), "checksum": file_checksum(p)}
                   for k, p in input_files(cfg).items()},
        "outputs": outputs,
        "versions": package_versions(),
    }
    path = write_json(record, cfg.output / "run.json")
    if remote is not None:
        objstore.put_file(path, objstore.join(remote, "run.json"))
    return path


def _published(cfg: RunConfig, remote: str, value: object) -> object:
    """An output path inside the output folder as its URL under ``remote``; anything else as is."""
    try:
        rel = Path(str(value)).relative_to(cfg.output)
    except ValueError:
        return value
    return objstore.join(remote, rel.as_posix())

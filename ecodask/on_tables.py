"""The table commands: the Geographical Detector on a plain table (``ecodask geodetector``) and
county compensation from files (``ecodask compensation``), as researchers run them without a
whole run. Applications: they read files, call the science and write tables and charts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ecodask.chunked.geodetector import detect_table
from ecodask.io.county_stats import read_county_stats
from ecodask.io.tables import read_run_table, read_table, write_tables
from ecodask.io.zones import read_zones
from ecodask.present.plots import detector_charts
from ecodask.run.config import CompensationConfig
from ecodask.run.stages.compensation import compensation, write_compensation
from ecodask.science.county_esv import (
    ESV_BY_SERVICE_COLUMNS,
    TRANSITIONS_COLUMNS,
    county_esv_all_land,
    county_loss,
)
from ecodask.science.geodetector import GEODETECTOR_TABLES
from ecodask.science.grid import CHINA_ALBERS


def write_geodetector(results: dict[str, pd.DataFrame], folder: str | Path, y: str = "y") -> dict[str, Path]:
    """Write the detector tables and the two charts (``y``: the explained column, for the labels);
    return their paths by key."""
    folder = Path(folder)
    paths = write_tables({f"geodetector_{k}": results[k] for k in GEODETECTOR_TABLES}, folder)
    return paths | detector_charts(results, folder, y=y)


def geodetector_on_table(
    table: str | Path,
    y: str,
    factors: Sequence[str],
    out: str | Path,
    **options,
) -> tuple[dict[str, pd.DataFrame], dict[str, Path]]:
    """Read ``table``, run the four detectors (:func:`ecodask.chunked.geodetector.detect_table` with
    ``options``), write the results under ``out``; return the tables and the written paths."""
    df = read_table(table)
    results = detect_table(df, y, list(factors), source=str(table), **options)
    return results, write_geodetector(results, out, y)


def compensation_from_files(
    stats_path: str | Path,
    esv_path: str | Path | None,
    zones_path: str | Path,
    id_field: str,
    name_field: str | None,
    out: str | Path,
    opts: CompensationConfig | None = None,
    transitions_path: str | Path | None = None,
    catalogs: list[Path] | None = None,
) -> tuple[pd.DataFrame, dict[str, Path]]:
    """Compensation from files (the ``ecodask compensation`` command): county statistics, an
    ``esv_by_service`` table (CSV/Parquet, for the all-land variant), county polygons, and
    optionally a ``transitions`` table for the loss-based amount."""
    opts = opts or CompensationConfig()
    catalogs = catalogs or []
    polygons = read_zones(zones_path, id_field, name_field, CHINA_ALBERS)  # areas in an equal-area CRS
    polygons = polygons.assign(zone_id=polygons["zone_id"].astype(str))
    zones = pd.DataFrame(polygons.drop(columns="geometry"))
    esv = county_esv_all_land(read_run_table(esv_path, ESV_BY_SERVICE_COLUMNS, "esv_by_service")) \
        if esv_path else None
    years = sorted(int(y) for y in esv["year"].unique()) if esv is not None else None
    stats = read_county_stats(stats_path, zones, years)
    years = years or sorted(int(y) for y in stats["year"].unique())
    loss = county_loss(read_run_table(transitions_path, TRANSITIONS_COLUMNS, "transitions"), years) \
        if transitions_path else None
    if esv is None:
        opts = opts.model_copy(update={"variants": [v for v in opts.variants if v != "all_land"]})
    table = compensation(stats, esv, loss, opts, catalogs, stats_path)
    return table, write_compensation(table, polygons, Path(out))

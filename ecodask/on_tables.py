"""The table commands: the Geographical Detector on a plain table (``ecodask geodetector``) and
county compensation from files (``ecodask compensation``), as researchers run them without a
whole run. Applications: they read files, call the science and write tables and charts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ecodask.chunked.geodetector import detect_table
from ecodask.chunked.regression import moments
from ecodask.errors import InputError, problem
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
from ecodask.science.regression import Criterion, RegressionResult, stepwise


def write_geodetector(results: dict[str, pd.DataFrame], folder: str | Path, y: str = "y") -> dict[str, Path]:
    """Write the detector tables and the two charts (``y``: the explained column, for the labels);
    return their paths by key."""
    folder = Path(folder)
    paths = write_tables({f"geodetector_{k}": results[k] for k in GEODETECTOR_TABLES}, folder)
    return paths | detector_charts(results, folder, y=y)


def select_factors(df: pd.DataFrame, y: str, factors: Sequence[str], categorical: Sequence[str],
                   criterion: Criterion, source: str) -> RegressionResult:
    """Forward selection (seed 002's Algorithm A1, step 1) of ``y`` on the numeric factors not named
    in ``categorical`` (the candidates, in the order given), by ``criterion`` (p: enter while the
    best candidate's p < 0.05; aic, bic: while the best entry lowers it). Rows with a missing value
    are left out. Problems name the table and the column."""
    missing = [c for c in [y, *factors] if c not in df.columns]
    if missing:
        have = ", ".join(map(str, df.columns))
        raise InputError([problem(source, c, None, f"no such column (columns: {have})") for c in missing])
    cands = [f for f in factors if f not in categorical and pd.api.types.is_numeric_dtype(df[f])
             and not pd.api.types.is_bool_dtype(df[f])]
    if not cands:
        raise InputError([problem(source, "factors", list(factors), "--select needs a numeric factor not "
                                  "named by --categorical")])
    try:
        yv = pd.to_numeric(df[y], errors="raise").to_numpy(float)
    except (TypeError, ValueError):
        raise InputError([problem(source, y, None, "y must be numeric")]) from None
    try:
        return stepwise(moments(yv, {f: df[f].to_numpy(float) for f in cands}), method="forward",
                        criterion=criterion)
    except InputError as exc:
        raise InputError([problem(source, p.file, p.value, f"{p.key}: {p.message}") for p in exc.problems]
                         ) from None


def geodetector_on_table(
    table: str | Path,
    y: str,
    factors: Sequence[str],
    out: str | Path,
    select: Criterion | None = None,
    **options,
) -> tuple[dict[str, pd.DataFrame], dict[str, Path]]:
    """Read ``table``, run the four detectors (:func:`ecodask.chunked.geodetector.detect_table` with
    ``options``), write the results under ``out``; return the tables and the written paths.

    ``select`` (p, aic or bic): first a forward selection (:func:`select_factors`), then the
    detectors on the selected factors and the categorical ones only (seed 002's Algorithm A1); the
    tables then also hold ``regression`` (every candidate in the model of all, marked selected:
    seed 002's layout) and ``regression_selected``. When nothing is selected and no factor is
    categorical, only those two are written."""
    df = read_table(table)
    factors = list(factors)
    regression: dict[str, pd.DataFrame] = {}
    if select is not None:
        categorical = list(options.get("categorical") or ())
        res = select_factors(df, y, factors, categorical, select, str(table))
        try:
            regression = {"regression": res.enter_table(), "regression_selected": res.table()}
        except InputError as exc:
            raise InputError([problem(str(table), p.file, p.value, p.message)
                              for p in exc.problems]) from None
        keep = set(res.selected) | set(categorical)
        keep |= {f for f in factors if not pd.api.types.is_numeric_dtype(df[f])
                 or pd.api.types.is_bool_dtype(df[f])}
        factors = [f for f in factors if f in keep]
        options["categorical"] = [c for c in categorical if c in factors]
    results = detect_table(df, y, factors, source=str(table), **options) if factors else {}
    paths = write_geodetector(results, out, y) if results else {}
    if regression:
        results = results | regression
        paths |= write_tables(regression, Path(out))
    return results, paths


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

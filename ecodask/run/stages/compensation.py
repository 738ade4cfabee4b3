"""County ecological compensation, two ways in (methods.md sections 7-8):

- inside a run (:func:`compensation_stage`), from the run's county ESV tables and transitions and
  the configuration's ``county_stats``;
- alone (:func:`compensation_from_files`, behind ``ecodask compensation``), from a county
  statistics table, an ``esv_by_service`` table of a run and the county polygons.

Two variants of the county ESV (``variant`` column):

- ``all_land`` (seed 002): total, market and non-market ESV of every land class, from the run's
  ``esv_by_service`` table (the 30 m grids summed per county);
- ``cultivated`` (seed 003): cultivated land only, ``ESV = F × Ea × S`` with F the summed
  equivalent factors of the cultivated-land table (market 1.39, non-market 6.51), Ea each
  county's standard equivalent from its crops (eq. 4) and S its cultivated area (ha) from the
  statistics.

The loss-based amount values the ESV lost through land-use transitions between consecutive years
(the gross loss: the sum of the negative ESV changes of the county's transitions, CNY/yr, booked
in the later year) as a stream over ``horizon_years`` at ``discount_rate``.

Everything is computed before anything is written; each file is written atomically.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from ecodask.science import compensation as comp
from ecodask.run.config import CompensationConfig, RunConfig, ZonesConfig
from ecodask.errors import InputError, problem
from ecodask.science.esv import standard_equivalent_from_crops
from ecodask.run.stages.figures import FIGURES
from ecodask.science.footprint import footprint
from ecodask.science.grid import CHINA_ALBERS
from ecodask.io.catalogs import load_esv_table, load_footprint_table
from ecodask.io.county_stats import read_county_stats
from ecodask.io.tables import write_tables
from ecodask.io.vectors import write_vectors
from ecodask.science.landuse import REGION_ID
from ecodask.present.plots import compensation_maps

TABLES = "tables"


def county_esv_all_land(esv_by_service: pd.DataFrame) -> pd.DataFrame:
    """zone_id, year, esv_total_cny, esv_market_cny, esv_nonmarket_cny (CNY/yr) per county from an
    ``esv_by_service`` table (the whole-region rows left out)."""
    t = esv_by_service.assign(zone_id=esv_by_service["zone_id"].astype(str))
    t = t[t["zone_id"] != REGION_ID]
    total = t[t["level"] == "total"].set_index(["zone_id", "year"])["esv_cny"]
    market = t[t["level"] == "market"].pivot_table(index=["zone_id", "year"], columns="item",
                                                   values="esv_cny", aggfunc="sum")
    out = pd.DataFrame({"esv_total_cny": total, "esv_market_cny": market["market"],
                        "esv_nonmarket_cny": market["non_market"]})
    return out.reset_index()


def county_esv_cultivated(stats: pd.DataFrame, table_name: str, catalogs: list[Path],
                          source: str | Path) -> pd.DataFrame:
    """Cultivated-land ESV per county and year (seed 003): ``F × Ea × S``, CNY/yr, with F the
    table's summed equivalent factors (market, non-market), Ea = (1/7) Σ m_i v_i q_i / M of the
    county's crops (CNY/ha/yr) and S = ``cultivated_area_ha``."""
    table = load_esv_table(table_name, catalogs)
    if table.kind != "equivalent":
        raise InputError([problem(table_name, "kind", table.kind, "the cultivated variant needs an "
                                  "equivalent-factor table")])
    cls = next(iter(table.classes))  # the cultivated class (first class of the table)
    f_market = sum(table.values[s.name][cls] for s in table.services if s.market)
    f_nonmarket = sum(table.values[s.name][cls] for s in table.services if not s.market)
    rows = []
    for (zone_id, year), g in stats.groupby(["zone_id", "year"], sort=False):
        ea = standard_equivalent_from_crops(g, int(year), source)
        s = float(g["cultivated_area_ha"].iloc[0])
        rows.append({"zone_id": zone_id, "year": int(year), "ea_cny_per_ha": ea,
                     "esv_market_cny": f_market * ea * s, "esv_nonmarket_cny": f_nonmarket * ea * s})
    out = pd.DataFrame(rows)
    out["esv_total_cny"] = out["esv_market_cny"] + out["esv_nonmarket_cny"]
    return out


def county_loss(transitions: pd.DataFrame, years: list[int]) -> pd.DataFrame:
    """zone_id, year, esv_loss_cny: ESV lost through transitions between consecutive years (CNY/yr,
    >= 0), booked in the later year."""
    consecutive = set(zip(years[:-1], years[1:], strict=True))
    t = transitions.assign(zone_id=transitions["zone_id"].astype(str))
    t = t[[(a, b) in consecutive for a, b in zip(t["year_from"], t["year_to"], strict=True)]]
    t = t[t["zone_id"] != REGION_ID]
    lost = (-t["esv_change_cny"].clip(upper=0.0)).groupby([t["zone_id"], t["year_to"]]).sum()
    return lost.rename("esv_loss_cny").rename_axis(["zone_id", "year"]).reset_index()


def compensation(
    stats: pd.DataFrame,
    esv_all_land: pd.DataFrame | None,
    loss: pd.DataFrame | None,
    opts: CompensationConfig,
    catalogs: list[Path],
    source: str | Path,
) -> pd.DataFrame:
    """The compensation table of every variant, county and year (see :mod:`ecodask.science.compensation`)."""
    fp = footprint(stats, load_footprint_table(opts.footprint_table, catalogs))
    tables = []
    for variant in opts.variants:
        if variant == "all_land":
            if esv_all_land is None:
                continue
            esv = esv_all_land
        else:
            esv = county_esv_cultivated(stats, opts.cultivated_table, catalogs, source)
        # Per year inside; unset references default to the counties' own (see compensation_table).
        tables.append(comp.compensation_table(
            esv, stats, fp, variant=variant, reference_gdp_per_capita=opts.reference_gdp_per_capita,
            r_form=opts.r_form, loss=loss, horizon_years=opts.horizon_years,
            discount_rate=opts.discount_rate, reference_income=opts.reference_income))
    if not tables:
        raise InputError([problem(source, "compensation.variants", opts.variants,
                                  "nothing to compute: all_land needs a run's ESV table")])
    return pd.concat(tables, ignore_index=True)


def write_compensation(table: pd.DataFrame, zones, folder: Path,
                       figures: Path | None = None) -> dict[str, Path]:
    """Tables (CSV, Parquet), the table with county geometry (GeoPackage, GeoParquet) in ``folder``
    and one choropleth PNG per variant and role (amount and priority level, last year) in
    ``figures`` (default ``folder``)."""
    totals = comp.role_totals(table)
    paths = write_tables({"compensation": table, "compensation_totals": totals}, folder)
    geo = zones[["zone_id", "geometry"]].assign(zone_id=zones["zone_id"].astype(str)).merge(
        table, on="zone_id", how="inner")
    paths |= write_vectors(geo, folder, "compensation")
    paths |= compensation_maps(geo, figures or folder)
    return paths


def compensation_stage(cfg: RunConfig, store: Path) -> dict[str, Path]:
    """Compensation of a run: needs ``county_stats``; reads the run's tables and zones."""
    from ecodask.io.store import open_store, store_zones
    from ecodask.io.zones import read_zones

    if cfg.county_stats is None or not cfg.compensation.enabled:
        return {}
    pix, _ = open_store(store)
    zones = store_zones(pix)
    stats = read_county_stats(cfg.county_stats, zones, cfg.years)
    folder = cfg.output / TABLES
    esv = county_esv_all_land(pd.read_parquet(folder / "esv_by_service.parquet"))
    loss = county_loss(pd.read_parquet(folder / "transitions.parquet"), cfg.years)
    table = compensation(stats, esv, loss, cfg.compensation, cfg.catalogs, cfg.county_stats)
    polygons = read_zones(cfg, cfg.grid.crs)
    return write_compensation(table, polygons, folder, cfg.output / FIGURES)


def compensation_from_files(
    stats_path: str | Path,
    esv_path: str | Path | None,
    zones_path: str | Path,
    id_field: str,
    name_field: str,
    out: str | Path,
    opts: CompensationConfig | None = None,
    transitions_path: str | Path | None = None,
    catalogs: list[Path] | None = None,
) -> tuple[pd.DataFrame, dict[str, Path]]:
    """Compensation from files (the ``ecodask compensation`` command): county statistics, an
    ``esv_by_service`` table (CSV/Parquet, for the all-land variant), county polygons, and
    optionally a ``transitions`` table for the loss-based amount."""
    from ecodask.run.stages.driver_analysis import read_table
    from ecodask.io.zones import read_zones

    opts = opts or CompensationConfig()
    catalogs = catalogs or []
    zcfg = SimpleNamespace(zones=ZonesConfig(path=zones_path, id_field=id_field, name_field=name_field))
    polygons = read_zones(zcfg, CHINA_ALBERS)  # type: ignore[arg-type]  # areas in an equal-area CRS
    polygons = polygons.assign(zone_id=polygons["zone_id"].astype(str))
    zones = pd.DataFrame(polygons.drop(columns="geometry"))
    esv = county_esv_all_land(read_table(esv_path)) if esv_path else None
    years = sorted(int(y) for y in esv["year"].unique()) if esv is not None else None
    stats = read_county_stats(stats_path, zones, years)
    years = years or sorted(int(y) for y in stats["year"].unique())
    loss = county_loss(read_table(transitions_path), years) if transitions_path else None
    if esv is None:
        opts = opts.model_copy(update={"variants": [v for v in opts.variants if v != "all_land"]})
    table = compensation(stats, esv, loss, opts, catalogs, stats_path)
    return table, write_compensation(table, polygons, Path(out))


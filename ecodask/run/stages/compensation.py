"""Stage ``compensation``: county ecological compensation of a run (methods.md sections 7-8), from
the run's county ESV tables and transitions and the configuration's ``county_stats``; off without
them. The county ESV variants are :mod:`ecodask.science.county_esv`, the equations
:mod:`ecodask.science.compensation`; ``ecodask compensation`` runs the same on files
(:mod:`ecodask.on_tables`).

The loss-based amount values the ESV lost through land-use transitions between consecutive years
as a stream over ``horizon_years`` at ``discount_rate``. Everything is computed before anything is
written; each file is written atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ecodask.errors import InputError, problem
from ecodask.io.catalogs import load_esv_table, load_footprint_table, load_gdp_per_capita
from ecodask.io.layout import RunFolder
from ecodask.run.config import CompensationConfig, RunConfig
from ecodask.run.stages import Stage, catalog_entry

if TYPE_CHECKING:
    import pandas as pd


def compensation(
    stats: pd.DataFrame,
    esv_all_land: pd.DataFrame | None,
    loss: pd.DataFrame | None,
    opts: CompensationConfig,
    catalogs: Sequence[Path],
    source: str | Path,
) -> pd.DataFrame:
    """The compensation table of every variant, county and year (see :mod:`ecodask.science.compensation`)."""
    import pandas as pd

    from ecodask.science import compensation as comp
    from ecodask.science.county_esv import county_esv_cultivated
    from ecodask.science.footprint import footprint

    problems = reference_gdp_years(opts, catalogs, stats["year"].tolist(), source)
    if problems:  # found by the run's input check already; here for tables given on the command line
        raise InputError(problems)
    fp = footprint(stats, load_footprint_table(opts.footprint_table, catalogs))
    tables = []
    for variant in opts.variants:
        if variant == "all_land":
            if esv_all_land is None:
                continue
            esv = esv_all_land
        else:
            esv = county_esv_cultivated(stats, load_esv_table(opts.cultivated_table, catalogs), source)
        # Per year inside; unset references default to the counties' own (see compensation_table).
        tables.append(comp.compensation_table(
            esv, stats, fp, variant=variant, reference_gdp_per_capita=reference_gdp(opts, catalogs),
            r_form=opts.r_form, loss=loss, horizon_years=opts.horizon_years,
            discount_rate=opts.discount_rate, reference_income=opts.reference_income,
            annual_form=opts.annual_form))
    if not tables:
        raise InputError([problem(source, "compensation.variants", opts.variants,
                                  "nothing to compute: all_land needs a run's ESV table")])
    return pd.concat(tables, ignore_index=True)


def reference_gdp(opts: CompensationConfig, catalogs: Sequence[Path]) -> float | dict[int, float] | None:
    """G's reference GDP per capita (CNY/person): one number, a catalog series by year, or None
    (``counties``: the counties' own, per year)."""
    ref = opts.reference_gdp_per_capita
    if not isinstance(ref, str):
        return ref
    return None if ref == "counties" else dict(load_gdp_per_capita(ref, catalogs).values)


def reference_gdp_years(opts: CompensationConfig, catalogs: Sequence[Path], years: Sequence[int],
                        source: str | Path) -> list:
    """Problems naming ``source`` (the county statistics) for each year the reference series lacks."""
    ref = reference_gdp(opts, catalogs)
    if not isinstance(ref, dict):
        return []
    name = opts.reference_gdp_per_capita
    return [problem(source, "year", y, f"compensation.reference_gdp_per_capita {name!r} has no figure for it"
                    f" (has {min(ref)}-{max(ref)}): give a number, 'counties' or "
                    "another series") for y in sorted(set(years)) if y not in ref]


def write_compensation(table: pd.DataFrame, zones, folder: Path,
                       figures: Path | None = None) -> dict[str, Path]:
    """Tables (CSV, Parquet), the table with county geometry (GeoPackage, GeoParquet) in ``folder``
    and one choropleth PNG per variant and role (amount and priority level, last year) in
    ``figures`` (default ``folder``)."""
    from ecodask.io.tables import write_tables
    from ecodask.io.vectors import write_vectors
    from ecodask.present.plots import compensation_maps
    from ecodask.science import compensation as comp

    totals = comp.role_totals(table)
    paths = write_tables({"compensation": table, "compensation_totals": totals}, folder)
    geo = zones[["zone_id", "geometry"]].assign(zone_id=zones["zone_id"].astype(str)).merge(
        table, on="zone_id", how="inner")
    paths |= write_vectors(geo, folder, "compensation")
    paths |= compensation_maps(geo, figures or folder)
    return paths


#: The run's tables compensation reads.
READS = ("esv_by_service", "transitions", "coverage")


def run(cfg: RunConfig, store: Path | None) -> dict[str, Path]:
    """Compensation of a run: needs ``county_stats``; reads the run's tables and zones. The stage is
    one Dask task (:func:`stage_work`): on a worker of the run's cluster when it runs under one, so
    the flow's process does not read, compute, write or draw the counties' tables and maps. The
    tables it reads go to the task as bytes and what it writes comes back as bytes
    (:mod:`ecodask.io.scratch`), so the worker needs no disk the flow sees."""
    import dask

    from ecodask.io.scratch import placed

    if cfg.county_stats is None or not cfg.compensation.enabled:
        return {}
    out = RunFolder(cfg.output)
    tables = {out.table_path(n).relative_to(out.root).as_posix(): out.table_path(n).read_bytes()
              for n in READS if out.table_path(n).is_file()}
    names, files = dask.delayed(stage_work, pure=False)(cfg, store, tables).compute()
    placed(files, out.root)
    return {name: out.root / rel for name, rel in names.items()}


def stage_work(cfg: RunConfig, store: Path | None, tables: dict[str, bytes],
               ) -> tuple[dict[str, str], dict[str, bytes]]:
    """The stage's work (see :func:`run`), where it is called: in a temporary folder holding
    ``tables``; returns the outputs' paths relative to it and the files written, as bytes."""
    from ecodask.io.scratch import collected

    return collected(lambda root: _work(cfg, store, RunFolder(root)), tables)


def _work(cfg: RunConfig, store: Path | None, out: RunFolder) -> dict[str, Path]:
    import pandas as pd

    from ecodask.io.county_stats import read_county_stats
    from ecodask.io.objstore import here
    from ecodask.io.store import open_store, store_zones
    from ecodask.io.zones import read_zones
    from ecodask.science.county_esv import county_esv_all_land, county_loss

    pix, _ = open_store(store)
    zones = store_zones(pix)
    stats = read_county_stats(here(cfg.county_stats), zones, cfg.years)
    esv = county_esv_all_land(pd.read_parquet(out.table_path("esv_by_service")))
    loss = county_loss(pd.read_parquet(out.table_path("transitions")), cfg.years)
    table = compensation(stats, esv, loss, cfg.compensation, cfg.catalogs, cfg.county_stats)
    table = _with_coverage(table, out, cfg.zones.exclude_partial)
    z = cfg.zones
    polygons = read_zones(here(z.path), z.id_field, z.name_field, cfg.grid.crs, z.layer)
    return write_compensation(table, polygons, out.tables, out.figures)


def _with_coverage(table, out: RunFolder, exclude: bool):  # noqa: ANN001, ANN202 - DataFrames
    """The compensation rows with their zone's land-cover coverage that year (share) and whether it
    is partial (under ``zones.min_coverage``); with ``exclude``, the partial zones' rows left out."""
    from ecodask.science.landuse import REGION_ID

    coverage = out.table("coverage")
    if coverage is None:  # a store of an earlier version
        return table
    zones_only = coverage["zone_id"].astype(str) != REGION_ID
    cov = coverage.loc[zones_only, ["zone_id", "year", "coverage", "partial"]]
    cov = cov.astype({"zone_id": table["zone_id"].dtype, "year": table["year"].dtype})
    table = table.merge(cov, on=["zone_id", "year"], how="left")
    return table[~table["partial"].fillna(False).astype(bool)].reset_index(drop=True) if exclude else table


def config_parts(c: dict) -> dict[str, object]:
    return {"compensation": c["compensation"], "county_stats": c["county_stats"],
            "zones.exclude_partial": c["zones"]["exclude_partial"]}


def input_files(cfg: RunConfig) -> dict[str, Path]:
    if cfg.county_stats is None:
        return {}
    return ({"county_stats": cfg.county_stats}
            | catalog_entry("esv_tables", cfg.compensation.cultivated_table, cfg)
            | catalog_entry("footprint_tables", cfg.compensation.footprint_table, cfg)
            | _reference_entry(cfg))


def _reference_entry(cfg: RunConfig) -> dict[str, Path]:
    ref = cfg.compensation.reference_gdp_per_capita
    return catalog_entry("gdp_per_capita", ref, cfg) if isinstance(ref, str) else {}


STAGE = Stage("compensation", ("transitions_esv",), config_parts, input_files, run)

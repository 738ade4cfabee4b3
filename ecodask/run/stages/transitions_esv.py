"""Stage ``transitions_esv``: transitions and ESV in one pass over the store (methods.md sections
2-4).

Writes ``esv`` (year, y, x), CNY/yr per pixel, and the analysis-grid ESV into the store (both from
the pass's tasks, one per chunk for every year; nothing per year passes through this process), and the
tables class_area, esv_by_service, esv_change, transitions, dynamic_degree, sensitivity,
service_tradeoffs and projection (and, where configured, the intensity analysis's, the ESV
uncertainty's, and with ``esv.cell_tradeoffs`` the cells' class composition
``analysis/class_pixels`` and service_tradeoffs_cells). Unknown class codes raise
:class:`InputError` and leave the store and the tables as they were.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ecodask.errors import InputError, problem
from ecodask.io.catalogs import load_class_scheme, load_error_matrix, load_esv_table
from ecodask.io.layers import Layers
from ecodask.io.layout import RunFolder
from ecodask.run.config import RunConfig
from ecodask.run.stages import Stage, catalog_entry

if TYPE_CHECKING:
    from ecodask.science.catalogs import ClassScheme, EsvTable
    from ecodask.science.esv import EsvModel
    from ecodask.science.scenarios import Scenario
    from ecodask.science.uncertainty import UncertaintySpec


def config_parts(c: dict) -> dict[str, object]:
    return {"landcover": c["landcover"], "esv": c["esv"], "drivers": c["drivers"],
            "zones.min_coverage": c["zones"]["min_coverage"]}


def input_files(cfg: RunConfig) -> dict[str, Path]:
    files = catalog_entry("class_schemes", cfg.landcover.scheme, cfg)
    files |= catalog_entry("esv_tables", cfg.esv.table, cfg)
    unc = cfg.esv.uncertainty
    if unc.enabled:
        for name in unc.tables:
            files |= catalog_entry("esv_tables", name, cfg)
        if unc.error_matrix is not None:
            files |= catalog_entry("error_matrices", unc.error_matrix, cfg)
    if cfg.county_stats is not None:  # Ea from crops, and population and GDP per zone
        files["county_stats"] = cfg.county_stats
    return files


def _standard_equivalents(cfg: RunConfig, kind: str, table_value: float | None) -> list[float | None]:
    """Ea (CNY/ha/yr) per year for an equivalent-factor table; None for value tables."""
    import pandas as pd

    from ecodask.science.esv import standard_equivalent_from_crops

    if kind == "value":
        return [None] * len(cfg.years)
    se = cfg.esv.standard_equivalent
    if se == "from_county_stats":
        stats = pd.read_csv(cfg.county_stats)
        return [standard_equivalent_from_crops(stats, y, cfg.county_stats) for y in cfg.years]
    return [float(se if se is not None else table_value)] * len(cfg.years)


def _uncertainty(cfg: RunConfig, table: EsvTable, eas: list[float | None]) -> UncertaintySpec | None:
    """The run's Monte Carlo (None when off): its table first (at the run's Ea per year), then each
    alternative; an equivalent-factor alternative is valued at the run's price basis: the run's Ea where
    the run's table is one of equivalents, the standard equivalent a table of values states it was
    derived with, else (a table of values that states none) the alternative's own."""
    from ecodask.science.landuse import ClassIndex
    from ecodask.science.uncertainty import Candidate, UncertaintySpec, error_counts

    unc = cfg.esv.uncertainty
    if not unc.enabled:
        return None
    se = cfg.esv.standard_equivalent
    runs = (f"table {table.name}'s own" if se is None else "from the county statistics, per year"
            if se == "from_county_stats" else "the run's esv.standard_equivalent")
    cands = [Candidate(table, tuple(1.0 if e is None else float(e) for e in eas),
                       runs if table.kind == "equivalent" else "")]
    for name in unc.tables:
        alt = load_esv_table(name, cfg.catalogs)
        if alt.kind == "value":
            scale, basis = (1.0,) * len(eas), ""
        elif table.kind == "equivalent":
            scale = tuple(float(e) for e in eas)  # type: ignore[arg-type]
            basis = f"as the run's table: {runs}"
        elif table.standard_equivalent is not None:
            scale = (float(table.standard_equivalent.value),) * len(eas)
            basis = f"the price basis the run's table {table.name} states"
        else:
            scale = (float(alt.standard_equivalent.value),) * len(eas)  # type: ignore[union-attr]
            basis = f"table {name}'s own (the run's table {table.name} states no price basis)"
        cands.append(Candidate(alt, scale, basis))
    errors = None
    if unc.error_matrix is not None:
        scheme = load_class_scheme(cfg.landcover.scheme, cfg.catalogs)
        errors = error_counts(load_error_matrix(unc.error_matrix, cfg.catalogs).counts, ClassIndex(scheme))
    return UncertaintySpec(tuple(cands), unc.draws, unc.seed, unc.spread, errors)


def esv_model(cfg: RunConfig, pixel_area_ha: float) -> EsvModel:
    """The run's ESV model: its class scheme valued by its ESV table for each year."""
    from ecodask.science.esv import EsvModel

    scheme = load_class_scheme(cfg.landcover.scheme, cfg.catalogs)
    table = load_esv_table(cfg.esv.table, cfg.catalogs)
    se = table.standard_equivalent.value if table.standard_equivalent else None
    eas = _standard_equivalents(cfg, table.kind, se)
    sc = cfg.landcover.scenarios
    return EsvModel.build(scheme, table, cfg.years, eas, pixel_area_ha, cfg.landcover.projection_year,
                          cfg.landcover.intensity, _uncertainty(cfg, table, eas), _scenarios(cfg, scheme),
                          sc.years if sc is not None else ())


def _scenarios(cfg: RunConfig, scheme: ClassScheme) -> list[Scenario]:
    """The run's land-use scenarios (its own, else its class scheme's), classes as indices."""
    from ecodask.science.landuse import ClassIndex
    from ecodask.science.scenarios import Restriction, Scenario

    sc = cfg.landcover.scenarios
    if sc is None:
        return []
    names = ClassIndex(scheme).names

    def at(classes: list[str]) -> tuple[int, ...]:
        return tuple(names.index(c) for c in classes)

    named = sc.named if sc.named is not None else scheme.scenarios
    return [Scenario(name, tuple(Restriction(at(r.out_of), None if r.into is None else at(r.into), r.factor)
                                 for r in rules)) for name, rules in named.items()]


def run(cfg: RunConfig, store: Path | Layers | None) -> dict[str, Path]:
    """One pass for transitions and ESV; the grids into the store, the tables into ``tables/``."""
    from ecodask.chunked.adjustment import adjustment_multiplier
    from ecodask.chunked.draws import summarize_draws_by_zones
    from ecodask.chunked.landpass import land_pass
    from ecodask.io import grids
    from ecodask.io.store import LANDCOVER, ZONE, ingested, open_store, store_zones
    from ecodask.io.tables import write_tables
    from ecodask.science import landuse

    store = store if isinstance(store, Layers) else Path(store)
    pix, ana = open_store(store)
    years = [int(y) for y in pix["year"].values]
    if years != cfg.years:
        raise InputError([problem(store, "year", years, f"the store's years differ from the "
                                  f"configuration's {cfg.years}: ingest again")])
    zones = store_zones(pix)
    factor = int(pix.attrs["analysis_factor"])
    model = esv_model(cfg, float(pix.attrs["pixel_area_ha"]))
    groups = model.groups
    mult = None
    if cfg.esv.adjustment:
        drivers = {name: (cfg.drivers[name].path, ana[name]) for name in cfg.esv.adjustment.values()}
        mult = adjustment_multiplier(cfg.esv.adjustment, drivers, pix[ZONE].data, factor, groups)
    out_groups = groups if cfg.esv.group_grids else None
    staged = grids.stage_esv_arrays(store, pix, out_groups)
    classes = model.index.names if cfg.esv.cell_tradeoffs else None
    cells = grids.stage_analysis_esv_arrays(store, ana, pix["year"].values, pix[ZONE].chunks[0][0] // factor,
                                            out_groups, classes, factor)
    try:
        res = land_pass(pix[ZONE].data, pix[LANDCOVER].data, lut=model.index.lut, pairs=model.pairs,
                        n_zones=len(zones), values=model.pixel_values(), factor=factor, multiplier=mult,
                        groups_out=cfg.esv.group_grids, targets=staged, source=ingested(store, LANDCOVER),
                        cells=grids.cell_targets(cells, model.pixel_area_ha))
        landuse.check_unknown(res.unknown, years, model.scheme, cfg.landcover.years)
        pixels = landuse.year_class_pixels(res.counts, model.pairs, len(years), model.index.n)
        landuse.check_years_have_data(pixels, years, cfg.landcover.years)
        folder = RunFolder(cfg.output).tables
        paths: dict[str, Path] = {}
        for name, table in model.each_table(res.counts, res.zone_sums, zones, summarize_draws_by_zones):
            paths |= write_tables({name: table}, folder)  # each written atomically, then let go
            if name == "esv_by_service":
                by_service = table
        del table
        tables = {}
        per_capita = _per_capita(cfg, pix, ana, zones, years, by_service)
        if per_capita is not None:
            tables["esv_per_capita"] = per_capita
        if classes:
            tables["service_tradeoffs_cells"] = _cell_tradeoffs(model, cells, years, mult)
        if "pixels" in zones:  # stores of earlier versions did not count them
            order = zones.sort_values("zone")
            tables["coverage"] = landuse.coverage_table(pixels.sum(axis=2), order["pixels"].to_numpy(), years,
                                                        zones, model.pixel_area_ha, cfg.zones.min_coverage)
        paths |= write_tables(tables, folder)
    except BaseException:
        grids.discard(store, [*staged, *cells])
        raise
    grids.commit(store, staged | cells)
    if not cfg.esv.group_grids:
        grids.remove_arrays(store, grids.GROUP_ARRAYS)
    if not cfg.esv.cell_tradeoffs:
        grids.remove_arrays(store, grids.CLASS_ARRAYS)
    return paths


def _cell_tradeoffs(model: EsvModel, cells: dict[str, str | Path], years: list[int], mult):  # noqa: ANN001, ANN202
    """``service_tradeoffs_cells`` from the staged ``analysis/class_pixels``, one task a year."""
    from ecodask.chunked.cell_tradeoffs import tradeoffs_across_cells
    from ecodask.io.store import ANALYSIS_GROUP, CLASS_PIXELS
    from ecodask.science.esv import service_groups

    _, g_of, _ = service_groups(model.table)
    return tradeoffs_across_cells(cells[f"{ANALYSIS_GROUP}/{CLASS_PIXELS}"], years, model.vc, g_of,
                                  model.table.service_names, mult)


def _per_capita(cfg: RunConfig, pix, ana, zones, years: list[int], esv_table):  # noqa: ANN001, ANN202
    """``esv_per_capita`` from the county statistics' population and GDP and from the drivers that are
    densities (``density_of``), or None where the run has neither with a single figure."""
    from ecodask.chunked.cells import cell_zones, zone_totals
    from ecodask.io.county_stats import population_and_gdp
    from ecodask.io.objstore import here
    from ecodask.io.store import ZONE
    from ecodask.science import per_capita as pc

    sources = {}
    if cfg.county_stats is not None:
        stats = population_and_gdp(here(cfg.county_stats), zones, years)
        if len(stats):
            sources["county_stats"] = pc.stats_source(stats, zones, years)
    dense = {n: d.density_of for n, d in sorted(cfg.drivers.items()) if d.density_of is not None}
    if dense:
        factor = int(pix.attrs["analysis_factor"])
        cell_km2 = (float(cfg.grid.resolution) * factor / 1000.0) ** 2
        totals = zone_totals(cell_zones(pix[ZONE].data, factor), {n: ana[n].data for n in dense}, len(zones),
                             cell_km2)
        order = zones.sort_values("zone")["zone"].to_numpy()
        sources |= {f"driver:{n}": pc.driver_source(totals[n][order], what, len(years))
                    for n, what in dense.items()}
    sources = pc.with_values(sources)
    if not sources:
        return None
    return pc.per_capita_table(pc.zone_esv(esv_table, zones, years), years, zones, sources)


STAGE = Stage("transitions_esv", ("ingest",), config_parts, input_files, run)

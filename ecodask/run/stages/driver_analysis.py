"""Stage ``driver_analysis``: driver analysis on the run's analysis grid (methods.md sections 5-6).

y = ESV density per year (CNY/ha/yr), the drivers ingested onto the same grid: the stepwise
regression and the Geographical Detector per year, ESV hot spots (Moran's I, Gi* grid and classes,
per-county summary). Everything is computed before anything is written; each table and chart is
written atomically.

The regression takes the continuous drivers. The detector takes every driver
(``analysis.detector_factors: all``), or per year the continuous drivers the regression selected
plus every categorical driver (``selected``, seed 002's Algorithm A1); a year where that leaves no
driver has no detector rows. ``analysis.regression_table: enter`` writes ``regression`` in seed
002's layout (every continuous driver per year, the model of all drivers, ``selected`` marking the
selection) and the selected model's terms as ``regression_selected``.

Outputs::

    tables/geodetector_{factor,interaction,risk,ecological,discretization}.{csv,parquet}
    tables/regression.* (regression_selected.* with the enter layout), morans_i.*, hotspots.*
    figures/geodetector_q_<year>.png, geodetector_interaction_<year>.png
    store.zarr/analysis/esv_gi_z, esv_hotspot
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ecodask.errors import InputError, Problem, problem
from ecodask.io.layout import RunFolder
from ecodask.run.config import RunConfig
from ecodask.run.stages import Stage

if TYPE_CHECKING:
    import dask.array as da
    import pandas as pd


#: Analysis-grid block for the detector passes (cells per side): few, large tasks.
BLOCK = 1024


def _cell_zones(pix_zone: da.Array, factor: int) -> da.Array:
    """The zone of each analysis cell: the zone of its centre pixel (0 outside every zone)."""
    c = factor // 2
    return pix_zone[c::factor, c::factor]


def _driver_problem(cfg: RunConfig, p: Problem, year: int) -> Problem:
    """A detector's problem with a factor (named by the driver) told as the driver file's."""
    if p.file not in cfg.drivers:
        return p
    return problem(cfg.drivers[p.file].path, f"drivers.{p.file} ({p.key}, ESV of {year})", p.value, p.message)


def _regression_problem(cfg: RunConfig, p: Problem) -> Problem:
    """A regression's problem with a variable (keyed ``"<year>: <key>"``) told as the driver file's."""
    if p.file not in cfg.drivers:
        return p
    year, _, key = p.key.partition(": ")
    return problem(cfg.drivers[p.file].path, f"drivers.{p.file} (regression {key}, ESV of {year})", p.value,
                   p.message)


def _check_drivers(cfg: RunConfig, drivers: dict[str, da.Array], density: da.Array) -> None:
    """Each driver has a value on the cells with ESV and no infinite value, else an
    :class:`InputError` naming the driver's file (one pass over the analysis grid, before
    anything is computed or written)."""
    import dask
    import dask.array as da

    valued = da.isfinite(density).any(axis=0)
    counts = dask.compute({n: ((da.isfinite(d) & valued).sum(), da.isinf(d).sum())
                           for n, d in drivers.items()})[0]
    check_driver_cells(cfg, counts, "on any analysis cell with ESV")


def check_driver_cells(cfg: RunConfig, cells: dict[str, tuple[int, int]], where: str) -> None:
    """An :class:`InputError` naming each driver's file whose cells (finite, infinite counts by
    driver name) hold an infinite value, or no value ``where``."""
    problems = []
    for name, (finite, infinite) in sorted(cells.items()):
        path = cfg.drivers[name].path
        if infinite:
            problems.append(problem(path, f"drivers.{name}", "inf", f"{int(infinite)} analysis cells "
                                    "are infinite: a driver needs finite values (or no data)"))
        elif not finite:
            problems.append(problem(path, f"drivers.{name}", None, f"no value {where}: all no data there, "
                                    "or the raster does not cover the zones"))
    if problems:
        raise InputError(problems)


def run(cfg: RunConfig, store: Path | None) -> dict[str, Path]:
    """Driver analysis of every year on the run's analysis grid; writes tables, charts and the
    hot-spot grids. Needs the ESV stage's ``analysis/esv_density``."""
    import numpy as np
    import pandas as pd

    from ecodask.chunked import hotspots as hs
    from ecodask.chunked.geodetector import detect_arrays
    from ecodask.chunked.regression import regression_results, results_table
    from ecodask.io.grids import write_analysis_hotspots
    from ecodask.io.store import ANALYSIS_GROUP, ESV_DENSITY, ZONE, open_store, store_zones
    from ecodask.io.tables import write_tables
    from ecodask.present.plots import detector_charts
    from ecodask.science.geodetector import GEODETECTOR_TABLES

    store = Path(store)
    pix, ana = open_store(store)
    if ESV_DENSITY not in ana:
        raise InputError([problem(store, f"{ANALYSIS_GROUP}/{ESV_DENSITY}", None,
                                  "missing: run the ESV stage first")])
    a = cfg.analysis
    years = [int(v) for v in ana["year"].values]
    out = RunFolder(cfg.output)
    density = ana[ESV_DENSITY].data.rechunk((1, BLOCK, BLOCK))
    names = sorted(cfg.drivers)
    drivers = {n: ana[n].data.rechunk((BLOCK, BLOCK)) for n in names}
    _check_drivers(cfg, drivers, density)
    continuous = [n for n in names if cfg.drivers[n].kind == "continuous"]
    disc = {n: (None if cfg.drivers[n].kind == "categorical" or a.discretize == "none" else a.discretize)
            for n in names}
    categorical = [n for n in names if n not in continuous]
    regression: dict[str, pd.DataFrame] = {}
    selected: dict[int, list[str]] = {y: continuous for y in years}
    if continuous:
        try:
            fits = regression_results({y: density[i] for i, y in enumerate(years)},
                                      {n: drivers[n] for n in continuous},
                                      method=a.regression_method, criterion=a.regression_criterion,
                                      p_enter=a.p_enter, p_remove=a.p_remove)
            if a.regression_table == "enter":
                regression["regression"] = results_table(fits, "enter")
                regression["regression_selected"] = results_table(fits, "selected")
            else:
                regression["regression"] = results_table(fits, "selected")
        except InputError as exc:  # a problem of a variable is its driver file's
            raise InputError([_regression_problem(cfg, p) for p in exc.problems]) from None
        selected = {y: [n for n in continuous if n in r.selected] for y, r in fits.items()}
        for t in regression.values():
            t.insert(1, "preset", a.preset)
    results: dict[str, list[pd.DataFrame]] = {k: [] for k in GEODETECTOR_TABLES}
    charts = []
    for i, year in enumerate(years):
        factors = names if a.detector_factors == "all" else \
            [n for n in names if n in categorical or n in selected[year]]
        if not factors:
            continue
        try:
            r = detect_arrays(density[i], {n: drivers[n] for n in factors}, discretize=disc, k=a.k,
                              ks=a.ks, variance=a.variance,
                              drop_singletons=a.drop_singletons, alpha=a.alpha, dropna=True,
                              quantile_rule=a.quantile_rule,
                              source=f"{store.name}/analysis", y_name=f"esv_density[{year}]")
        except InputError as exc:  # a problem of a factor is its driver file's
            raise InputError([_driver_problem(cfg, p, year) for p in exc.problems]) from None
        r["factor"] = r["factor"].assign(detector_factors=a.detector_factors)
        for k in GEODETECTOR_TABLES:
            results[k].append(r[k].assign(year=year))
        charts.append((year, r))
    hot = None
    if a.hotspots:
        zones = store_zones(pix)
        cell_zone = _cell_zones(pix[ZONE].data, int(pix.attrs["analysis_factor"]))
        morans, zs, classes, summaries = [], [], [], []
        for i, year in enumerate(years):
            src = f"{store.name}/analysis/esv_density[{year}]"
            moran, z, cls, summary = hs.hotspots(density[i], cell_zone, zones, source=src)
            morans.append({"year": year, **moran})
            zs.append(z.astype(np.float32))
            classes.append(cls)
            summaries.append(summary.assign(year=year))
        hot = (pd.DataFrame(morans), pd.concat(summaries, ignore_index=True), np.stack(zs), np.stack(classes))
    # Everything is computed: write.
    tables: dict[str, pd.DataFrame] = {}
    if charts:
        tables |= {f"geodetector_{k}": _year_first(pd.concat(v, ignore_index=True))
                   for k, v in results.items()}
    tables |= regression
    if hot is not None:
        tables["morans_i"], tables["hotspots"] = hot[0], _year_first(hot[1])
    paths = write_tables(tables, out.tables)
    for year, r in charts:
        paths |= detector_charts(r, out.figures, f"_{year}", y="ESV density (CNY/ha/yr per analysis cell)")
    if hot is not None:
        write_analysis_hotspots(store, ana, np.asarray(years), hot[2], hot[3])
    _remove_stale(out, paths)
    return paths


def _remove_stale(out: RunFolder, written: dict[str, Path]) -> None:
    """Remove the tables and detector charts an earlier run of this stage wrote and this one did not
    (another ``regression_table`` layout, a year whose selection left the detector no driver,
    hot spots switched off), so the folder holds only this run's results."""
    from ecodask.science.geodetector import GEODETECTOR_TABLES

    names = [*[f"geodetector_{k}" for k in GEODETECTOR_TABLES], "regression", "regression_selected",
             "morans_i", "hotspots"]
    kept = {Path(p).resolve() for p in written.values()}
    stale = [out.table_path(name, ext) for name in names for ext in ("csv", "parquet")]
    stale += [*out.figures.glob("geodetector_q_*.png"), *out.figures.glob("geodetector_interaction_*.png")]
    for path in stale:
        if path.is_file() and path.resolve() not in kept:
            path.unlink()


def _year_first(df: pd.DataFrame) -> pd.DataFrame:
    return df[["year", *[c for c in df.columns if c != "year"]]]


def config_parts(cfg: RunConfig) -> dict[str, object]:
    c = cfg.model_dump(mode="json")
    return {"analysis": c["analysis"], "drivers": c["drivers"]}


def input_files(cfg: RunConfig) -> dict[str, Path]:
    return {}


STAGE = Stage("driver_analysis", ("transitions_esv",), config_parts, input_files, run)

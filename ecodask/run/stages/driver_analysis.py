"""Stage ``driver_analysis``: driver analysis on the run's analysis grid (methods.md sections 5-6).

y = ESV density per year (CNY/ha/yr), the drivers ingested onto the same grid: the stepwise
regression and the Geographical Detector per year, ESV hot spots (Moran's I, Gi* grid and classes,
per-county summary).

Each year is one Dask task (:func:`analyse_year`, key ``driver_analysis_year-<year>-<call>``) on the
run's workers: it reads that year's ESV density and the drivers from the store, computes everything of
the year (nested computations on Dask's synchronous scheduler), draws its detector charts in a
folder of its own machine and returns their bytes (a worker needs no disk the flow sees) and
writes its Gi* z and classes into a year slice of staged arrays; it returns only the year's
tables, results and charts. The flow's process holds no grid of any year: it gathers those small
results, raises the problems of every year at once (nothing is then written: the staged arrays
are discarded, the previous outputs stay whole), else writes the tables and charts (each
atomically) and commits the arrays.

The regression takes the continuous drivers. The detector takes every driver
(``analysis.detector_factors: all``), or per year the continuous drivers the regression selected
plus every categorical driver (``selected``, seed 002's Algorithm A1); a year where that leaves no
driver has no detector rows. ``analysis.regression_table: enter`` writes ``regression`` in seed
002's layout (every continuous driver per year, the model of all drivers, ``selected`` marking the
selection) and the selected model's terms as ``regression_selected``.

Outputs::

    tables/geodetector_{factor,interaction,risk,ecological,discretization}.{csv,parquet}
    tables/regression.* (regression_selected.* with the enter layout), morans_i.*, hotspots.*
    tables/geodetector_scale.*, geodetector_scale_summary.* (with analysis.scales)
    figures/geodetector_q_<year>.png, geodetector_interaction_<year>.png, geodetector_scale_<year>.png
    store.zarr/analysis/esv_gi_z, esv_hotspot
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ecodask.errors import InputError, Problem, problem
from ecodask.io.atomic import write_atomic
from ecodask.io.layers import Layers
from ecodask.io.layout import RunFolder, scale_figure
from ecodask.run.config import RunConfig
from ecodask.run.stages import Stage

if TYPE_CHECKING:
    import dask.array as da
    import numpy as np
    import pandas as pd


#: Analysis-grid block for the detector passes (cells per side): few, large tasks.
BLOCK = 1024


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
    from ecodask.chunked.cells import driver_cells

    check_driver_cells(cfg, driver_cells(drivers, density), "on any analysis cell with ESV")


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


#: Name of the per-year Dask task: the prefix the scheduler shows (its key is
#: ``driver_analysis_year-<year>-<call>``).
YEAR_TASK = "driver_analysis_year"
#: The detector charts' label of y.
Y_LABEL = "ESV density (CNY/ha/yr per analysis cell)"


@dataclass(frozen=True)
class YearJob:
    """What every year's task needs, as plain values (no configuration): the store, the drivers
    (names, which are continuous), the options of the regression, of the detector and of the hot
    spots and where to write the hot-spot arrays (staged, by final name)."""

    store: Path | Layers
    names: tuple[str, ...]
    continuous: tuple[str, ...]
    regression: dict[str, object] | None  # options of regression_results; None: no regression
    detector_factors: str  # "all" or "selected"
    discretize: dict[str, str | None]
    detector: dict[str, object]  # the other options of detect_arrays
    zones: pd.DataFrame | None  # the store's zones; None: no hot spots
    staged: dict[str, str | Path] | None  # staged hot-spot arrays by final name
    scales: tuple[int, ...] = ()  # multiples of the analysis cell for the scale effect of q
    cell_m: float = 0.0  # the analysis cell's side, m
    pixel_area_ha: float = 0.0


@dataclass
class YearResult:
    """What a year's task returns to the flow: small things only. Problems (InputError's records)
    are returned, not raised: the regression's (keyed ``"<year>: <key>"``; the rest of that year
    is not computed) and the detector's and the hot spots' (as raised)."""

    year: int
    regression_problems: list[Problem] = field(default_factory=list)
    detector_problems: list[Problem] = field(default_factory=list)
    hotspot_problems: list[Problem] = field(default_factory=list)
    fit: object = None  # RegressionResult
    detector: dict[str, pd.DataFrame] | None = None  # the detector's tables (with year), if run
    charts: dict[str, bytes] = field(default_factory=dict)  # chart file name -> its PNG
    moran: dict[str, float | int] | None = None
    summary: pd.DataFrame | None = None
    scale: pd.DataFrame | None = None  # the factor detector at every cell size (with year, size_m)


_SYNC_LOCK = threading.Lock()
_sync_users = 0
_sync_cm = None


@contextlib.contextmanager
def _synchronous() -> Iterator[None]:
    """Dask's synchronous scheduler for the computations nested in a task (never the distributed
    client from a worker). Dask's configuration is the process's, shared by a worker's threads:
    the first task in sets it, the last one out restores it, so that tasks overlapping in one
    process do not restore each other's setting halfway."""
    import dask

    global _sync_users, _sync_cm
    with _SYNC_LOCK:
        if _sync_users == 0:
            _sync_cm = dask.config.set(scheduler="synchronous")
            _sync_cm.__enter__()
        _sync_users += 1
    try:
        yield
    finally:
        with _SYNC_LOCK:
            _sync_users -= 1
            if _sync_users == 0:
                _sync_cm.__exit__(None, None, None)
                _sync_cm = None


def analyse_year(job: YearJob, index: int, year: int, cell_zone: np.ndarray | None) -> YearResult:
    """The driver analysis of one year, as one Dask task: reads the year's ESV density and the
    drivers from the store, runs the stepwise regression of the continuous drivers, the detector
    on the year's factors, the hot spots (Moran's I, Gi*, classes, summary per zone of
    ``cell_zone``), writes the Gi* z and classes into the staged arrays' year slice and draws the
    detector charts; returns the tables, results and charts (:class:`YearResult`)."""
    import tempfile

    import dask.array as da

    from ecodask.chunked import hotspots as hs
    from ecodask.chunked.geodetector import detect_arrays
    from ecodask.chunked.regression import regression_results
    from ecodask.io.grids import read_analysis_year, write_hotspot_year
    from ecodask.present.plots import detector_charts, scale_chart

    with _synchronous():
        y_np, x_np = read_analysis_year(job.store, index, list(job.names))
        # The chunks the stage read the store with: the same sums, the same rounding.
        y = da.from_array(y_np, chunks=(BLOCK, BLOCK))
        drivers = {n: da.from_array(x, chunks=(BLOCK, BLOCK)) for n, x in x_np.items()}
        out = YearResult(year)
        selected = list(job.continuous)
        if job.regression is not None:
            try:
                fit = regression_results({year: y}, {n: drivers[n] for n in job.continuous},
                                         **job.regression)[year]
            except InputError as exc:
                out.regression_problems.extend(exc.problems)
                return out
            out.fit = fit
            selected = [n for n in job.continuous if n in fit.selected]
        factors = list(job.names) if job.detector_factors == "all" else \
            [n for n in job.names if n not in job.continuous or n in selected]
        if factors:
            try:
                r = detect_arrays(y, {n: drivers[n] for n in factors}, discretize=job.discretize,
                                  **job.detector, source=f"{_store_name(job.store)}/analysis",
                                  y_name=f"esv_density[{year}]")
            except InputError as exc:
                out.detector_problems.extend(exc.problems)
            else:
                r["factor"] = r["factor"].assign(detector_factors=job.detector_factors)
                if job.scales:
                    out.scale = _scale_rows(job, index, year, r["factor"], x_np, factors)
                with tempfile.TemporaryDirectory(prefix="ecodask-charts-") as tmp:
                    charts = detector_charts(r, Path(tmp), f"_{year}", y=Y_LABEL)
                    if out.scale is not None:
                        charts |= scale_chart(out.scale, Path(tmp) / scale_figure(year),
                                              f"q of each driver by analysis cell size, ESV of {year}")
                    out.charts = {name: Path(path).read_bytes() for name, path in charts.items()}
                out.detector = {k: v.assign(year=year) for k, v in r.items()}
        if job.zones is not None:
            src = f"{_store_name(job.store)}/analysis/esv_density[{year}]"
            try:
                moran, z, cls, summary = hs.hotspots(y, cell_zone, job.zones, source=src)
            except InputError as exc:
                out.hotspot_problems.extend(exc.problems)
            else:
                if not (out.detector_problems or out.hotspot_problems):
                    write_hotspot_year(job.staged, index, z, cls)
                out.moran, out.summary = {"year": year, **moran}, summary.assign(year=year)
        return out


def _scale_rows(job: YearJob, index: int, year: int, base: pd.DataFrame, x_np: dict[str, np.ndarray],
                factors: list[str]) -> pd.DataFrame:
    """The factor detector at the analysis cell (``base``) and at each of ``job.scales`` times it: y
    the ESV density of the coarse cells (their cells' ESV over their valued area), a continuous
    driver the mean of its cells weighted by their valued pixels of the year (the pixels y is
    over: a cell with no valued pixel counts 0), a categorical one the value whose cells hold the
    most valued pixels. A size the detector cannot read (too few cells or strata) gets rows with
    its problem in ``note`` and no q."""
    import dask.array as da
    import pandas as pd

    from ecodask.chunked.geodetector import detect_arrays
    from ecodask.io.grids import read_analysis_esv_year
    from ecodask.kernels.coarsen import block_density, block_mean, block_mode

    cols = ["factor", "q", "p", "q_low", "q_high", "F", "lambda", "strata", "n"]
    parts = [base[cols].assign(multiple=1, size_m=job.cell_m, note="")]
    esv, pixels = read_analysis_esv_year(job.store, index)
    for s in job.scales:
        y = block_density(esv, pixels, s, job.pixel_area_ha)
        # weighted by this year's valued pixels: not the same every year, so not hoisted out of the year
        xs = {n: (block_mean if n in job.continuous else block_mode)(x_np[n], s, weights=pixels)
              for n in factors}
        try:
            r = detect_arrays(da.from_array(y, chunks=(BLOCK, BLOCK)),
                              {n: da.from_array(x, chunks=(BLOCK, BLOCK)) for n, x in xs.items()},
                              discretize=job.discretize, **job.detector,
                              source=f"{_store_name(job.store)}/analysis (x{s})",
                              y_name=f"esv_density[{year}]")
        except InputError as exc:
            note = "; ".join(f"{p.file} {p.key}: {p.message}" for p in exc.problems)
            parts.append(pd.DataFrame({"factor": factors, "multiple": s, "size_m": s * job.cell_m,
                                       "note": note}))
        else:
            parts.append(r["factor"][cols].assign(multiple=s, size_m=s * job.cell_m, note=""))
    t = pd.concat(parts, ignore_index=True)
    return t.assign(year=year)[["year", "multiple", "size_m", *cols, "note"]]


def _store_name(store: Path | Layers) -> str:
    """The store as a problem or a table's source names it."""
    return Path(store).name if isinstance(store, Path) else store.base


def run(cfg: RunConfig, store: Path | Layers | None) -> dict[str, Path]:
    """Driver analysis of every year on the run's analysis grid; writes tables, charts and the
    hot-spot grids. Needs the ESV stage's ``analysis/esv_density``.

    One Dask task per year (:func:`analyse_year`, on the run's workers); this process builds the
    graph, gathers the years' small results and writes the tables and the charts the tasks drew.
    The hot-spot arrays the tasks write are staged, and committed only when every year succeeded."""
    import dask

    from ecodask.chunked.cells import cell_zones
    from ecodask.io.grids import commit, discard, stage_analysis_hotspots
    from ecodask.io.store import ANALYSIS_GROUP, ESV_DENSITY, ZONE, open_store, store_zones
    from ecodask.io.tables import write_tables

    store = store if isinstance(store, Layers) else Path(store)
    pix, ana = open_store(store)
    if ESV_DENSITY not in ana:
        raise InputError([problem(_store_name(store), f"{ANALYSIS_GROUP}/{ESV_DENSITY}", None,
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
    shutil.rmtree(out.figures / "_staging_driver_analysis", ignore_errors=True)  # an earlier version's
    staged = stage_analysis_hotspots(store, ana) if a.hotspots else None
    job = YearJob(
        store=store, names=tuple(names), continuous=tuple(continuous),
        regression=dict(method=a.regression_method, criterion=a.regression_criterion, p_enter=a.p_enter,
                        p_remove=a.p_remove) if continuous else None,
        detector_factors=a.detector_factors, discretize=disc,
        detector=dict(k=a.k, ks=a.ks, variance=a.variance, drop_singletons=a.drop_singletons, alpha=a.alpha,
                      dropna=True, quantile_rule=a.quantile_rule),
        zones=store_zones(pix) if a.hotspots else None, staged=staged, scales=tuple(a.scales),
        cell_m=float(cfg.grid.resolution) * int(pix.attrs["analysis_factor"]),
        pixel_area_ha=float(pix.attrs["pixel_area_ha"]))
    # The zone of each analysis cell: computed once, on the workers, for every year's task.
    cell_zone = cell_zones(pix[ZONE].data, int(pix.attrs["analysis_factor"])) if a.hotspots else None
    # Keys of this call only: a rerun on the same cluster never gets a result still held from before.
    call = uuid.uuid4().hex
    shared = dask.delayed(job, pure=False)
    tasks = [dask.delayed(analyse_year)(shared, i, year, cell_zone,
                                        dask_key_name=f"{YEAR_TASK}-{year}-{call}")
             for i, year in enumerate(years)]
    try:
        results: list[YearResult] = list(dask.compute(*tasks))
        tables = _tables(cfg, results, continuous)
    except BaseException:
        if staged:
            discard(store, list(staged))
        raise
    # Every year is computed: write.
    paths = write_tables(tables, out.tables)
    out.figures.mkdir(parents=True, exist_ok=True)
    for r in results:
        for name, png in r.charts.items():
            paths[name] = write_atomic(out.figures / name, lambda p, png=png: p.write_bytes(png))
    if staged:
        commit(store, staged)
    _remove_stale(out, paths)
    return paths


def _tables(cfg: RunConfig, results: list[YearResult], continuous: list[str]) -> dict[str, pd.DataFrame]:
    """The stage's tables from the years' results (in year order), or the :class:`InputError` of
    every year's problems: the regression's if any (each named by its driver's file), else the
    detector's (named by the driver's file) and the hot spots'."""
    import pandas as pd

    from ecodask.chunked.regression import results_table
    from ecodask.science.geodetector import GEODETECTOR_TABLES

    a = cfg.analysis
    problems = [_regression_problem(cfg, p) for r in results for p in r.regression_problems]
    if problems:
        raise InputError(problems)
    problems = [_driver_problem(cfg, p, r.year) for r in results for p in r.detector_problems]
    problems += [p for r in results for p in r.hotspot_problems]
    if problems:
        raise InputError(problems)
    tables: dict[str, pd.DataFrame] = {}
    detected = [r.detector for r in results if r.detector is not None]
    if detected:
        tables |= {f"geodetector_{k}": _year_first(pd.concat([d[k] for d in detected], ignore_index=True))
                   for k in GEODETECTOR_TABLES}
    if continuous:
        fits = {r.year: r.fit for r in results}
        regression: dict[str, pd.DataFrame] = {}
        try:
            if a.regression_table == "enter":
                regression["regression"] = results_table(fits, "enter")
                regression["regression_selected"] = results_table(fits, "selected")
            else:
                regression["regression"] = results_table(fits, "selected")
        except InputError as exc:  # a problem of a variable is its driver file's
            raise InputError([_regression_problem(cfg, p) for p in exc.problems]) from None
        for t in regression.values():
            t.insert(1, "preset", a.preset)
        tables |= regression
    scaled = [r.scale for r in results if r.scale is not None]
    if scaled:
        from ecodask.science.scale import driver_levels_off, scale_summary

        t = pd.concat(scaled, ignore_index=True)
        tables["geodetector_scale"] = t.assign(levels_off=driver_levels_off(t, a.alpha))
        tables["geodetector_scale_summary"] = scale_summary(tables["geodetector_scale"], a.alpha)
    if a.hotspots:
        tables["morans_i"] = pd.DataFrame([r.moran for r in results])
        tables["hotspots"] = _year_first(pd.concat([r.summary for r in results], ignore_index=True))
    return tables


def _remove_stale(out: RunFolder, written: dict[str, Path]) -> None:
    """Remove the tables and detector charts an earlier run of this stage wrote and this one did not
    (another ``regression_table`` layout, a year whose selection left the detector no driver,
    hot spots switched off), so the folder holds only this run's results."""
    from ecodask.science.geodetector import GEODETECTOR_TABLES

    names = [*[f"geodetector_{k}" for k in GEODETECTOR_TABLES], "regression", "regression_selected",
             "morans_i", "hotspots", "geodetector_scale", "geodetector_scale_summary"]
    kept = {Path(p).resolve() for p in written.values()}
    stale = [out.table_path(name, ext) for name in names for ext in ("csv", "parquet")]
    stale += [*out.figures.glob("geodetector_q_*.png"), *out.figures.glob("geodetector_interaction_*.png"),
              *out.figures.glob(scale_figure("*"))]
    for path in stale:
        if path.is_file() and path.resolve() not in kept:
            path.unlink()


def _year_first(df: pd.DataFrame) -> pd.DataFrame:
    return df[["year", *[c for c in df.columns if c != "year"]]]


def config_parts(c: dict) -> dict[str, object]:
    return {"analysis": c["analysis"], "drivers": c["drivers"]}


def input_files(cfg: RunConfig) -> dict[str, Path]:
    return {}


STAGE = Stage("driver_analysis", ("transitions_esv",), config_parts, input_files, run)

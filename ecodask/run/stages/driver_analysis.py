"""Driver analysis, two ways in (methods.md sections 5-6):

- on a plain table, as researchers run the Geographical Detector today
  (:func:`geodetector_on_table`, behind ``ecodask geodetector TABLE --y COL --factors A B C``);
- on a run's analysis grid (:func:`analysis_stage`): y = ESV density per year (CNY/ha/yr), the
  drivers ingested onto the same grid. Geographical Detector and stepwise regression per year,
  ESV hot spots (Moran's I, Gi* grid and classes, per-county summary).

Everything is computed before anything is written; each table and chart is written atomically.

Outputs (``<folder>/``)::

    geodetector_{factor,interaction,risk,ecological,discretization}.{csv,parquet}
    geodetector_q.png, geodetector_interaction.png   (tables; a run's are figures/*_<year>.png)
    regression.*, morans_i.*, hotspots.*            (analysis grid only)
    store.zarr/analysis/esv_gi_z, esv_hotspot         (analysis grid only)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd

from ecodask.chunked import hotspots as hs
from ecodask.run.config import RunConfig
from ecodask.errors import InputError, problem
from ecodask.run.stages.figures import FIGURES
from ecodask.chunked.geodetector import detect_arrays, detect_table
from ecodask.io.grids import write_analysis_hotspots
from ecodask.io.store import open_store, store_zones
from ecodask.io.tables import write_tables
from ecodask.present.plots import interaction_heatmap, q_bar_chart
from ecodask.chunked.regression import regression_table

GEODETECTOR_TABLES = ("factor", "interaction", "risk", "ecological", "discretization")
#: Analysis-grid block for the detector passes (cells per side): few, large tasks.
BLOCK = 1024


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV (UTF-8, BOM allowed) or Parquet table."""
    path = Path(path)
    if not path.is_file():
        raise InputError([problem(path, "", None, "no such file")])
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, encoding="utf-8-sig")
    except Exception as exc:  # noqa: BLE001 - any reader error is an unreadable table
        raise InputError([problem(path, "", None, f"not a readable CSV or Parquet table ({exc})")]) from None


def write_charts(results: dict[str, pd.DataFrame], folder: Path, suffix: str = "") -> dict[str, Path]:
    """The q bar chart and the interaction heat map of one set of detector results."""
    label = f", {suffix.strip('_')}" if suffix else ""
    q_png = folder / f"geodetector_q{suffix}.png"
    paths = {q_png.name: q_bar_chart(results["factor"], q_png, title=f"Factor detector{label}")}
    if len(results["interaction"]):
        paths[f"geodetector_interaction{suffix}.png"] = interaction_heatmap(
            results["interaction"], results["factor"], folder / f"geodetector_interaction{suffix}.png",
            title=f"Interaction detector{label}")
    return paths


def write_geodetector(results: dict[str, pd.DataFrame], folder: str | Path) -> dict[str, Path]:
    """Write the detector tables and the two charts; return their paths by key."""
    folder = Path(folder)
    paths = write_tables({f"geodetector_{k}": results[k] for k in GEODETECTOR_TABLES}, folder)
    return paths | write_charts(results, folder)


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
    return results, write_geodetector(results, out)


def _cell_zones(pix_zone: da.Array, factor: int) -> da.Array:
    """The zone of each analysis cell: the zone of its centre pixel (0 outside every zone)."""
    c = factor // 2
    return pix_zone[c::factor, c::factor]


def analysis_stage(cfg: RunConfig, store: Path) -> dict[str, Path]:
    """Driver analysis of every year on the run's analysis grid; writes tables, charts and the
    hot-spot grids. Needs the ESV stage's ``analysis/esv_density``."""
    store = Path(store)
    pix, ana = open_store(store)
    if "esv_density" not in ana:
        raise InputError([problem(store, "analysis/esv_density", None, "missing: run the ESV stage first")])
    a = cfg.analysis
    years = [int(v) for v in ana["year"].values]
    folder = cfg.output / "tables"
    density = ana["esv_density"].data.rechunk((1, BLOCK, BLOCK))
    names = sorted(cfg.drivers)
    drivers = {n: ana[n].data.rechunk((BLOCK, BLOCK)) for n in names}
    continuous = [n for n in names if cfg.drivers[n].kind == "continuous"]
    disc = {n: (None if cfg.drivers[n].kind == "categorical" or a.discretize == "none" else a.discretize)
            for n in names}
    results: dict[str, list[pd.DataFrame]] = {k: [] for k in GEODETECTOR_TABLES}
    charts = []
    for i, year in enumerate(years):
        if not names:
            break
        r = detect_arrays(density[i], drivers, discretize=disc, k=a.k, ks=a.ks, variance=a.variance,
                          drop_singletons=a.drop_singletons, alpha=a.alpha, dropna=True,
                          source=f"{store.name}/analysis", y_name=f"esv_density[{year}]")
        for k in GEODETECTOR_TABLES:
            results[k].append(r[k].assign(year=year))
        charts.append((year, r))
    regression = None
    if continuous:
        regression = regression_table({y: density[i] for i, y in enumerate(years)},
                                      {n: drivers[n] for n in continuous},
                                      method=a.regression_method, criterion=a.regression_criterion,
                                      p_enter=a.p_enter, p_remove=a.p_remove)
    hot = None
    if a.hotspots:
        zones = store_zones(pix)
        cell_zone = _cell_zones(pix["zone"].data, int(pix.attrs["analysis_factor"]))
        morans, zs, classes, summaries = [], [], [], []
        for i, year in enumerate(years):
            src = f"{store.name}/analysis/esv_density[{year}]"
            morans.append({"year": year, **hs.morans_i(density[i], source=src)})
            z = hs.getis_ord_gi_star(density[i], source=src).compute()  # once: grid, classes, summary
            zs.append(z.astype(np.float32))
            classes.append(hs.hotspot_classes(z))
            summaries.append(hs.hotspot_summary(z, cell_zone, zones, source=src).assign(year=year))
        hot = (pd.DataFrame(morans), pd.concat(summaries, ignore_index=True), np.stack(zs), np.stack(classes))
    # Everything is computed: write.
    tables: dict[str, pd.DataFrame] = {}
    if names:
        tables |= {f"geodetector_{k}": _year_first(pd.concat(v, ignore_index=True))
                   for k, v in results.items()}
    if regression is not None:
        tables["regression"] = regression
    if hot is not None:
        tables["morans_i"], tables["hotspots"] = hot[0], _year_first(hot[1])
    paths = write_tables(tables, folder)
    for year, r in charts:
        paths |= write_charts(r, cfg.output / FIGURES, f"_{year}")
    if hot is not None:
        write_analysis_hotspots(store, ana, np.asarray(years), hot[2], hot[3])
    return paths


def _year_first(df: pd.DataFrame) -> pd.DataFrame:
    return df[["year", *[c for c in df.columns if c != "year"]]]


def driver_summary_markdown(cfg: RunConfig) -> str:
    """q of each driver per year (factor detector), read from the written table (a Prefect
    artifact)."""
    t = pd.read_parquet(cfg.output / "tables" / "geodetector_factor.parquet")
    wide = t.pivot_table(index="factor", columns="year", values="q", sort=False)
    lines = ["### Geographical Detector: q of each driver for the ESV density", "",
             "| driver | " + " | ".join(str(y) for y in wide.columns) + " |",
             "|---" * (len(wide.columns) + 1) + "|"]
    lines += [f"| {f} | " + " | ".join(f"{v:.4f}" for v in row) + " |" for f, row in wide.iterrows()]
    return "\n".join(lines) + "\n"

"""The scale effect of the Geographical Detector at national size: one year's coarse cells and their
detectors.

    python -m benchmarks.run --suite scale_effect [--side 3240] [--sizes 2 4 8 16] [--repeats 3]
    python -m benchmarks.scale_effect --case CASE [--side 3240] ...      one case, one JSON line

Data (synthetic, seeded, built in each case's process before the clock): an analysis grid of
``--side``² cells (3,240² = 10.5 M, the national grid's ~10.5 M cells of 960 m), a country inside
an irregular outline (a radius with a few harmonics, ~60 % of the grid): ``esv_pixels`` int32,
1,024 valued pixels a cell inside, partial cells (1..1,023) in a band along the outline and
scattered inside (water, built-up), 0 outside; ``esv`` float64 CNY/yr, a smooth density with noise
x the valued area, NaN without a valued pixel. Drivers float32 (NaN outside a slightly wider outline,
so that cells with a value and no valued pixel exist): 5 continuous (smooth fields of several
wavelengths + noise, two lognormal) and 1 categorical of 8 codes (a smooth field cut into 8 classes,
patchy). As the stage reads them from the store (``ecodask.io.grids``).

Cases (each in a fresh process; a warm-up on a 256² window at the centre first: numba's cache, imports):

- ``coarsen_before``: for every size s of ``--sizes``, ``block_density`` of the ESV and
  ``block_mean`` of the 5 continuous and ``block_mode`` of the categorical driver, every cell
  counted alike, by ``ecodask/kernels/coarsen.py`` as it was before the weighting (read from git at
  ``f7ac337^`` and loaded as a module): the baseline.
- ``coarsen_unweighted``: the same by the current code with ``weights=None`` (the same values as
  before; a weight of 1 per cell is built and multiplied in).
- ``coarsen_weighted``: the same with ``weights=esv_pixels``: what ``_scale_rows`` does now.
- ``density_before`` / ``density``: ``block_density`` of the ESV alone at every size, by the code
  at :data:`BEFORE` (numpy's sums over padded blocks) / by the code now (one numba pass).
- ``detector_base``: the factor detector of the analysis cell as ``analyse_year`` calls it
  (``detect_arrays`` on dask arrays of 1024² cells, ``discretize: optimal`` with ks 3..10 for the
  continuous drivers, the categorical as given, ``dropna``; Dask's synchronous scheduler).
- ``scale_rows``: ``driver_analysis._scale_rows`` itself with a ``YearJob`` of the defaults
  (``scales`` = ``--sizes``, 960 m cells, 0.09 ha pixels) and the store's reader
  (``ecodask.io.grids.read_analysis_esv_year``) replaced by one that returns the synthetic arrays:
  every size's coarsening and detector, the store read left out.

Seconds: wall clock, the fastest of ``--repeats`` (all runs in the JSON). Peak: the process's
resident-memory high-water mark (VmHWM, reset through ``/proc/self/clear_refs`` after the data and
the warm-up) above its resident memory at that point (the inputs, ~0.5 GB, not counted). The 1-minute
load average before each case is recorded beside it. Prints a Markdown table and writes
``<out>/scale_effect.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.env import REPO, code_state, hwm_mb, machine, reset_peak, rss_mb

CASES = ("coarsen_before", "coarsen_unweighted", "coarsen_weighted", "density_before", "density",
         "detector_base", "scale_rows")
PACKAGES = ("numpy", "numba", "dask", "pandas", "scipy")
SIDE = 3240
SIZES = (2, 4, 8, 16)
CONTINUOUS = ("elevation", "precipitation", "temperature", "ndvi", "population")
CATEGORICAL = "soil"
CELL_M = 960.0
PIXEL_AREA_HA = 0.09  # 30 m pixels
FULL = 1024  # pixels of a 960 m cell
BEFORE = "f7ac337^"  # the commit before the coarse drivers were weighted


def coarsen_before():  # noqa: ANN201
    """``ecodask/kernels/coarsen.py`` at :data:`BEFORE`, as a module of its own."""
    import types

    src = subprocess.run(["git", "show", f"{BEFORE}:ecodask/kernels/coarsen.py"], capture_output=True,
                         text=True, cwd=REPO, check=True).stdout
    mod = types.ModuleType("coarsen_before")
    exec(compile(src, f"ecodask/kernels/coarsen.py@{BEFORE}", "exec"), mod.__dict__)  # noqa: S102
    return mod


def _smooth(rng: np.random.Generator, side: int, coarse: int) -> np.ndarray:
    """A smooth field of ``side``² (float32, ~N(0, 1)): ``coarse``² normal values zoomed (cubic)."""
    from scipy import ndimage

    f = ndimage.zoom(rng.standard_normal((coarse, coarse)), side / coarse, order=3)[:side, :side]
    f = f.astype(np.float32)
    return (f - f.mean()) / f.std()


def grid(side: int = SIDE, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``esv`` (float64, CNY/yr), ``esv_pixels`` (int32) and the drivers (float32) of one year."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side - 0.5
    r, theta = np.hypot(xx, yy), np.arctan2(yy, xx)
    edge = 0.44 + 0.05 * np.sin(3 * theta + 0.4) + 0.03 * np.cos(5 * theta) + 0.015 * np.sin(11 * theta + 1)
    edge = edge + 0.01 * _smooth(rng, side, 24)  # an irregular outline
    inside = r < edge
    pixels = np.where(inside, FULL, 0).astype(np.int32)
    band = inside & (r > edge - 6.0 / side)  # the outline's cells: partial
    pixels[band] = rng.integers(1, FULL, int(band.sum()))
    holes = inside & (rng.random((side, side)) < 0.03)  # water, built-up: partial inside
    pixels[holes] = rng.integers(0, FULL, int(holes.sum()))
    covered = r < edge + 4.0 / side  # the drivers' rasters reach a little past the zones
    drivers = {}
    for i, name in enumerate(CONTINUOUS):
        f = (_smooth(rng, side, (12, 30, 60, 90, 150)[i]) + 0.3 * _smooth(rng, side, 400)
             + 0.2 * rng.standard_normal((side, side), dtype=np.float32))
        if name in ("elevation", "population"):
            f = np.exp(f)
        drivers[name] = np.where(covered, f, np.nan).astype(np.float32)
    codes = np.digitize(_smooth(rng, side, 50) + 0.5 * _smooth(rng, side, 300),
                        [-1.2, -0.7, -0.3, 0.0, 0.3, 0.7, 1.2]).astype(np.float32)
    drivers[CATEGORICAL] = np.where(covered, codes, np.nan).astype(np.float32)
    # y with effects of the drivers (one categorical), a field of its own and noise
    log_d = (8.5 + 0.3 * np.log(drivers["elevation"]) - 0.2 * drivers["temperature"] + 0.25 * drivers["ndvi"]
             + 0.08 * codes + 0.3 * _smooth(rng, side, 40) + 0.3 * rng.standard_normal((side, side)))
    esv = np.where(pixels > 0, np.exp(log_d, dtype=np.float64) * pixels * PIXEL_AREA_HA, np.nan)
    return esv, pixels, drivers


def _job(sizes: tuple[int, ...]):  # noqa: ANN202
    from ecodask.run.stages.driver_analysis import YearJob

    names = (*CONTINUOUS, CATEGORICAL)
    return YearJob(
        store=Path("synthetic"), names=names, continuous=CONTINUOUS, regression=None,
        detector_factors="all", discretize={n: ("optimal" if n in CONTINUOUS else None) for n in names},
        detector=dict(k=None, ks=list(range(3, 11)), variance="population", drop_singletons=True,
                      alpha=0.05, dropna=True, quantile_rule="type7"),
        zones=None, staged=None, scales=tuple(sizes), cell_m=CELL_M, pixel_area_ha=PIXEL_AREA_HA)


def _runner(case: str, esv: np.ndarray, pixels: np.ndarray, drivers: dict[str, np.ndarray],
            sizes: tuple[int, ...]):  # noqa: ANN202
    """``case`` as a function of no argument, returning something small to keep."""
    import dask.array as da

    import ecodask.io.grids as grids
    from ecodask.chunked.geodetector import detect_arrays
    from ecodask.kernels.coarsen import block_density, block_mean, block_mode
    from ecodask.run.stages import driver_analysis as stage

    job = _job(sizes)
    if case.startswith("density"):
        density = coarsen_before().block_density if case == "density_before" else block_density

        def run() -> dict:
            per_size = {}
            for s in sizes:
                t0 = time.perf_counter()
                y = density(esv, pixels, s, PIXEL_AREA_HA)
                per_size[s] = time.perf_counter() - t0
            return {"coarse_cells_with_y": int(np.isfinite(y).sum()), "seconds_by_size": per_size}
        return run
    if case.startswith("coarsen_"):
        if case == "coarsen_before":
            old = coarsen_before()
            block_density, block_mean, block_mode = old.block_density, old.block_mean, old.block_mode
            kw = {}
        else:
            kw = {"weights": pixels if case == "coarsen_weighted" else None}

        def run() -> dict:
            cells, per_size = 0, {}
            for s in sizes:
                t0 = time.perf_counter()
                y = block_density(esv, pixels, s, PIXEL_AREA_HA)
                xs = {n: (block_mean if n in CONTINUOUS else block_mode)(x, s, **kw)
                      for n, x in drivers.items()}
                per_size[s] = time.perf_counter() - t0
                cells += int(np.isfinite(y).sum())
                del xs
            return {"coarse_cells_with_y": cells, "seconds_by_size": per_size}
        return run
    if case == "detector_base":
        y = esv / (np.where(pixels > 0, pixels, np.nan) * PIXEL_AREA_HA)  # esv_density

        def run() -> dict:
            with stage._synchronous():
                r = detect_arrays(da.from_array(y, chunks=(stage.BLOCK, stage.BLOCK)),
                                  {n: da.from_array(x, chunks=(stage.BLOCK, stage.BLOCK))
                                   for n, x in drivers.items()},
                                  discretize=job.discretize, **job.detector, source="synthetic/analysis",
                                  y_name="esv_density[2020]")
            return {"factor": r["factor"][["factor", "q", "p", "strata", "n"]].to_dict("records")}
        return run
    grids.read_analysis_esv_year = lambda store, index: (esv, pixels)  # the store's read left out
    cols = ["factor", "q", "p", "q_low", "q_high", "F", "lambda", "strata", "n"]
    import pandas as pd

    base = pd.DataFrame({c: (list(drivers) if c == "factor" else np.nan) for c in cols})

    def run() -> dict:
        with stage._synchronous():
            t = stage._scale_rows(job, 0, 2020, base, drivers, list(drivers))
        t = t[t["multiple"] > 1]
        return {"rows": t[["multiple", "factor", "q", "strata", "n", "note"]].to_dict("records")}
    return run


def case_main(case: str, side: int, sizes: tuple[int, ...], repeats: int) -> dict:
    """One case in this process (the data, a warm-up, ``repeats`` timed calls)."""
    import warnings

    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks
    esv, pixels, drivers = grid(side)
    c = slice(side // 2 - 128, side // 2 + 128)  # a 256² window at the centre, inside the outline
    small = _runner(case, esv[c, c].copy(), pixels[c, c].copy(),
                    {n: x[c, c].copy() for n, x in drivers.items()}, sizes)
    small()
    del small
    run = _runner(case, esv, pixels, drivers, sizes)
    gc.collect()
    peak_reset = reset_peak()
    base = rss_mb() if peak_reset else hwm_mb()
    seconds, out = [], None
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        got = run()
        seconds.append(time.perf_counter() - t0)
        if seconds[-1] == min(seconds):
            out = got  # the fastest call's breakdown
        del got
    return {"case": case, "cells": int(esv.size), "cells_with_esv": int((pixels > 0).sum()),
            "partial_cells": int(((pixels > 0) & (pixels < FULL)).sum()),
            "cells_with_drivers": int(np.isfinite(drivers[CONTINUOUS[0]]).sum()),
            "sizes": list(sizes), "seconds": min(seconds), "all_seconds": seconds,
            "peak_above_mb": hwm_mb() - base, "resident_before_mb": base, "peak_reset": peak_reset,
            "input_mb": (esv.nbytes + pixels.nbytes + sum(x.nbytes for x in drivers.values())) / 2**20,
            **out}


_WHAT = {
    "coarsen_before": "coarsening, unweighted, the code before f7ac337: baseline",
    "coarsen_unweighted": "coarsening, unweighted, the code now (`weights=None`)",
    "coarsen_weighted": "coarsening, weighted by valued pixels (now)",
    "density_before": "ESV density alone, the numpy code before (baseline of the next)",
    "density": "ESV density alone, one numba pass (now)",
    "detector_base": "factor detector at the analysis cell (x1)",
    "scale_rows": "`_scale_rows`: coarsening + factor detector per size",
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    ap.add_argument("--side", type=int, default=SIDE)
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    ap.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    sizes = tuple(a.sizes)
    if a.case:
        print(json.dumps(case_main(a.case, a.side, sizes, a.repeats)))
        return
    info = {"machine": machine(PACKAGES), "code": code_state(), "side": a.side, "sizes": list(sizes),
            "repeats": a.repeats}
    rows = []
    for case in a.cases:
        load = os.getloadavg()[0]
        cmd = [sys.executable, "-m", "benchmarks.scale_effect", "--case", case, "--side", str(a.side),
               "--sizes", *map(str, sizes), "--repeats", str(a.repeats)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        if proc.returncode:
            raise SystemExit(f"case {case} failed:\n{proc.stderr}")
        row = json.loads(proc.stdout.strip().splitlines()[-1]) | {"load_before": load}
        rows.append(row)
        print(f"{case:20s} {row['seconds']:7.2f} s  peak +{row['peak_above_mb']:6.0f} MB  load {load:.2f}",
              flush=True)
    info["load_avg_at_end"] = os.getloadavg()
    info["rows"] = rows
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "scale_effect.json").write_text(json.dumps(info, indent=2, default=str))

    r0 = rows[0]
    print(f"\nScale effect, one year: {r0['cells']:,} analysis cells ({a.side}², {r0['cells_with_esv']:,} "
          f"with ESV, {r0['partial_cells']:,} partial), 5 continuous drivers + 1 categorical (8 codes); "
          f"fastest of {a.repeats}, each case in a fresh process:\n")
    print("| case | cells | sizes | seconds | peak MB (above the inputs) | load before |")
    print("|---|---:|---|---:|---:|---:|")
    for r in rows:
        sz = "x1" if r["case"] == "detector_base" else ", ".join(f"x{s}" for s in r["sizes"])
        print(f"| {_WHAT[r['case']]} | {r['cells']:,} | {sz} | {r['seconds']:.2f} | "
              f"{r['peak_above_mb']:.0f} | {r['load_before']:.2f} |")
    by = {r["case"]: r for r in rows}
    for coarse in ([c for c in ("coarsen_before", "coarsen_unweighted", "coarsen_weighted") if c in by],
                   [c for c in ("density_before", "density") if c in by]):
        if not coarse:
            continue
        b = by[coarse[0]]
        print(f"\ncoarsening, seconds by size (the fastest call), ratio to {coarse[0]}:")
        for c in coarse:
            r = by[c]
            print(f"  {c:20s} " + "  ".join(f"x{s} {r['seconds_by_size'][str(s)]:.2f}" for s in sizes)
                  + f"  | {r['seconds'] / b['seconds']:.2f}x time, "
                  f"{r['peak_above_mb'] / max(b['peak_above_mb'], 1):.2f}x peak")
    if "scale_rows" in by:
        notes = {row["note"] for row in by["scale_rows"]["rows"] if row["note"]}
        print(f"scale rows: {len(by['scale_rows']['rows'])} rows, problems: {sorted(notes) or 'none'}")


if __name__ == "__main__":
    main()

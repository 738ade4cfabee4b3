"""The terrain benchmark: slope + aspect of the real Wuhan DEM (30 m, 2931 x 2931 px, UTM 49N),
ecodask against xarray-spatial and NumPy on the same data.

    python -m benchmarks.run --suite terrain [--repeats 3] [--cases ...] [--out bench-output]
    python -m benchmarks.terrain case CASE [--repeats 3]            one case, one JSON line

Cases (each in a fresh process; a warm-up call on a 64 x 64 corner loads numba's cache and the
imports before the clock; then ``--repeats`` timed calls, the median reported):

- ``kernel``: :func:`ecodask.kernels.terrain.horn` slope then aspect, the DEM in memory (float32,
  NaN for no data), one thread.
- ``numpy``: the same formulas as NumPy slices of the whole array (9 shifted views, temporaries).
- ``xrspatial``: ``xrspatial.slope`` + ``xrspatial.aspect`` on the DEM in memory (numpy backend,
  numba), one thread.
- ``xrspatial_dask``: the same on a dask array in 1024² chunks (``map_overlap``), 2 threads.
- ``reader``: what ingest does for two drivers ``derive: slope`` and ``derive: aspect``:
  :class:`ecodask.io.terrain.TerrainRaster` onto the China Albers analysis grid of 960 m cells in
  chunks of 32 cells (1024 px), 2 threads: read the DEM window + halo from the GeoTIFF, Horn at
  30 m, GDAL ``average`` (aspect: of sin and cos) onto the chunk.
- ``reader_elevation``: the DEM's own mean onto the same grid (``WarpedRaster``, average): the
  driver path without derivation, for scale.

After the clock, ``kernel`` and ``xrspatial`` are compared (max |difference| of slope, of aspect
off the flat cells, and flat cells equal). Writes ``<out>/terrain/results.json``; prints a
Markdown table for BENCHMARKS.md with the load average at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.env import code_state, hwm_mb, machine, reset_peak

CASES = ("kernel", "numpy", "xrspatial", "xrspatial_dask", "reader", "reader_elevation")
PACKAGES = ("numpy", "numba", "dask", "xarray", "xarray-spatial", "rasterio")
DEM = Path(__file__).resolve().parents[2] / "shared" / "data" / "wuhan_dem_30m_utm49n.tif"
CHUNK = 1024


def _dem() -> tuple[np.ndarray, object]:
    import rasterio

    with rasterio.open(DEM) as src:
        return src.read(1, masked=True).astype(np.float32).filled(np.nan), src.transform


def numpy_horn(z: np.ndarray, rx: float, ry: float) -> tuple[np.ndarray, np.ndarray]:
    """Slope and aspect (degrees) by Horn's method with NumPy slices; NaN edges and flat aspect."""
    a, b, c = z[:-2, :-2], z[:-2, 1:-1], z[:-2, 2:]
    d, f = z[1:-1, :-2], z[1:-1, 2:]
    g, h, i = z[2:, :-2], z[2:, 1:-1], z[2:, 2:]
    dzdx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8 * rx)
    dzdy = ((g + 2 * h + i) - (a + 2 * b + c)) / (8 * ry)
    slope = np.full(z.shape, np.nan, np.float32)
    aspect = np.full(z.shape, np.nan, np.float32)
    slope[1:-1, 1:-1] = np.degrees(np.arctan(np.hypot(dzdx, dzdy)))
    deg = np.degrees(np.arctan2(-dzdx, -dzdy)) % 360.0
    aspect[1:-1, 1:-1] = np.where((dzdx == 0) & (dzdy == 0), np.nan, deg)
    return slope, aspect


def _grid():
    import rasterio
    from rasterio.warp import transform_bounds

    from ecodask.science.grid import CHINA_ALBERS, Grid

    with rasterio.open(DEM) as src:
        b = transform_bounds(src.crs, CHINA_ALBERS, *src.bounds)
    from pyproj import CRS

    return Grid.covering(CRS.from_user_input(CHINA_ALBERS), 30, 32, b, CHUNK).analysis


def _runner(case: str):
    """(set-up -> run(small) callable)."""
    import dask
    import dask.array as da

    if case in ("reader", "reader_elevation"):
        import rasterio
        from rasterio.enums import Resampling

        from ecodask.io.rasters import WarpedRaster
        from ecodask.io.terrain import TerrainRaster

        grid = _grid()
        c = grid.chunk_size
        if case == "reader":
            srcs = [TerrainRaster(str(DEM), grid, w) for w in ("slope", "aspect")]
        else:
            srcs = [WarpedRaster(str(DEM), grid, np.dtype(np.float32), np.nan, Resampling.average)]

        def run(small: bool = False):
            arrs = [da.from_array(s, chunks=(c, c), asarray=True, name=False) for s in srcs]
            if small:
                arrs = [a[:c, :c] for a in arrs]
            with dask.config.set(scheduler="threads", num_workers=2):
                return dask.compute(*arrs)
        with rasterio.open(DEM) as dem:
            pixels = dem.width * dem.height
        return run, {"cells": grid.shape[0] * grid.shape[1], "pixels": pixels}
    z, t = _dem()
    if case == "kernel":
        from ecodask.kernels.terrain import horn

        def run(small: bool = False):
            zz = z[:64, :64] if small else z
            return horn(zz, t.a, t.e, "slope"), horn(zz, t.a, t.e, "aspect")
    elif case == "numpy":
        def run(small: bool = False):
            return numpy_horn(z[:64, :64] if small else z, t.a, t.e)
    else:
        import xarray as xr
        import xrspatial

        data = z if case == "xrspatial" else da.from_array(z, chunks=CHUNK)

        def run(small: bool = False):
            d = data[:64, :64] if small else data
            agg = xr.DataArray(d, dims=("y", "x"), attrs={"res": (t.a, -t.e)})
            with dask.config.set(scheduler="threads", num_workers=2):
                return (np.asarray(xrspatial.slope(agg).values), np.asarray(xrspatial.aspect(agg).values))
    return run, {"pixels": int(z.size), "valid_pixels": int(np.isfinite(z).sum())}


def case_main(argv: list[str]) -> None:
    import warnings

    warnings.simplefilter("ignore", RuntimeWarning)  # xarray-spatial's all-NaN windows
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=CASES)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    run, info = _runner(a.case)
    run(small=True)  # warm-up: numba cache, imports
    peak_reset = reset_peak()
    seconds, out = [], None
    for _ in range(a.repeats):
        out = None
        t0 = time.perf_counter()
        out = run()
        seconds.append(time.perf_counter() - t0)
    result = {"case": a.case, "seconds": seconds, "median_s": statistics.median(seconds),
              "peak_rss_mb": hwm_mb(), "peak_reset": peak_reset, **info}
    if a.case in ("kernel", "xrspatial"):
        path = Path(tempfile.gettempdir()) / f"ecodask-terrain-{a.case}-{os.getpid()}.npy"
        np.save(path, np.stack(out))
        result["arrays"] = str(path)
    print(json.dumps(result))


def _compare(kernel: Path, xrs: Path) -> dict:
    k, x = np.load(kernel), np.load(xrs)
    flat = x[1] == -1
    both = np.isfinite(k[1]) & np.isfinite(x[1]) & ~flat
    d = np.abs((k[1][both] - x[1][both] + 180.0) % 360.0 - 180.0)
    return {"slope_max_abs_diff_deg": float(np.nanmax(np.abs(k[0] - x[0]))),
            "aspect_max_abs_diff_deg": float(d.max()),
            "flat_cells_equal": bool(np.array_equal(flat, np.isnan(k[1]) & np.isfinite(k[0]))),
            "flat_cells": int(flat.sum())}


def main(argv: list[str] | None = None) -> None:
    if argv and argv[0] == "case":
        case_main(argv[1:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    a = ap.parse_args(argv)
    if not DEM.exists():
        raise SystemExit(f"the Wuhan DEM is not at {DEM} (the project's shared data)")
    info = {"machine": machine(PACKAGES), "code": code_state(), "rows": []}
    for case in a.cases:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.terrain", "case", case,
                               "--repeats", str(a.repeats)], capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"terrain case {case} failed:\n{proc.stderr}")
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row["load_avg"] = os.getloadavg()[0]
        info["rows"].append(row)
        print(f"{case:17s} {row['median_s']:7.3f} s  {row['peak_rss_mb']:6.0f} MB  "
              f"load {row['load_avg']:.2f}", flush=True)
    arrays = {r["case"]: Path(r.pop("arrays")) for r in info["rows"] if "arrays" in r}
    if {"kernel", "xrspatial"} <= set(arrays):
        info["agreement"] = _compare(arrays["kernel"], arrays["xrspatial"])
    for p in arrays.values():
        p.unlink(missing_ok=True)
    info["load_avg_at_end"] = os.getloadavg()
    out = a.out / "terrain"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(info, indent=2))
    base = next((r["median_s"] for r in info["rows"] if r["case"] == "xrspatial"), None)
    print(f"\nload average at the start {info['machine']['load_avg_at_start'][0]:.2f}, "
          f"at the end {info['load_avg_at_end'][0]:.2f}")
    print("\n| case | median s | runs s | Mpx/s | peak RSS MB | vs xrspatial | load |")
    print("|---|---|---|---|---|---|---|")
    for r in info["rows"]:
        mpx = f"{r['pixels'] / 1e6 / r['median_s']:.1f}" if "pixels" in r else "-"
        rel = f"{r['median_s'] / base:.2f}x" if base and "pixels" in r else "-"
        runs = ", ".join(f"{s:.3f}" for s in r["seconds"])
        print(f"| {r['case']} | {r['median_s']:.3f} | {runs} | {mpx} | {r['peak_rss_mb']:.0f} | {rel} | "
              f"{r['load_avg']:.2f} |")
    if "agreement" in info:
        print("\nagreement kernel vs xrspatial:", json.dumps(info["agreement"]))


if __name__ == "__main__":
    main(sys.argv[1:])

"""The figures benchmark: the modal-class land-use overview and the whole figures stage.

    python -m benchmarks.run --suite figures [--size 16384] [--factor 32] [--repeats 3]
        [--width-km 150 --height-km 120] [--cases ...] [--out bench-output]

Part 1, the overview (:func:`ecodask.chunked.overview.landcover_overview`, the numba kernel
:func:`ecodask.kernels.overview.block_mode`) of a ``--size``² 30 m land-cover grid (default
16384² = 268 Mpx), ``--factor`` 32 (960 m cells), against GDAL's own mode resampling, NumPy and a
strided sample. Data (built once, cached under ``<out>/figures/grid-<size>/``): CLCD codes 1..9 from
the project's generator (:func:`ecodask.synth.make_terrain` + :func:`ecodask.synth.make_landcover`
on independent 4096² tiles, each seeded by ``(seed, tile row, tile col)``, as in
:mod:`benchmarks.hubei30m_data`), nodata 0 outside a wavy region outline (~40 % of the pixels),
written twice: ``landcover.zarr`` (Zarr v3, chunks 4096², zarr's default zstd, fill 0, as ingest
writes the store's land cover) and ``landcover.tif`` (tiled 256², deflate, nodata 0, as the
project's inputs). Cases:

- ``ecodask``: ``landcover_overview(da.from_zarr(...), factor, 0).compute()``: read + mode per chunk.
- ``kernel``: ``block_mode(codes, factor, 0)`` on the grid in memory (one call, one thread).
- ``gdal_mode``: rasterio ``dataset.read(1, out_shape=(rows // f, cols // f),
  resampling=Resampling.mode)`` on the GeoTIFF: GDAL's own mode (GDAL's defaults: one thread). The
  dataset is opened in the clock, so no repeat reads GDAL's block cache.
- ``gdal_mode_2t``: the same on 2 threads, each reading half the rows (its own dataset) with
  ``out_shape`` and ``Resampling.mode``: GDAL on the cores ecodask gets.
- ``gdal_mode_mem``: GDAL's mode on the grid in memory: an uncompressed tiled (256²) GeoTIFF in
  ``/vsimem`` (rasterio ``MemoryFile``, written before the clock), opened and read with
  ``Resampling.mode`` in the clock: GDAL's mode without decompression, against ``kernel``.
- ``numpy_onehot``: the grid in memory reshaped to ``(r/f, f, c/f, f)`` blocks, ``(blocks == k)
  .sum(axis=(1, 3))`` for each CLCD class k = 1..9, ``argmax`` (ties: smallest code, as ecodask).
- ``numpy_bincount``: one ``np.bincount`` of ``block index * 256 + code`` over the grid in memory,
  ``argmax`` per block.
- ``strided``: ``codes[::f, ::f]`` through dask from the Zarr store: what a naive overview does (a
  sample, not a mode: its agreement with the mode is reported).
- ``zarr_read``, ``tiff_read`` (floors): ``sum`` of the Zarr array through dask (every chunk read
  and decompressed once), and rasterio ``read(1)`` of the whole GeoTIFF (one thread).

Part 2, ``stage``: the figures stage (:func:`ecodask.run.stages.figures.run`) on the synthetic
region of the foundation suite (``make_region(seed=0, width_km=150, height_km=120, n_counties=20)``,
3 years, shared with it under ``<out>/region-150x120km``), after ingest, transitions + ESV and the
driver analysis were run once directly (the ``run`` of :mod:`ecodask.run.stages.ingest`,
``transitions_esv`` and ``driver_analysis``; cached in ``output-figures/``). Imports, the numba
kernel and matplotlib's Agg + fonts are loaded before the clock. One more, untimed, call splits the
stage's time between the one ``compute`` (the overview of every year + the analysis grids), reading
the counties, each kind of figure and the rest; the overview alone is timed once more after it.

Part 3, ``stage_cluster``: the same stage as a run calls it, under a distributed client
(``LocalCluster``, 2 worker processes of 1 thread): its tasks (a year's maps, the colour scale's
limits, the counties, the change map, the charts) run on the workers. One warm-up call (imports and
fonts in the workers), then ``--repeats`` timed calls: wall seconds, the CPU seconds of the case's
process (the flow process's share: the graph, the store's metadata) and of the two workers.

Every case runs in a fresh process (Dask's threaded scheduler, 2 workers; ``stage_cluster``: its
cluster): its set-up and a warm-up (numba cache, imports, a small read; none for ``tiff_read``)
before the clock, then ``--repeats`` timed runs; figures are medians. Peak memory is the process's
VmHWM over the timed runs (reset through ``/proc/self/clear_refs`` after set-up; the grid in memory,
268 MB, counts for the in-memory cases; ``stage_cluster``: the case's process, not the workers).
The files are in the page cache (written or read just before): the reads are decompression, not disk.
Mpix/s: 30 m pixels per second (the stage: pixels a year x years). Checks, after the clock: ecodask's
overview against each mode baseline (cells equal; for GDAL, the differing cells whose block has a tie
at its top count, and whether GDAL's own tie rule - the class that first reaches the top count in
row-major order - explains them) and the strided sample's agreement with the mode.

``--cases`` runs a subset and merges it into an existing ``results.json``. Prints Markdown tables for
BENCHMARKS.md and writes ``<out>/figures/results.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.env import code_state, hwm_mb, machine, reset_peak

#: Versions recorded with the results.
PACKAGES = ("numpy", "numba", "dask", "zarr", "numcodecs", "rasterio", "matplotlib", "xarray")

OVERVIEW_CASES = ("ecodask", "kernel", "gdal_mode", "gdal_mode_2t", "gdal_mode_mem", "numpy_onehot",
                  "numpy_bincount", "strided", "zarr_read", "tiff_read")
CASES = (*OVERVIEW_CASES, "stage", "stage_cluster")
FLOORS = ("zarr_read", "tiff_read")
IN_MEMORY = ("kernel", "gdal_mode_mem", "numpy_onehot", "numpy_bincount")
WHAT = {
    "ecodask": "ecodask `landcover_overview(da.from_zarr(...), 32, 0).compute()` (Zarr chunks 4096², "
               "2 threads)",
    "kernel": "ecodask `block_mode(codes, 32, 0)` on the grid in memory (1 thread)",
    "gdal_mode": "GDAL mode: rasterio `read(1, out_shape, resampling=Resampling.mode)` of the GeoTIFF "
                 "(1 thread)",
    "gdal_mode_2t": "GDAL mode, 2 threads (half the rows each, own dataset)",
    "gdal_mode_mem": "GDAL mode on the grid in memory (uncompressed GeoTIFF in `/vsimem`, 1 thread)",
    "numpy_onehot": "NumPy: `(blocks == k).sum(axis=(1, 3))` per class 1..9 + `argmax`, in memory",
    "numpy_bincount": "NumPy: one `bincount(block * 256 + code)` + `argmax`, in memory",
    "strided": "strided sample `codes[::32, ::32]` through dask (not a mode)",
    "zarr_read": "floor: dask `sum` of the Zarr array (read + zstd)",
    "tiff_read": "floor: rasterio `read(1)` of the whole GeoTIFF (deflate, 1 thread)",
    "stage_cluster": "the figures stage under a LocalCluster of 2 worker processes (1 thread each), as a "
                     "run calls it: its tasks on the workers",
    "stage": "ecodask figures stage `run(cfg, store)`: every figure of the run from the overview + "
             "the analysis grid",
}
CLASSES = np.arange(1, 10, dtype=np.uint8)  # CLCD
NODATA = 0
CHUNK = 4096
BUILDER_VERSION = 1  # bump when the grid's data would change
RESOLUTION = 30.0


# --------------------------------------------------------------------------------------------------
# memory and timing (in the case process)


def _timed(run, repeats: int) -> tuple[list[float], object]:
    seconds, out = [], None
    for _ in range(repeats):
        out = None  # the previous result is not held while the next one is computed
        t0 = time.perf_counter()
        out = run()
        seconds.append(time.perf_counter() - t0)
    return seconds, out


# --------------------------------------------------------------------------------------------------
# the grid (built once, cached)


def outline_mask(r0: int, c0: int, shape: tuple[int, int], size: int) -> np.ndarray:
    """True inside a wavy region outline centred on the ``size``² grid, for the window at (r0, c0)."""
    yy = (np.arange(r0, r0 + shape[0], dtype=np.float32)[:, None] + 0.5) / size - 0.5
    xx = (np.arange(c0, c0 + shape[1], dtype=np.float32)[None, :] + 0.5) / size - 0.5
    theta, r = np.arctan2(yy, xx), np.hypot(yy, xx)
    edge = 0.43 + 0.04 * np.sin(5.0 * theta + 0.7) + 0.02 * np.sin(13.0 * theta + 2.1)
    edge += 0.03 * np.cos(3.0 * theta)
    return r <= edge


def _tile(args: tuple[int, int, int, int, int]) -> tuple[int, int, np.ndarray]:
    """Land cover of one tile (codes 1..9, 0 outside the outline), seeded by its position."""
    seed, row, col, tile, size = args
    from ecodask.synth import make_landcover, make_terrain

    h, w = min(tile, size - row * tile), min(tile, size - col * tile)
    streams = np.random.SeedSequence([seed, row, col]).spawn(2)
    rng_terrain, rng_lc = (np.random.default_rng(s) for s in streams)
    terrain = make_terrain(rng_terrain, (h, w), RESOLUTION)
    maps, _ = make_landcover(rng_lc, terrain, (2020,), RESOLUTION)
    codes = maps[2020]
    codes[~outline_mask(row * tile, col * tile, (h, w), size)] = NODATA
    return row, col, codes


def build_grid(out: Path, size: int, seed: int, tile: int = CHUNK, workers: int = 2) -> Path:
    """Write (or reuse) ``landcover.zarr`` and ``landcover.tif`` of a ``size``² grid; the folder."""
    import rasterio
    import zarr
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from ecodask.science.grid import CHINA_ALBERS

    root = out / "figures" / f"grid-{size}"
    params = {"version": BUILDER_VERSION, "size": size, "seed": seed, "tile": tile, "chunk": CHUNK}
    stamp = root / "built.json"
    if stamp.exists() and json.loads(stamp.read_text()).get("params") == params:
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    t0 = time.perf_counter()
    print(f"figures grid: {size} x {size} px ({size * size / 1e6:.0f} Mpx), tiles of {tile}², under {root}",
          flush=True)
    transform = from_origin(-200_000.0, 3_600_000.0, RESOLUTION, RESOLUTION)  # CHINA_ALBERS metres
    profile = {"driver": "GTiff", "height": size, "width": size, "count": 1, "dtype": "uint8",
               "crs": CHINA_ALBERS, "transform": transform, "nodata": NODATA, "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate", "BIGTIFF": "IF_SAFER"}
    group = zarr.open_group(root / "landcover.zarr", mode="w", zarr_format=3)
    arr = group.create_array("landcover", shape=(size, size), chunks=(CHUNK, CHUNK), dtype="uint8",
                             fill_value=NODATA, dimension_names=["y", "x"])
    hist = np.zeros(256, np.int64)
    n = -(-size // tile)
    jobs = [(seed, i, j, tile, size) for i in range(n) for j in range(n)]
    with rasterio.open(root / "landcover.tif", "w", **profile) as dst, \
            mp.get_context("spawn").Pool(workers) as pool:
        for k, (i, j, codes) in enumerate(pool.imap_unordered(_tile, jobs), 1):
            h, w = codes.shape
            dst.write(codes, 1, window=Window(j * tile, i * tile, w, h))
            arr[i * tile:i * tile + h, j * tile:j * tile + w] = codes
            hist += np.bincount(codes.ravel(), minlength=256)
            print(f"  tile {k}/{len(jobs)}", flush=True)
    stats = {"pixels": size * size, "nodata_share": float(hist[NODATA] / hist.sum()),
             "class_shares": {int(c): float(hist[c] / hist[1:].sum()) for c in np.flatnonzero(hist) if c}}
    stamp.write_text(json.dumps({"params": params, "stats": stats,
                                 "built_seconds": time.perf_counter() - t0}, indent=2))
    print(f"  built in {time.perf_counter() - t0:.0f} s", flush=True)
    return root


def read_grid(folder: Path, corner: int | None = None) -> np.ndarray:
    """The grid in memory (or its top-left ``corner``² window)."""
    import zarr

    arr = zarr.open_array(folder / "landcover.zarr" / "landcover", mode="r")
    return arr[...] if corner is None else arr[:corner, :corner]


# --------------------------------------------------------------------------------------------------
# the baselines


def numpy_onehot_mode(codes: np.ndarray, factor: int, classes: np.ndarray = CLASSES,
                      nodata: int = NODATA) -> np.ndarray:
    """Modal class per ``factor``² block by a count per class: ``(blocks == k).sum(axis=(1, 3))``,
    ``argmax`` over the classes (ties: the first, the smallest code); ``nodata`` where no class."""
    r, c = codes.shape
    blocks = codes.reshape(r // factor, factor, c // factor, factor)
    counts = np.stack([(blocks == k).sum(axis=(1, 3), dtype=np.int32) for k in classes])
    best = counts.argmax(axis=0)
    out = classes[best]
    out[np.take_along_axis(counts, best[None], 0)[0] == 0] = nodata
    return out


def numpy_bincount_mode(codes: np.ndarray, factor: int, nodata: int = NODATA) -> np.ndarray:
    """Modal class per ``factor``² block by one ``bincount`` of ``block * 256 + code``."""
    r, c = codes.shape
    br, bc = r // factor, c // factor
    key = (np.arange(r, dtype=np.int64) // factor)[:, None] * bc
    key = key + np.arange(c, dtype=np.int64)[None, :] // factor
    key *= 256
    key += codes
    counts = np.bincount(key.ravel(), minlength=br * bc * 256).reshape(br * bc, 256)
    del key
    counts[:, nodata] = 0
    out = counts.argmax(axis=1).astype(np.uint8)
    out[counts.max(axis=1) == 0] = nodata
    return out.reshape(br, bc)


def _gdal_mode(tif: Path, factor: int, rows: tuple[int, int] | None = None) -> np.ndarray:
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    with rasterio.open(tif) as ds:
        r0, r1 = rows if rows else (0, ds.height)
        window = Window(0, r0, ds.width, r1 - r0)
        return ds.read(1, window=window, out_shape=((r1 - r0) // factor, ds.width // factor),
                       resampling=Resampling.mode)


def gdal_mode_threads(tif: Path, factor: int, threads: int) -> np.ndarray:
    """GDAL's mode on ``threads`` threads, each reading a band of rows (whole blocks) of its own dataset."""
    from concurrent.futures import ThreadPoolExecutor

    import rasterio

    with rasterio.open(tif) as ds:
        height = ds.height
    cells = height // factor
    edges = [round(i * cells / threads) * factor for i in range(threads + 1)]
    with ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(lambda k: _gdal_mode(tif, factor, (edges[k], edges[k + 1])), range(threads)))
    return np.concatenate(parts)


# --------------------------------------------------------------------------------------------------
# the cases (each in its own process)


def case_overview(case: str, folder: Path, factor: int, repeats: int, save: Path | None) -> dict:
    import dask.array as da

    from ecodask.chunked.overview import landcover_overview
    from ecodask.kernels.overview import block_mode

    zpath, tif = str(folder / "landcover.zarr"), folder / "landcover.tif"
    codes, data_mb = None, 0.0
    if case in IN_MEMORY:
        codes = read_grid(folder)
        data_mb = codes.nbytes / 2**20
    small = read_grid(folder, 256) if codes is None else codes[:256, :256].copy()
    if case == "ecodask":
        lazy = da.from_zarr(zpath, component="landcover")
        landcover_overview(da.from_array(small, chunks=128), factor, NODATA).compute()  # numba cache

        def run():
            return landcover_overview(lazy, factor, NODATA).compute()
    elif case == "kernel":
        block_mode(small, factor, NODATA)

        def run():
            return block_mode(codes, factor, NODATA)
    elif case == "gdal_mode":
        _gdal_mode(tif, factor, (0, 256))

        def run():
            return _gdal_mode(tif, factor)
    elif case == "gdal_mode_2t":
        _gdal_mode(tif, factor, (0, 256))

        def run():
            return gdal_mode_threads(tif, factor, 2)
    elif case == "gdal_mode_mem":
        from rasterio.enums import Resampling
        from rasterio.io import MemoryFile
        from rasterio.transform import from_origin

        mem = MemoryFile()
        with mem.open(driver="GTiff", height=codes.shape[0], width=codes.shape[1], count=1, dtype="uint8",
                      nodata=NODATA, tiled=True, blockxsize=256, blockysize=256,
                      transform=from_origin(0.0, codes.shape[0] * RESOLUTION, RESOLUTION, RESOLUTION)) as dst:
            dst.write(codes, 1)
        codes = None  # the grid in memory is the /vsimem file now
        data_mb = len(mem.getbuffer()) / 2**20

        def run():
            with mem.open() as ds:
                return ds.read(1, out_shape=(ds.height // factor, ds.width // factor),
                               resampling=Resampling.mode)
        with mem.open() as ds:
            ds.read(1, window=((0, 256), (0, 256)), out_shape=(256 // factor, 256 // factor),
                    resampling=Resampling.mode)
    elif case == "numpy_onehot":
        numpy_onehot_mode(small, factor)

        def run():
            return numpy_onehot_mode(codes, factor)
    elif case == "numpy_bincount":
        numpy_bincount_mode(small, factor)

        def run():
            return numpy_bincount_mode(codes, factor)
    elif case == "strided":
        lazy = da.from_zarr(zpath, component="landcover")
        lazy[:256:factor, :256:factor].compute()

        def run():
            return lazy[::factor, ::factor].compute()
    elif case == "zarr_read":
        lazy = da.from_zarr(zpath, component="landcover")
        lazy[:256, :256].sum(dtype="u8").compute()

        def run():
            return int(lazy.sum(dtype="u8").compute())
    elif case == "tiff_read":
        import rasterio

        def run():
            with rasterio.open(tif) as ds:
                a = ds.read(1)
            return int(a[::1024, ::1024].sum())
    else:
        raise ValueError(case)
    del small
    proc_peak, reset = hwm_mb(), reset_peak()
    seconds, out = _timed(run, repeats)
    peak = hwm_mb()
    res = {"peak_rss_mb": peak, "process_peak_mb": max(proc_peak, peak), "peak_reset": reset,
           "data_mb": data_mb, "seconds": seconds}
    with open(folder / "built.json") as f:
        res["pixels"] = json.load(f)["params"]["size"] ** 2
    if isinstance(out, np.ndarray) and save:
        save.parent.mkdir(parents=True, exist_ok=True)
        np.save(save, out)
        res["shape"] = list(out.shape)
    return res


def _category(path: Path) -> str:
    name = path.stem
    for prefix in ("esv_change", "esv_by_service", "landuse_flows", "landuse", "esv", "hotspots"):
        if name.startswith(prefix):
            return prefix
    return "other"


def _stage_profile(cfg, store: Path, factor_years: tuple[int, int]) -> dict:
    """One more (untimed) call of the stage with its parts timed: the one compute, the counties,
    each kind of figure (by file name), the rest. Then the overview alone, once. The stage's tasks
    run one after the other (Dask's synchronous scheduler) here, so the parts add up."""
    import dask
    import dask.array as da

    from ecodask.chunked.overview import landcover_overview
    from ecodask.io import zones
    from ecodask.io.store import open_store
    from ecodask.present import maps, plots
    from ecodask.run.stages import figures

    spent: dict[str, float] = {}
    # the stage imports read_zones from ecodask.io.zones when it runs: patched there
    patched = [(da, "compute", "compute (overview + analysis grids)"), (zones, "read_zones", "counties"),
               (maps, "category_map", None), (maps, "raster_map", None),
               (plots, "esv_stacked_bars", None), (plots, "land_use_flows", None)]
    orig = [getattr(m, n) for m, n, _ in patched]

    def wrap(f, label):
        def g(*a, **k):
            t0 = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                key = label
                if key is None:
                    path = next((x for x in a if isinstance(x, Path)), None)
                    key = f"draw {_category(path) if path else f.__name__}"
                spent[key] = spent.get(key, 0.0) + time.perf_counter() - t0
        return g

    try:
        for (m, n, label), f in zip(patched, orig, strict=True):
            setattr(m, n, wrap(f, label))
        t0 = time.perf_counter()
        with dask.config.set(scheduler="synchronous"):  # the stage's tasks one after the other
            figures.run(cfg, store)
        total = time.perf_counter() - t0
    finally:
        for (m, n, _), f in zip(patched, orig, strict=True):
            setattr(m, n, f)
    out = dict(sorted(spent.items()))
    out["drawing"] = sum(v for k, v in spent.items() if k.startswith("draw"))
    out["other"] = total - sum(spent.values())
    out["total"] = total
    pix, _ = open_store(store)
    lc = pix["landcover"].data
    factor, years = factor_years
    t0 = time.perf_counter()
    da.compute(da.stack([landcover_overview(lc[i], factor, NODATA) for i in range(years)]))
    out["overview_alone"] = time.perf_counter() - t0
    return out


def _stage_cfg(config: Path):
    from ecodask.run.config import load_config

    cfg = load_config(config)
    return cfg.model_copy(update={"output": cfg.output.with_name(f"{cfg.output.name}-figures")})


def prepare_region(config: Path) -> dict:
    """ingest, transitions + ESV and the driver analysis of the region, once (stamped)."""
    from ecodask.run.stages import driver_analysis, ingest, transitions_esv

    cfg = _stage_cfg(config)
    stamp = cfg.output / "figures-bench-prepared.json"
    if stamp.exists():
        return json.loads(stamp.read_text())
    times = {}
    t0 = time.perf_counter()
    store = ingest.run(cfg, None)["store"]
    times["ingest"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    transitions_esv.run(cfg, store)
    times["land_esv"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    driver_analysis.run(cfg, store)
    times["analysis"] = time.perf_counter() - t0
    info = {"store": str(store), "seconds": times}
    stamp.write_text(json.dumps(info, indent=2))
    return info


def case_stage(config: Path, repeats: int) -> dict:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ecodask.io.layout import RunFolder
    from ecodask.io.store import open_store
    from ecodask.kernels.overview import block_mode
    from ecodask.run.stages import figures

    cfg = _stage_cfg(config)
    store = RunFolder(cfg.output).store
    pix, _ = open_store(store)
    years, factor = pix.sizes["year"], int(pix.attrs["analysis_factor"])
    pixels = int(pix.sizes["y"] * pix.sizes["x"])
    block_mode(np.ones((64, 64), np.uint8), factor, NODATA)  # numba cache
    fig, ax = plt.subplots()  # Agg, fonts
    ax.set_title("warm-up")
    fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)
    del pix
    proc_peak, reset = hwm_mb(), reset_peak()
    seconds, paths = _timed(lambda: figures.run(cfg, store), repeats)
    peak = hwm_mb()
    profile = _stage_profile(cfg, store, (factor, years))
    return {"peak_rss_mb": peak, "process_peak_mb": max(proc_peak, peak), "peak_reset": reset,
            "data_mb": 0.0, "seconds": seconds, "pixels": pixels * years, "pixels_per_year": pixels,
            "years": years, "figures": len(paths),
            "figure_names": sorted(paths), "profile": profile}


def _cpu_s(pid: int | None = None) -> float:
    """User + system CPU seconds of this process (or of ``pid``)."""
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def case_stage_cluster(config: Path, repeats: int) -> dict:
    """The stage as a run calls it: under a distributed client (LocalCluster, 2 worker processes of
    1 thread); per run its wall time, the CPU seconds of this process (the flow process's share)
    and of the workers. The first call (imports and fonts in the workers) is a warm-up."""
    from distributed import Client, LocalCluster

    from ecodask.io.layout import RunFolder
    from ecodask.io.store import open_store
    from ecodask.run.stages import figures

    cfg = _stage_cfg(config)
    store = RunFolder(cfg.output).store
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(2)
        pids = list(client.run(os.getpid).values())
        paths = figures.run(cfg, store)  # warm-up
        seconds, flow, workers = [], [], []
        for _ in range(repeats):
            w0, c0, t0 = sum(map(_cpu_s, pids)), _cpu_s(), time.perf_counter()
            paths = figures.run(cfg, store)
            seconds.append(time.perf_counter() - t0)
            flow.append(_cpu_s() - c0)
            workers.append(sum(map(_cpu_s, pids)) - w0)
    pix, _ = open_store(store)
    years, pixels = pix.sizes["year"], int(pix.sizes["y"] * pix.sizes["x"])
    return {"peak_rss_mb": hwm_mb(), "process_peak_mb": hwm_mb(), "peak_reset": False, "data_mb": 0.0,
            "seconds": seconds, "flow_cpu_s": flow, "workers_cpu_s": workers, "pixels": pixels * years,
            "pixels_per_year": pixels, "years": years, "figures": len(paths)}


def case_main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.figures case")
    ap.add_argument("case", choices=[*CASES, "prepare"])
    ap.add_argument("path", type=Path, help="grid folder (overview cases) or region config (stage, prepare)")
    ap.add_argument("--factor", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--save", type=Path)
    a = ap.parse_args(argv)
    import dask

    if a.case == "stage_cluster":  # its own client is the scheduler
        res = case_stage_cluster(a.path, a.repeats)
    else:
        with dask.config.set(scheduler="threads", num_workers=2):
            if a.case == "prepare":
                res = prepare_region(a.path)
            elif a.case == "stage":
                res = case_stage(a.path, a.repeats)
            else:
                res = case_overview(a.case, a.path, a.factor, a.repeats, a.save)
    if a.case != "prepare":
        res = {"case": a.case, **res, "median": statistics.median(res["seconds"])}
    print(json.dumps(res, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


# --------------------------------------------------------------------------------------------------
# the suite


def run_case(args: list[str]) -> dict:
    load = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.figures", "case", *args],
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"benchmark case {args} failed:\n{proc.stderr[-4000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res.update(load_avg_before=load, load_avg_after=os.getloadavg(), process_seconds=time.perf_counter() - t0,
               finished=time.strftime("%Y-%m-%d %H:%M:%S"))
    return res


def prepare_stage_region(out: Path, width_km: float, height_km: float) -> Path:
    """The foundation suite's region (generated if missing) with its earlier stages run once."""
    region = out / f"region-{width_km:g}x{height_km:g}km"
    config = region / "config.yaml"
    if not config.exists():
        from ecodask.synth import make_region

        t0 = time.perf_counter()
        print(f"region {width_km:g} x {height_km:g} km: generating under {region}", flush=True)
        make_region(region, seed=0, width_km=width_km, height_km=height_km, n_counties=20)
        print(f"  generated in {time.perf_counter() - t0:.0f} s", flush=True)
    info = run_case(["prepare", str(config)])
    print("region stages (run once, cached): "
          + ", ".join(f"{k} {v:.1f} s" for k, v in info["seconds"].items()), flush=True)
    return config


def _block_tops(codes: np.ndarray, factor: int, strip: int = CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """Per block: the top count of a class (nodata excluded) and how many classes share it."""
    r, c = codes.shape
    bc = c // factor
    top, n_top = np.zeros((r // factor, bc), np.int64), np.zeros((r // factor, bc), np.int64)
    for r0 in range(0, r, strip):
        part = codes[r0:r0 + strip]
        br = part.shape[0] // factor
        key = (np.arange(part.shape[0], dtype=np.int64) // factor)[:, None] * bc \
            + np.arange(c, dtype=np.int64)[None, :] // factor
        key *= 256
        key += part
        counts = np.bincount(key.ravel(), minlength=br * bc * 256).reshape(br, bc, 256)
        del key
        counts[..., NODATA] = 0
        m = counts.max(axis=2)
        top[r0 // factor:r0 // factor + br] = m
        n_top[r0 // factor:r0 // factor + br] = ((counts == m[..., None]) & (m[..., None] > 0)).sum(axis=2)
    return top, n_top


def _gdal_tie_pick(block: np.ndarray) -> int:
    """GDAL's byte mode of one block: the class whose count first reaches the top count (row-major)."""
    flat = block.ravel()
    counts = np.bincount(flat, minlength=256)
    counts[NODATA] = 0
    top = counts.max()
    if top == 0:
        return NODATA
    tied = np.flatnonzero(counts == top)
    return int(min(tied, key=lambda v: np.flatnonzero(flat == v)[top - 1]))


def checks(saved: dict[str, Path], folder: Path, factor: int) -> list[dict]:
    """ecodask's overview against every mode baseline and the strided sample."""
    ref_path = saved.get("ecodask")
    if not ref_path or not ref_path.exists():
        return []
    ref = np.load(ref_path)
    has_data = ref != NODATA
    out = []
    codes = None
    for case in ("kernel", "numpy_onehot", "numpy_bincount", "gdal_mode", "gdal_mode_2t", "gdal_mode_mem",
                 "strided"):
        p = saved.get(case)
        if not p or not p.exists():
            continue
        other = np.load(p)
        if other.shape != ref.shape:
            out.append({"check": f"{case} vs ecodask", "ok": False,
                        "detail": f"shapes differ: {other.shape} vs {ref.shape}"})
            continue
        eq = other == ref
        n, nd = ref.size, int(has_data.sum())
        c = {"check": f"{case} vs ecodask", "cells": n, "cells_with_data": nd,
             "equal_share": float(eq.mean()), "equal_share_data": float(eq[has_data].mean()),
             "differing": int((~eq).sum())}
        if case in ("kernel", "numpy_onehot", "numpy_bincount"):
            c["ok"] = c["differing"] == 0
            c["detail"] = ("identical" if c["ok"] else f"{c['differing']:,} of {n:,} cells differ")
        elif case.startswith("gdal"):
            if codes is None:
                codes = read_grid(folder)
                top, n_top = _block_tops(codes, factor)
                out.append({"check": "ties in the grid", "ok": True, "tie_blocks": int((n_top > 1).sum()),
                            "cells_with_data": nd,
                            "detail": f"{int((n_top > 1).sum()):,} of {nd:,} cells with data have two or "
                                      "more classes at their top count"})
            rows, cols = np.nonzero(~eq)
            tie = explained = 0
            for i, j in zip(rows, cols, strict=True):
                block = codes[i * factor:(i + 1) * factor, j * factor:(j + 1) * factor]
                counts = np.bincount(block.ravel(), minlength=256)
                counts[NODATA] = 0
                m = counts.max()
                if m > 0 and counts[other[i, j]] == m and counts[ref[i, j]] == m:
                    tie += 1
                if _gdal_tie_pick(block) == other[i, j]:
                    explained += 1
            c.update(tie_cells=tie, explained_by_gdal_tie_rule=explained,
                     unexplained=c["differing"] - explained)
            c["ok"] = c["differing"] == tie == explained
            c["detail"] = (f"{c['equal_share']:.4%} of the cells equal ({c['differing']:,} of {n:,} differ); "
                           f"{tie:,} of the differing cells are ties at the top count (ecodask: smallest "
                           f"code), {explained:,} are GDAL's tie rule (first class to reach the top count, "
                           f"row-major), {c['differing'] - explained:,} unexplained")
        else:  # strided
            c["ok"] = True  # informative: a sample is not a mode
            c["detail"] = (f"{c['equal_share_data']:.2%} of the cells with data equal the mode "
                           f"({c['equal_share']:.2%} of all cells): a sample, not a mode")
        out.append(c)
    return out


def _rate(r: dict) -> float:
    return r["pixels"] / r["median"] / 1e6


def markdown(rows: list[dict], chk: list[dict]) -> str:
    eco = next((r for r in rows if r["case"] == "ecodask"), None)
    kern = next((r for r in rows if r["case"] == "kernel"), None)
    out = ["| case | what | pixels | median s (runs) | Mpix/s | peak memory MB (grid in memory) "
           "| time / ecodask's | time / kernel's |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["case"] in ("stage", "stage_cluster"):
            continue
        runs = ", ".join(f"{s:.2f}" for s in r["seconds"])
        ve = f"{r['median'] / eco['median']:.2f}x" if eco else "—"
        vk = f"{r['median'] / kern['median']:.2f}x" if kern and r["case"] in IN_MEMORY else "—"
        out.append(f"| {r['case']} | {WHAT[r['case']]} | {r['pixels'] / 1e6:.0f} M | {r['median']:.2f} "
                   f"({runs}) | {_rate(r):.0f} | {r['peak_rss_mb']:.0f} ({r['data_mb']:.0f}) | {ve} | {vk} |")
    if chk:
        out += ["", "| check | result | ok |", "|---|---|---|"]
        out += [f"| {c['check']} | {c['detail']} | {'yes' if c['ok'] else 'NO'} |" for c in chk]
    st = next((r for r in rows if r["case"] == "stage"), None)
    if st:
        p = st["profile"]
        runs = ", ".join(f"{s:.2f}" for s in st["seconds"])
        out += ["", "| case | what | pixels | median s (runs) | Mpix/s | peak memory MB | overview share "
                "| drawing share |", "|---|---|---|---|---|---|---|---|"]
        comp = p.get("compute (overview + analysis grids)", 0.0)
        out.append(f"| stage | {WHAT['stage']} | {st['pixels_per_year'] / 1e6:.1f} M x {st['years']} years "
                   f"| {st['median']:.2f} ({runs}) | {_rate(st):.1f} | {st['peak_rss_mb']:.0f} "
                   f"| {comp / p['total']:.0%} ({comp:.2f} s) | {p['drawing'] / p['total']:.0%} "
                   f"({p['drawing']:.2f} s) |")
        out += ["", f"stage, one more call ({p['total']:.2f} s): "
                + ", ".join(f"{k} {v:.2f} s" for k, v in p.items() if k not in ("total", "drawing",
                                                                              "overview_alone"))
                + f"; the overview alone (3 years, once more): {p['overview_alone']:.2f} s"]
    sc = next((r for r in rows if r["case"] == "stage_cluster"), None)
    if sc:
        out += ["", "| case | what | years | median s (runs) | flow process CPU s (runs) "
                "| workers' CPU s (runs) | flow process's share of the CPU |",
                "|---|---|---|---|---|---|---|"]
        flow, work = statistics.median(sc["flow_cpu_s"]), statistics.median(sc["workers_cpu_s"])
        out.append(f"| stage_cluster | {WHAT['stage_cluster']} | {sc['years']} | {sc['median']:.2f} ("
                   + ", ".join(f"{s:.2f}" for s in sc["seconds"]) + f") | {flow:.2f} ("
                   + ", ".join(f"{s:.2f}" for s in sc["flow_cpu_s"]) + f") | {work:.2f} ("
                   + ", ".join(f"{s:.2f}" for s in sc["workers_cpu_s"]) + f") | {flow / (flow + work):.0%} |")
    return "\n".join(out)


def verdict(rows: list[dict]) -> list[str]:
    def med(case):
        return next((r["median"] for r in rows if r["case"] == case), None)

    out = []
    e, k = med("ecodask"), med("kernel")
    for base in ("gdal_mode", "gdal_mode_2t", "numpy_onehot", "numpy_bincount", "strided"):
        b = med(base)
        if b and e:
            word = "faster" if e < b else "SLOWER"
            f = b / e if e < b else e / b
            out.append(f"ecodask overview vs {base}: {f:.2f}x {word} ({e:.2f} s vs {b:.2f} s)")
    for base in ("gdal_mode_mem", "numpy_onehot", "numpy_bincount"):
        b = med(base)
        if b and k:
            out.append(f"block_mode kernel (1 thread, in memory) vs {base}: {b / k:.1f}x faster"
                       if k < b else f"block_mode kernel vs {base}: {k / b:.1f}x SLOWER")
    z = med("zarr_read")
    if z and e:
        out.append(f"ecodask overview / Zarr read floor: {e / z:.2f}x")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=16384,
                    help="side of the overview grid, px (a multiple of --factor)")
    ap.add_argument("--factor", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--width-km", type=float, default=150.0, help="the stage's region (foundation's)")
    ap.add_argument("--height-km", type=float, default=120.0)
    ap.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    a = ap.parse_args(argv)
    if a.size % a.factor:
        raise SystemExit(f"--size {a.size} is not a multiple of --factor {a.factor}")
    root = a.out / "figures"
    root.mkdir(parents=True, exist_ok=True)
    args = argv if argv is not None else sys.argv[1:]
    import rasterio

    info = {"command": " ".join(["python -m benchmarks.run --suite figures", *args]),
            "machine": machine(PACKAGES) | {"gdal": rasterio.__gdal_version__},
            "code": code_state(), "repeats": a.repeats, "seed": a.seed, "size": a.size, "factor": a.factor,
            "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    rows: list[dict] = []
    saved: dict[str, Path] = {}
    overview = [c for c in OVERVIEW_CASES if c in a.cases]
    if overview:
        folder = build_grid(a.out, a.size, a.seed)
        info["grid"] = json.loads((folder / "built.json").read_text())
        for case in overview:
            save = root / "overviews" / f"{case}-{a.size}.npy"
            r = run_case([case, str(folder), "--factor", str(a.factor), "--repeats", str(a.repeats),
                          "--save", str(save)])
            saved[case] = save
            rows.append(r)
            each = ", ".join(f"{s:.2f}" for s in r["seconds"])
            print(f"{case:15s} {r['median']:7.2f} s {_rate(r):8.1f} Mpix/s {r['peak_rss_mb']:6.0f} MB  "
                  f"(runs: {each}; load {r['load_avg_before'][0]:.2f})", flush=True)
    for case in ("stage", "stage_cluster"):
        if case not in a.cases:
            continue
        config = prepare_stage_region(a.out, a.width_km, a.height_km)
        info["region"] = str(config.parent)
        r = run_case([case, str(config), "--repeats", str(a.repeats)])
        rows.append(r)
        each = ", ".join(f"{s:.2f}" for s in r["seconds"])
        cpu = (f"; flow process CPU {statistics.median(r['flow_cpu_s']):.2f} s, workers' "
               f"{statistics.median(r['workers_cpu_s']):.2f} s" if case == "stage_cluster" else "")
        print(f"{case:15s} {r['median']:7.2f} s {_rate(r):8.1f} Mpix/s {r['peak_rss_mb']:6.0f} MB  "
              f"(runs: {each}; load {r['load_avg_before'][0]:.2f}; {r['figures']} figures{cpu})", flush=True)
    results = root / "results.json"
    if set(a.cases) != set(CASES) and results.exists():  # a subset: merge into the previous results
        old = json.loads(results.read_text())
        if old.get("size") == a.size and old.get("factor") == a.factor:
            done = {r["case"] for r in rows}
            rows = sorted([r for r in old["rows"] if r["case"] not in done] + rows,
                          key=lambda r: CASES.index(r["case"]))
            info["merged_with"] = old.get("started")
            for r in rows:
                p = root / "overviews" / f"{r['case']}-{a.size}.npy"
                if r["case"] not in ("stage", "stage_cluster") and p.exists():
                    saved.setdefault(r["case"], p)
    chk = checks(saved, a.out / "figures" / f"grid-{a.size}", a.factor) if saved else []
    if code_state() != info["code"]:
        info["code_at_end"] = code_state()
        print(f"WARNING: the code changed during the run: {info['code']} -> {info['code_at_end']}")
    ver = verdict(rows)
    info.update(rows=rows, checks=chk, verdict=ver, finished=time.strftime("%Y-%m-%d %H:%M:%S"),
                load_avg_at_end=os.getloadavg())
    results.write_text(json.dumps(info, indent=2, default=str))
    m, code = info["machine"], info["code"]
    print(f"\nCode: commit {code['commit']}" + (f", modified: {', '.join(code['modified'])}"
                                               if code["modified"] else ", clean"))
    load = ", ".join(f"{v:.2f}" for v in m["load_avg_at_start"])
    print(f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB; Python {m['python']}; "
          f"GDAL {m['gdal']}; load average at start {load}\n")
    print(markdown(rows, chk))
    if ver:
        print("\n" + "\n".join(f"- {v}" for v in ver))
    print(f"\nresults: {results}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["case"]:
        case_main(sys.argv[2:])
    else:
        main(sys.argv[1:])

"""Data of the Hubei-30m benchmark: the real 103 county boundaries of Hubei on a 30 m Albers grid,
synthetic land cover for 2000, 2010 and 2020, ingested into Zarr stores as a run stores them.

    python -m benchmarks.hubei30m_data [--out bench-output] [--seed 0] [--tile 4096]

Built once and cached under ``<out>/hubei30m/`` (rebuilt only when the parameters change):

- ``inputs/landcover_{year}.tif``: uint8 CLCD codes on the grid that covers the counties
  (CHINA_ALBERS, 30 m, snapped to 960 m analysis cells: 24,672 x 15,808 px, 390 Mpx), tiled
  256², deflate, nodata 0. The generator (:func:`ecodask.synth.make_terrain`,
  :func:`ecodask.synth.make_landcover`) runs on independent ``tile``² tiles, each seeded by
  ``(seed, tile row, tile col)``, so the whole is deterministic and never held in memory.
- ``full/config.yaml`` and ``full/output/store.zarr`` (+ ``tables/zones.*``): the run config
  (scheme clcd, ESV table xinzhou_2023, zones = the county file by ``adcode``/``name``, grid
  bounds pinned to the counties' grid) and the store written by the project's own ingest.
- ``quarter/...``: the same for a centred crop of a quarter of the area (half the width and half
  the height, snapped to analysis cells), read from the same GeoTIFFs.

The county file is ``hubei_counties.gpkg`` of the project's reference data: ``$ECODASK_SHARED_DATA``
or ``../shared/data`` beside the repository.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import time
from pathlib import Path

import numpy as np

YEARS = (2000, 2010, 2020)
GPKG = "hubei_counties.gpkg"
ID_FIELD, NAME_FIELD = "adcode", "name"
RESOLUTION = 30.0
ANALYSIS_FACTOR = 32
CHUNK = 4096
BUILDER_VERSION = 1  # bump when the data would change
REPO = Path(__file__).resolve().parent.parent


def shared_data() -> Path:
    """The reference-data folder: $ECODASK_SHARED_DATA, else ../shared/data beside the repository."""
    env = os.environ.get("ECODASK_SHARED_DATA")
    return Path(env).expanduser().resolve() if env else (REPO.parent / "shared" / "data").resolve()


def counties_file() -> Path:
    """The Hubei county boundaries; a clear error if the reference data is not there."""
    path = shared_data() / GPKG
    if not path.is_file():
        raise SystemExit(
            f"error: the Hubei-30m benchmark needs {GPKG} (the real county boundaries of Hubei), "
            f"looked for {path}. Put the project's reference data at ../shared/data beside the "
            "repository or point ECODASK_SHARED_DATA at its folder."
        )
    return path


def full_grid(gpkg: Path):
    """The run's grid for the counties: CHINA_ALBERS, 30 m, covering their extent (as ingest does)."""
    import geopandas as gpd
    from pyproj import CRS

    from ecodask.science.grid import CHINA_ALBERS, Grid

    bounds = tuple(float(v) for v in gpd.read_file(gpkg).to_crs(CHINA_ALBERS).total_bounds)
    return Grid.covering(CRS.from_user_input(CHINA_ALBERS), RESOLUTION, ANALYSIS_FACTOR, bounds, CHUNK)


def quarter_grid(grid):
    """A centred crop of ``grid`` with half its width and half its height, on analysis cells."""
    from ecodask.science.grid import Grid

    cell = grid.analysis_cell
    wc, hc = round(grid.width / ANALYSIS_FACTOR), round(grid.height / ANALYSIS_FACTOR)
    qw, qh = round(wc / 2), round(hc / 2)  # cells
    x0 = grid.bounds[0] + ((wc - qw) // 2) * cell
    y1 = grid.bounds[3] - ((hc - qh) // 2) * cell
    return Grid(grid.crs, grid.resolution, grid.analysis_factor,
                (x0, y1 - qh * cell, x0 + qw * cell, y1), grid.chunk_size)


def _tile(args: tuple[int, int, int, int, int]) -> tuple[int, int, np.ndarray]:
    """Land cover of one tile (years, tile, tile), generated whole and seeded by its position."""
    seed, row, col, tile, res = args
    from ecodask.synth import make_landcover, make_terrain

    streams = np.random.SeedSequence([seed, row, col]).spawn(2)
    rng_terrain, rng_lc = (np.random.default_rng(s) for s in streams)
    terrain = make_terrain(rng_terrain, (tile, tile), float(res))
    maps, _ = make_landcover(rng_lc, terrain, YEARS, float(res))
    return row, col, np.stack([maps[y] for y in YEARS])


def write_landcover(inputs: Path, grid, seed: int, tile: int, workers: int = 2) -> dict[int, Path]:
    """One tiled, deflate GeoTIFF per year on ``grid``, written tile by tile (rasterio windows)."""
    import rasterio
    from rasterio.windows import Window

    inputs.mkdir(parents=True, exist_ok=True)
    paths = {y: inputs / f"landcover_{y}.tif" for y in YEARS}
    rows, cols = grid.shape
    jobs = [(seed, i, j, tile, int(grid.resolution))
            for i in range(-(-rows // tile)) for j in range(-(-cols // tile))]
    profile = {"driver": "GTiff", "height": rows, "width": cols, "count": 1, "dtype": "uint8",
               "crs": grid.crs, "transform": grid.transform, "nodata": 0, "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate", "BIGTIFF": "IF_SAFER"}
    tmp = {y: p.with_suffix(".tif.partial") for y, p in paths.items()}
    dsts = {y: rasterio.open(tmp[y], "w", **profile) for y in YEARS}
    try:
        with mp.get_context("spawn").Pool(workers) as pool:
            for n, (i, j, maps) in enumerate(pool.imap_unordered(_tile, jobs), 1):
                h, w = min(tile, rows - i * tile), min(tile, cols - j * tile)
                for t, y in enumerate(YEARS):
                    dsts[y].write(maps[t, :h, :w], 1, window=Window(j * tile, i * tile, w, h))
                print(f"  land cover tile {n}/{len(jobs)}", flush=True)
    finally:
        for d in dsts.values():
            d.close()
    for y in YEARS:
        tmp[y].replace(paths[y])
    return paths


def write_config(folder: Path, grid, gpkg: Path, landcover: dict[int, Path], *, name: str | None = None,
                 crs: str | None = None, scheme: str = "clcd", id_field: str = ID_FIELD,
                 name_field: str = NAME_FIELD) -> Path:
    """The run configuration of one extent (paths absolute: the folder is a cache, not a project);
    by default Hubei-30m's (``hubei-30m-<folder>``, CHINA_ALBERS, CLCD codes, the counties' fields)."""
    import yaml

    from ecodask.science.grid import CHINA_ALBERS

    cfg = {
        "name": name or f"hubei-30m-{folder.name}",
        "grid": {"crs": crs or CHINA_ALBERS, "resolution": int(RESOLUTION),
                 "analysis_factor": ANALYSIS_FACTOR, "bounds": [float(v) for v in grid.bounds],
                 "chunk_size": CHUNK},
        "landcover": {"scheme": scheme, "years": {y: str(p.resolve()) for y, p in landcover.items()}},
        "esv": {"table": "xinzhou_2023"},
        "zones": {"path": str(Path(gpkg).resolve()), "id_field": id_field, "name_field": name_field},
        "output": "output",
        "cluster": {"kind": "local", "n_workers": 2, "threads_per_worker": 1, "memory_limit": "4GiB"},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False, width=200, allow_unicode=True), encoding="utf-8")
    return path


def ingest_extent(config: Path) -> Path:
    """The project's own ingest (store + zone table), on Dask's threaded scheduler, 2 workers."""
    import dask

    from ecodask.run.config import load_config
    from ecodask.run.stages import ingest

    cfg = load_config(config)
    with dask.config.set(scheduler="threads", num_workers=2):
        return ingest.run(cfg, None)["store"]


def build(out: Path = Path("bench-output"), seed: int = 0, tile: int = 4096) -> dict[str, Path]:
    """Build (or reuse) the data; return the config path of each extent (``full``, ``quarter``)."""
    from ecodask.io.layout import RunFolder

    gpkg = counties_file()
    root = Path(out) / "hubei30m"
    grid = full_grid(gpkg)
    quarter = quarter_grid(grid)
    params = {"version": BUILDER_VERSION, "seed": seed, "tile": tile, "years": list(YEARS),
              "bounds": list(grid.bounds), "quarter_bounds": list(quarter.bounds),
              "counties_bytes": gpkg.stat().st_size}
    stamp = root / "built.json"
    configs = {"full": root / "full" / "config.yaml", "quarter": root / "quarter" / "config.yaml"}
    if stamp.exists() and json.loads(stamp.read_text()) == params and all(
        RunFolder(c.parent / "output").store.exists() for c in configs.values()
    ):
        return configs
    stamp.unlink(missing_ok=True)
    t0 = time.perf_counter()
    print(f"Hubei-30m data: grid {grid.width} x {grid.height} px ({grid.width * grid.height / 1e6:.1f} Mpx), "
          f"quarter {quarter.width} x {quarter.height} px, {len(YEARS)} years, under {root}", flush=True)
    lc = write_landcover(root / "inputs", grid, seed, tile)
    print(f"  GeoTIFFs written in {time.perf_counter() - t0:.0f} s", flush=True)
    for name, g in (("full", grid), ("quarter", quarter)):
        shutil.rmtree(root / name, ignore_errors=True)
        write_config(root / name, g, gpkg, lc)
        t1 = time.perf_counter()
        ingest_extent(configs[name])
        print(f"  ingest {name}: {time.perf_counter() - t1:.0f} s", flush=True)
    stamp.write_text(json.dumps(params, indent=2))
    print(f"  built in {time.perf_counter() - t0:.0f} s", flush=True)
    return configs


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tile", type=int, default=4096, help="generator tile side, px")
    a = ap.parse_args(argv)
    for name, cfg in build(a.out, a.seed, a.tile).items():
        print(f"{name}: {cfg}")


if __name__ == "__main__":
    main()

"""Data of the real-texture benchmark: the real 30 m land cover of Wuhan (4 years) tiled into a mosaic of
about 420 Mpx a year, mirrored so that the tiles join, ingested into Zarr as a run ingests it.

    python -m benchmarks.wuhan_texture_data [--out bench-output] [--size 20480]

The texture is real, the geography synthetic. Built once and cached under ``<out>/wuhan_texture/``
(rebuilt only when the parameters change):

- ``inputs/landcover_{year}.tif`` (2003, 2005, 2010, 2013): the 2931 x 2931 px rasters of
  ``wuhan_landcover_{year}_30m_utm49n.tif`` (reference data) laid as tiles, tile (i, j) flipped
  left-right when j is odd and upside down when i is odd, so every tile edge meets its mirror image
  (no seams of unrelated land cover); cut to ``size`` x ``size`` px from the top-left corner (20,480
  = 7 tiles less 37 px = 5 x 4096 chunks: 419.4 Mpx). The pixels keep their 30 m size but the mosaic
  is given a synthetic equal-area CRS, an Albers centred on Wuhan (:data:`TEXTURE_ALBERS`), with the
  mosaic's centre near its origin: no resampling, every pixel is a real Wuhan pixel. uint8 PLUS codes
  1-7, nodata 0 (the sources' nodata 15 and -128: outside the districts the rasters cover), tiled
  256², deflate, as the Hubei-30m GeoTIFFs.
- ``inputs/zones.gpkg``: the 11 districts of ``wuhan_districts.gpkg`` (UTM 49N, as the rasters), cut
  to the raster's square and mirrored with their tile: 49 copies of each (539 zones for 7 x 7 tiles,
  fewer where the cut leaves none), ids ``<adcode>-r<i>c<j>``: "counties" at the districts' scale.
- ``full/config.yaml`` and ``full/output/store.zarr``: the run config (scheme ``plus``, ESV table
  ``xinzhou_2023``, the grid pinned to the mosaic: 30 m, 960 m analysis cells, 4096² chunks) and the
  store written by the project's own ingest (which reads the aligned GeoTIFFs window by window).

:func:`texture` measures what makes the data hard or easy for a pass over the store: the compression
ratio of the land-cover chunks and the mean run of equal pixels along a row.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np

from benchmarks.hubei30m_data import (  # the same 30 m pixels, cells and chunks as Hubei-30m
    ANALYSIS_FACTOR,
    CHUNK,
    RESOLUTION,
    ingest_extent,
    shared_data,
    write_config,
)

YEARS = (2003, 2005, 2010, 2013)
TILE = 2931  # px, the side of the Wuhan rasters
SIZE = 20480  # px: 5 x 4096, 419.4 Mpx a year
ZONE_FILE = "wuhan_districts.gpkg"
ID_FIELD, NAME_FIELD = "zone_id", "name"
#: A synthetic equal-area CRS for the mosaic: Albers on Wuhan's latitude and longitude.
TEXTURE_ALBERS = (
    "+proj=aea +lat_0=30.6 +lon_0=114.3 +lat_1=25 +lat_2=47 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
)
BUILDER_VERSION = 1  # bump when the data would change


def source(year: int) -> Path:
    path = shared_data() / f"wuhan_landcover_{year}_30m_utm49n.tif"
    if not path.is_file():
        raise SystemExit(
            f"error: the real-texture benchmark needs {path.name} (real 30 m land cover of Wuhan), looked "
            f"for {path}. Put the project's reference data at ../shared/data beside the repository or "
            "point ECODASK_SHARED_DATA at its folder."
        )
    return path


def mosaic_grid(size: int):
    """The mosaic's grid: TEXTURE_ALBERS, 30 m, ``size`` px square, its centre near the origin."""
    from pyproj import CRS

    from ecodask.science.grid import Grid

    cell = RESOLUTION * ANALYSIS_FACTOR
    cells = size // ANALYSIS_FACTOR
    x0 = -(cells // 2) * cell
    y1 = (cells - cells // 2) * cell
    return Grid(CRS.from_user_input(TEXTURE_ALBERS), RESOLUTION, ANALYSIS_FACTOR,
                (x0, y1 - cells * cell, x0 + cells * cell, y1), CHUNK)


def read_sources() -> tuple[dict[int, np.ndarray], object, object]:
    """Each year's codes as uint8 with nodata 0, and the rasters' transform and CRS."""
    import rasterio

    codes = {}
    for y in YEARS:
        with rasterio.open(source(y)) as src:
            a = src.read(1)
            if a.shape != (TILE, TILE):
                raise SystemExit(f"error: {src.name} is {a.shape}, expected {TILE} x {TILE} px")
            valid = a != src.nodata
            if (a[valid] < 1).any() or (a[valid] > 7).any():
                raise SystemExit(f"error: {src.name} has codes outside 1-7: {np.unique(a[valid])}")
            codes[y] = np.where(valid, a, 0).astype(np.uint8)
            transform, crs = src.transform, src.crs
    return codes, transform, crs


def tile_of(a: np.ndarray, i: int, j: int) -> np.ndarray:
    """Tile (i, j) of the mosaic: ``a`` flipped left-right for odd j, upside down for odd i."""
    return a[:: -1 if i % 2 else 1, :: -1 if j % 2 else 1]


def write_landcover(inputs: Path, grid, codes: dict[int, np.ndarray]) -> dict[int, Path]:
    """One tiled, deflate GeoTIFF per year: the mirrored mosaic, a band of tiles at a time."""
    import rasterio
    from rasterio.windows import Window

    inputs.mkdir(parents=True, exist_ok=True)
    size = grid.width
    n = math.ceil(size / TILE)
    profile = {"driver": "GTiff", "height": size, "width": size, "count": 1, "dtype": "uint8",
               "crs": grid.crs, "transform": grid.transform, "nodata": 0, "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate", "BIGTIFF": "IF_SAFER",
               "NUM_THREADS": "2"}
    paths = {}
    for y in YEARS:
        path = inputs / f"landcover_{y}.tif"
        tmp = path.with_suffix(".tif.partial")
        with rasterio.open(tmp, "w", **profile) as dst:
            for i in range(n):
                band = np.concatenate([tile_of(codes[y], i, j) for j in range(n)], axis=1)[:, :size]
                h = min(TILE, size - i * TILE)
                dst.write(band[:h], 1, window=Window(0, i * TILE, size, h))
        tmp.replace(path)
        paths[y] = path
        print(f"  land cover {y} written", flush=True)
    return paths


def write_zones(path: Path, grid, src_transform, src_crs) -> int:
    """The districts mirrored with each tile, in the mosaic's CRS; returns the number of zones."""
    import geopandas as gpd
    from shapely import affinity
    from shapely.geometry import box

    size = grid.width
    n = math.ceil(size / TILE)
    districts = gpd.read_file(shared_data() / ZONE_FILE).to_crs(src_crs)
    # UTM metres -> source pixel (col, row), cut to the raster's square
    inv = ~src_transform
    px = [affinity.affine_transform(g, [inv.a, inv.b, inv.d, inv.e, inv.c, inv.f]).intersection(
        box(0, 0, TILE, TILE)) for g in districts.geometry]
    g = grid.transform
    rows = []
    for i in range(n):
        for j in range(n):
            # pixel (col, row) of the source -> of the mosaic (mirrored) -> mosaic CRS metres
            sx, ox = (-1, (j + 1) * TILE) if j % 2 else (1, j * TILE)
            sy, oy = (-1, (i + 1) * TILE) if i % 2 else (1, i * TILE)
            for (_, d), geom in zip(districts.iterrows(), px, strict=True):
                m = affinity.affine_transform(geom, [sx, 0, 0, sy, ox, oy]).intersection(
                    box(0, 0, size, size))
                if m.is_empty or m.area < 1:
                    continue
                world = affinity.affine_transform(m, [g.a, g.b, g.d, g.e, g.c, g.f])
                rows.append({ID_FIELD: f"{d['adcode']}-r{i}c{j}", NAME_FIELD: f"{d['name']} r{i}c{j}",
                             "geometry": world})
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=grid.crs)
    gdf["geometry"] = gdf.geometry.make_valid()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial.gpkg")
    tmp.unlink(missing_ok=True)
    gdf.to_file(tmp, driver="GPKG")
    tmp.replace(path)
    return len(gdf)


def build(out: Path = Path("bench-output"), size: int = SIZE) -> dict[str, Path]:
    """Build (or reuse) the data; return the config path of its one extent (``full``)."""
    from ecodask.io.layout import RunFolder

    if size % ANALYSIS_FACTOR or size < CHUNK:
        raise SystemExit(f"error: --size {size} must be a multiple of {ANALYSIS_FACTOR} and >= {CHUNK}")
    root = Path(out) / "wuhan_texture"
    grid = mosaic_grid(size)
    params = {"version": BUILDER_VERSION, "size": size, "years": list(YEARS),
              "sources_bytes": [source(y).stat().st_size for y in YEARS],
              "zones_bytes": (shared_data() / ZONE_FILE).stat().st_size}
    stamp = root / "built.json"
    configs = {"full": root / "full" / "config.yaml"}
    if stamp.exists() and json.loads(stamp.read_text()) == params and all(
        RunFolder(c.parent / "output").store.exists() for c in configs.values()
    ):
        return configs
    stamp.unlink(missing_ok=True)
    t0 = time.perf_counter()
    n = math.ceil(size / TILE)
    print(f"Real-texture data: {n} x {n} mirrored tiles of the Wuhan land cover cut to {size} x {size} px "
          f"({size * size / 1e6:.1f} Mpx), {len(YEARS)} years, under {root}", flush=True)
    codes, transform, crs = read_sources()
    lc = write_landcover(root / "inputs", grid, codes)
    n_zones = write_zones(root / "inputs" / "zones.gpkg", grid, transform, crs)
    print(f"  GeoTIFFs and {n_zones} zones written in {time.perf_counter() - t0:.0f} s", flush=True)
    shutil.rmtree(root / "full", ignore_errors=True)
    write_config(root / "full", grid, root / "inputs" / "zones.gpkg", lc, name="wuhan-texture",
                 crs=TEXTURE_ALBERS, scheme="plus", id_field=ID_FIELD, name_field=NAME_FIELD)
    t1 = time.perf_counter()
    ingest_extent(configs["full"])
    print(f"  ingest: {time.perf_counter() - t1:.0f} s", flush=True)
    stamp.write_text(json.dumps(params, indent=2))
    print(f"  built in {time.perf_counter() - t0:.0f} s", flush=True)
    return configs


# --------------------------------------------------------------------------------------------------
# texture


def _runs_block(z: np.ndarray, lc: np.ndarray) -> np.ndarray:
    """(positions, runs, positions in a zone, runs in a zone, data positions in a zone) of one
    block: a run is a maximal sequence along a row of pixels with the same zone and the same code in
    every year (runs are cut at block edges: one extra run per row and block, < 0.1 % at 4096 px)."""
    start = np.ones(z.shape, bool)
    start[:, 1:] = (z[:, 1:] != z[:, :-1]) | (lc[:, :, 1:] != lc[:, :, :-1]).any(axis=0)
    inside = z > 0
    data = inside & (lc > 0).all(axis=0)
    out = np.array([z.size, start.sum(), inside.sum(), (start & inside).sum(), data.sum()], np.int64)
    return out


def texture(config: Path) -> dict:
    """Compression ratio of the store's ``landcover`` chunks (raw bytes / stored bytes, as zarr
    reports them) and mean run length along rows (pixel positions / runs), over the whole extent and
    inside the zones; the share of no-data pixels (no code in some year) in the zones and overall."""
    import dask
    import zarr

    from ecodask.io.layout import RunFolder
    from ecodask.io.store import open_store
    from ecodask.run.config import load_config

    cfg = load_config(config)
    store = RunFolder(cfg.output).store
    arr = zarr.open_group(str(store), mode="r")["landcover"]
    raw, stored = arr.nbytes, arr.nbytes_stored()
    pix, _ = open_store(store)
    zone, lc = pix["zone"].data, pix["landcover"].data.rechunk({0: -1})
    zb, lb = zone.to_delayed(), lc.to_delayed()[0]
    per = [dask.delayed(_runs_block)(zb[i, j], lb[i, j])
           for i in range(zb.shape[0]) for j in range(zb.shape[1])]
    with dask.config.set(scheduler="threads", num_workers=2):
        pos, runs, ipos, iruns, idata = (int(v) for v in np.sum(dask.compute(*per), axis=0).ravel())
        nodata = int(dask.compute((lc == 0).any(axis=0).sum())[0])
    return {"landcover_raw_mb": raw / 1e6, "landcover_stored_mb": stored / 1e6,
            "compression_ratio": raw / stored, "mean_run_px": pos / runs,
            "mean_run_px_in_zones": ipos / iruns if iruns else None,
            "zone_share": ipos / pos, "nodata_share": nodata / pos,
            "nodata_share_in_zones": 1 - idata / ipos if ipos else None}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    ap.add_argument("--size", type=int, default=SIZE, help="side of the mosaic, px (multiple of 32)")
    ap.add_argument("--texture", action="store_true", help="print the texture of the store")
    a = ap.parse_args(argv)
    for name, cfg in build(a.out, a.size).items():
        print(f"{name}: {cfg}")
        if a.texture:
            print(json.dumps(texture(cfg), indent=2))


if __name__ == "__main__":
    main()

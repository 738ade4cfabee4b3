"""What burning the zones costs a chunk task of ingest: seconds per chunk for many zones.

Voronoi zones of ``--zones`` random points (seed 0) over the national benchmark's grid (131,072 x
81,920 px at 30 m), burned as ingest burns them (``ecodask.io.rasters.RasterizedZones``, the object
every chunk task of a worker shares) on ``--chunks`` chunks of ``--chunk`` px along the grid's
diagonal, one after the other in this process: the seconds of each chunk, the first and the rest.

    python -m benchmarks.zone_burn [--zones 40000 2800] [--chunks 8] [--chunk 4096] [--vertices 100]

To compare code versions, run the same command from another checkout (or with its ``ecodask`` first
on ``PYTHONPATH``); the figures depend on the code, not on this script.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def zones(n: int, width_m: float, height_m: float, vertices: int, seed: int = 0) -> list:
    """``n`` Voronoi polygons of uniform random points over a ``width_m`` x ``height_m`` rectangle,
    their edges cut into segments of a length that gives a typical zone ~``vertices`` vertices (a
    boundary drawn from a map, not a Voronoi cell's ~6 straight edges)."""
    import shapely

    rng = np.random.default_rng(seed)
    pts = shapely.multipoints(np.column_stack([rng.uniform(0, width_m, n), rng.uniform(0, height_m, n)]))
    frame = shapely.box(0, 0, width_m, height_m)
    cells = shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=frame))
    side = np.sqrt(width_m * height_m / n)
    return list(shapely.segmentize(shapely.intersection(cells, frame), 4 * side / vertices))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zones", type=int, nargs="+", default=[40_000, 2_800])
    ap.add_argument("--chunks", type=int, default=8)
    ap.add_argument("--chunk", type=int, default=4096, help="chunk side, px")
    ap.add_argument("--vertices", type=int, default=100, help="vertices of a typical zone's boundary")
    args = ap.parse_args(argv)

    from pyproj import CRS

    from ecodask.io.rasters import RasterizedZones, smallest_uint
    from ecodask.science.grid import CHINA_ALBERS, Grid

    width, height = 131_072, 81_920
    bounds = (0.0, 0.0, 30.0 * width, 30.0 * height)
    grid = Grid(CRS.from_user_input(CHINA_ALBERS), 30, 32, bounds, args.chunk)
    c = args.chunk
    step_r, step_c = (height // c - 1) / max(args.chunks - 1, 1), (width // c - 1) / max(args.chunks - 1, 1)
    windows = [(int(round(i * step_r)) * c, int(round(i * step_c)) * c) for i in range(args.chunks)]
    print(f"load average {os.getloadavg()[0]:.1f} at the start; {args.chunks} chunks of {c} px")
    print("| zones | WKB MB | zones met a chunk (mean) | first chunk s | each later chunk s (mean) |")
    print("|---:|---:|---:|---:|---:|")
    for n in args.zones:
        polys = zones(n, 30.0 * width, 30.0 * height, args.vertices)
        wkb = tuple(p.wkb for p in polys)
        src = RasterizedZones(wkb, tuple(range(1, n + 1)), grid, smallest_uint(n))
        seconds, met = [], []
        for r0, c0 in windows:
            t0 = time.perf_counter()
            burned = src[r0:r0 + c, c0:c0 + c]
            seconds.append(time.perf_counter() - t0)
            met.append(len(np.unique(burned)))
        print(f"| {n:,} | {sum(map(len, wkb)) / 1e6:.1f} | {np.mean(met):.0f} | {seconds[0]:.3f} | "
              f"{np.mean(seconds[1:]):.3f} |")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()

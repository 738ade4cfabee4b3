"""One case of the Hubei-30m benchmark in its own process; prints one JSON line.

    python -m benchmarks.hubei30m_case CASE CONFIG [--crop ROW COL HEIGHT WIDTH] [--save FILE.npz]
        [--engine numba]

CASE is one of ``io_floor``, ``kernel`` (ecodask's transition kernel alone), ``bincount``,
``flox``, ``xrspatial``, ``exactextract`` (class fractions per zone polygon of one year, the last,
from the year's GeoTIFF: see :func:`exactextract_counts`), ``stage``, ``stage_nogrid`` (the stage
without writing the 30 m ESV grid), ``stage_warm`` (the stage's second call in the process: no
start-up costs). CONFIG is the run configuration of an extent built by
:mod:`benchmarks.hubei30m_data` or :mod:`benchmarks.wuhan_texture_data` (its store is
``<output>/store.zarr``). Runs on Dask's threaded scheduler with 2 workers so that the process's
peak resident memory (VmHWM) is the whole peak. ``--crop`` restricts a case to a window of the
store, in pixels. ``--save`` writes the case's pixel counts per (pair of years, zone, class code in
the first year, in the second) as int64 ``counts[pair, zone - 1, code1, code2]`` (codes 0..15),
plus, for a cropped case, the same counts from ecodask's own transition kernel on the same window
(``ours``); they are made after the clock stops. For ``exactextract`` the saved counts are
per (zone - 1, code) of the last year: exactextract's coverage-weighted counts (float) as
``counts`` and ecodask's kernel's as ``ours``, with each zone's boundary length in pixels as
``perimeter_px``.

Pairs of years are those the stage compares: every consecutive pair, then first-to-last.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np

CASES = ("io_floor", "kernel", "bincount", "flox", "xrspatial", "exactextract", "stage", "stage_nogrid",
         "stage_warm", "stage_cold")
K = 16  # class codes 0..15 (CLCD uses 0..9): the combined index is zone*K*K + c1*K + c2


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), MB (not inherited from the parent, unlike
    ru_maxrss)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def year_pairs(n_years: int) -> list[tuple[int, int]]:
    """The pairs of year indices the stage compares: consecutive ones, then first-to-last."""
    pairs = [(i, i + 1) for i in range(n_years - 1)]
    return pairs + [(0, n_years - 1)] if n_years > 2 else pairs


# --------------------------------------------------------------------------------------------------
# baselines


def _bincount_block(z: np.ndarray, lc: np.ndarray, *, pairs, n_zones: int) -> np.ndarray:
    """np.bincount of zone*K*K + c1*K + c2 over one block, for every pair: (1, 1, 1, P, Z+1, K, K)."""
    if lc.max(initial=0) >= K:
        raise ValueError(f"class codes must be < {K} for the combined index")
    zk = z[0].astype(np.uint32) * np.uint32(K * K)
    size = (n_zones + 1) * K * K
    out = np.empty((len(pairs), size), np.int64)
    for p, (a, b) in enumerate(pairs):
        idx = lc[a].astype(np.uint32)
        idx *= np.uint32(K)
        idx += lc[b]
        idx += zk
        out[p] = np.bincount(idx.ravel(), minlength=size)
    return out.reshape(1, 1, 1, len(pairs), n_zones + 1, K, K)


def bincount_counts(zone: da.Array, lc: da.Array, pairs, n_zones: int) -> da.Array:
    """Dask map_blocks of :func:`_bincount_block` over aligned (y, x) blocks, summed over blocks."""
    lcw = lc.rechunk({0: -1})
    z3 = zone[None]
    nby, nbx = len(zone.chunks[0]), len(zone.chunks[1])
    per = da.map_blocks(
        _bincount_block, z3, lcw, pairs=pairs, n_zones=n_zones, dtype=np.int64,
        new_axis=[3, 4, 5, 6],
        chunks=((1,), (1,) * nby, (1,) * nbx, (len(pairs),), (n_zones + 1,), (K,), (K,)),
    )
    return per.sum(axis=(0, 1, 2), split_every=8)[:, 1:]


def flox_counts(zone: da.Array, lc: da.Array, pairs, n_zones: int, engine: str) -> list:
    """flox.groupby_reduce count over (zone, c1, c2), map-reduce, one per pair (lazy)."""
    import flox

    groups = (np.arange(1, n_zones + 1), np.arange(K), np.arange(K))
    out = []
    for a, b in pairs:
        res, *_ = flox.groupby_reduce(lc[a], zone, lc[a], lc[b], func="count", expected_groups=groups,
                                      method="map-reduce", engine=engine, fill_value=0)
        out.append(res)
    return out


def xrspatial_counts(zone: np.ndarray | da.Array, lc, pairs, n_zones: int) -> list:
    """xarray-spatial zonal.crosstab(zones, c1*K + c2), count, one per pair: DataFrames."""
    import xarray as xr
    from xrspatial import zonal

    zones = xr.DataArray(zone, dims=("y", "x"))
    out = []
    for a, b in pairs:
        values = xr.DataArray(lc[a].astype(np.int32) * K + lc[b], dims=("y", "x"))
        df = zonal.crosstab(zones, values, zone_ids=list(range(1, n_zones + 1)), agg="count")
        out.append(df.compute() if hasattr(df, "compute") else df)
    return out


def exactextract_counts(raster: Path, polygons, id_field: str, zones) -> np.ndarray:
    """exactextract's class fractions per polygon (``unique``, ``frac``, ``count``: coverage-weighted
    counts of the pixels with data) turned into coverage-weighted counts per (zone - 1, code).

    exactextract weights each pixel by the share of its area inside the polygon; ecodask (rasterio's
    burn) gives a pixel wholly to the zone holding its centre. exactextract has no centre rule
    (``min_coverage_frac`` with ``coverage_weight="none"`` is a threshold on coverage, not the
    centre), so the two differ on the pixels a zone's boundary crosses and nowhere else."""
    from exactextract import exact_extract

    df = exact_extract(str(raster), polygons, ["unique", "frac", "count"], include_cols=[id_field],
                       output="pandas")
    index = {str(i): int(z) for i, z in zip(zones["zone_id"], zones["zone"], strict=True)}
    out = np.zeros((len(zones), K), np.float64)
    for zid, values, frac, count in zip(df[id_field], df["unique"], df["frac"], df["count"], strict=True):
        if len(values):
            out[index[str(zid)] - 1, np.asarray(values, np.int64)] = np.asarray(frac) * count
    return out


def crosstab_to_counts(frames, n_zones: int) -> np.ndarray:
    out = np.zeros((len(frames), n_zones, K, K), np.int64)
    for p, df in enumerate(frames):
        zcol = df["zone"].to_numpy().astype(np.int64)
        for col in df.columns:
            if col == "zone":
                continue
            v = int(float(col))
            out[p, zcol - 1, v // K, v % K] = df[col].fillna(0).to_numpy().astype(np.int64)
    return out


# --------------------------------------------------------------------------------------------------
# ecodask


def our_counts(zone: da.Array, lc: da.Array, pairs, n_zones: int) -> np.ndarray:
    """The same counts from ecodask's own one-pass transition kernel (raw codes 0..15, unknown 16)."""
    from ecodask.chunked.blockwise import map_sum_blocks
    from ecodask.kernels.transitions import transition_counts

    lut = np.minimum(np.arange(256), K).astype(np.uint8)

    def counts_only(z, c):
        return transition_counts(z, c, lut, np.asarray(pairs), n_zones)[0]

    (c,) = dask.compute(map_sum_blocks(counts_only, [zone, lc]))
    if c[..., K, :].any() or c[..., K].any():
        raise ValueError(f"class codes >= {K} in the data")
    return c[..., :K, :K]


def stage_counts(tables: Path, years: list[int], pairs, zones) -> np.ndarray:
    """Counts per (pair, zone, code1, code2) from the stage's transitions table."""
    import pandas as pd

    path = tables / "transitions.parquet"
    df = pd.read_parquet(path) if path.exists() else pd.read_csv(tables / "transitions.csv")
    index = {str(i): int(z) for i, z in zip(zones["zone_id"], zones["zone"], strict=True)}
    df = df[df["zone_id"].astype(str).isin(index)]
    pair_of = {(years[a], years[b]): p for p, (a, b) in enumerate(pairs)}
    out = np.zeros((len(pairs), len(zones), K, K), np.int64)
    for (y0, y1), part in df.groupby(["year_from", "year_to"]):
        if (int(y0), int(y1)) not in pair_of:
            continue
        p = pair_of[int(y0), int(y1)]
        z = part["zone_id"].astype(str).map(index).to_numpy() - 1
        out[p, z, part["class_from"].to_numpy(int), part["class_to"].to_numpy(int)] = \
            part["pixels"].to_numpy(np.int64)
    found = {(int(a), int(b)) for a, b in df[["year_from", "year_to"]].drop_duplicates().to_numpy()}
    missing = set(pair_of) - found
    if missing:
        raise ValueError(f"the transitions table has no rows for the pairs {sorted(missing)}")
    return out


# --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("case", choices=CASES)
    ap.add_argument("config", type=Path)
    ap.add_argument("--crop", type=int, nargs=4, metavar=("ROW", "COL", "HEIGHT", "WIDTH"))
    ap.add_argument("--save", type=Path)
    ap.add_argument("--engine", default="numba", help="flox engine")
    ap.add_argument("--numpy", action="store_true", help="xrspatial: on numpy arrays loaded first")
    a = ap.parse_args(argv)

    from ecodask.io.layout import RunFolder
    from ecodask.io.store import open_store, store_zones
    from ecodask.run.config import load_config

    cfg = load_config(a.config)
    store = RunFolder(cfg.output).store
    pix, _ = open_store(store)
    zones = store_zones(pix)
    n_zones = len(zones)
    years = [int(y) for y in pix["year"].values]
    pairs = year_pairs(len(years))
    zone, lc = pix["zone"].data, pix["landcover"].data
    if a.crop:
        r0, c0, h, w = a.crop
        zone, lc = zone[r0 : r0 + h, c0 : c0 + w], lc[:, r0 : r0 + h, c0 : c0 + w]
        zone, lc = zone.rechunk(zone.chunksize), lc.rechunk(lc.chunksize)  # no empty slivers
    positions = int(zone.shape[0] * zone.shape[1])
    counts = None
    extra: dict = {}
    with dask.config.set(scheduler="threads", num_workers=2):
        if a.case == "xrspatial" and a.numpy:
            zone, lc = dask.compute(zone, lc)  # load outside the clock
        if a.case == "stage_warm":  # a first call outside the clock: numba kernels loaded, caches warm
            from ecodask.run.stages import transitions_esv

            transitions_esv.run(cfg, store)
        if a.case in ("stage", "stage_nogrid"):
            # As for flox and xarray-spatial: load the numba kernels outside the clock, on a corner,
            # and import what a flow process has already imported (its Dask client, the Parquet
            # writer). ``stage_cold`` leaves all of it inside the clock.
            import distributed  # noqa: F401
            import pyarrow.parquet  # noqa: F401

            from ecodask.chunked.landpass import land_pass

            f = cfg.grid.analysis_factor
            land_pass(zone[: 2 * f, : 2 * f], lc[:, : 2 * f, : 2 * f], lut=np.zeros(256, np.uint8),
                      pairs=pairs, n_zones=n_zones, values=np.zeros((len(years), 1, 256)), factor=f)
        if a.case == "exactextract":  # the polygons read and in the raster's CRS outside the clock
            import geopandas as gpd

            polygons = gpd.read_file(cfg.zones.path).to_crs(cfg.grid.crs)
            raster = Path(cfg.landcover.years[years[-1]])
            extra["years_counted"] = [years[-1]]
        if a.case in ("flox", "xrspatial"):  # JIT-compile (numba) outside the clock, on a corner
            warm = (zone[:64, :64], lc[:, :64, :64])
            if a.case == "flox":
                dask.compute(*flox_counts(*warm, pairs, n_zones, a.engine))
            else:
                xrspatial_counts(*warm, pairs, n_zones)
        t0 = time.perf_counter()
        if a.case == "io_floor":  # read and decompress every chunk once: the floor of any pass
            dask.compute(zone.sum(dtype="u8"), lc.sum(dtype="u8"))
        elif a.case == "kernel":
            counts = our_counts(zone, lc, pairs, n_zones)
        elif a.case == "bincount":
            (counts,) = dask.compute(bincount_counts(zone, lc, pairs, n_zones))
        elif a.case == "flox":
            counts = np.stack(dask.compute(*flox_counts(zone, lc, pairs, n_zones, a.engine))).astype(np.int64)
        elif a.case == "xrspatial":
            counts = crosstab_to_counts(xrspatial_counts(zone, lc, pairs, n_zones), n_zones)
        elif a.case == "exactextract":
            if a.crop:
                raise SystemExit("exactextract runs on the whole GeoTIFF")
            counts = exactextract_counts(raster, polygons, cfg.zones.id_field, zones)
        elif a.case.startswith("stage"):
            if a.crop:
                raise SystemExit("the stage runs on a whole extent (make a config for a crop)")
            from ecodask.io import grids
            from ecodask.run.stages import transitions_esv

            if a.case == "stage_nogrid":  # no Zarr targets: the pass computes but writes no esv grid
                if not hasattr(grids, "stage_esv_arrays"):
                    raise SystemExit("ecodask.io.grids.stage_esv_arrays is gone: update stage_nogrid")
                grids.stage_esv_arrays = lambda store, pix, groups: {}  # the stage calls it through grids
            outputs = transitions_esv.run(cfg, store)
        seconds = time.perf_counter() - t0
        peak = peak_rss_mb()  # before the checks below
        if a.case.startswith("stage"):
            counts = stage_counts(RunFolder(cfg.output).tables, years, pairs, zones)
            extra["outputs"] = {k: str(v) for k, v in outputs.items()}
        if a.save and counts is not None:
            save = {"counts": counts}
            if a.case == "exactextract":  # ecodask's class counts of the same year: the pair (last, last)
                last = len(years) - 1
                c = our_counts(zone, lc, [(last, last)], n_zones)[0]
                save["ours"] = np.einsum("zkk->zk", c)
                per = {str(i): g.length for i, g in zip(polygons[cfg.zones.id_field], polygons.geometry,
                                                         strict=True)}
                save["perimeter_px"] = np.array([per[str(i)] for i in zones["zone_id"]]) / cfg.grid.resolution
            elif a.crop:
                save["ours"] = our_counts(zone if isinstance(zone, da.Array) else da.from_array(zone),
                                          lc if isinstance(lc, da.Array) else da.from_array(lc),
                                          pairs, n_zones)
            a.save.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(a.save, **save)
    counted = 1 if a.case == "exactextract" else len(pairs)  # exactextract: one year, not pairs
    print(json.dumps({"case": a.case, "seconds": seconds, "positions": positions, "years": len(years),
                      "pairs": counted, "peak_rss_mb": peak, **extra}))


if __name__ == "__main__":
    main()

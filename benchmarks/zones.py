"""Zones by the thousand: the transitions + ESV pass and its tables for 3,000 and 40,000 zones,
against a bare dask bincount that only counts:

    python -m benchmarks.run --suite zones [--size 10240] [--zones 3000 40000] [--repeats 3]

Data, in memory (no I/O: the pass's own cost): a ``size`` x ``size`` px zone raster of square
zones (``zones`` of them, a township of ~3,500 px = 3 km² at 30 m for 40,000 zones on 10^8 px),
two years of land cover with patches of 1-16 px (CLCD codes), chunks of 4096 px.
Cases, each ``--repeats`` times (medians), Dask's threaded scheduler with 2 threads:

- ``bincount``: ``map_blocks`` of ``np.bincount(zone * K² + c1 * K + c2)`` per chunk, summed;
- ``pass dense``: :func:`ecodask.chunked.landpass.land_pass` with every zone's histograms per chunk;
- ``pass compact``: the same with the zones each chunk holds only (``compact_above=0``);
- ``pass default``: the pass as a run calls it (compact above 8 MiB a chunk);
- ``tables``: the county tables from the pass (:meth:`ecodask.science.esv.EsvModel.tables`) and
  writing them as Parquet and CSV (:func:`ecodask.io.tables.write_tables`); with ``--intensity``
  the intensity-analysis tables too.

Every pass's counts equal the bincount's. Prints a Markdown table and writes zones-results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
from functools import partial
from pathlib import Path

import numpy as np

from benchmarks.env import code_state, machine, timed

CHUNK = 4096


def _data(size: int, zones: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Square zones numbered row by row (0 beyond the last), two years of CLCD codes in patches."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(zones)))
    band = np.arange(size) * side // size
    zone = (1 + band[:, None] * side + band[None, :]).astype(np.uint32 if zones >= 65535 else np.uint16)
    zone[zone > zones] = 0
    codes = np.arange(1, 10, dtype=np.uint8)
    lc = np.empty((2, size, size), np.uint8)
    for t in range(2):
        patch = int(rng.integers(1, 17))
        small = rng.choice(codes, size=(-(-size // patch), -(-size // patch)))
        lc[t] = np.repeat(np.repeat(small, patch, 0), patch, 1)[:size, :size]
    keep = np.repeat(np.repeat(rng.random((-(-size // 8), -(-size // 8))) < 0.8, 8, 0), 8, 1)[:size, :size]
    lc[1][keep] = lc[0][keep]  # 80 % of 8 x 8 blocks keep their first year's class
    return zone, lc


def _windows(size: int):
    return [(slice(r, r + CHUNK), slice(c, c + CHUNK)) for r in range(0, size, CHUNK)
            for c in range(0, size, CHUNK)]


def _bincount(zone: np.ndarray, lc: np.ndarray, lut: np.ndarray, k: int, n_zones: int) -> np.ndarray:
    """Counts (zones + 1, K, K) of the first-to-second-year transitions: a bincount per chunk, summed."""
    import dask

    def block(w):
        key = zone[w].astype(np.int64) * (k * k) + lut[lc[0][w]].astype(np.int64) * k + lut[lc[1][w]]
        return np.bincount(key.ravel(), minlength=(n_zones + 1) * k * k)

    parts = [dask.delayed(block)(w) for w in _windows(zone.shape[0])]
    return dask.delayed(sum)(parts).compute().reshape(n_zones + 1, k, k)


def _tables(model, res, zones, folder: Path) -> None:  # noqa: ANN001
    """The tables built and written as the stage does: each written as soon as it is built."""
    from ecodask.io.tables import write_tables

    for name, table in model.each_table(res.counts, res.zone_sums, zones):
        write_tables({name: table}, folder)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=10240)
    ap.add_argument("--zones", type=int, nargs="+", default=[3000, 40000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    ap.add_argument("--intensity", action="store_true",
                    help="the tables include the intensity analysis (landcover.intensity: true)")
    a = ap.parse_args(argv)

    import dask
    import dask.array as da
    import pandas as pd

    from ecodask.chunked.landpass import land_pass
    from ecodask.io.catalogs import load_class_scheme, load_esv_table
    from ecodask.science import esv as esvmod
    from ecodask.science.landuse import ClassIndex

    dask.config.set(scheduler="threads", num_workers=2)
    env = machine(["dask", "numba", "pyarrow"])
    scheme, table = load_class_scheme("clcd"), load_esv_table("xinzhou_2023")
    index = ClassIndex(scheme)
    years = (2000, 2010)
    vc = np.stack([esvmod.coefficient_matrix(table, scheme, index, None)] * 2)
    model = esvmod.EsvModel(scheme, table, years, vc, 0.09, intensity=a.intensity)
    folder = a.out / "zones-tables"
    rows = []
    for n_zones in a.zones:
        zone, lc = _data(a.size, n_zones)
        zd, ld = da.from_array(zone, chunks=CHUNK), da.from_array(lc, chunks=(2, CHUNK, CHUNK))
        ids = range(1, n_zones + 1)
        zones = pd.DataFrame({"zone": list(ids), "zone_id": [f"t{i:05d}" for i in ids],
                              "zone_name": [f"街道{i}" for i in ids], "area_ha": 0.0})
        kw = dict(lut=index.lut, pairs=model.pairs, n_zones=n_zones, values=model.pixel_values(), factor=32)
        # warm-up outside the clock: numba's kernels on a corner
        land_pass(zd[:64, :64], ld[:, :64, :64], **kw, compact_above=0)
        cases = {
            "bincount (first pair only)": partial(_bincount, zone, lc, index.lut, index.k, n_zones),
            "pass dense (every zone per chunk)": partial(land_pass, zd, ld, **kw, compact_above=2**62),
            "pass compact (the zones a chunk holds)": partial(land_pass, zd, ld, **kw, compact_above=0),
            "pass default": partial(land_pass, zd, ld, **kw),
        }
        times: dict[str, list[float]] = {c: [] for c in [*cases, "tables (build + write)"]}
        results = {}
        for _ in range(a.repeats):
            for name, fn in cases.items():
                results[name], t = timed(fn)
                times[name].append(t)
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            res = results["pass default"]
            _, t = timed(partial(_tables, model, res, zones, folder))
            times["tables (build + write)"].append(t)
        ref = results["bincount (first pair only)"][1:]
        for name in cases:
            if name.startswith("pass"):
                assert np.array_equal(results[name].counts[0], ref), name
        px = a.size * a.size
        for name, ts in times.items():
            med = statistics.median(ts)
            rows.append({"zones": n_zones, "case": name, "median_s": med, "all_s": ts,
                         "mpix_s": px / med / 1e6})
    load_end = os.getloadavg()
    print(f"\n{a.size} x {a.size} px ({a.size * a.size / 1e6:.0f} Mpx), 2 years (pairs {model.pairs}), "
          f"chunks {CHUNK}; load average {env['load_avg_at_start'][0]:.2f} at start, {load_end[0]:.2f} at "
          f"end; {env['cores']} cores, {env['cpu']}\n")
    print("| zones | case | median s | Mpx/s | vs bincount |\n|---:|---|---:|---:|---:|")
    for r in rows:
        base = next(b["median_s"] for b in rows
                    if b["zones"] == r["zones"] and b["case"].startswith("bincount"))
        print(f"| {r['zones']:,} | {r['case']} | {r['median_s']:.2f} | {r['mpix_s']:.0f} | "
              f"{r['median_s'] / base:.2f}x |")
    results_json = {"machine": env, "code": code_state(), "size": a.size, "load_avg_end": load_end,
                    "rows": rows}
    (a.out / "zones-results.json").write_text(json.dumps(results_json, indent=2, default=str))
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

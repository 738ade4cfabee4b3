"""Trade-offs between services across the analysis cells: what the class composition adds to the land
pass, and one year's rank correlation at national size against scipy.

    python -m benchmarks.run --suite cell_tradeoffs [--cells 10485760] [--repeats 3]

1. **The pass** (real texture, one thread, fastest of ``--repeats``): the four Wuhan land-cover years
   of the reference data (2931² px, 30 m) mirrored to one 4096² chunk (each edge meets its mirror
   image), zone 1 wherever a year has a code. Times ecodask's fused transition + ESV kernel (4 pairs,
   960 m cells, as ``benchmarks.texture_budget``) without and with the class composition counted in
   its loop (the land pass's common path), the composition alone
   (:func:`ecodask.kernels.cell_classes.cell_class_counts`, 4 years: the year-by-year path), and
   the zstd size of the composition against the analysis grid's ESV arrays.
2. **One year's correlation** (``--cells``: the national grid's 4,096 x 2,560 analysis cells by
   default; 11 services of xinzhou_2023 over CLCD's 9 classes): a synthetic composition of 960 m cells
   (1,024 px each; a dominant class in blocks of 8 x 8 cells, 40 % of the cells pure, the rest mixed
   with one or two other classes, so that densities tie as on real land cover). Each case in a
   fresh process: ``ecodask`` (the densities one service at a time, float32 standardized ranks,
   :func:`ecodask.science.tradeoffs.cell_tradeoffs`) and ``scipy`` (the (cells, services) density
   matrix, then ``scipy.stats.spearmanr``); seconds and the peak resident memory above the
   composition's, and the largest difference of rho between the two.

Prints Markdown tables and writes ``<out>/cell_tradeoffs.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.env import REPO, code_state, fastest, hwm_mb, machine

SHARED = REPO.parent / "shared" / "data"
YEARS = (2003, 2005, 2010, 2013)
SIDE = 4096
FACTOR = 32
NATIONAL_CELLS = 4096 * 2560


def real_chunk() -> tuple[np.ndarray, np.ndarray]:
    """The Wuhan land cover of :data:`YEARS` mirrored to (4, 4096, 4096) uint8, and its zone raster."""
    import rasterio

    years = []
    for y in YEARS:
        with rasterio.open(SHARED / f"wuhan_landcover_{y}_30m_utm49n.tif") as src:
            a = src.read(1)
        reps = -(-SIDE // a.shape[0]), -(-SIDE // a.shape[1])
        rows = [np.concatenate([a if j % 2 == 0 else a[:, ::-1] for j in range(reps[1])], axis=1)
                for _ in range(reps[0])]
        tiled = np.concatenate([r if i % 2 == 0 else r[::-1] for i, r in enumerate(rows)], axis=0)
        years.append(tiled[:SIDE, :SIDE])
    lc = np.ascontiguousarray(np.stack(years).astype(np.uint8))
    zone = (lc != 0).any(axis=0).astype(np.uint8)
    return zone, lc


def pass_case(repeats: int) -> dict:
    from numcodecs import Zstd

    from benchmarks.hubei30m_case import year_pairs
    from ecodask.kernels.cell_classes import cell_class_counts
    from ecodask.kernels.transitions_esv import transitions_esv

    zone, lc = real_chunk()
    pairs = np.asarray(year_pairs(len(YEARS)))
    lut = np.full(256, 10, np.uint8)  # PLUS codes 1..7 (0 no data), as benchmarks.texture_budget
    lut[:10] = np.arange(10)
    values = np.full((len(YEARS), 256), np.nan)
    values[:, 1:10] = np.arange(1.0, 10.0) * 1000.0
    lut_classes = np.where(lut >= 1, lut - 1, 255).astype(np.uint8)  # classes 0..8 for codes 1..9
    cy = -(-SIDE // FACTOR)

    def fused_with() -> np.ndarray:
        comp = np.zeros((len(YEARS), cy, cy, 11), np.int32)
        transitions_esv(zone, lc, lut, pairs, 1, values, FACTOR, comp)
        return comp

    transitions_esv(zone, lc, lut, pairs, 1, values, FACTOR)  # compiled outside the clock
    fused_with()
    cell_class_counts(zone, lc, lut_classes, 9, FACTOR)
    t_kernel, res = fastest(lambda: transitions_esv(zone, lc, lut, pairs, 1, values, FACTOR), repeats)
    t_fused, fused = fastest(fused_with, repeats)
    t_comp, comp = fastest(lambda: cell_class_counts(zone, lc, lut_classes, 9, FACTOR), repeats)
    same = bool((np.moveaxis(fused[..., 1:10], 3, 1) == comp).all())
    codec = Zstd(level=1)  # the analysis arrays' codec
    coarse, npix = res[3], res[4]
    ana_bytes = sum(len(codec.encode(np.ascontiguousarray(a))) for a in (
        coarse, npix.astype(np.int32), coarse / np.maximum(npix, 1)))  # esv, esv_pixels, esv_density
    return {"positions": int(zone.size), "years": len(YEARS), "kernel_s": t_kernel, "fused_s": t_fused,
            "composition_s": t_comp, "fused_equals_standalone": same,
            "composition_bytes": len(codec.encode(np.ascontiguousarray(comp))),
            "analysis_esv_bytes": ana_bytes, "composition_raw_bytes": int(comp.nbytes)}


def composition(cells: int, seed: int = 0) -> np.ndarray:
    """(9, cells) uint16 pixels per class of 960 m cells (1,024 px), see the module's docstring."""
    rng = np.random.default_rng(seed)
    k, px = 9, FACTOR * FACTOR
    blocks = -(-cells // 64)
    dominant = np.repeat(rng.choice(k, blocks, p=[.3, .25, .05, .1, .01, .08, .12, .05, .04]), 64)[:cells]
    pure = rng.random(cells) < 0.4
    main = np.where(pure, px, rng.integers(px // 3, px, cells))
    second = (dominant + rng.integers(1, k, cells)) % k
    third = (dominant + rng.integers(1, k, cells)) % k
    rest = px - main
    share2 = np.where(rng.random(cells) < 0.5, rest, rng.integers(0, rest + 1))
    out = np.zeros((k, cells), np.uint16)
    idx = np.arange(cells)
    np.add.at(out, (dominant, idx), main.astype(np.uint16))
    np.add.at(out, (second, idx), share2.astype(np.uint16))
    np.add.at(out, (third, idx), (rest - share2).astype(np.uint16))
    return out


def _table():  # noqa: ANN202
    from ecodask.io.catalogs import load_class_scheme, load_esv_table
    from ecodask.science.esv import coefficient_matrix, service_groups
    from ecodask.science.landuse import ClassIndex

    scheme, table = load_class_scheme("clcd"), load_esv_table("xinzhou_2023")
    vc = coefficient_matrix(table, scheme, ClassIndex(scheme), None)
    return vc, service_groups(table)[1], table.service_names


def correlation_case(kind: str, cells: int) -> dict:
    """One case in this process: ``ecodask`` or ``scipy``."""
    from ecodask.science.tradeoffs import cell_densities, cell_tradeoffs

    comp = composition(cells)
    vc, g_of, services = _table()
    base = hwm_mb()
    t0 = time.perf_counter()
    if kind == "ecodask":
        t = cell_tradeoffs(2020, cell_densities(comp, vc, g_of), services)
        rho = t["rho"].to_numpy()
    else:
        from scipy import stats

        x = np.stack(list(cell_densities(comp, vc, g_of)), axis=1)  # (cells, services)
        r = stats.spearmanr(x).statistic
        rho = r[np.triu_indices(len(services), 1)]
    seconds = time.perf_counter() - t0
    return {"kind": kind, "cells": cells, "seconds": seconds, "peak_above_mb": hwm_mb() - base,
            "rho": [float(v) for v in rho]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    ap.add_argument("--cells", type=int, default=NATIONAL_CELLS)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--case", choices=["ecodask", "scipy"], help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.case:
        print(json.dumps(correlation_case(a.case, a.cells)))
        return
    import os

    info = {"machine": machine(("numpy", "numba", "scipy", "numcodecs")), "code": code_state()}
    info["load_before_pass"] = os.getloadavg()[0]
    p = pass_case(a.repeats)
    info["pass"] = p
    rows = []
    for kind in ("ecodask", "scipy"):
        load = os.getloadavg()[0]
        proc = subprocess.run([sys.executable, "-m", "benchmarks.cell_tradeoffs", "--case", kind,
                               "--cells", str(a.cells)], capture_output=True, text=True, cwd=REPO, check=True)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]) | {"load_before": load})
    info["correlation"] = rows
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "cell_tradeoffs.json").write_text(json.dumps(info, indent=2))

    mpos = p["positions"] * p["years"] / 1e6
    print(f"\nThe pass, one 4096² chunk of real texture, {p['years']} years, one thread (fastest of "
          f"{a.repeats}; load before {info['load_before_pass']:.2f}):\n")
    print("| piece | ms | Mpos/s (x years) |\n|---|---:|---:|")
    for name, key in (("fused transition + ESV kernel (4 pairs)", "kernel_s"),
                      ("the same with the class composition, run by run", "fused_s"),
                      ("the class composition alone (year by year path)", "composition_s")):
        print(f"| {name} | {p[key] * 1e3:.0f} | {mpos / p[key]:.0f} |")
    print(f"\ncomposition in the fused loop: +{(p['fused_s'] / p['kernel_s'] - 1) * 100:.1f} %; alone: "
          f"{p['composition_s'] / p['kernel_s'] * 100:.0f} % of the kernel; "
          f"equal: {p['fused_equals_standalone']}")
    print(f"zstd bytes a chunk: composition {p['composition_bytes']:,} (of {p['composition_raw_bytes']:,} "
          f"raw), the analysis ESV arrays {p['analysis_esv_bytes']:,}")
    diff = float(np.nanmax(np.abs(np.subtract(rows[0]["rho"], rows[1]["rho"]))))
    print(f"\nOne year's correlation, {a.cells:,} cells x 11 services (fresh process each):\n")
    print("| case | seconds | peak memory above the composition, MB | load before |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['kind']} | {r['seconds']:.1f} | {r['peak_above_mb']:.0f} | {r['load_before']:.2f} |")
    print(f"\nlargest |rho(ecodask) - rho(scipy)|: {diff:.2e}")


if __name__ == "__main__":
    main()

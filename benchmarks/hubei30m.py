"""The Hubei-30m benchmark: the transitions + ESV stage against the I/O floor and the baselines, on
synthetic land cover (``--data hubei30m``) or on real land cover (``--data wuhan_texture``).

    python -m benchmarks.hubei30m [--data hubei30m] [--repeats 3] [--extents full quarter] [--cases ...]
        [--out bench-output]
    python -m benchmarks.hubei30m --data wuhan_texture [--size 20480] [--repeats 3]

``--data wuhan_texture`` (built by :mod:`benchmarks.wuhan_texture_data`, cached under
``<out>/wuhan_texture/``): the real 30 m land cover of Wuhan, 2003, 2005, 2010 and 2013, tiled and
mirrored to ``--size``² px (20,480² = 419 Mpx a year), its 11 districts mirrored with every tile
(539 zones); one extent (``full``), 4 pairs of years (the 3 consecutive ones, first-to-last), and
the case ``exactextract`` besides the others; the texture of the store (compression ratio, mean
run) is measured and recorded.

Data (built once by :mod:`benchmarks.hubei30m_data`, cached under ``<out>/hubei30m/``): the real
103 county boundaries of Hubei on a 30 m CHINA_ALBERS grid (24,672 x 15,808 px), synthetic land
cover for 2000, 2010 and 2020, ingested into Zarr by the project's ingest; ``quarter`` is a centred
crop of a quarter of that area. Every case runs in a fresh process (Dask's threaded scheduler,
2 workers; peak memory = the process's VmHWM), ``--repeats`` times; figures are medians.

Cases (pairs of years = 2000-2010, 2010-2020, 2000-2020, the pairs the stage computes):

- ``io_floor``: ``sum`` of the store's ``zone`` and ``landcover`` arrays through dask: every chunk
  read and decompressed once, the floor of any pass over the store.
- ``kernel``: ecodask's transition kernel alone (histograms only, no ESV, nothing written).
- ``bincount``: dask ``map_blocks`` of ``np.bincount(zone*K*K + c1*K + c2)`` per block (K = 16),
  summed over blocks.
- ``flox``: ``flox.groupby_reduce(c1, zone, c1, c2, func="count", method="map-reduce")``, numba engine.
- ``xrspatial``: ``xrspatial.zonal.crosstab(zone, c1*K + c2)`` on dask arrays.
- ``stage``: the ``transitions_esv`` stage, ``ecodask.run.stages.transitions_esv.run(cfg, store)``:
  transfer matrices, ESV grid written to the store, tables. As for flox and xarray-spatial, the
  numba kernels are loaded outside the clock on a 64 x 64 corner, and the modules a flow process
  has already imported (distributed, pyarrow) are imported first.
- ``stage_cold`` (diagnostic): the same with nothing warmed: a fresh process's whole cost.
- ``stage_warm`` (diagnostic): the stage's second call in its process (the first, untimed, loads
  the numba kernels and warms the caches): the stage without its start-up costs.
- ``stage_nogrid`` (diagnostic): the same stage with the 30 m ``esv`` grid not written (the ESV
  is still computed per pixel and coarsened to the analysis grid): what writing the grid costs.

``flox`` and ``xrspatial`` run on a chunk-aligned crop of the full extent (``--crop``, default
8192 x 8192 px in the centre) and are compared per pixel. Mpix/s counts pixel positions (y x x)
times the pairs of years computed, per second (for ``io_floor``: positions x 3 pairs, the rate a
pass at the floor would reach). Every case's counts per (pair, zone, class in the first year,
class in the second) are checked against each other: the baselines on the crop against ecodask's
kernel on the same crop; the stage's transitions table and the kernel against the bincount.

- ``exactextract`` (default with ``--data wuhan_texture``): ``exactextract.exact_extract(GeoTIFF of the
  last year, zone polygons, ["unique", "frac", "count"])``: class fractions per zone polygon, the
  zonal statistics a GIS user would run; one year, so its Mpix/s counts pixel positions x 1. Its
  counts weight the pixels a polygon's boundary crosses by their coverage, ecodask's go whole to the
  zone holding the pixel's centre: the check is that, per zone, the sum over classes of the absolute
  differences is at most the zone's boundary length in pixels (each crossed pixel differs by < 1).

Prints Markdown tables for BENCHMARKS.md and writes ``<out>/<data>/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.env import code_state, machine, print_targets

CASES = ("io_floor", "kernel", "bincount", "flox", "xrspatial", "exactextract", "stage", "stage_warm",
         "stage_nogrid", "stage_cold")
DATA = ("hubei30m", "wuhan_texture")
#: The cases run by default, by data: exactextract is the real texture's addition.
DEFAULT_CASES = {"hubei30m": tuple(c for c in CASES if c != "exactextract"), "wuhan_texture": CASES}
# Diagnostic cases may fail when the stage's internals change: reported, not fatal.
DIAGNOSTIC = ("stage_warm", "stage_nogrid", "stage_cold")
CROPPED = ("flox", "xrspatial")
TARGETS = {"stage_mpix_s": 300.0, "vs_floor": 2.0, "vs_flox": 20.0, "vs_xrspatial": 100.0,
           "peak_mb": 3000.0, "peak_growth": 0.10}
#: The targets of the real texture (issue 18, point 4): no xarray-spatial or memory targets there.
TEXTURE_TARGETS = ("stage_mpix_s", "vs_floor", "vs_flox")


#: Versions recorded with the results.
PACKAGES = ("numpy", "numba", "dask", "xarray", "zarr", "numcodecs", "flox", "numpy-groupies",
            "xarray-spatial", "exactextract", "rasterio")


def stage_available() -> str | None:
    """None if ecodask.run.stages.transitions_esv.run can be imported, else why not."""
    proc = subprocess.run([sys.executable, "-c", "from ecodask.run.stages.transitions_esv import run"],
                          capture_output=True, text=True)
    return None if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["import failed"])[-1]


def run_case(case: str, config: Path, crop: list[int] | None, save: Path | None) -> dict | None:
    args = [sys.executable, "-m", "benchmarks.hubei30m_case", case, str(config)]
    if crop:
        args += ["--crop", *map(str, crop)]
    if save:
        args += ["--save", str(save)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode and case in DIAGNOSTIC:
        print(f"diagnostic case {case} skipped: {(proc.stderr.strip().splitlines() or ['failed'])[-1]}")
        return None
    if proc.returncode:
        raise SystemExit(f"benchmark case {case} {config} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def default_crop(config: Path, size: int) -> list[int]:
    """A ``size``² window in the middle of the extent, on chunk boundaries."""
    from ecodask.io.layout import RunFolder
    from ecodask.io.store import open_store
    from ecodask.run.config import load_config

    cfg = load_config(config)
    pix, _ = open_store(RunFolder(cfg.output).store)
    rows, cols, c = pix.sizes["y"], pix.sizes["x"], cfg.grid.chunk_size
    h, w = min(size, rows), min(size, cols)
    r0 = min(max(round((rows - h) / 2 / c) * c, 0), rows - h)
    c0 = min(max(round((cols - w) / 2 / c) * c, 0), cols - w)
    return [r0, c0, h, w]


def identity_checks(saved: dict[tuple[str, str], dict[str, np.ndarray]], known: list[int]) -> list[dict]:
    """Compare every case's counts with the reference on the same pixels; ``known``: the scheme's
    class codes, those the stage tabulates."""
    checks = []
    k = np.asarray(known)
    label = f"known classes {k.min()}-{k.max()}" if len(k) == k.max() - k.min() + 1 else "known classes"

    def add(what: str, a: np.ndarray, b: np.ndarray, known_only: bool = False) -> None:
        if known_only:
            a, b = a[:, :, k][:, :, :, k], b[:, :, k][:, :, :, k]
        same = a.shape == b.shape and bool((a == b).all())
        diff = int(np.abs(a.astype(np.int64) - b).sum()) if a.shape == b.shape else None
        checks.append({"check": what, "identical": same, "pixels_compared": int(b.sum()),
                       "abs_difference": diff})

    for (extent, case), d in sorted(saved.items()):
        ref = saved.get((extent, "bincount"))
        if case in CROPPED:
            add(f"{extent}: {case} vs ecodask kernel on the same crop (all codes)", d["counts"], d["ours"])
        elif case == "exactextract":
            checks.append(exactextract_check(extent, d))
        elif case == "kernel" and ref:
            add(f"{extent}: ecodask kernel vs bincount (all codes)", d["counts"], ref["counts"])
        elif case.startswith("stage") and ref:
            add(f"{extent}: {case} transitions table vs bincount ({label})", d["counts"],
                ref["counts"], known_only=True)
    return checks


def exactextract_check(extent: str, d: dict[str, np.ndarray]) -> dict:
    """exactextract's coverage-weighted class counts per zone against ecodask's kernel's (codes with
    data, 1..15): equal within the pixels each zone's boundary crosses (see the module's docstring)."""
    ee, ours = d["counts"][:, 1:], d["ours"][:, 1:].astype(np.float64)
    per_zone = np.abs(ee - ours).sum(axis=1)
    bound = d["perimeter_px"]
    frac_ee = ee / np.maximum(ee.sum(axis=1, keepdims=True), 1e-9)
    frac_ours = ours / np.maximum(ours.sum(axis=1, keepdims=True), 1)
    return {"check": f"{extent}: exactextract class counts per zone vs ecodask kernel (last year; "
                     "tolerance: the pixels each zone's boundary crosses)",
            "identical": bool((per_zone <= bound).all()), "within_tolerance": True,
            "pixels_compared": int(ours.sum()), "abs_difference": float(np.abs(ee - ours).sum()),
            "abs_difference_share": float(np.abs(ee - ours).sum() / ours.sum()),
            "largest_zone_share_of_bound": float((per_zone / bound).max()),
            "largest_fraction_difference_pp": float(np.abs(frac_ee - frac_ours).max() * 100)}


def summarize(rows: list[dict]) -> None:
    """Ratios: time vs the I/O floor of the same extent (per pixel), stage speed per pixel vs each case."""
    for r in rows:
        floor = next((x for x in rows if x["extent"] == r["extent"] and x["case"] == "io_floor"), None)
        r["vs_io_floor"] = (r["s_per_mpos"] / floor["s_per_mpos"]) if floor else None
        stage = next((x for x in rows if x["extent"] == r["extent"] and x["case"] == "stage"), None)
        r["stage_speedup"] = (stage["mpix_s"] / r["mpix_s"]) if stage else None


def markdown(rows: list[dict], checks: list[dict]) -> str:
    out = ["| extent | case | pixels (y x x) | pairs (exactextract: years) | median s | Mpix/s (x pairs) "
           "| peak memory MB | vs I/O floor (per px) | stage speed-up (per px) | load before |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        vf = f"{r['vs_io_floor']:.2f}x" if r["vs_io_floor"] else "—"
        su = f"{r['stage_speedup']:.1f}x" if r["stage_speedup"] else "—"
        where = f"{r['extent']}{' (crop)' if r['crop'] else ''}"
        out.append(f"| {where} | {r['case']} | {r['positions'] / 1e6:.1f} M | {r['pairs']} | "
                   f"{r['seconds']:.2f} | {r['mpix_s']:.1f} | {r['peak_rss_mb']:.0f} | {vf} | {su} | "
                   f"{', '.join(f'{v:.2f}' for v in r.get('load_before', []))} |")
    out += ["", "| identity check | identical | pixels compared | sum of abs. differences |",
            "|---|---|---|---|"]
    for c in checks:
        same = ("within" if c.get("within_tolerance") else "yes") if c["identical"] else "NO"
        diff = c["abs_difference"]
        if c.get("within_tolerance"):
            diff = (f"{diff:,.0f} ({c['abs_difference_share']:.3%}; largest zone "
                    f"{c['largest_zone_share_of_bound']:.0%} of its bound; largest class-fraction difference "
                    f"{c['largest_fraction_difference_pp']:.2f} pp)")
        out.append(f"| {c['check']} | {same} | {c['pixels_compared']:,} | {diff} |")
    return "\n".join(out)


def targets(rows: list[dict], checks: list[dict], names: tuple[str, ...] = tuple(TARGETS)) -> list[dict]:
    def row(extent: str, case: str) -> dict | None:
        return next((x for x in rows if x["extent"] == extent and x["case"] == case), None)

    st, stq = row("full", "stage"), row("quarter", "stage")
    out = []
    if st:
        out.append({"target": f">= {TARGETS['stage_mpix_s']:.0f} Mpix/s per pair of years",
                    "value": f"{st['mpix_s']:.0f} Mpix/s", "met": st["mpix_s"] >= TARGETS["stage_mpix_s"]})
        out.append({"target": f"within {TARGETS['vs_floor']:.0f}x the I/O floor",
                    "value": f"{st['vs_io_floor']:.2f}x", "met": st["vs_io_floor"] <= TARGETS["vs_floor"]})
        for case, key in (("flox", "vs_flox"), ("xrspatial", "vs_xrspatial")):
            b = row("full", case)
            if b and key in names:
                out.append({"target": f">= {TARGETS[key]:.0f}x {case} per pixel",
                            "value": f"{b['stage_speedup']:.1f}x", "met": b["stage_speedup"] >= TARGETS[key]})
        if "peak_mb" in names:
            out.append({"target": f"peak memory <= {TARGETS['peak_mb']:.0f} MB (full extent)",
                        "value": f"{st['peak_rss_mb']:.0f} MB",
                        "met": st["peak_rss_mb"] <= TARGETS["peak_mb"]})
        if stq and "peak_growth" in names:
            for how, q, f in (("median", stq["peak_rss_mb"], st["peak_rss_mb"]),
                              ("largest", max(stq["all_peak_rss_mb"]), max(st["all_peak_rss_mb"]))):
                g = f / q - 1
                out.append({"target": f"peak memory at 4x the extent <= +{TARGETS['peak_growth']:.0%} "
                                      f"({how} of the runs)",
                            "value": f"{q:.0f} -> {f:.0f} MB ({g:+.1%})", "met": g <= TARGETS["peak_growth"]})
    if checks:
        out.append({"target": "every result identical to the baselines' (exactextract: within its tolerance)",
                    "value": f"{sum(c['identical'] for c in checks)}/{len(checks)} checks passed",
                    "met": all(c["identical"] for c in checks)})
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", choices=DATA, default="hubei30m",
                    help="synthetic land cover on Hubei's counties, or the real Wuhan land cover tiled")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--extents", nargs="+", choices=["full", "quarter"],
                    help="default: full quarter (hubei30m), full (wuhan_texture: its only extent)")
    ap.add_argument("--cases", nargs="+", choices=CASES, help="default: every case but exactextract "
                    "(hubei30m), every case (wuhan_texture)")
    ap.add_argument("--crop", type=int, nargs=4, metavar=("ROW", "COL", "HEIGHT", "WIDTH"),
                    help="window of the full extent for flox and xrspatial (default: 8192² in the centre)")
    ap.add_argument("--crop-size", type=int, default=8192)
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tile", type=int, default=4096, help="hubei30m: the generator's tile side, px")
    ap.add_argument("--size", type=int, default=20480, help="wuhan_texture: the mosaic's side, px")
    a = ap.parse_args(argv)
    a.cases = a.cases or list(DEFAULT_CASES[a.data])
    texture_stats = None
    if a.data == "hubei30m":
        from benchmarks.hubei30m_data import build

        configs = build(a.out, a.seed, a.tile)
        a.extents = a.extents or ["full", "quarter"]
    else:
        from benchmarks.wuhan_texture_data import build as build_texture
        from benchmarks.wuhan_texture_data import texture

        configs = build_texture(a.out, a.size)
        if set(a.extents or ["full"]) - set(configs):
            raise SystemExit("error: --data wuhan_texture has one extent, full")
        a.extents = ["full"]
    root = a.out / a.data
    args = argv if argv is not None else sys.argv[1:]
    info = {"command": " ".join(["python -m benchmarks.hubei30m", *args]), "data": a.data,
            "machine": machine(PACKAGES), "code": code_state(), "repeats": a.repeats,
            "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    if a.data == "wuhan_texture":
        texture_stats = texture(configs["full"])
        info["texture"] = texture_stats
        print("texture: " + ", ".join(f"{k} {v:.3f}" for k, v in texture_stats.items() if v is not None),
              flush=True)
    missing = stage_available() if any(c.startswith("stage") for c in a.cases) else None
    if missing:
        print(f"stage case skipped: ecodask.run.stages.transitions_esv.run is not available ({missing})",
              flush=True)
        info["stage_missing"] = missing
    crop = a.crop or default_crop(configs["full"], a.crop_size)
    info["crop"] = crop
    rows, saved = [], {}
    for extent in a.extents:
        for case in a.cases:
            if (case.startswith("stage") and missing) or (
                    case in (*CROPPED, "exactextract") and extent != "full"):
                continue
            c = crop if case in CROPPED else None
            save = root / "counts" / f"{extent}-{case}.npz" if case != "io_floor" else None
            runs = []
            for r in range(a.repeats):
                load = os.getloadavg()[0]
                runs.append(run_case(case, configs[extent], c, save if r == 0 else None))
                if runs[-1] is not None:
                    runs[-1]["load_before"] = load
            if any(r is None for r in runs):
                continue
            if save:
                saved[extent, case] = dict(np.load(save))
            sec = statistics.median(r["seconds"] for r in runs)
            peak = statistics.median(r["peak_rss_mb"] for r in runs)
            pos, pairs = runs[0]["positions"], runs[0]["pairs"]
            rate = pos * pairs / sec / 1e6
            rows.append({"extent": extent, "case": case, "crop": c, "positions": pos, "pairs": pairs,
                         "load_before": [r["load_before"] for r in runs],
                         "seconds": sec, "all_seconds": [r["seconds"] for r in runs], "peak_rss_mb": peak,
                         "all_peak_rss_mb": [r["peak_rss_mb"] for r in runs], "mpix_s": rate,
                         "s_per_mpos": sec / (pos / 1e6)})
            each = ", ".join(f"{r['seconds']:.2f}" for r in runs)
            print(f"{extent:8s} {case:10s} {sec:8.2f} s  {rate:8.1f} Mpix/s  {peak:6.0f} MB  (runs: {each})",
                  flush=True)
    summarize(rows)
    if code_state() != info["code"]:
        info["code_at_end"] = code_state()
        print(f"WARNING: the code changed during the run: {info['code']} -> {info['code_at_end']}")
    from ecodask.io.catalogs import load_class_scheme
    from ecodask.run.config import load_config

    scheme = load_class_scheme(load_config(configs["full"]).landcover.scheme)
    checks = identity_checks(saved, sorted(int(c) for c in scheme.classes))
    tg = targets(rows, checks, TEXTURE_TARGETS if a.data == "wuhan_texture" else tuple(TARGETS))
    info.update(rows=rows, checks=checks, targets=tg)
    (root / "results.json").write_text(json.dumps(info, indent=2, default=str))
    m = info["machine"]
    code = info["code"]
    print(f"\nCode: commit {code['commit']}" + (f", modified: {', '.join(code['modified'])}"
                                               if code["modified"] else ", clean"))
    print(f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB; Python {m['python']}; "
          f"load average at start {', '.join(f'{v:.2f}' for v in m['load_avg_at_start'])}")
    r0, c0, h, w = crop
    print(f"Crop for flox/xrspatial: rows {r0}..{r0 + h}, cols {c0}..{c0 + w}\n")
    if texture_stats:
        t = texture_stats
        print(f"Texture of the store: land cover {t['landcover_raw_mb']:.0f} MB raw, "
              f"{t['landcover_stored_mb']:.1f} MB stored ({t['compression_ratio']:.1f}:1); mean run "
              f"{t['mean_run_px']:.1f} px ({t['mean_run_px_in_zones']:.1f} px in zones); no data "
              f"{t['nodata_share']:.1%} of the extent ({t['nodata_share_in_zones']:.1%} in zones); zones "
              f"cover {t['zone_share']:.1%}\n")
    print(markdown(rows, checks))
    print_targets(tg)
    print(f"\nresults: {root / 'results.json'}")


if __name__ == "__main__":
    main()

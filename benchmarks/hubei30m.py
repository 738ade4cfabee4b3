"""The Hubei-30m benchmark: the transitions + ESV stage against the I/O floor and three baselines.

    python -m benchmarks.hubei30m [--repeats 3] [--extents full quarter] [--cases ...] [--out bench-output]

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

Prints Markdown tables for BENCHMARKS.md and writes ``<out>/hubei30m/results.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.env import code_state, machine, print_targets

CASES = ("io_floor", "kernel", "bincount", "flox", "xrspatial", "stage", "stage_warm", "stage_nogrid",
         "stage_cold")
# Diagnostic cases may fail when the stage's internals change: reported, not fatal.
DIAGNOSTIC = ("stage_warm", "stage_nogrid", "stage_cold")
CROPPED = ("flox", "xrspatial")
TARGETS = {"stage_mpix_s": 300.0, "vs_floor": 2.0, "vs_flox": 20.0, "vs_xrspatial": 100.0,
           "peak_mb": 3000.0, "peak_growth": 0.10}


#: Versions recorded with the results.
PACKAGES = ("numpy", "numba", "dask", "xarray", "zarr", "numcodecs", "flox", "numpy-groupies",
            "xarray-spatial")


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


def _known(c: np.ndarray) -> np.ndarray:
    """Counts of the scheme's known CLCD codes (1..9) in both years: what the stage tabulates."""
    return c[:, :, 1:10, 1:10]


def identity_checks(saved: dict[tuple[str, str], dict[str, np.ndarray]]) -> list[dict]:
    """Compare every case's counts with the reference on the same pixels."""
    checks = []

    def add(what: str, a: np.ndarray, b: np.ndarray, known_only: bool = False) -> None:
        if known_only:
            a, b = _known(a), _known(b)
        same = a.shape == b.shape and bool((a == b).all())
        diff = int(np.abs(a.astype(np.int64) - b).sum()) if a.shape == b.shape else None
        checks.append({"check": what, "identical": same, "pixels_compared": int(b.sum()),
                       "abs_difference": diff})

    for (extent, case), d in sorted(saved.items()):
        ref = saved.get((extent, "bincount"))
        if case in CROPPED:
            add(f"{extent}: {case} vs ecodask kernel on the same crop (all codes)", d["counts"], d["ours"])
        elif case == "kernel" and ref:
            add(f"{extent}: ecodask kernel vs bincount (all codes)", d["counts"], ref["counts"])
        elif case.startswith("stage") and ref:
            add(f"{extent}: {case} transitions table vs bincount (known classes 1-9)", d["counts"],
                ref["counts"], known_only=True)
    return checks


def summarize(rows: list[dict]) -> None:
    """Ratios: time vs the I/O floor of the same extent (per pixel), stage speed per pixel vs each case."""
    for r in rows:
        floor = next((x for x in rows if x["extent"] == r["extent"] and x["case"] == "io_floor"), None)
        r["vs_io_floor"] = (r["s_per_mpos"] / floor["s_per_mpos"]) if floor else None
        stage = next((x for x in rows if x["extent"] == r["extent"] and x["case"] == "stage"), None)
        r["stage_speedup"] = (stage["mpix_s"] / r["mpix_s"]) if stage else None


def markdown(rows: list[dict], checks: list[dict]) -> str:
    out = ["| extent | case | pixels (y x x) | pairs | median s | Mpix/s (x pairs) | peak memory MB "
           "| vs I/O floor (per px) | stage speed-up (per px) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        vf = f"{r['vs_io_floor']:.2f}x" if r["vs_io_floor"] else "—"
        su = f"{r['stage_speedup']:.1f}x" if r["stage_speedup"] else "—"
        where = f"{r['extent']}{' (crop)' if r['crop'] else ''}"
        out.append(f"| {where} | {r['case']} | {r['positions'] / 1e6:.1f} M | {r['pairs']} | "
                   f"{r['seconds']:.2f} | {r['mpix_s']:.1f} | {r['peak_rss_mb']:.0f} | {vf} | {su} |")
    out += ["", "| identity check | identical | pixels compared | sum of abs. differences |",
            "|---|---|---|---|"]
    for c in checks:
        out.append(f"| {c['check']} | {'yes' if c['identical'] else 'NO'} | {c['pixels_compared']:,} | "
                   f"{c['abs_difference']} |")
    return "\n".join(out)


def targets(rows: list[dict], checks: list[dict]) -> list[dict]:
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
            if b:
                out.append({"target": f">= {TARGETS[key]:.0f}x {case} per pixel",
                            "value": f"{b['stage_speedup']:.1f}x", "met": b["stage_speedup"] >= TARGETS[key]})
        out.append({"target": f"peak memory <= {TARGETS['peak_mb']:.0f} MB (full extent)",
                    "value": f"{st['peak_rss_mb']:.0f} MB", "met": st["peak_rss_mb"] <= TARGETS["peak_mb"]})
        if stq:
            for how, q, f in (("median", stq["peak_rss_mb"], st["peak_rss_mb"]),
                              ("largest", max(stq["all_peak_rss_mb"]), max(st["all_peak_rss_mb"]))):
                g = f / q - 1
                out.append({"target": f"peak memory at 4x the extent <= +{TARGETS['peak_growth']:.0%} "
                                      f"({how} of the runs)",
                            "value": f"{q:.0f} -> {f:.0f} MB ({g:+.1%})", "met": g <= TARGETS["peak_growth"]})
    if checks:
        out.append({"target": "every result identical to the baselines'",
                    "value": f"{sum(c['identical'] for c in checks)}/{len(checks)} checks identical",
                    "met": all(c["identical"] for c in checks)})
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--extents", nargs="+", choices=["full", "quarter"], default=["full", "quarter"])
    ap.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    ap.add_argument("--crop", type=int, nargs=4, metavar=("ROW", "COL", "HEIGHT", "WIDTH"),
                    help="window of the full extent for flox and xrspatial (default: 8192² in the centre)")
    ap.add_argument("--crop-size", type=int, default=8192)
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tile", type=int, default=4096)
    a = ap.parse_args(argv)

    from benchmarks.hubei30m_data import build

    configs = build(a.out, a.seed, a.tile)
    root = a.out / "hubei30m"
    args = argv if argv is not None else sys.argv[1:]
    info = {"command": " ".join(["python -m benchmarks.hubei30m", *args]),
            "machine": machine(PACKAGES), "code": code_state(), "repeats": a.repeats,
            "started": time.strftime("%Y-%m-%d %H:%M:%S")}
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
            if (case.startswith("stage") and missing) or (case in CROPPED and extent != "full"):
                continue
            c = crop if case in CROPPED else None
            save = root / "counts" / f"{extent}-{case}.npz" if case != "io_floor" else None
            runs = [run_case(case, configs[extent], c, save if r == 0 else None) for r in range(a.repeats)]
            if any(r is None for r in runs):
                continue
            if save:
                saved[extent, case] = dict(np.load(save))
            sec = statistics.median(r["seconds"] for r in runs)
            peak = statistics.median(r["peak_rss_mb"] for r in runs)
            pos, pairs = runs[0]["positions"], runs[0]["pairs"]
            rate = pos * pairs / sec / 1e6
            rows.append({"extent": extent, "case": case, "crop": c, "positions": pos, "pairs": pairs,
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
    checks = identity_checks(saved)
    tg = targets(rows, checks)
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
    print(markdown(rows, checks))
    print_targets(tg)
    print(f"\nresults: {root / 'results.json'}")


if __name__ == "__main__":
    main()

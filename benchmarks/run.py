"""The benchmarks behind BENCHMARKS.md (``make bench``), by suite:

    python -m benchmarks.run [--suite hubei30m] [ARGS]      the Hubei-30m transitions + ESV benchmark
                                                          (default; see benchmarks/hubei30m.py)
    python -m benchmarks.run --suite foundation [--width-km 150 --height-km 120] [--repeats 3]
        [--out bench-output]
    python -m benchmarks.run --suite drivers [--rows 10000000] [--repeats 3] [ARGS]
                                                          the driver analysis: Geographical Detector,
                                                          stepwise regression, hot spots against
                                                          PyPI geodetector, statsmodels, esda
                                                          (see benchmarks/drivers.py)
    python -m benchmarks.run --suite figures [--size 16384] [--repeats 3] [ARGS]
                                                          the land-use overview (block_mode) against
                                                          GDAL's mode resampling, NumPy and a strided
                                                          sample, and the figures stage
                                                          (see benchmarks/figures.py)

    python -m benchmarks.run --suite terrain [--repeats 3] [--cases ...]
                                                          slope + aspect of the real Wuhan DEM:
                                                          ecodask against xarray-spatial and NumPy
                                                          (see benchmarks/terrain.py)

    python -m benchmarks.run --suite transaction [--files 20000] [--size-kib 256]
                                                          what the output transaction costs: chunk
                                                          checksums, a rerun's read-back, the work
                                                          copy and its publication
                                                          (see benchmarks/transaction.py)
    python -m benchmarks.run --suite stage_commit [--size 1024] [--chunk 256] [--kill 0]
                                                          a stage's arrays committed by Icechunk or
                                                          by a manifest written last, on disk and
                                                          on a local S3 server (moto), and killed
                                                          mid-commit (see benchmarks/stage_commit.py;
                                                          needs the bench group: icechunk)
    python -m benchmarks.run --suite remote_inputs [--size 8192] [--chunks 1024 2048 4096]
                                                          input rasters read in place from a local
                                                          S3 server (moto) window by window, as a
                                                          GeoTIFF and a COG, against local disk
                                                          (see benchmarks/remote_inputs.py)
    python -m benchmarks.run --suite remote_run [--km 30.72] [--chunks 256 512] [--years 3]
                                                          a whole run with inputs and output in a
                                                          local S3 server (moto): requests and bytes
                                                          per stage, by chunk size
                                                          (see benchmarks/remote_run.py)
    python -m benchmarks.run --suite driver_windows [--km 61.44] [--chunk 256]
                                                          the drivers read onto the analysis grid
                                                          window by window: bytes and seconds,
                                                          then ingest (see benchmarks/driver_windows.py)
    python -m benchmarks.run --suite zone_burn [--zones 40000 2800] [--chunks 8]
                                                          the zones burned chunk by chunk as ingest
                                                          burns them: seconds per chunk
                                                          (see benchmarks/zone_burn.py)
    python -m benchmarks.run --suite texture [--repeats 3] [--size 20480]
                                                          the Hubei-30m cases (and exactextract) on
                                                          real land cover: Wuhan's tiled to 419 Mpx
                                                          (benchmarks/hubei30m.py --data wuhan_texture)
    python -m benchmarks.run --suite texture_budget [--repeats 3]
                                                          per-chunk decode / kernel / encode times on
                                                          real and synthetic texture
                                                          (see benchmarks/texture_budget.py)
    python -m benchmarks.run --suite tables [--zones 3000 40000] [--years 2]
                                                          a run's per-zone tables written by pandas
                                                          and through Arrow (see benchmarks/tables.py)
    python -m benchmarks.run --suite driver_years [--years 20] [--repeats 2]
                                                          the driver analysis' CPU: the flow's process
                                                          against the workers (benchmarks/driver_years.py)
    python -m benchmarks.run --suite figures_workers CONFIG [CONFIG ...] [--probe gc]
                                                          the figures stage's Dask workers task by
                                                          task on finished runs (peak and RSS per
                                                          year, glibc's heap, the profiler's trees)
                                                          (see benchmarks/figures_workers.py)
    python -m benchmarks.run --suite uncertainty [--zones 2800] [--years 39] [--draws 1000 10000]
        [--parts-zones 40]                                the Monte Carlo of ESV per zone, service
                                                          and year against numpy on the same draws,
                                                          and where the kernel's time goes
                                                          (see benchmarks/uncertainty.py)
    python -m benchmarks.run --suite cell_tradeoffs [--cells 10485760] [--repeats 3]
                                                          the class composition in the land pass on
                                                          real texture, and one year's correlation
                                                          of services across the national grid's
                                                          cells against scipy
                                                          (see benchmarks/cell_tradeoffs.py)
    python -m benchmarks.run --suite scale_effect [--side 3240] [--sizes 2 4 8 16] [--repeats 3]
                                                          the scale effect of the Geographical
                                                          Detector on a national-size analysis
                                                          grid: the coarsening, weighted by valued
                                                          pixels against unweighted, the ESV density
                                                          against the numpy code before, and one
                                                          year's scale rows
                                                          (see benchmarks/scale_effect.py)
    python -m benchmarks.run --suite flow_idle [--seconds 30] [--workers 2]
                                                          the flow process's CPU while its local
                                                          cluster idles, Dask's periods and the run's
                                                          (see benchmarks/flow_idle.py)
    python -m benchmarks.run --suite manifest_size [--chunks-a-year 638] [--years 39]
                                                          a stage manifest at national chunk counts:
                                                          its size, writing and reading it
                                                          (see benchmarks/manifest_size.py)
    python -m benchmarks.run --suite stage_tables [--zones 2000 10000] [--years 39]
                                                          the transitions + ESV stage's tables built
                                                          and written: peak memory and time
                                                          (see benchmarks/stage_tables.py)
    python -m benchmarks.run --suite zones [--size 10240] [--zones 3000 40000]
                                                          the land pass and its tables for thousands
                                                          of zones against a bare bincount
                                                          (see benchmarks/zones.py)

The foundation suite: ingest (GeoTIFF -> Zarr) and the class-area pass, against the I/O floor,
for three chunk sizes. Each case runs in a fresh process so its peak memory (max RSS) is its own.
Prints a Markdown table (medians over repeats) for BENCHMARKS.md and writes results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path


def _case(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.case", *args], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"benchmark case {args} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def foundation(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width-km", type=float, default=150.0)
    ap.add_argument("--height-km", type=float, default=120.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunks", type=int, nargs="+", default=[2048, 4096, 8192])
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    a = ap.parse_args(argv)

    from ecodask.synth import make_region

    region = a.out / f"region-{a.width_km:g}x{a.height_km:g}km"
    config = region / "config.yaml"
    if not config.exists():
        make_region(region, seed=0, width_km=a.width_km, height_km=a.height_km, n_counties=20)
    rows = []
    for chunk in a.chunks:
        for stage in ("ingest", "io_floor", "class_areas"):
            runs = [_case([stage, str(config), str(chunk)]) for _ in range(a.repeats)]
            med = {k: statistics.median(r[k] for r in runs) for k in ("seconds", "peak_rss_mb")}
            mpix = runs[0]["pixels"] / 1e6
            rows.append({"chunk": chunk, "stage": stage, "pixels": runs[0]["pixels"],
                         "seconds": med["seconds"], "mpix_per_s": mpix / med["seconds"],
                         "peak_rss_mb": med["peak_rss_mb"], "all_seconds": [r["seconds"] for r in runs]})
            print(f"chunk {chunk:5d} {stage:12s} {med['seconds']:7.2f} s  "
                  f"{mpix / med['seconds']:8.1f} Mpix/s  {med['peak_rss_mb']:7.0f} MB", flush=True)
    info = {"machine": f"{os.cpu_count()} cores, {platform.machine()}, "
            f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
            "python": platform.python_version(), "region": str(region), "rows": rows}
    (a.out / "results.json").write_text(json.dumps(info, indent=2))
    print("\n| chunk | stage | pixels | median s | Mpix/s | peak RSS MB | vs I/O floor |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        floor = next(x for x in rows if x["chunk"] == r["chunk"] and x["stage"] == "io_floor")
        print(f"| {r['chunk']} | {r['stage']} | {r['pixels'] / 1e6:.1f} M | {r['seconds']:.2f} | "
              f"{r['mpix_per_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['seconds'] / floor['seconds']:.2f}x |")


def main(argv: list[str] | None = None) -> None:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--suite", default="hubei30m",
                     choices=["hubei30m", "foundation", "drivers", "figures", "transaction", "terrain",
                              "stage_commit", "tables", "zones", "texture", "texture_budget", "driver_years",
                              "figures_workers", "remote_inputs", "remote_run", "uncertainty",
                              "cell_tradeoffs", "flow_idle", "manifest_size", "driver_windows",
                              "zone_burn", "stage_tables", "scale_effect"])
    ns, rest = pre.parse_known_args(argv)
    if ns.suite == "foundation":
        foundation(rest)
    elif ns.suite == "drivers":
        from benchmarks.drivers import main as drivers

        drivers(rest)
    elif ns.suite == "figures":
        from benchmarks.figures import main as figures

        figures(rest)
    elif ns.suite == "zones":
        from benchmarks.zones import main as zones

        zones(rest)
    elif ns.suite == "stage_tables":
        from benchmarks.stage_tables import main as stage_tables

        stage_tables(rest)
    elif ns.suite == "tables":
        from benchmarks.tables import main as tables

        tables(rest)
    elif ns.suite == "texture":
        from benchmarks.hubei30m import main as hubei30m

        hubei30m(["--data", "wuhan_texture", *rest])
    elif ns.suite == "texture_budget":
        from benchmarks.texture_budget import main as texture_budget

        texture_budget(rest)
    elif ns.suite == "terrain":
        from benchmarks.terrain import main as terrain

        terrain(rest)
    elif ns.suite == "driver_years":
        from benchmarks.driver_years import main as driver_years

        driver_years(rest)
    elif ns.suite == "figures_workers":
        from benchmarks.figures_workers import main as figures_workers

        figures_workers(rest)
    elif ns.suite == "stage_commit":
        from benchmarks.stage_commit import main as stage_commit

        stage_commit(rest)
    elif ns.suite == "remote_inputs":
        from benchmarks.remote_inputs import main as remote_inputs

        remote_inputs(rest)
    elif ns.suite == "remote_run":
        from benchmarks.remote_run import main as remote_run

        remote_run(rest)
    elif ns.suite == "driver_windows":
        from benchmarks.driver_windows import main as driver_windows

        driver_windows(rest)
    elif ns.suite == "zone_burn":
        from benchmarks.zone_burn import main as zone_burn

        zone_burn(rest)
    elif ns.suite == "manifest_size":
        from benchmarks.manifest_size import main as manifest_size

        manifest_size(rest)
    elif ns.suite == "flow_idle":
        from benchmarks.flow_idle import main as flow_idle

        flow_idle(rest)
    elif ns.suite == "uncertainty":
        from benchmarks.uncertainty import main as uncertainty

        uncertainty(rest)
    elif ns.suite == "cell_tradeoffs":
        from benchmarks.cell_tradeoffs import main as cell_tradeoffs

        cell_tradeoffs(rest)
    elif ns.suite == "scale_effect":
        from benchmarks.scale_effect import main as scale_effect

        scale_effect(rest)
    elif ns.suite == "transaction":
        from benchmarks.transaction import main as transaction

        transaction(rest)
    else:
        from benchmarks.hubei30m import main as hubei30m

        hubei30m(rest)


if __name__ == "__main__":
    main()

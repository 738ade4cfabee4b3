"""Input rasters read in place from a bucket (issue 19, "What it costs"): what ingest's window reads
ask of an S3 server, against the same reads from local disk.

    python -m benchmarks.run --suite remote_inputs [--size 12288] [--width PX] [--years 2]
        [--chunks 1024 2048 4096] [--blocks 64 256 1024] [--formats gtiff256 cog512] [--no-gdal]
        [--workers 2] [--repeats 1] [--out bench-output]

The data: real Wuhan 30 m land cover tiled and mirrored (:mod:`benchmarks.wuhan_texture_data`), cut to
``--size`` x ``--width`` px (a square by default; a wide strip has the long tile rows of a
country-wide grid in few pixels), one file a year (the first ``--years`` of 2003, 2005, 2010, 2013)
in two layouts:

- ``gtiff256``: a GeoTIFF tiled 256², deflate, as the real-texture benchmark and the Hubei-30m inputs;
- ``cog512``: a cloud-optimized GeoTIFF (GDAL's COG driver) of 512² tiles, deflate, with its overviews.

Built once under ``<out>/remote-inputs/data-<height>x<width>/`` and copied to a local moto S3
server that counts the requests it answers by kind and the bytes it sends in answers to GETs
(:func:`benchmarks.stage_commit.s3_server`). Each pass reads every chunk window of the grid of every
year as ingest reads it, ``WarpedRaster(path, grid, uint8, 0)[window]`` (the grid is the files' own:
a plain windowed read), one Dask task per chunk-year on a LocalCluster of ``--workers`` processes x 1
thread, for each chunk size; from local disk (the page cache: the files were just written or read)
and from the server through :func:`ecodask.io.objstore.rasterio_options` with its read-ahead
:data:`~ecodask.io.objstore.READ_BLOCK` set on the workers to each of ``--blocks`` KiB. Every window's
pixels are hashed in its task and must equal the hash of the same window of the whole file read at
once in this process (asserted, local and remote). The same reads also go through GDAL's own S3
client (``/vsis3/``, its cache of ranges emptied before each pass), for comparison. Also the
streamed checksum of each object (:func:`ecodask.io.objstore.checksum`) against the local file's.

``--latency-ms`` delays every answer of the server (real S3 answers in 10-50 ms; moto on localhost in
about one): the wall seconds then include the latency as a store far from the reader imposes it.

Measured per pass: wall seconds, the workers' CPU seconds (and the server's), requests by kind,
requests per chunk-year (and those naming another bucket than the benchmark's), bytes sent by the
server against the bytes of the files' full-resolution tiles (what the reads need). Prints Markdown
tables and writes ``remote-inputs-<height>x<width>-<latency>ms.json``. Without ``--latency-ms`` the
server answers in about a millisecond; real S3 answers a ranged GET in 10-50 ms, so the request
counts are the figure to carry over.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import math
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.env import code_state, machine
from benchmarks.stage_commit import BUCKET, s3_counts, s3_server

FORMATS = ("gtiff256", "cog512")
KINDS = ("GET", "HEAD", "LIST")
#: A request's latency on real S3 for the projection, seconds (first byte of a ranged GET: 10-50 ms).
S3_LATENCY_S = 0.030
DATA_VERSION = 1  # bump when the data would change


# --- the data --------------------------------------------------------------------------------------

def mosaic_grid(height: int, width: int) -> Any:
    """The real-texture mosaic's grid (:func:`benchmarks.wuhan_texture_data.mosaic_grid`), ``height``
    x ``width`` px: 30 m, the synthetic Albers, its centre near the origin."""
    from pyproj import CRS

    from benchmarks.wuhan_texture_data import ANALYSIS_FACTOR, CHUNK, RESOLUTION, TEXTURE_ALBERS
    from ecodask.science.grid import Grid

    cell = RESOLUTION * ANALYSIS_FACTOR
    rows, cols = height // ANALYSIS_FACTOR, width // ANALYSIS_FACTOR
    x0, y1 = -(cols // 2) * cell, (rows - rows // 2) * cell
    return Grid(CRS.from_user_input(TEXTURE_ALBERS), RESOLUTION, ANALYSIS_FACTOR,
                (x0, y1 - rows * cell, x0 + cols * cell, y1), CHUNK)


def build(out: Path, height: int, width: int, years: int) -> tuple[Any, dict[str, dict[int, Path]]]:
    """The grid and the files by format and year (built once, cached under ``out``)."""
    import rasterio
    import rasterio.shutil
    from rasterio.windows import Window

    from benchmarks.wuhan_texture_data import YEARS, read_sources, tile_of

    grid = mosaic_grid(height, width)
    chosen = YEARS[:years]
    root = out / "remote-inputs" / f"data-{height}x{width}"
    files = {f: {y: root / f / f"landcover_{y}.tif" for y in chosen} for f in FORMATS}
    stamp = root / "built.json"
    params = {"version": DATA_VERSION, "height": height, "width": width, "years": list(chosen)}
    if stamp.exists() and json.loads(stamp.read_text()) == params and all(
            p.is_file() for f in files.values() for p in f.values()):
        return grid, files
    stamp.unlink(missing_ok=True)
    t0 = time.perf_counter()
    codes, _, _ = read_sources()
    tile = codes[chosen[0]].shape[0]
    ny, nx = math.ceil(height / tile), math.ceil(width / tile)
    profile = {"driver": "GTiff", "height": height, "width": width, "count": 1, "dtype": "uint8",
               "crs": grid.crs, "transform": grid.transform, "nodata": 0, "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate", "BIGTIFF": "IF_SAFER",
               "NUM_THREADS": "2"}  # as benchmarks.wuhan_texture_data.write_landcover
    for f in FORMATS:
        (root / f).mkdir(parents=True, exist_ok=True)
    for y in chosen:
        path = files["gtiff256"][y]
        with rasterio.open(path, "w", **profile) as dst:
            for i in range(ny):
                band = np.concatenate([tile_of(codes[y], i, j) for j in range(nx)], axis=1)[:, :width]
                h = min(tile, height - i * tile)
                dst.write(band[:h], 1, window=Window(0, i * tile, width, h))
        rasterio.shutil.copy(path, files["cog512"][y], driver="COG", BLOCKSIZE=512, COMPRESS="DEFLATE",
                             OVERVIEW_RESAMPLING="NEAREST", NUM_THREADS=2)
    stamp.write_text(json.dumps(params))
    print(f"data: {len(chosen)} years x {len(FORMATS)} formats, {height} x {width} px, built in "
          f"{time.perf_counter() - t0:.0f} s under {root}", flush=True)
    return grid, files


def tile_bytes(path: Path) -> int:
    """Bytes of the full-resolution tiles of band 1 (a COG's overviews not counted)."""
    import rasterio

    with rasterio.open(path) as src:
        bw, bh = src.block_shapes[0]
        return sum(int(src.get_tag_item(f"BLOCK_SIZE_{i}_{j}", "TIFF", bidx=1))
                   for i in range(-(-src.width // bw)) for j in range(-(-src.height // bh)))


def windows(shape: tuple[int, int], chunk: int) -> list[tuple[int, int, int, int]]:
    """(r0, r1, c0, c1) of every chunk window of a grid of ``shape`` px, row by row."""
    rows, cols = ([(a, min(a + chunk, n)) for a in range(0, n, chunk)] for n in shape)
    return [(r0, r1, c0, c1) for r0, r1 in rows for c0, c1 in cols]


def digest(a: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(a).tobytes(), digest_size=16).hexdigest()


def reference(path: Path, wins: list[tuple[int, int, int, int]]) -> list[str]:
    """The hash of every window of the file read whole, in this process."""
    import rasterio

    with rasterio.open(path) as src:
        a = src.read(1)
    return [digest(a[r0:r1, c0:c1]) for r0, r1, c0, c1 in wins]


# --- on the workers ---------------------------------------------------------------------------------

def read_window(path: str, grid: Any, win: tuple[int, int, int, int]) -> tuple[str, int, float]:
    """One chunk-year as ingest reads it: the hash of its pixels, its pixels with data and the task's
    seconds."""
    from ecodask.io.rasters import WarpedRaster

    t0 = time.perf_counter()
    r0, r1, c0, c1 = win
    a = WarpedRaster(path, grid, np.dtype(np.uint8), 0)[r0:r1, c0:c1]
    return digest(a), int(np.count_nonzero(a)), time.perf_counter() - t0


def fsspec_reader() -> None:
    """Read ``s3://`` objects in this process through ecodask's fsspec opener, not GDAL's
    ``/vsis3/`` (which ecodask uses for S3 since these figures; the ``vsis3`` passes name GDAL
    paths themselves): what the ``s3`` passes and the ``READ_BLOCK`` sweep measure."""
    from ecodask.io import objstore

    objstore.GDAL_PREFIXES = {}


def set_read_block(n: int) -> int:
    """Set :data:`ecodask.io.objstore.READ_BLOCK` in this process; returns the previous value."""
    from ecodask.io import objstore

    old, objstore.READ_BLOCK = objstore.READ_BLOCK, n
    return old


def cpu_seconds() -> float:
    return time.process_time()


def gdal_s3(endpoint: str | None) -> None:
    """Point GDAL's own S3 client (``/vsis3/``) at ``endpoint`` (None: back to the defaults), with
    its cache of downloaded ranges emptied and no directory listing on open, as ingest opens
    objects."""
    import rasterio.cache

    names = ("AWS_S3_ENDPOINT", "AWS_HTTPS", "AWS_VIRTUAL_HOSTING", "GDAL_DISABLE_READDIR_ON_OPEN")
    if endpoint is None:
        for n in names:
            os.environ.pop(n, None)
    else:
        os.environ.update(zip(names, (endpoint.removeprefix("http://"), "NO", "FALSE", "EMPTY_DIR"),
                              strict=True))
    rasterio.cache.invalidate_all()


# --- a pass -----------------------------------------------------------------------------------------

def server_cpu() -> float:
    """CPU seconds of the moto server process (a child of this one), 0 if not found."""
    import psutil

    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if "--serve-s3" in child.cmdline():
                t = child.cpu_times()
                return t.user + t.system
    return 0.0


def read_pass(client: Any, grid: Any, paths: list[str], wins: list, refs: list[list[str]],
              endpoint: str | None) -> dict:
    """Every window of every path read in a task each; the hashes checked against ``refs``."""
    if endpoint:
        client.run(gdal_s3, endpoint if paths[0].startswith("/vsis3/") else None)
        s3_counts(endpoint, reset=True)
    cpu0, scpu0 = sum(client.run(cpu_seconds).values()), server_cpu()
    t0 = time.perf_counter()
    jobs = [(p, w) for p in paths for w in wins]
    futures = [client.submit(read_window, p, grid, w, pure=False) for p, w in jobs]
    got = client.gather(futures)
    wall = time.perf_counter() - t0
    cpu = sum(client.run(cpu_seconds).values()) - cpu0
    scpu = server_cpu() - scpu0
    want = [r for per_path in refs for r in per_path]
    bad = [jobs[i] for i, (g, w) in enumerate(zip(got, want, strict=True)) if g[0] != w]
    assert not bad, f"pixels differ from the whole-file read in {len(bad)} windows, e.g. {bad[:2]}"
    req = dict(s3_counts(endpoint)) if endpoint else {}
    return {"wall_s": wall, "worker_cpu_s": cpu, "server_cpu_s": scpu if endpoint else 0.0,
            "task_s_mean": statistics.fmean(g[2] for g in got), "chunk_years": len(jobs),
            "valid_px": sum(g[1] for g in got), "requests": req}


def checksums(files: dict[int, Path], urls: dict[int, str], endpoint: str) -> dict:
    """The streamed checksum of each object against the local file's: seconds, GETs, bytes."""
    from ecodask.io import objstore
    from ecodask.io.provenance import file_checksum

    t0 = time.perf_counter()
    local = [file_checksum(files[y]) for y in files]
    local_s = time.perf_counter() - t0
    s3_counts(endpoint, reset=True)
    t0 = time.perf_counter()
    remote = [objstore.checksum(urls[y]) for y in files]
    remote_s = time.perf_counter() - t0
    req = dict(s3_counts(endpoint))
    assert remote == local, f"streamed checksums {remote} differ from the local files' {local}"
    return {"local_s": local_s, "remote_s": remote_s, "requests": req,
            "bytes": sum(p.stat().st_size for p in files.values())}


# --- the report --------------------------------------------------------------------------------------

def _req(r: dict) -> str:
    return " + ".join(f"{r[k]} {k}" for k in KINDS if r.get(k)) or "-"


def _n(r: dict) -> int:
    return sum(r.get(k, 0) for k in KINDS)


def report(rows: list[dict], sums: list[dict], sizes: dict[str, int], workers: int, block: int) -> None:
    """The tables; ``sizes``: bytes of the full-resolution tiles of each layout's files."""
    local = {(r["format"], r["chunk"]): r for r in rows if r["source"] == "local"}
    print(f"\nRead from the bucket against local disk (the page cache). fsspec: ecodask's opener, "
          f"READ_BLOCK {block // 1024} KiB; GDAL: /vsis3/. '+30 ms' = requests x "
          f"{S3_LATENCY_S * 1e3:.0f} ms / {workers} readers")
    print("| layout | chunk px | chunk-years | local s (CPU s) | reader | S3 s (CPU s, server CPU s) | "
          "requests (to another bucket) | per chunk-year | MB got / tile MB | +30 ms at S3, s |")
    print("|---|---:|---:|---:|---|---:|---|---:|---:|---:|")
    for r in rows:
        if not (r["source"] == "vsis3" or (r["source"] == "s3" and r["block"] == block)):
            continue
        loc = local[(r["format"], r["chunk"])]
        req = r["requests"]
        got = req.get("bytes_got", 0)
        print(f"| {r['format']} | {r['chunk']} | {r['chunk_years']} | {loc['wall_s']:.2f} "
              f"({loc['worker_cpu_s']:.2f}) | {'GDAL' if r['source'] == 'vsis3' else 'fsspec'} | "
              f"{r['wall_s']:.2f} ({r['worker_cpu_s']:.2f}, {r['server_cpu_s']:.2f}) | {_req(req)} "
              f"({req.get('other_bucket', 0)}) | {_n(req) / r['chunk_years']:.1f} | "
              f"{got / 1e6:.1f} / {sizes[r['format']] / 1e6:.1f} = {got / sizes[r['format']]:.2f} | "
              f"{_n(req) * S3_LATENCY_S / workers:.1f} |")
    print("\nREAD_BLOCK (read-ahead of each ranged GET of ecodask's opener)")
    print("| layout | chunk px | READ_BLOCK KiB | S3 s | GET per chunk-year | requests per chunk-year | "
          "MB got / tile MB | +30 ms at S3, s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in sorted((r for r in rows if r["source"] == "s3"),
                    key=lambda r: (r["format"], r["chunk"], r["block"])):
        req = r["requests"]
        print(f"| {r['format']} | {r['chunk']} | {r['block'] // 1024} | {r['wall_s']:.2f} | "
              f"{req.get('GET', 0) / r['chunk_years']:.1f} | {_n(req) / r['chunk_years']:.1f} | "
              f"{req.get('bytes_got', 0) / sizes[r['format']]:.2f} | "
              f"{_n(req) * S3_LATENCY_S / workers:.1f} |")
    print("\nStreamed checksum (objstore.checksum, 4 MiB requests) against the local file's")
    print("| layout | MB | local s | S3 s | requests | MB got |")
    print("|---|---:|---:|---:|---|---:|")
    for s in sums:
        print(f"| {s['format']} | {s['bytes'] / 1e6:.1f} | {s['local_s']:.2f} | {s['remote_s']:.2f} | "
              f"{_req(s['requests'])} | {s['requests'].get('bytes_got', 0) / 1e6:.1f} |")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=12288, help="height of the mosaic, px (multiple of 32)")
    ap.add_argument("--width", type=int, default=None, help="its width, px (default: --size, a square)")
    ap.add_argument("--years", type=int, default=2, help="files (years) read, 1-4")
    ap.add_argument("--chunks", type=int, nargs="+", default=[1024, 2048, 4096], help="chunk sides, px")
    ap.add_argument("--blocks", type=int, nargs="+", default=[64, 256, 1024], help="READ_BLOCK values, KiB")
    ap.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    ap.add_argument("--workers", type=int, default=2, help="Dask worker processes, one thread each")
    ap.add_argument("--repeats", type=int, default=1, help="runs of every pass, the median reported")
    ap.add_argument("--latency-ms", type=float, default=0,
                    help="the server answers every request this much later (real S3: 10-50 ms)")
    ap.add_argument("--no-gdal", dest="gdal", action="store_false",
                    help="skip the reads through GDAL's own S3 client (/vsis3/)")
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    a = ap.parse_args(argv)
    if not 1 <= a.years <= 4:
        raise SystemExit(f"error: --years {a.years} must be 1-4")

    from distributed import Client, LocalCluster

    from ecodask.io import objstore

    default_block = objstore.READ_BLOCK
    env = machine(["rasterio", "fsspec", "s3fs", "moto", "dask", "distributed"])
    import rasterio

    env["gdal"] = rasterio.__gdal_version__
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    a.width = a.width or a.size
    shape = (a.size, a.width)
    grid, files = build(a.out, a.size, a.width, a.years)
    sizes = {f: sum(p.stat().st_size for p in files[f].values()) for f in a.formats}
    tiles = {f: sum(tile_bytes(p) for p in files[f].values()) for f in a.formats}
    work = (a.out / "remote-inputs" / "work").resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rows: list[dict] = []
    sums: list[dict] = []
    os.environ["BENCH_S3_LATENCY_MS"] = str(a.latency_ms)  # read by the server's process
    with s3_server(work) as endpoint:
        import s3fs

        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        urls = {f: {y: f"s3://{BUCKET}/inputs/{f}/{p.name}" for y, p in files[f].items()} for f in a.formats}
        for f in a.formats:
            for y, p in files[f].items():
                fs.put_file(str(p), urls[f][y])
            sums.append({"format": f, **checksums(files[f], urls[f], endpoint)})
        vsis3 = {f: [u.replace("s3://", "/vsis3/", 1) for u in urls[f].values()] for f in a.formats}
        refs = {(f, c): [reference(files[f][y], windows(shape, c)) for y in files[f]]
                for f in a.formats for c in a.chunks}
        with LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          host="127.0.0.1") as cluster, Client(cluster) as client:
            client.run(fsspec_reader)
            # a throwaway pass of each kind first: imports, the workers' first tasks, the server's
            for f in a.formats:
                c = max(a.chunks)
                read_pass(client, grid, [str(p) for p in files[f].values()], windows(shape, c),
                          refs[(f, c)], None)
                read_pass(client, grid, list(urls[f].values()), windows(shape, c), refs[(f, c)], endpoint)
                if a.gdal:
                    read_pass(client, grid, vsis3[f], windows(shape, c), refs[(f, c)], endpoint)
            runs: dict[tuple, list[dict]] = {}
            for _ in range(a.repeats):
                for f in a.formats:
                    for c in a.chunks:
                        wins = windows(shape, c)
                        key = (f, c, "local", 0)
                        runs.setdefault(key, []).append(read_pass(
                            client, grid, [str(p) for p in files[f].values()], wins, refs[(f, c)], None))
                        for b in a.blocks:
                            client.run(set_read_block, b * 1024)
                            key = (f, c, "s3", b * 1024)
                            runs.setdefault(key, []).append(read_pass(
                                client, grid, list(urls[f].values()), wins, refs[(f, c)], endpoint))
                        client.run(set_read_block, default_block)
                        if a.gdal:
                            runs.setdefault((f, c, "vsis3", 0), []).append(read_pass(
                                client, grid, vsis3[f], wins, refs[(f, c)], endpoint))
            for (f, c, src, b), rs in runs.items():
                row = {"format": f, "chunk": c, "source": src, "block": b, **rs[0]}
                for k in ("wall_s", "worker_cpu_s", "server_cpu_s", "task_s_mean"):
                    row[k] = statistics.median(r[k] for r in rs)
                row["all_wall_s"] = [r["wall_s"] for r in rs]
                rows.append(row)
                print(f"{f:8s} chunk {c:5d} {src:6s} {b // 1024:5d} KiB  {row['wall_s']:6.2f} s  "
                      f"cpu {row['worker_cpu_s']:6.2f} s  {_req(row['requests'])}  "
                      f"{row['requests'].get('bytes_got', 0) / 1e6:.1f} MB", flush=True)
    load_end = os.getloadavg()
    print(f"\n{started}; grid {a.size} x {a.width} px, {a.years} years; server latency {a.latency_ms:g} ms a "
          f"request; {a.workers} Dask worker processes x 1 thread; load average "
          f"{env['load_avg_at_start'][0]:.2f} at start, {load_end[0]:.2f} at end; "
          f"{env['cores']} cores, {env['cpu']}; GDAL {env['gdal']}, rasterio {env['versions']['rasterio']}, "
          f"s3fs {env['versions']['s3fs']}, moto {env['versions']['moto']}; files: "
          + ", ".join(f"{f} {sizes[f] / 1e6:.1f} MB ({tiles[f] / 1e6:.1f} MB of full-resolution tiles)"
                      for f in a.formats))
    block = default_block if default_block in {b * 1024 for b in a.blocks} else a.blocks[0] * 1024
    report(rows, sums, tiles, a.workers, block)
    results = {"machine": env, "code": code_state(), "started": started,
               "args": {k: str(v) for k, v in vars(a).items()}, "file_bytes": sizes, "tile_bytes": tiles,
               "load_avg_end": load_end, "rows": rows, "checksums": sums,
               "s3_latency_s_projected": S3_LATENCY_S}
    a.out.mkdir(parents=True, exist_ok=True)
    name = f"remote-inputs-{a.size}x{a.width}-{a.latency_ms:g}ms.json"
    (a.out / name).write_text(json.dumps(results, indent=2, default=str))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

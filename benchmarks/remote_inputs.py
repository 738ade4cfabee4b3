"""Input rasters read in place from a bucket (issue 19, "What it costs"): what ingest's window reads
ask of an S3 server, against the same reads from local disk.

    python -m benchmarks.run --suite remote_inputs [--size 8192] [--years 2] [--chunks 1024 2048 4096]
        [--blocks 64 256 1024] [--formats gtiff256 cog512] [--workers 2] [--repeats 1] [--out bench-output]

The data: real Wuhan 30 m land cover tiled and mirrored (:mod:`benchmarks.wuhan_texture_data`), cut to
``--size`` px square, one file a year (the first ``--years`` of 2003, 2005, 2010, 2013) in two layouts:

- ``gtiff256``: a GeoTIFF tiled 256², deflate, as the real-texture benchmark and the Hubei-30m inputs;
- ``cog512``: a cloud-optimized GeoTIFF (GDAL's COG driver) of 512² tiles, deflate, with its overviews.

Built once under ``<out>/remote-inputs/data-<size>/`` and copied to a local moto S3 server that counts
the requests it answers by kind and the bytes it sends in answers to GETs
(:func:`benchmarks.stage_commit.s3_server`). Each pass reads every chunk window of the grid of every
year as ingest reads it, ``WarpedRaster(path, grid, uint8, 0)[window]`` (the grid is the files' own:
a plain windowed read), one Dask task per chunk-year on a LocalCluster of ``--workers`` processes x 1
thread, for each chunk size; from local disk (the page cache: the files were just written or read)
and from the server through :func:`ecodask.io.objstore.rasterio_options` with its read-ahead
:data:`~ecodask.io.objstore.READ_BLOCK` set on the workers to each of ``--blocks`` KiB. Every window's
pixels are hashed in its task and must equal the hash of the same window of the whole file read at
once in this process (asserted, local and remote). Also the streamed checksum of each object
(:func:`ecodask.io.objstore.checksum`) against the local file's.

Measured per pass: wall seconds, the workers' CPU seconds (and the server's), requests by kind,
requests per chunk-year, bytes sent by the server against the files' size. Prints Markdown tables and
writes ``remote-inputs-results.json``. The server is on localhost (about a millisecond a request);
real S3 answers a ranged GET in 10-50 ms, so the request counts are the figure to carry over.
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

def build(out: Path, size: int, years: int) -> tuple[Any, dict[str, dict[int, Path]]]:
    """The grid and the files by format and year (built once, cached under ``out``)."""
    import rasterio
    import rasterio.shutil
    from rasterio.windows import Window

    from benchmarks.wuhan_texture_data import YEARS, mosaic_grid, read_sources, tile_of

    grid = mosaic_grid(size)
    chosen = YEARS[:years]
    root = out / "remote-inputs" / f"data-{size}"
    files = {f: {y: root / f / f"landcover_{y}.tif" for y in chosen} for f in FORMATS}
    stamp = root / "built.json"
    params = {"version": DATA_VERSION, "size": size, "years": list(chosen)}
    if stamp.exists() and json.loads(stamp.read_text()) == params and all(
            p.is_file() for f in files.values() for p in f.values()):
        return grid, files
    stamp.unlink(missing_ok=True)
    t0 = time.perf_counter()
    codes, _, _ = read_sources()
    n = math.ceil(size / codes[chosen[0]].shape[0])
    tile = codes[chosen[0]].shape[0]
    profile = {"driver": "GTiff", "height": size, "width": size, "count": 1, "dtype": "uint8",
               "crs": grid.crs, "transform": grid.transform, "nodata": 0, "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate", "BIGTIFF": "IF_SAFER",
               "NUM_THREADS": "2"}  # as benchmarks.wuhan_texture_data.write_landcover
    for f in FORMATS:
        (root / f).mkdir(parents=True, exist_ok=True)
    for y in chosen:
        path = files["gtiff256"][y]
        with rasterio.open(path, "w", **profile) as dst:
            for i in range(n):
                band = np.concatenate([tile_of(codes[y], i, j) for j in range(n)], axis=1)[:, :size]
                h = min(tile, size - i * tile)
                dst.write(band[:h], 1, window=Window(0, i * tile, size, h))
        rasterio.shutil.copy(path, files["cog512"][y], driver="COG", BLOCKSIZE=512, COMPRESS="DEFLATE",
                             OVERVIEW_RESAMPLING="NEAREST", NUM_THREADS=2)
    stamp.write_text(json.dumps(params))
    print(f"data: {len(chosen)} years x {len(FORMATS)} formats, {size} px, built in "
          f"{time.perf_counter() - t0:.0f} s under {root}", flush=True)
    return grid, files


def windows(size: int, chunk: int) -> list[tuple[int, int, int, int]]:
    """(r0, r1, c0, c1) of every chunk window of a ``size`` px square grid, row by row."""
    edges = [(a, min(a + chunk, size)) for a in range(0, size, chunk)]
    return [(r0, r1, c0, c1) for r0, r1 in edges for c0, c1 in edges]


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
    local = {(r["format"], r["chunk"]): r for r in rows if r["source"] == "local"}
    print(f"\nRead from the bucket against local disk (the page cache). fsspec: ecodask's opener, "
          f"READ_BLOCK {block // 1024} KiB; GDAL: /vsis3/. '+30 ms' = requests x "
          f"{S3_LATENCY_S * 1e3:.0f} ms / {workers} readers")
    print("| layout | chunk px | chunk-years | local s (CPU s) | reader | S3 s (CPU s, server CPU s) | "
          "requests (to another bucket) | per chunk-year | MB got / file MB | +30 ms at S3, s |")
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
          "MB got / file MB | +30 ms at S3, s |")
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
    ap.add_argument("--size", type=int, default=8192, help="side of the mosaic, px (multiple of 32)")
    ap.add_argument("--years", type=int, default=2, help="files (years) read, 1-4")
    ap.add_argument("--chunks", type=int, nargs="+", default=[1024, 2048, 4096], help="chunk sides, px")
    ap.add_argument("--blocks", type=int, nargs="+", default=[64, 256, 1024], help="READ_BLOCK values, KiB")
    ap.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    ap.add_argument("--workers", type=int, default=2, help="Dask worker processes, one thread each")
    ap.add_argument("--repeats", type=int, default=1, help="runs of every pass, the median reported")
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
    grid, files = build(a.out, a.size, a.years)
    sizes = {f: sum(p.stat().st_size for p in files[f].values()) for f in a.formats}
    work = (a.out / "remote-inputs" / "work").resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rows: list[dict] = []
    sums: list[dict] = []
    with s3_server(work) as endpoint:
        import s3fs

        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        urls = {f: {y: f"s3://{BUCKET}/inputs/{f}/{p.name}" for y, p in files[f].items()} for f in a.formats}
        for f in a.formats:
            for y, p in files[f].items():
                fs.put_file(str(p), urls[f][y])
            sums.append({"format": f, **checksums(files[f], urls[f], endpoint)})
        vsis3 = {f: [u.replace("s3://", "/vsis3/", 1) for u in urls[f].values()] for f in a.formats}
        refs = {(f, c): [reference(files[f][y], windows(a.size, c)) for y in files[f]]
                for f in a.formats for c in a.chunks}
        with LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          host="127.0.0.1") as cluster, Client(cluster) as client:
            # a throwaway pass of each kind first: imports, the workers' first tasks, the server's
            for f in a.formats:
                c = max(a.chunks)
                read_pass(client, grid, [str(p) for p in files[f].values()], windows(a.size, c),
                          refs[(f, c)], None)
                read_pass(client, grid, list(urls[f].values()), windows(a.size, c), refs[(f, c)], endpoint)
                if a.gdal:
                    read_pass(client, grid, vsis3[f], windows(a.size, c), refs[(f, c)], endpoint)
            runs: dict[tuple, list[dict]] = {}
            for _ in range(a.repeats):
                for f in a.formats:
                    for c in a.chunks:
                        wins = windows(a.size, c)
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
    print(f"\n{started}; grid {a.size} x {a.size} px, {a.years} years; {a.workers} Dask worker processes x 1 "
          f"thread; load average {env['load_avg_at_start'][0]:.2f} at start, {load_end[0]:.2f} at end; "
          f"{env['cores']} cores, {env['cpu']}; GDAL {env['gdal']}, rasterio {env['versions']['rasterio']}, "
          f"s3fs {env['versions']['s3fs']}, moto {env['versions']['moto']}; files: "
          + ", ".join(f"{f} {sizes[f] / 1e6:.1f} MB" for f in a.formats))
    block = default_block if default_block in {b * 1024 for b in a.blocks} else a.blocks[0] * 1024
    report(rows, sums, sizes, a.workers, block)
    results = {"machine": env, "code": code_state(), "started": started,
               "args": {k: str(v) for k, v in vars(a).items()}, "file_bytes": sizes,
               "load_avg_end": load_end, "rows": rows, "checksums": sums,
               "s3_latency_s_projected": S3_LATENCY_S}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "remote-inputs-results.json").write_text(json.dumps(results, indent=2, default=str))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

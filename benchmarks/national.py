"""The national-scale benchmark: the whole ecodask flow (ingest, transitions_esv, driver_analysis,
compensation) on a synthetic country of 1.07e10 px a year at 30 m, two years, ~2,800 counties.

    python -m benchmarks.national [--scale 1.0] [--years 2] [--out bench-output] [--workers 2]
        [--memory-limit 5GiB]
    make bench-national [BENCH_ARGS='--scale 0.01'] [BENCH_ARGS='--scale 0.01 --years 39']

1. Data: built by :mod:`benchmarks.national_data` when missing (cached under
   ``<out>/national/data/``; ``--scale`` below 1 under ``<out>/national/scale-<s>/``); its
   generation time is recorded apart from the flow's figures.
2. The run: ``config.yaml`` beside the data (LocalCluster of ``--workers`` process workers, 1 thread
   each, ``--memory-limit`` each), the output folder removed, then ``ecodask run config.yaml`` in a
   fresh process. Every ``--interval`` s the process tree (the flow process, its Dask workers, the
   Prefect server it starts) is sampled with psutil: RSS of each process, their sum, CPU seconds.
3. Stages: wall seconds from ``output/run.json`` (``stage_seconds``), placed in time by the stage
   manifests (``output/.ecodask/stages/<stage>.json``, written when a stage ends: start = end -
   seconds); each stage's peak memory is the largest sample inside its window.
4. Cost split (``split``, a fresh process after the run, single-threaded, on interior chunks of the
   store): what in ingest and in transitions_esv grows with the years, with the pairs of years,
   or is fixed per chunk. It feeds the projection to the 39-year archive.
5. Projection to the 39-year archive (1985-2023): each stage's work grows by the split (driver
   analysis and compensation: with the years); on a laptop and a cluster (:data:`TARGETS`) the Dask
   workers' CPU seconds are spread over the cores, the rest stays serial; memory from the measured
   peaks plus what grows with the years (:func:`memory_projection`).
6. Results beside ``config.yaml``: ``raw.json`` (the measurements; ``--report-only`` analyses them
   again without running), ``memory.csv`` (the samples), ``flow.log``, ``results.json``; Markdown
   tables printed for BENCHMARKS.md.

Units: seconds, bytes (GB = 1e9 B), Mpix/s = 1e6 pixel-years a second (grid positions x years).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.env import code_state, machine

#: Versions recorded with the results.
PACKAGES = ("numpy", "numba", "dask", "distributed", "zarr", "rasterio", "prefect", "psutil")

REPO = Path(__file__).resolve().parent.parent
STAGES = ("ingest", "transitions_esv", "driver_analysis", "compensation", "figures")
ARCHIVE_YEARS = 39  # 1985-2023
#: Bytes per pixel-year the run's output may take at most (store + tables), for the disk check; the
#: synthetic data take ~0.1 (see BENCHMARKS.md), real land cover compresses less.
OUTPUT_BYTES_PER_PX_YEAR = 0.6
#: The machines of the projection: cores, memory, the share of ideal scaling reached over the Dask
#: workers (laptop: shared memory bandwidth, thermal limits; cluster: scheduling, stragglers, the
#: last wave of chunks) and the bandwidth of the storage (laptop NVMe SSD; object storage, aggregate).
TARGETS = {"laptop": {"cores": 8, "memory_gb": 32, "efficiency": 0.75, "io_gb_s": 1.5},
           "cluster": {"cores": 64, "memory_gb": 256, "efficiency": 0.8, "io_gb_s": 4.0}}


# ------------------------------------------------------------------------------------------
# configuration


def run_years(n: int) -> list[int]:
    """The years of a run: the data's two, or ``n`` > 2 from 1985 on (39: the CLCD archive,
    1985-2023)."""
    from benchmarks.national_data import YEARS

    return list(YEARS) if n == 2 else list(range(1985, 1985 + n))


def run_root(root: Path, n_years: int, zones: int | None = None) -> Path:
    """Where a run of ``n_years`` keeps its config and output: ``root`` for the data's two years,
    ``root/years-<n>`` otherwise; under ``zones-<n>`` with townships for zones."""
    where = root if n_years == 2 else root / f"years-{n_years}"
    return where if zones is None else where / f"zones-{zones}"


def write_config(root: Path, built: dict, chunk: int, workers: int, memory_limit: str,
                 n_years: int = 2, townships: tuple[int, str] | None = None) -> Path:
    """``config.yaml`` under :func:`run_root`: the synthetic region's configuration
    (:func:`ecodask.synth.region_config`) pointed at the national data, output beside it, a
    LocalCluster of ``workers`` processes. With ``n_years`` > 2 the years alternate between the
    data's two land-cover files (every pair of years then has the data's full change, a year's
    pixels are real GeoTIFF reads) and the county statistics repeat the matching year's rows;
    G's reference is the counties' own (the national series starts in 2000). With ``townships``
    (their count and file under the data folder) they are the zones, and there is no compensation
    (the statistics are the counties'; they still give the standard equivalent)."""
    import pandas as pd
    import yaml

    from benchmarks.national_data import YEARS
    from ecodask.synth import region_config

    years = run_years(n_years)
    where = run_root(root, n_years, townships[0] if townships else None)
    where.mkdir(parents=True, exist_ok=True)
    data = os.path.relpath(root / "data", where)
    source = {y: YEARS[i % 2] for i, y in enumerate(years)}
    cfg = region_config(years, tuple(built["params"]["bounds"]))
    cfg["name"] = "national-30m"
    cfg["grid"]["chunk_size"] = chunk
    cfg["landcover"]["years"] = {int(y): f"{data}/{built['files'][f'landcover_{source[y]}']}" for y in years}
    cfg["zones"]["path"] = f"{data}/{built['files']['counties']}"
    cfg["drivers"] = {k: {"path": f"{data}/{v}", "kind": "continuous"}
                      for k, v in sorted(built["drivers"].items())}
    cfg["county_stats"] = f"{data}/{built['files']['county_stats']}"
    if n_years != 2:
        stats = pd.read_csv(root / "data" / built["files"]["county_stats"])
        stats = pd.concat([stats[stats["year"] == source[y]].assign(year=y) for y in years],
                          ignore_index=True)
        stats.to_csv(where / "county_stats.csv", index=False, lineterminator="\n")
        cfg["county_stats"] = "county_stats.csv"
        cfg["compensation"] = {"reference_gdp_per_capita": "counties"}
    if townships:
        cfg["zones"]["path"] = f"{data}/{townships[1]}"
        cfg["compensation"] = {**cfg.get("compensation", {}), "enabled": False}
    cfg["cluster"] = {"kind": "local", "n_workers": workers, "threads_per_worker": 1,
                      "memory_limit": memory_limit}
    path = where / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False, width=200), encoding="utf-8")
    return path


def check_disk(root: Path, pixel_years: int) -> dict:
    """Free space (GB) against the output's bound (:data:`OUTPUT_BYTES_PER_PX_YEAR`); stop if short."""
    need = pixel_years * OUTPUT_BYTES_PER_PX_YEAR
    free = shutil.disk_usage(root).free
    if free < need:
        raise SystemExit(f"error: the run may write up to {need / 1e9:.1f} GB under {root} "
                         f"({OUTPUT_BYTES_PER_PX_YEAR} B per pixel-year), {free / 1e9:.1f} GB free: "
                         "free some space or use --scale")
    return {"free_gb_before": free / 1e9, "bound_gb": need / 1e9}


# ------------------------------------------------------------------------------------------
# the monitored run


@dataclass
class Sample:
    """One sample of the process tree: time (s since the epoch), summed and largest RSS (B), RSS of
    the Dask workers (B), processes, CPU seconds (user + system) of every process seen so far and of
    the Dask workers among them, load average (1 min), the flow process's RSS (B) and CPU seconds
    (the stages' own code, Prefect's client, the nannies of the workers), the largest Dask worker's
    RSS (B) and the CPU seconds of the Dask scheduler's process (its own since ``scheduler_process``;
    before, the flow process ran it and this is 0)."""

    t: float
    rss: int
    max_rss: int
    workers_rss: int
    procs: int
    cpu_s: float
    workers_cpu_s: float
    load1: float
    flow_rss: int = 0
    flow_cpu_s: float = 0.0
    max_worker_rss: int = 0
    scheduler_cpu_s: float = 0.0


@dataclass
class Monitor:
    """Samples the process tree of ``pid`` every ``interval`` s in a thread."""

    pid: int
    interval: float = 0.5
    samples: list[Sample] = field(default_factory=list)
    peak_by_proc: dict[int, dict] = field(default_factory=dict)
    _cpu: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            rss, top, workers, flow, worker_top = 0, 0, 0, 0, 0
            for p in procs:
                try:
                    with p.oneshot():
                        r = p.memory_info().rss
                        c = p.cpu_times()
                        if p.pid not in self.peak_by_proc:
                            self.peak_by_proc[p.pid] = {"role": _role(p, self.pid), "peak_rss": 0}
                        self._cpu[p.pid] = c.user + c.system  # once it has a role (a process gone has none)
                except psutil.Error:
                    continue
                rss += r
                top = max(top, r)
                info = self.peak_by_proc[p.pid]
                info["peak_rss"] = max(info["peak_rss"], r)
                if info["role"] == "dask worker":
                    workers += r
                    worker_top = max(worker_top, r)
                elif info["role"] == "flow":
                    flow = r
            wcpu, scpu = (sum(v for pid, v in self._cpu.items() if self.peak_by_proc[pid]["role"] == role)
                          for role in ("dask worker", "dask scheduler"))
            self.samples.append(Sample(time.time(), rss, top, workers, len(procs), sum(self._cpu.values()),
                                       wcpu, os.getloadavg()[0], flow, self._cpu.get(self.pid, 0.0),
                                       worker_top, scpu))
            self._stop.wait(self.interval)


def _role(p, flow_pid: int) -> str:
    """What a process of the tree is, from its command line."""
    if p.pid == flow_pid:
        return "flow"
    cmd = " ".join(p.cmdline())
    if "resource_tracker" in cmd:
        return "other"
    if "ecodask.run.scheduler_process" in cmd:
        return "dask scheduler"
    if "multiprocessing" in cmd or "distributed" in cmd:
        return "dask worker"
    if "prefect" in cmd or "uvicorn" in cmd:
        return "prefect server"
    return "other"


@contextlib.contextmanager
def prefect_server(home: Path, timeout_s: float = 300.0) -> Iterator[str]:
    """A Prefect server (``prefect server start``) on a free localhost port, its state under
    ``home``, for the block: its API URL. A scheduled run talks to such a server; it is not a
    process of the run's tree, so its CPU is not the run's (as the temporary server's is)."""
    import socket
    import urllib.request

    home.mkdir(parents=True, exist_ok=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home.resolve()), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_UI_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    with open(home / "server.log", "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                   "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        try:
            start = time.time()
            while True:
                if server.poll() is not None:
                    raise SystemExit(f"the Prefect server exited ({server.returncode}): {home}/server.log")
                with contextlib.suppress(OSError):
                    with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
                        if answer.status == 200:
                            break
                if time.time() - start > timeout_s:
                    raise SystemExit(f"the Prefect server did not answer in {timeout_s:.0f} s")
                time.sleep(0.5)
            yield url
        finally:
            server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=30)
            if server.poll() is None:
                server.kill()


def run_flow(config: Path, log: Path, interval: float, api_url: str | None = None,
             ) -> tuple[int, float, float, Monitor]:
    """``ecodask run CONFIG`` in a fresh process, its tree sampled; (exit code, start, end, monitor).
    Prefect keeps its state beside the config (no lock contention with other runs of the project's
    ``.prefect``) and may take 2 minutes to start its temporary server on a busy machine; with
    ``api_url`` the run talks to that server instead (:func:`prefect_server`)."""
    env = dict(os.environ)
    env["PREFECT_HOME"] = str(config.parent.resolve() / ".prefect")
    if api_url:
        env["PREFECT_API_URL"] = api_url
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    env.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    cmd = [sys.executable, "-c", "from ecodask.cli import main; main()", "--debug", "run", str(config)]
    with open(log, "w") as out:
        t0 = time.time()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        mon = Monitor(proc.pid, interval)
        mon.start()
        try:
            rc = proc.wait()
        finally:
            mon.stop()
    return rc, t0, time.time(), mon


def window_stats(samples: list[Sample], start: float, end: float) -> dict:
    """Peak summed RSS, peak single process, peak of the workers (GB), CPU seconds and mean load in a
    window (the samples around its ends included)."""
    inside = [s for s in samples if start - 0.6 <= s.t <= end + 0.6]
    if not inside:
        return {"peak_tree_gb": None, "peak_process_gb": None, "peak_workers_gb": None, "cpu_s": None,
                "workers_cpu_s": None, "load": None, "peak_flow_gb": None, "flow_cpu_s": None,
                "peak_worker_gb": None, "scheduler_cpu_s": None}
    before = [s for s in samples if s.t <= start] or [inside[0]]
    return {"peak_tree_gb": max(s.rss for s in inside) / 1e9,
            "peak_process_gb": max(s.max_rss for s in inside) / 1e9,
            "peak_workers_gb": max(s.workers_rss for s in inside) / 1e9,
            "cpu_s": inside[-1].cpu_s - before[-1].cpu_s,
            "workers_cpu_s": inside[-1].workers_cpu_s - before[-1].workers_cpu_s,
            "peak_flow_gb": max(s.flow_rss for s in inside) / 1e9,
            "peak_worker_gb": max(s.max_worker_rss for s in inside) / 1e9,
            "flow_cpu_s": inside[-1].flow_cpu_s - before[-1].flow_cpu_s,
            "scheduler_cpu_s": inside[-1].scheduler_cpu_s - before[-1].scheduler_cpu_s,
            "load": float(np.mean([s.load1 for s in inside]))}


def write_samples(path: Path, samples: list[Sample], t0: float) -> None:
    """The memory samples as CSV: seconds since the launch, GB, CPU seconds, load."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_s", "tree_rss_gb", "max_process_rss_gb", "workers_rss_gb", "processes", "cpu_s",
                    "workers_cpu_s", "load1", "flow_rss_gb", "flow_cpu_s", "max_worker_rss_gb",
                    "scheduler_cpu_s"])
        for s in samples:
            w.writerow([f"{s.t - t0:.2f}", f"{s.rss / 1e9:.3f}", f"{s.max_rss / 1e9:.3f}",
                        f"{s.workers_rss / 1e9:.3f}", s.procs, f"{s.cpu_s:.1f}", f"{s.workers_cpu_s:.1f}",
                        f"{s.load1:.2f}", f"{s.flow_rss / 1e9:.3f}", f"{s.flow_cpu_s:.1f}",
                        f"{s.max_worker_rss / 1e9:.3f}", f"{s.scheduler_cpu_s:.1f}"])


# ------------------------------------------------------------------------------------------
# sizes


def du(path: Path) -> int:
    """Bytes allocated on disk under ``path`` (like ``du``: sparse files count what they hold, a
    file with several hard links once). Links to folders are followed: a folder's ``store.zarr``
    links each array to its stage's layer."""
    if path.is_file():
        return path.stat().st_blocks * 512
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, _, files in os.walk(path, followlinks=True):
        for f in files:
            try:
                st = os.stat(os.path.join(dirpath, f))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def sizes(root: Path, data_root: Path | None = None) -> dict[str, float]:
    """Disk sizes (GB) of the inputs (under ``data_root``, default ``root``), the store's arrays,
    the tables and the whole output."""
    from ecodask.io.layout import RunFolder

    data, out = (data_root or root) / "data" / "inputs", RunFolder(root / "output")
    store = out.store
    s = {f"input {p.name}": du(p) / 1e9 for p in sorted(data.iterdir())}
    s["inputs"] = du(data) / 1e9
    for name in ("landcover", "zone", "esv"):
        s[f"store {name}"] = du(store / name) / 1e9
    s["store analysis/"] = du(store / "analysis") / 1e9
    s["store"] = du(store) / 1e9
    s["tables"] = du(out.tables) / 1e9
    s["output"] = du(out.root) / 1e9  # the layers, through the view or not, once
    return s


# ------------------------------------------------------------------------------------------
# cost split (run in a fresh process after the flow)


def _interior_chunks(store: Path, chunk: int, factor: int, n: int) -> list[tuple[int, int]]:
    """Up to ``n`` whole chunks (row, col) spread over the grid among those with the most valued
    analysis cells (all valued at full scale; the most there are on a small ``--scale``)."""
    import zarr

    npix = np.asarray(zarr.open_array(store / "analysis" / "esv_pixels", mode="r")[0])
    c = chunk // factor
    share = {(i, j): float((npix[i * c:(i + 1) * c, j * c:(j + 1) * c] == factor * factor).mean())
             for i in range(npix.shape[0] // c) for j in range(npix.shape[1] // c)}
    if not share:
        raise SystemExit("split: the grid holds no whole chunk")
    best = max(share.values())
    cand = sorted(k for k, v in share.items() if v >= min(0.95, best))
    return [cand[k] for k in np.linspace(0, len(cand) - 1, min(n, len(cand))).round().astype(int)]


def _best(fn, repeats: int = 3) -> float:
    """The fastest of ``repeats`` calls of ``fn`` (s): the machine is shared."""
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


@dataclass
class _SplitContext:
    """What the split measures with: the ingest sources, the store, the ESV setup, temporary arrays."""

    lcs: list
    zsrc: object
    pix: object
    lut: np.ndarray
    values: np.ndarray
    n_zones: int
    factor: int
    enc_lc: object
    enc_z: object
    esv_path: str


def _split_chunk(ctx: _SplitContext, win: tuple[slice, slice]) -> dict[str, float]:
    """The parts' seconds on one chunk (best of 3 each): see :func:`split_case`."""
    import dask.array as da

    from ecodask.chunked.landpass import land_pass

    r = {"ingest_read_year": float(np.mean([_best(lambda s=s: s[win]) for s in ctx.lcs])),
         "ingest_zones": _best(lambda: ctx.zsrc[win])}
    lc_np = np.stack([s[win] for s in ctx.lcs])
    z_np = ctx.zsrc[win]
    r["ingest_write_year"] = _best(lambda: ctx.enc_lc.__setitem__(slice(None), lc_np[0]))
    r["ingest_write_zones"] = _best(lambda: ctx.enc_z.__setitem__(slice(None), z_np))
    r["esv_read_zones"] = _best(lambda: np.asarray(ctx.pix["zone"].data[win]))
    r["esv_read_year"] = _best(lambda: np.asarray(ctx.pix["landcover"].data[(0, *win)]))
    zd = da.from_array(z_np, chunks=z_np.shape)
    ld = da.from_array(lc_np, chunks=lc_np.shape)

    def lp(pairs: list, targets: dict | None) -> None:
        land_pass(zd, ld, lut=ctx.lut, pairs=pairs, n_zones=ctx.n_zones, values=ctx.values, factor=ctx.factor,
                  targets=targets)

    lp([(0, 1)], None)  # numba's first dispatch
    r["esv_kernel_1pair"] = _best(lambda: lp([(0, 1)], None))
    r["esv_kernel_9pairs"] = _best(lambda: lp([(0, 1)] * 9, None))
    r["esv_kernel_1pair_write"] = _best(lambda: lp([(0, 1)], {"esv": ctx.esv_path}))
    return r


def split_case(config: Path, n_chunks: int = 3) -> dict:
    """Per-chunk costs (s, single thread, Dask's synchronous scheduler) of the parts of ingest and
    transitions_esv on interior chunks of the run's store. Ingest: reading + placing one land-cover
    year from its GeoTIFF, rasterizing the zones, encoding a year and the zones into Zarr;
    transitions_esv: reading the zones and a year from the store, the fused kernel with 1 and with 9
    pairs of years (nothing written), and with 1 pair writing the ESV grid. Also the checksum of one
    land-cover file (s)."""
    import tempfile

    import dask
    import zarr
    import zarr.codecs

    from ecodask.io.layout import RunFolder
    from ecodask.io.provenance import file_checksum
    from ecodask.io.rasters import RasterizedZones, WarpedRaster, smallest_uint
    from ecodask.io.store import open_store
    from ecodask.run.config import load_config
    from ecodask.run.inputs import check_inputs
    from ecodask.run.stages.transitions_esv import esv_model

    cfg = load_config(config)
    store = RunFolder(cfg.output).store
    prep = check_inputs(cfg)
    grid, c, f = prep.grid, cfg.grid.chunk_size, cfg.grid.analysis_factor
    pix, _ = open_store(store)
    model = esv_model(cfg, float(pix.attrs["pixel_area_ha"]))  # the stage's lookup tables
    tmp = Path(tempfile.mkdtemp(dir=cfg.output))
    root = zarr.open_group(tmp / "t.zarr", mode="w")
    z_arr = zarr.open_array(store / "zone", mode="r")
    lc_codec = zarr.open_array(store / "landcover", mode="r").compressors
    root.create_array("esv", shape=(len(cfg.years), c, c), chunks=(1, c, c), dtype="float32",
                      fill_value=np.nan, compressors=zarr.codecs.ZstdCodec(level=1))
    ctx = _SplitContext(
        lcs=[WarpedRaster(str(cfg.landcover.years[y]), grid, np.dtype(np.uint8), 0) for y in cfg.years],
        zsrc=RasterizedZones(tuple(prep.zones.geometry.to_wkb()), tuple(int(v) for v in prep.zones["zone"]),
                             grid, smallest_uint(len(prep.zones))),
        pix=pix, lut=model.index.lut, values=model.pixel_values(),
        n_zones=len(prep.zones), factor=f,
        enc_lc=root.create_array("lc", shape=(c, c), chunks=(c, c), dtype="uint8", compressors=lc_codec),
        enc_z=root.create_array("z", shape=(c, c), chunks=(c, c), dtype=z_arr.dtype,
                                compressors=z_arr.compressors),
        esv_path=str(tmp / "t.zarr" / "esv"))
    rows = []
    try:
        with dask.config.set(scheduler="synchronous"):
            for i, j in _interior_chunks(store, c, f, n_chunks):
                win = (slice(i * c, (i + 1) * c), slice(j * c, (j + 1) * c))
                rows.append({"chunk": [i, j], **_split_chunk(ctx, win)})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "chunk"}
    first = cfg.landcover.years[cfg.years[0]]
    return {"chunks": [r["chunk"] for r in rows], "per_chunk_s": mean, "years": len(cfg.years), "rows": rows,
            "grid_chunks": (-(-grid.height // c)) * (-(-grid.width // c)),
            "checksum_year_s": _best(lambda: file_checksum(first), 1),
            "landcover_file_bytes": first.stat().st_size}


def split_model(split: dict) -> dict[str, dict[str, float]]:
    """Per-chunk seconds of each stage's parts: ``year`` (grows with the years), ``pair`` (with the
    pairs of years), ``fixed`` (per chunk, whatever the years), at the measured years."""
    m, y = split["per_chunk_s"], split["years"]
    k_pair = max((m["esv_kernel_9pairs"] - m["esv_kernel_1pair"]) / 8.0, 0.0)
    k_years = max(m["esv_kernel_1pair"] - k_pair, 0.0)
    write = max(m["esv_kernel_1pair_write"] - m["esv_kernel_1pair"], 0.0)
    return {
        "ingest": {"year": y * (m["ingest_read_year"] + m["ingest_write_year"]), "pair": 0.0,
                   "fixed": m["ingest_zones"] + m["ingest_write_zones"]},
        "transitions_esv": {"year": y * m["esv_read_year"] + k_years + write, "pair": k_pair,
                            "fixed": m["esv_read_zones"]},
    }


# ------------------------------------------------------------------------------------------
# projection


def growth(stage: str, model: dict, years: int, years_to: int, wall_s: float = 0.0,
           checksum_s: float = 0.0) -> tuple[float, str]:
    """Factor by which a stage's work grows from ``years`` to ``years_to`` years, and how. The
    start-up checksums every land-cover file twice (the stage keys of the command and of the flow),
    the finish once (run.json): ``checksum_s`` per year file."""
    pairs = len(_pairs(years))
    pairs_to = len(_pairs(years_to))
    if stage in ("startup", "finish") and wall_s:
        extra = (2 if stage == "startup" else 1) * checksum_s * (years_to - years)
        return (wall_s + extra) / wall_s, f"fixed + {extra:.0f} s checksums of {years_to - years} more files"
    if stage in model:
        p = model[stage]
        now = p["year"] + p["pair"] + p["fixed"]
        then = p["year"] * years_to / years + p["pair"] * pairs_to / max(pairs, 1) + p["fixed"]
        share = {k: v / now for k, v in p.items()}
        how = (f"{share['year']:.0%} x {years_to}/{years} years + {share['pair']:.0%} x {pairs_to}/{pairs} "
               f"pairs + {share['fixed']:.0%} fixed")
        return then / now, how
    if stage in ("driver_analysis", "compensation", "figures"):  # figures: an overview and maps per year
        return years_to / years, f"all x {years_to}/{years} years"
    return 1.0, "fixed"


def _pairs(n: int) -> list[tuple[int, int]]:
    from ecodask.science.landuse import year_pairs

    return year_pairs(list(range(n)))


def project(stages: dict[str, dict], model: dict, years: int, checksum_s: float, io_gb: dict[str, float],
            serial_growth: dict[str, float] | None = None) -> list[dict]:
    """The 39-year archive per stage: ``here_s`` = the measured wall x the growth of the work; on each
    :data:`TARGETS` machine from the measured CPU seconds x the growth: the Dask workers' CPU spread
    over its cores at its efficiency, beside it the Dask scheduler's (one process: the stage takes
    at least that long), the rest (flow process, Prefect) serial; an I/O-bound floor of
    ``io_gb`` (GB read + written at 39 years) at its bandwidth; the larger of the two. The serial
    CPU grows as the stage's work, or by ``serial_growth[stage]`` where given (measured: the serial
    CPU of a run of 39 years over that of 2 at a reduced extent, :func:`serial_growth`); the
    scheduler's likewise, by ``serial_growth["scheduler:" + stage]`` where given."""
    out = []
    for name, st in stages.items():
        g, how = growth(name, model, years, ARCHIVE_YEARS, st["wall_s"], checksum_s)
        cpu, wcpu, scpu = st["cpu_s"] or 0.0, st["workers_cpu_s"] or 0.0, st.get("scheduler_cpu_s") or 0.0
        row = {"stage": name, "growth": g, "how": how, "wall_s": st["wall_s"], "cpu_s": cpu,
               "workers_cpu_s": wcpu, "scheduler_cpu_s": scpu, "serial_cpu_s": cpu - wcpu - scpu,
               "here_s": st["wall_s"] * g,
               "io_gb": io_gb.get(name, 0.0)}
        for t, spec in TARGETS.items():
            sg = (serial_growth or {}).get(name, g)
            row["serial_growth"] = sg
            schedg = (serial_growth or {}).get(f"scheduler:{name}", g)
            row["scheduler_growth"] = schedg
            compute = (cpu - wcpu - scpu) * sg + max(wcpu * g / (spec["cores"] * spec["efficiency"]),
                                                     scpu * schedg)
            row[f"{t}_io_s"] = row["io_gb"] / spec["io_gb_s"]
            row[f"{t}_s"] = max(compute, row[f"{t}_io_s"])
        out.append(row)
    return out


def io_volumes(sizes_gb: dict[str, float], years: int, years_to: int = ARCHIVE_YEARS) -> dict[str, float]:
    """GB each stage reads and writes at ``years_to`` years (sizes scale with the years; the zones
    do not): ingest reads the land-cover GeoTIFFs and writes the store's land cover and zones;
    transitions_esv reads those and writes the ESV grid."""
    k = years_to / years
    lc_in = sum(v for n, v in sizes_gb.items() if n.startswith("input landcover"))
    lc, zone, esv = sizes_gb["store landcover"], sizes_gb["store zone"], sizes_gb["store esv"]
    return {"ingest": (lc_in + lc) * k + zone, "transitions_esv": (lc + esv) * k + zone}


def task_bytes(years: int, side: int) -> int:
    """Bytes a transitions_esv task holds for a chunk of ``side``² pixels and ``years`` years
    (``ecodask.chunked.landpass``): every year's land cover (uint8) and float32 grid in the fused
    loop when they fit, else a block of years' land cover plus the 2 earlier years later pairs need
    and one year's grid; the zones (uint16) besides."""
    from ecodask.chunked.landpass import FUSED_GRID_BYTES, HELD_LANDCOVER_BYTES

    px = side * side
    per_block = max(1, HELD_LANDCOVER_BYTES // px)
    if years <= per_block and years * px * 4 <= FUSED_GRID_BYTES:
        return years * 5 * px + 2 * px
    return (min(years, per_block + 2) + 4 + 2) * px


def memory_projection(result: dict, years_to: int = ARCHIVE_YEARS) -> dict:
    """Peak memory (GB) at ``years_to`` years from the measured peaks: a Dask worker = its measured
    peak less what its task held at the measured years plus what it holds at ``years_to``
    (:func:`task_bytes`, chunks of 4096² and 2048²); the flow process = its measured peak (nothing
    per year stays in it: the tasks write the analysis grids, BENCHMARKS.md "The archive's 39 years")."""
    c, y = result["chunk"], result["years"]
    roles = result["run"]["peak_by_role_gb"]
    worker, flow = roles.get("dask worker", 0.0), roles.get("flow", 0.0)
    base = worker - task_bytes(y, c) / 1e9
    out = {"worker_measured_gb": worker, "flow_measured_gb": flow, "worker_base_gb": base}
    for side in (4096, 2048):
        out[f"worker_{side}_gb"] = base + task_bytes(years_to, side) / 1e9
    out["flow_gb"] = flow
    for t, spec in TARGETS.items():
        for side in (4096, 2048):
            out[f"{t}_{side}_gb"] = spec["cores"] * out[f"worker_{side}_gb"] + out["flow_gb"]
    return out


# ------------------------------------------------------------------------------------------
# report


def markdown(res: dict) -> str:
    """The tables for BENCHMARKS.md: stages, sizes, projection, memory at 39 years."""
    d = res["data"]
    out = ["| stage | pixels (grid x years) | wall s | Mpix/s | CPU s: tree / workers / flow | cores busy | "
           "peak GB: tree / the workers' sum / a worker / flow | largest process GB | mean load |",
           "|---|---|---|---|---|---|---|---|---|"]
    for name, st in res["stages"].items():
        px = f"{st['pixel_years'] / 1e9:.2f} G" if st.get("pixel_years") else "—"
        rate = f"{st['mpix_s']:.1f}" if st.get("mpix_s") else "—"
        busy = f"{st['cpu_s'] / st['wall_s']:.2f}" if st["cpu_s"] and st["wall_s"] else "—"
        out.append(f"| {name} | {px} | {st['wall_s']:.0f} | {rate} | {_f(st['cpu_s'], 0)} / "
                   f"{_f(st['workers_cpu_s'], 0)} / {_f(st.get('flow_cpu_s'), 1)} | {busy} | "
                   f"{_f(st['peak_tree_gb'], 2)} / {_f(st['peak_workers_gb'], 2)} / "
                   f"{_f(st.get('peak_worker_gb'), 2)} / {_f(st.get('peak_flow_gb'), 2)} | "
                   f"{_f(st['peak_process_gb'], 2)} | {_f(st['load'], 1)} |")
    r = res["run"]
    if r.get("tables_after_pass_s") is not None:
        zones = res.get("zones") or d["counties"]
        out += ["", f"transitions_esv after its pass (building and writing its tables, {zones:,} zones): "
                f"{r['tables_after_pass_s']:.1f} s, {r['tables_share_of_stage']:.1%} of the stage."]
        if r.get("tables_written_s") is not None:
            out[-1] += (f" Writing the tables (the first to the last file): {r['tables_written_s']:.1f} s, "
                        f"{r['tables_written_share']:.1%} of the stage.")
    if r.get("flow_cpu_share") is not None:
        out += ["", f"The flow process ({res.get('prefect', 'temporary server')}): "
                f"{r['flow_cpu_s']:.1f} CPU s of the run's {r['cpu_s']:.1f} "
                f"({r['flow_cpu_share']:.1%}), the Dask scheduler's {r.get('scheduler_cpu_s', 0):.1f}, "
                f"peak {r['peak_flow_gb']:.2f} GB; a Dask worker's peak "
                f"{r['peak_by_role_gb'].get('dask worker', 0):.2f} GB."]
    gen = res["generation"]["seconds"]
    out += ["", f"Data: {d['width']:,} x {d['height']:,} px = {d['pixels'] / 1e9:.3f} G px a year, "
            f"{d['inside_share']:.1%} inside the country, {d['changed_share_of_inside']:.2%} of those "
            f"change; {d['counties']} counties. Generation {gen['total']:.0f} s (land cover "
            f"{gen['landcover']:.0f} s, {gen.get('landcover_cpu', 0):.0f} CPU s).", "",
            "| size | GB |", "|---|---|"]
    out += [f"| {k} | {v:.3f} |" for k, v in res["sizes"].items()]
    out += ["", "| stage | growth to 39 years | how | serial CPU s (growth) | here s | laptop s | "
            "cluster s |",
            "|---|---|---|---|---|---|---|"]
    for p in res["projection"]:
        out.append(f"| {p['stage']} | {p['growth']:.1f}x | {p['how']} | {p['serial_cpu_s']:.0f} "
                   f"({p.get('serial_growth', p['growth']):.1f}x) | {p['here_s']:.0f} | "
                   f"{p['laptop_s']:.0f} | {p['cluster_s']:.0f} |")
    tot = {k: sum(p[f"{k}_s"] for p in res["projection"]) for k in ("here", "laptop", "cluster")}
    out.append(f"| total | | | | {tot['here']:.0f} | {tot['laptop']:.0f} | {tot['cluster']:.0f} |")
    out.append(f"\nThe cluster {tot['laptop'] / tot['cluster']:.1f}x the laptop.")
    m = res["memory_projection"]
    out += ["", "| memory at 39 years, GB | chunk 4096² | chunk 2048² |", "|---|---|---|",
            f"| a Dask worker (measured {m['worker_measured_gb']:.2f} at {res['years']} years) | "
            f"{m['worker_4096_gb']:.2f} | {m['worker_2048_gb']:.2f} |",
            f"| the flow process (measured {m['flow_measured_gb']:.2f}) | {m['flow_gb']:.2f} | "
            f"{m['flow_gb']:.2f} |"]
    out += [f"| {t}: {spec['cores']} workers + flow | {m[f'{t}_4096_gb']:.1f} | {m[f'{t}_2048_gb']:.1f} |"
            for t, spec in TARGETS.items()]
    return "\n".join(out)


def _f(v: float | None, nd: int) -> str:
    return "—" if v is None else f"{v:.{nd}f}"


# ------------------------------------------------------------------------------------------
# main


def measure(a: argparse.Namespace, argv: list[str]) -> dict:
    """Data (built if missing), the monitored run and the cost split; the raw measurements, also
    written to ``raw.json`` (``--report-only`` analyses them again without running)."""
    from benchmarks.national_data import FACTOR, _root, build, townships
    from ecodask.io.layout import RunFolder

    raw = {"command": " ".join(["python -m benchmarks.national", *argv]), "machine": machine(PACKAGES),
           "commit": code_state()["commit"], "started": time.strftime("%Y-%m-%d %H:%M:%S"), "scale": a.scale,
           "chunk": a.chunk, "factor": FACTOR, "years": a.years, "workers": a.workers,
           "memory_limit": a.memory_limit}
    built = build(a.out, a.scale, a.seed, a.chunk, a.compress, a.gen_workers)
    raw["generation"] = {k: built[k] for k in ("seconds", "workers", "built")}
    raw["data"] = built["summary"]
    data_root = _root(a.out, a.scale)
    root = run_root(data_root, a.years, a.zones)
    shutil.rmtree(root / "output", ignore_errors=True)
    raw["disk"] = check_disk(data_root, built["summary"]["pixels"] * a.years)
    town = None
    if a.zones:
        town = (a.zones, townships(a.out, a.scale, a.seed, a.chunk, a.compress, a.zones))
        raw["zones"] = a.zones
    config = write_config(data_root, built, a.chunk, a.workers, a.memory_limit, a.years, town)
    print(f"running the flow: {config} (log: {root / 'flow.log'})", flush=True)
    raw["prefect"] = "server" if a.prefect_server else "temporary server"
    with prefect_server(root / ".prefect-server") if a.prefect_server else contextlib.nullcontext() as api:
        rc, t0, t1, mon = run_flow(config, root / "flow.log", a.interval, api)
    write_samples(root / "memory.csv", mon.samples, t0)
    if rc:
        tail = (root / "flow.log").read_text(errors="replace")[-4000:]
        raise SystemExit(f"the flow failed (exit {rc}); log {root / 'flow.log'}:\n{tail}")
    raw["monitor"] = {"t0": t0, "t1": t1, "interval": a.interval, "peak_by_proc": mon.peak_by_proc}
    folder = RunFolder(root / "output")
    raw["run_json"] = json.loads(folder.run_record.read_text())
    raw["manifest_mtimes"] = {s: folder.manifest(s).stat().st_mtime for s in STAGES}
    raw["tables_after_pass_s"], raw["tables_written_s"] = tables_after_pass(folder)
    raw["sizes"] = sizes(root, data_root)
    raw["disk"]["free_gb_after"] = shutil.disk_usage(root).free / 1e9
    if not a.no_split:
        print("cost split ...", flush=True)
        proc = subprocess.run([sys.executable, "-m", "benchmarks.national", "--split-case", str(config)],
                              capture_output=True, text=True, cwd=REPO)
        if proc.returncode:
            raise SystemExit(f"split failed:\n{proc.stderr[-4000:]}")
        raw["split"] = json.loads(proc.stdout.strip().splitlines()[-1])
    raw["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    (root / "raw.json").write_text(json.dumps(raw, indent=2, default=str))
    return raw


def tables_after_pass(folder) -> tuple[float, float]:  # noqa: ANN001 - ecodask.io.layout.RunFolder
    """Seconds the transitions_esv stage spent after its pass, building and writing its tables: the
    last of its tables written (file times) less the last 30 m ESV chunk a pass task wrote (the
    grids are committed by renaming, which keeps the chunks' times); and of those, the seconds spent
    writing the tables (the last table's time less the first's: they are written one after another
    once all are built, after the analyses that follow the pass, such as the cells' trade-offs)."""
    owned = json.loads(folder.manifest("transitions_esv").read_text())["files"]
    # The stage's tables, in its layer (stages/<stage>/<key16>/files/tables/...).
    times = [(folder.root / k).stat().st_mtime for k in owned if k.split("/")[3:5] == ["files", "tables"]]
    chunks = (folder.store / "esv" / "c").rglob("*")
    last_chunk = max(p.stat().st_mtime for p in chunks if p.is_file())
    return max(times) - last_chunk, max(times) - min(times)


def read_samples(path: Path, t0: float) -> list[Sample]:
    """The samples of ``memory.csv`` (see :func:`write_samples`)."""
    with open(path, newline="") as f:
        return [Sample(t0 + float(r["t_s"]), round(float(r["tree_rss_gb"]) * 1e9),
                       round(float(r["max_process_rss_gb"]) * 1e9), round(float(r["workers_rss_gb"]) * 1e9),
                       int(r["processes"]), float(r["cpu_s"]), float(r["workers_cpu_s"]), float(r["load1"]),
                       round(float(r.get("flow_rss_gb") or 0) * 1e9), float(r.get("flow_cpu_s") or 0),
                       round(float(r.get("max_worker_rss_gb") or 0) * 1e9),
                       float(r.get("scheduler_cpu_s") or 0))
                for r in csv.DictReader(f)]


def serial_growth(reduced: Path) -> dict[str, float]:
    """Per stage, the serial CPU (the process tree's less the Dask workers' and scheduler's) of the run
    of 39 years over that of 2 years at the reduced extent under ``reduced`` (``results.json`` and
    ``years-39/results.json`` of ``--scale`` runs): how the flow process's part grows with the years,
    measured (it is not the stage's work: the tasks do that)."""
    two = json.loads((reduced / "results.json").read_text())["stages"]
    many = json.loads((reduced / f"years-{ARCHIVE_YEARS}" / "results.json").read_text())["stages"]
    out = {}
    for name, st in two.items():
        a, b = (s["cpu_s"] - s["workers_cpu_s"] - (s.get("scheduler_cpu_s") or 0.0) for s in (st, many[name]))
        out[name] = b / a if a > 0 else 1.0
        a, b = (s.get("scheduler_cpu_s") or 0.0 for s in (st, many[name]))
        if a > 0:
            out[f"scheduler:{name}"] = b / a  # the scheduler's process: its CPU grows with the tasks
    return out


def analyse(raw: dict, root: Path, growth_of_serial: dict[str, float] | None = None) -> dict:
    """Stage windows, per-stage figures, the cost model, the projection; written to ``results.json``."""
    mon = raw["monitor"]
    samples = read_samples(root / "memory.csv", mon["t0"])
    runj = raw["run_json"]
    px_years = raw["data"]["pixels"] * raw["years"]
    ends = raw["manifest_mtimes"]
    win = {s: (ends[s] - runj["stage_seconds"][s], ends[s]) for s in STAGES}
    win["startup"] = (mon["t0"], win[STAGES[0]][0])
    win["finish"] = (win[STAGES[-1]][1], mon["t1"])
    stages = {}
    for name in ("startup", *STAGES, "finish"):
        s, e = win[name]
        st = {"wall_s": e - s, "start_s": s - mon["t0"], **window_stats(samples, s, e)}
        if name in STAGES:
            st["pixel_years"] = px_years
            st["mpix_s"] = px_years / st["wall_s"] / 1e6
        stages[name] = st
    res = {k: v for k, v in raw.items() if k not in ("monitor", "run_json", "manifest_mtimes")}
    res["run"] = {"wall_s": mon["t1"] - mon["t0"], "stage_seconds": runj["stage_seconds"],
                  "peak_tree_gb": max(s.rss for s in samples) / 1e9,
                  "peak_process_gb": max(s.max_rss for s in samples) / 1e9,
                  "peak_by_role_gb": _by_role({int(k): v for k, v in mon["peak_by_proc"].items()}),
                  "cpu_s": samples[-1].cpu_s, "workers_cpu_s": samples[-1].workers_cpu_s,
                  "flow_cpu_s": samples[-1].flow_cpu_s,
                  "flow_cpu_share": samples[-1].flow_cpu_s / samples[-1].cpu_s if samples[-1].cpu_s else None,
                  "scheduler_cpu_s": samples[-1].scheduler_cpu_s,
                  "peak_flow_gb": max(s.flow_rss for s in samples) / 1e9,
                  "load_mean": float(np.mean([s.load1 for s in samples])),
                  "load_max": float(np.max([s.load1 for s in samples]))}
    res["stages"] = stages
    if "tables_after_pass_s" in raw:
        t = raw["tables_after_pass_s"]
        res["run"]["tables_after_pass_s"] = t
        res["run"]["tables_share_of_stage"] = t / stages["transitions_esv"]["wall_s"]
        if raw.get("tables_written_s") is not None:
            res["run"]["tables_written_s"] = raw["tables_written_s"]
            res["run"]["tables_written_share"] = raw["tables_written_s"] / stages["transitions_esv"]["wall_s"]
    model = split_model(raw["split"]) if "split" in raw else {}
    res["split_model"] = model
    res["io_gb_39"] = io_volumes(raw["sizes"], raw["years"])
    res["projection"] = project(stages, model, raw["years"], raw.get("split", {}).get("checksum_year_s", 0.0),
                                res["io_gb_39"], growth_of_serial)
    res["serial_growth"] = growth_of_serial
    res["memory_projection"] = memory_projection(res)
    (root / "results.json").write_text(json.dumps(res, indent=2, default=str))
    return res


def _by_role(peaks: dict[int, dict]) -> dict[str, float]:
    """Largest peak RSS of one process of each role (GB)."""
    out: dict[str, float] = {}
    for p in peaks.values():
        out[p["role"]] = max(out.get(p["role"], 0.0), p["peak_rss"] / 1e9)
    return out


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--split-case"]:
        print(json.dumps(split_case(Path(argv[1]))))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0,
                    help="fraction of the full pixel count (1.07e10 a year)")
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=4096, help="chunk side, px (grid.chunk_size)")
    ap.add_argument("--workers", type=int, default=2, help="Dask worker processes (1 thread each)")
    ap.add_argument("--memory-limit", default="5GiB", help="per Dask worker")
    ap.add_argument("--interval", type=float, default=0.5, help="memory sampling interval, s")
    ap.add_argument("--compress", choices=["zstd", "deflate"], default="zstd", help="land-cover GeoTIFFs")
    ap.add_argument("--gen-workers", type=int, default=2, help="data generator processes")
    ap.add_argument("--no-split", action="store_true", help="skip the cost split measurement")
    ap.add_argument("--prefect-server", action="store_true",
                    help="run against a Prefect server started beforehand (as a scheduled run does), not "
                    "the temporary server a run without one starts in its own tree")
    ap.add_argument("--years", type=int, default=2,
                    help="land-cover years of the run: 2 (the data's), or more from 1985 on, alternating "
                    "the data's two files (39: 1985-2023, the archive)")
    ap.add_argument("--zones", type=int, default=None,
                    help="zones: this many townships (Voronoi, inside the country) instead of the counties; "
                    "no compensation")
    ap.add_argument("--serial-growth-from", type=Path, default=None,
                    help="a reduced-extent run folder (e.g. bench-output/national/scale-0.01) with runs of 2 "
                    "and 39 years: the projection's serial CPU grows as measured there, not as the stage's "
                    "work")
    ap.add_argument("--report-only", action="store_true",
                    help="analyse the last run's raw.json and memory.csv again, run nothing")
    a = ap.parse_args(argv)
    if not 0 < a.scale <= 1:
        ap.error("--scale must be in (0, 1]")
    from benchmarks.national_data import _root

    if a.years < 2:
        ap.error("--years must be 2 or more")
    root = run_root(_root(a.out, a.scale), a.years, a.zones)
    raw = json.loads((root / "raw.json").read_text()) if a.report_only else measure(a, argv)
    res = analyse(raw, root, serial_growth(a.serial_growth_from) if a.serial_growth_from else None)
    m = res["machine"]
    print(f"\nCommit {res['commit']}; {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB; "
          f"Python {m['python']}; load at start {m['load_avg_at_start'][0]:.2f}, mean during the run "
          f"{res['run']['load_mean']:.2f}")
    print(f"Run: {res['run']['wall_s']:.0f} s, peak of the tree {res['run']['peak_tree_gb']:.2f} GB, "
          f"largest process {res['run']['peak_process_gb']:.2f} GB ({res['run']['peak_by_role_gb']})\n")
    print(markdown(res))
    print(f"\nresults: {root / 'results.json'}")


if __name__ == "__main__":
    main()

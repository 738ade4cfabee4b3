"""The figures stage's Dask workers, task by task: what a worker's memory does over a run's years.

    python -m benchmarks.run --suite figures_workers CONFIG [CONFIG ...] [--interval 0.5]
        [--probe {none,gc,trim}] [--out bench-output/figures-workers]

Each CONFIG is a finished run's ``config.yaml`` (e.g. the national benchmark's 2- and 39-year runs
at ``--scale 0.01``, copied with their output folder: the stage rewrites ``<output>/figures/``).
For each, in turn, the figures stage (:func:`ecodask.run.stages.figures.run`) runs as a run calls
it, under the config's own cluster (:func:`ecodask.run.cluster.dask_client`; the benchmark's: a
LocalCluster of 2 process workers of 1 thread), on fresh workers. Measured:

- every worker's RSS every ``--interval`` s (psutil, from this process, as ``benchmarks/national.py``
  samples a run);
- in each worker, around every task (a worker plugin; 1 thread, so tasks run one at a time): the
  task's peak RSS (``VmHWM`` reset through ``/proc/self/clear_refs`` when it starts), the RSS when it
  ends (anonymous and file-backed), its threads, and glibc's heap then (``mallinfo2``: bytes in use
  and free in malloc's arenas, bytes in its own mmaps);
- ``--probe gc``: then the objects Python's collector tracks, a full collection (objects freed,
  seconds) and the RSS after it; after each ``year_maps`` task the tracked objects by type.
  ``--probe trim``: ``malloc_trim(0)`` and the RSS after it (what glibc holds and could give back).
  A probe changes what later tasks start from: a run of its own, not the plain one;
- after the stage, what the worker's statistical profiler (``distributed.worker.profile``) keeps:
  its 1-s cycles, their call-tree nodes and their size, and the RSS before and after they are
  dropped.

Prints one line per task and a summary per run; writes
``<out>/<config's folder>-<years>y[-probe].json``.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import shutil
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from dask.utils import key_split
from distributed.diagnostics.plugin import WorkerPlugin


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                     "usmblks", "fsmblks", "uordblks", "fordblks",
                                                     "keepcost")]


def _libc():  # noqa: ANN202 - ctypes.CDLL or None (not glibc)
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        return None
    return libc


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class TaskMemory(WorkerPlugin):
    """Records, in the worker, each task's peak and final RSS and glibc's heap (see the module)."""

    name = "figures-task-memory"

    def __init__(self, probe: str = "none") -> None:
        self.probe = probe

    def setup(self, worker) -> None:  # noqa: ANN001 - distributed.Worker
        self.records: list[dict] = []
        self.libc = _libc()
        self.env_trim = os.environ.get("MALLOC_TRIM_THRESHOLD_")

    def transition(self, key, start: str, finish: str, **kwargs) -> None:  # noqa: ANN001 - Dask key
        if finish == "executing":
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM: the task's own peak
            self._t0 = time.time()
        elif start == "executing":
            rec = {"task": key_split(key), "start": self._t0, "end": time.time(),
                   "peak_mb": _status_kb("VmHWM") / 1024, "rss_mb": _status_kb("VmRSS") / 1024,
                   "anon_mb": _status_kb("RssAnon") / 1024, "file_mb": _status_kb("RssFile") / 1024,
                   "threads": _status_kb("Threads")}
            if self.libc is not None:
                m = self.libc.mallinfo2()
                rec |= {"heap_used_mb": m.uordblks / 2**20, "heap_free_mb": m.fordblks / 2**20,
                        "mmapped_mb": m.hblkhd / 2**20}
            if self.probe == "gc":
                rec["tracked"] = len(gc.get_objects())
                t = time.perf_counter()
                rec["collected"] = gc.collect()
                rec["gc_s"] = time.perf_counter() - t
                rec["rss_after_gc_mb"] = _status_kb("VmRSS") / 1024
                if rec["task"] == "year_maps":  # what the collector tracks, by type
                    objs = gc.get_objects()
                    rec["types"] = dict(Counter(type(o).__qualname__ for o in objs))
                    del objs
            if self.probe == "trim" and self.libc is not None:
                self.libc.malloc_trim(0)
                rec["rss_after_trim_mb"] = _status_kb("VmRSS") / 1024
            self.records.append(rec)


def _records(dask_worker) -> dict:  # noqa: ANN001 - distributed.Worker
    plugin = dask_worker.plugins[TaskMemory.name]
    return {"pid": os.getpid(), "env_trim": plugin.env_trim, "records": plugin.records}


def _profile_kept(dask_worker) -> dict:  # noqa: ANN001 - distributed.Worker
    """What the worker's statistical profiler (``distributed.worker.profile``) keeps: its 1-s cycles
    (all tasks, and by task prefix; at most ``distributed.admin.low-level-log-length`` each), their
    call-tree nodes, and the RSS before and after they are dropped and collected."""
    seen: set[int] = set()

    def nodes(tree: dict) -> int:
        if id(tree) in seen:
            return 0
        seen.add(id(tree))
        return 1 + sum(nodes(c) for c in tree["children"].values())

    trees = [p for _, p in dask_worker.profile_history]
    trees += [p for _, d in dask_worker.profile_keys_history for p in d.values()]
    n = sum(nodes(p) for p in trees)
    sized: set[int] = set()

    def size(o: object) -> int:  # deep size of the trees' dicts, lists and scalars, each once
        if id(o) in sized:
            return 0
        sized.add(id(o))
        b = sys.getsizeof(o)
        if isinstance(o, dict):
            b += sum(size(k) + size(v) for k, v in o.items())
        elif isinstance(o, (list, tuple)):
            b += sum(size(v) for v in o)
        return b

    mb = sum(size(p) for p in trees) / 2**20
    cycles = len(dask_worker.profile_history)
    gc.collect()
    before = _status_kb("VmRSS") / 1024
    dask_worker.profile_history.clear()
    dask_worker.profile_keys_history.clear()
    gc.collect()
    after = _status_kb("VmRSS") / 1024
    return {"cycles": cycles, "nodes": n, "mb": mb, "rss_mb": before, "rss_without_mb": after}


def _sample(pids: list[int], interval: float, stop: threading.Event, out: list) -> None:
    import psutil

    procs = [psutil.Process(p) for p in pids]
    while not stop.is_set():
        row = [time.time()]
        for p in procs:
            try:
                row.append(p.memory_info().rss)
            except psutil.Error:
                row.append(0)
        out.append(row)
        stop.wait(interval)


def run_one(config: Path, interval: float, probe: str) -> dict:
    """The figures stage of ``config``'s finished run on fresh workers; what they measured."""
    from ecodask.io.layout import RunFolder
    from ecodask.run.cluster import dask_client
    from ecodask.run.config import load_config
    from ecodask.run.stages import figures

    cfg = load_config(config)
    folder = RunFolder(cfg.output)
    shutil.rmtree(folder.figures, ignore_errors=True)
    folder.figures.mkdir(parents=True)
    with dask_client(cfg.cluster) as client:
        client.register_plugin(TaskMemory(probe))
        pids = client.run(os.getpid)  # {worker address: pid}
        addresses = sorted(pids)
        samples: list = []
        stop = threading.Event()
        sampler = threading.Thread(target=_sample, args=([pids[a] for a in addresses], interval, stop,
                                                         samples), daemon=True)
        load0 = os.getloadavg()[0]
        t0 = time.time()
        sampler.start()
        paths = figures.run(cfg, folder.store)
        wall = time.time() - t0
        stop.set()
        sampler.join()
        per_worker = client.run(_records)
        profiles = client.run(_profile_kept)
    years = len(cfg.landcover.years)
    workers = []
    for i, a in enumerate(addresses):
        w = per_worker[a]
        workers.append({"pid": w["pid"], "env_trim": w["env_trim"], "tasks": w["records"],
                        "profile": profiles[a],
                        "sampled_peak_mb": max((s[i + 1] for s in samples), default=0) / 2**20,
                        "rss_mb": [[round(s[0] - t0, 2), round(s[i + 1] / 2**20, 1)] for s in samples]})
    return {"config": str(config), "years": years, "figures": len(paths), "wall_s": wall,
            "load_start": load0, "load_end": os.getloadavg()[0], "probe": probe,
            "t0": t0, "workers": workers}


#: What a task's line shows besides its time, peak and RSS.
FIELDS = ("anon_mb", "file_mb", "threads", "heap_used_mb", "heap_free_mb", "mmapped_mb", "tracked",
          "collected", "gc_s", "rss_after_gc_mb", "rss_after_trim_mb")


def summary(r: dict) -> str:
    probe = "" if r["probe"] == "none" else f" (probe: {r['probe']})"
    lines = [f"## {r['years']} years{probe}: {r['figures']} figures in {r['wall_s']:.1f} s, "
             f"load {r['load_start']:.2f} -> {r['load_end']:.2f}"]
    for k, w in enumerate(r["workers"]):
        maps = [t for t in w["tasks"] if t["task"] == "year_maps"]
        p = w["profile"]
        lines.append(f"worker {k} (MALLOC_TRIM_THRESHOLD_={w['env_trim']}): sampled peak "
                     f"{w['sampled_peak_mb']:.0f} MB, {len(w['tasks'])} tasks, {len(maps)} years' maps; "
                     f"profiler: {p['cycles']} cycles, {p['nodes']} nodes, {p['mb']:.1f} MB; RSS "
                     f"{p['rss_mb']:.0f} MB, {p['rss_without_mb']:.0f} MB without them")
        for t in w["tasks"]:
            extra = "".join(f" {f}={t[f]:.3g}" for f in FIELDS if f in t)
            lines.append(f"  {t['task']:<14} {t['end'] - t['start']:6.2f} s  peak {t['peak_mb']:6.0f} MB"
                         f"  rss {t['rss_mb']:6.0f} MB{extra}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("configs", type=Path, nargs="+")
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--probe", choices=("none", "gc", "trim"), default="none")
    ap.add_argument("--out", type=Path, default=Path("bench-output/figures-workers"))
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    for config in a.configs:
        r = run_one(config, a.interval, a.probe)
        print(summary(r), flush=True)
        probe = "" if a.probe == "none" else f"-{a.probe}"
        name = f"{Path(r['config']).parent.name}-{r['years']}y{probe}.json"
        (a.out / name).write_text(json.dumps(r, indent=1))


if __name__ == "__main__":
    # the plugin pickled by reference to this module (the workers import it), not by value
    from benchmarks.figures_workers import main as _main

    _main()

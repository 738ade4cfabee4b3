"""Where the driver analysis spends its CPU: the flow's process (the one calling the stage's
``run``: it builds the graph, holds the scheduler of a LocalCluster and writes the tables) against
the Dask workers, for a synthetic region of many years:

    python -m benchmarks.run --suite driver_years [--years 20] [--width-km 60 --height-km 45]
        [--repeats 2] [--out bench-output/driver_years]

Data: :func:`ecodask.synth.make_region` (its drivers, its counties) with ``years`` consecutive
years, ingested and valued once (``ingest``, ``transitions_esv``) on the region's LocalCluster
(2 worker processes). Then ``driver_analysis`` is run ``repeats`` times on that cluster: its wall
time, the CPU of this process (psutil, user + system, every thread: the scheduler's too) and the
CPU of the worker processes. Target (issue 18): the flow's process at most 5 % of the stage's CPU;
on a small grid the stage's fixed costs (imports, the scheduler) weigh more than at national scale.
Prints a Markdown table and writes driver_years-results.json.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from benchmarks.env import code_state, machine, timed


def _cpu(p) -> float:
    c = p.cpu_times()
    return c.user + c.system


def main(argv: list[str] | None = None) -> None:
    import psutil

    from ecodask.io.layout import RunFolder
    from ecodask.run.cluster import dask_client
    from ecodask.run.config import load_config
    from ecodask.run.stages import BY_NAME
    from ecodask.synth import make_region

    ap = argparse.ArgumentParser(prog="benchmarks.run --suite driver_years")
    ap.add_argument("--suite")
    ap.add_argument("--years", type=int, default=20)
    ap.add_argument("--width-km", type=float, default=60.0)
    ap.add_argument("--height-km", type=float, default=45.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("bench-output/driver_years"))
    a = ap.parse_args(argv)
    region = a.out / f"region-{a.years}y"
    config = region / "config.yaml"
    if not config.exists():
        make_region(region, years=list(range(2000, 2000 + a.years)), width_km=a.width_km,
                    height_km=a.height_km)
    cfg = load_config(config)
    me = psutil.Process()
    rows = []
    with dask_client(cfg.cluster) as client:
        client.wait_for_workers(cfg.cluster.n_workers)
        store = RunFolder(cfg.output).store
        if not (store / "analysis" / "esv_density").exists():
            out = BY_NAME["ingest"].run(cfg, None)
            BY_NAME["transitions_esv"].run(cfg, Path(out["store"]))
        for _ in range(a.repeats):
            workers = {p.pid: _cpu(p) for p in me.children(recursive=True)}
            flow = _cpu(me)
            load = os.getloadavg()[0]
            _, wall = timed(lambda: BY_NAME["driver_analysis"].run(cfg, store))
            flow = _cpu(me) - flow
            worker = sum(_cpu(p) - workers.get(p.pid, 0.0) for p in me.children(recursive=True))
            rows.append({"years": a.years, "wall_s": wall, "flow_cpu_s": flow, "workers_cpu_s": worker,
                         "flow_share": flow / (flow + worker), "load_1min": load})
    import xarray as xr

    ana = xr.open_zarr(store, group="analysis", consolidated=False)
    cells = ana.sizes["y"] * ana.sizes["x"]
    print(f"\n{a.years} years, {ana.sizes['y']} x {ana.sizes['x']} analysis cells, "
          f"{len(cfg.drivers)} drivers\n")
    print("| run | wall, s | flow process CPU, s | workers CPU, s | flow share | load |")
    print("|---|---|---|---|---|---|")
    for i, r in enumerate(rows, 1):
        print(f"| {i} | {r['wall_s']:.1f} | {r['flow_cpu_s']:.1f} | {r['workers_cpu_s']:.1f} | "
              f"{r['flow_share']:.0%} | {r['load_1min']:.2f} |")
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "driver_years-results.json").write_text(json.dumps(
        {"machine": machine(["dask", "distributed", "numpy"]), "code": code_state(), "cells": cells,
         "rows": rows}, indent=2) + "\n")

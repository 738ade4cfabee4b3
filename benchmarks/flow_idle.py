"""What an idle local cluster costs the flow's process: its CPU seconds over a wait while the
cluster does nothing (the nannies' and servers' periodic work, the client's heartbeats), with
Dask's own periods and with the run's (:data:`ecodask.run.cluster.FLOW_PERIODS`).

    python -m benchmarks.run --suite flow_idle [--seconds 30] [--workers 2]

Each case is a fresh process (``--case``) opening the run's cluster (:func:`ecodask.run.cluster.
dask_client`: process workers, the scheduler in a process of its own), waiting 3 s for it to
settle, then measuring its own CPU (``getrusage``) over ``--seconds``. "dask defaults" sets Dask's
periods back for the flow's process, as before the run set its own."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from benchmarks.env import code_state


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def case(periods: str, seconds: float, workers: int) -> dict:
    """One measurement in this process: the flow's CPU seconds over ``seconds`` of an idle cluster."""
    from ecodask.run import cluster
    from ecodask.run.config import ClusterConfig

    if periods == "dask defaults":
        cluster.FLOW_PERIODS = cluster.worker_periods()  # the flow's periods as Dask has them
    cfg = ClusterConfig(kind="local", n_workers=workers, threads_per_worker=1, memory_limit="2GiB")
    with cluster.dask_client(cfg) as client:
        client.wait_for_workers(workers)
        time.sleep(3.0)
        start = _cpu()
        time.sleep(seconds)
        spent = _cpu() - start
    return {"periods": periods, "seconds": seconds, "workers": workers, "flow_cpu_s": spent}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--case", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.case:
        print(json.dumps(case(a.case, a.seconds, a.workers)))
        return
    rows = []
    for periods in ("dask defaults", "the run's"):
        load = os.getloadavg()[0]
        out = subprocess.run([sys.executable, "-m", "benchmarks.flow_idle", "--case", periods, "--seconds",
                              str(a.seconds), "--workers", str(a.workers)], capture_output=True, text=True,
                             check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]) | {"load_before": load})
    print(f"commit {code_state()['commit']}; {a.workers} process workers, idle {a.seconds:.0f} s")
    print("\n| the flow's periods | flow CPU s | share of a core | load before |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['periods']} | {r['flow_cpu_s']:.2f} | {r['flow_cpu_s'] / r['seconds']:.1%} | "
              f"{r['load_before']:.2f} |")


if __name__ == "__main__":
    main()

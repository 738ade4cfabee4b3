"""The run's Dask cluster applies the configuration's worker memory management: a real local
cluster's process workers run with the configured spill/pause/terminate fractions, memory limit and
spill folder. Its scheduler runs in a process of its own, which ends with the flow's process, even
one killed with SIGKILL."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import dask
import psutil
import pytest

from ecodask.run.cluster import FLOW_PERIODS, PROFILE, dask_client, worker_env, worker_periods
from ecodask.run.config import ClusterConfig, MemoryConfig

from helpers import deadline, wait_until


@pytest.mark.slow  # a LocalCluster of worker processes
def test_local_workers_get_the_memory_settings(tmp_path: Path) -> None:
    cfg = ClusterConfig(n_workers=2, threads_per_worker=1, memory_limit="1GiB", local_directory=str(tmp_path),
                        memory={"target": 0.5, "spill": 0.6, "pause": 0.75, "terminate": 0.9})
    before = dask.config.get("distributed.worker.memory.spill")

    def _worker_settings(dask_worker) -> dict:  # runs in each worker process
        import dask as d

        keys = ("target", "spill", "pause", "terminate")
        return {"memory": {k: d.config.get(f"distributed.worker.memory.{k}") for k in keys},
                "limit": dask_worker.memory_manager.memory_limit,
                "local_directory": dask_worker.local_directory,
                "periods": {k: d.config.get(k) for k in FLOW_PERIODS},
                "profiling": "profile" in dask_worker.periodic_callbacks,
                "arrow": __import__("pyarrow").default_memory_pool().backend_name}

    defaults = worker_periods()
    assert defaults != FLOW_PERIODS
    with dask_client(cfg) as client:
        client.wait_for_workers(2, timeout=deadline(60))
        settings = list(client.run(_worker_settings).values())
        # The flow's nannies look at their workers' memory every 0.5 s; the workers keep Dask's periods.
        nannies = list(client.cluster.workers.values())
        assert [n.memory_manager.memory_monitor_interval for n in nannies] == [0.5, 0.5]
    assert len(settings) == 2
    for s in settings:
        assert s["memory"] == {"target": 0.5, "spill": 0.6, "pause": 0.75, "terminate": 0.9}
        assert s["limit"] == 2**30
        assert Path(s["local_directory"]).is_relative_to(tmp_path)
        assert s["periods"] == defaults
        assert not s["profiling"]  # Dask's profiler is off unless the run asks for it
        assert s["arrow"] == "system"  # Arrow's buffers from malloc, not a pool that keeps freed pages
    assert dask.config.get("distributed.worker.memory.spill") == before  # set for the cluster only
    assert worker_periods() == defaults


def test_worker_env_names_the_dask_settings() -> None:
    env = worker_env(MemoryConfig(spill=0.65))
    assert env == {"DASK_DISTRIBUTED__WORKER__MEMORY__TARGET": "0.6",
                   "DASK_DISTRIBUTED__WORKER__MEMORY__SPILL": "0.65",
                   "DASK_DISTRIBUTED__WORKER__MEMORY__PAUSE": "0.8",
                   "DASK_DISTRIBUTED__WORKER__MEMORY__TERMINATE": "0.95",
                   "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False"}
    assert worker_env(MemoryConfig(), profile=True)["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"] == "True"
    # Dask reads them back as the same settings.
    import os

    saved = {k: os.environ.get(k) for k in env}
    try:
        os.environ.update(env)
        read = dask.config.collect(env=os.environ)["distributed"]["worker"]
        assert read["memory"]["spill"] == 0.65
        assert read["profile"]["enabled"] is False
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v


@pytest.mark.parametrize("profile", [False, True])
def test_the_workers_profile_only_when_the_run_asks(profile: bool) -> None:
    # Dask's profiler keeps a tree of stacks for each of the last 1,000 s: a worker's memory would
    # grow with the run's time (BENCHMARKS.md, "The archive's 39 years"). Thread workers here: each
    # reads the setting when it is made, as a process worker does.
    cfg = ClusterConfig(n_workers=1, processes=False, scheduler_process=False, profile=profile)
    before = dask.config.get(PROFILE)
    with dask_client(cfg) as client:
        [worker] = client.cluster.workers.values()
        assert ("profile" in worker.periodic_callbacks) is profile
        assert ("profile-cycle" in worker.periodic_callbacks) is profile
    assert dask.config.get(PROFILE) == before  # set for the cluster only


def test_a_run_takes_arrows_buffers_from_malloc() -> None:
    # Arrow's bundled mimalloc keeps freed pages: the flow and each worker grew with the archive's
    # years (BENCHMARKS.md, "The archive's 39 years"). Process workers: the slow test above.
    import pyarrow as pa

    pa.set_memory_pool(pa.mimalloc_memory_pool())  # Arrow's default here, so that the check can fail
    with dask_client(ClusterConfig(n_workers=1, processes=False, scheduler_process=False)) as client:
        assert pa.default_memory_pool().backend_name == "system"
        pools = client.run(lambda: __import__("pyarrow").default_memory_pool().backend_name)
        assert list(pools.values()) == ["system"]


@pytest.mark.slow  # a local cluster of worker processes, in a process killed
def test_the_scheduler_runs_apart_and_ends_with_the_flow(tmp_path: Path) -> None:
    """The scheduler is not in the flow's process; killing the flow (SIGKILL: nothing of it runs)
    ends the scheduler and the workers too, none left behind."""
    script = tmp_path / "flow.py"
    script.write_text(
        "import json, os, sys\n"
        "from ecodask.run.cluster import dask_client\n"
        "from ecodask.run.config import ClusterConfig\n"
        "if __name__ == '__main__':\n"
        "    with dask_client(ClusterConfig(n_workers=2, memory_limit='1GiB')) as client:\n"
        "        client.wait_for_workers(2)\n"
        "        pids = {'flow': os.getpid(), 'scheduler': client.run_on_scheduler(os.getpid),\n"
        "                'workers': sorted(client.run(os.getpid).values()),\n"
        "                'sum': client.submit(sum, [1, 2]).result()}\n"
        "        print(json.dumps(pids), flush=True)\n"
        "        sys.stdin.read()\n", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        pids = json.loads(proc.stdout.readline())  # blocks until the cluster computed: an event
        assert pids["sum"] == 3
        assert pids["scheduler"] not in (pids["flow"], *pids["workers"])
        assert psutil.Process(pids["scheduler"]).ppid() == pids["flow"]
        os.kill(pids["flow"], signal.SIGKILL)
        proc.wait(deadline(30))
        left = [pids["scheduler"], *pids["workers"]]

        def alive() -> list[int]:
            return [p for p in left
                    if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]

        wait_until(lambda: not alive(), 60, lambda: f"processes left after the flow was killed: {alive()}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

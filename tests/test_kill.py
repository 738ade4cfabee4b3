"""Fault tolerance with real kills: a Dask worker process killed by pid in the middle of a stage (the
stage completes, its output byte-identical to an undisturbed run's), and the whole flow process
group killed in the middle of a run (a rerun completes, every output byte-identical to an
uninterrupted run's, the stages finished before the kill not redone)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ecodask.io.layout import RunFolder
from ecodask.run import resume
from ecodask.run.cluster import dask_client
from ecodask.run.config import load_config
from ecodask.science.grid import CHINA_ALBERS

from conftest import PROCESSES, THREADS, make_tiny_region
from helpers import deadline, digest, run_stages, stage_call, wait_until

pytestmark = pytest.mark.slow  # worker processes and whole runs, killed

#: Big enough for many chunk tasks per stage (2 years of 1024 x 1024 px in 128 px chunks: 64 a year).
SHAPE = (1024, 1024)
GRID = {"crs": CHINA_ALBERS, "resolution": 30, "analysis_factor": 32, "chunk_size": 128}


def _region(folder: Path, cluster: dict = PROCESSES) -> Path:
    return make_tiny_region(folder, shape=SHAPE, grid=GRID, cluster=cluster)


def _digest(folder: Path) -> dict[str, object]:
    """sha256 of every file under ``folder`` by relative path, leaving out the run record, the report
    and the stage manifests (they name the folder)."""
    return digest(folder, skip=("run.json", "report.html", ".ecodask"))


def _same(got: dict[str, str], want: dict[str, str]) -> None:
    """Equal digests, else the files that differ, are missing or are extra, by name."""
    differ = sorted(k for k in got.keys() & want.keys() if got[k] != want[k])
    assert got == want, {"differ": differ, "missing": sorted(want.keys() - got.keys()),
                         "extra": sorted(got.keys() - want.keys())}


class _WorkerKiller(threading.Thread):
    """Kills (SIGKILL, by pid) the process of a worker that is running tasks, once, as soon as one is."""

    def __init__(self, client) -> None:
        super().__init__(daemon=True)
        self.client, self.stop, self.killed = client, threading.Event(), {}
        self.pids = client.run(os.getpid)  # worker address -> pid

    def run(self) -> None:
        while not self.stop.is_set():
            busy = {w: keys for w, keys in self.client.processing().items() if keys and w in self.pids}
            if busy:
                addr, keys = next(iter(busy.items()))
                os.kill(self.pids[addr], signal.SIGKILL)
                self.killed = {"address": addr, "pid": self.pids[addr], "tasks_lost": len(keys)}
                return
            time.sleep(0.005)


@pytest.mark.parametrize("stage", ["ingest", "transitions_esv"])
def test_worker_killed_mid_stage(tmp_path: Path, stage: str) -> None:
    reference = load_config(_region(tmp_path / "reference"))
    cfg = load_config(_region(tmp_path / "killed"))
    with dask_client(reference.cluster):  # undisturbed: the stage's input for both, the reference
        if stage != "ingest":
            for c in (reference, cfg):
                run_stages(c, "ingest")
        run_stages(reference, stage)
    with dask_client(cfg.cluster) as client:
        client.wait_for_workers(2, timeout=deadline(60))
        killer = _WorkerKiller(client)
        finished_at_kill = threading.Event()
        killer.start()
        key = resume.plan(cfg)[stage]
        resume.run_stage(cfg, stage, key, stage_call(cfg, stage), log=str)
        finished_at_kill.set()
        killer.stop.set()
        killer.join()
        assert killer.killed, "no worker was running a task: the kill never happened"
        assert killer.killed["tasks_lost"] >= 1
        # The nanny restarted the worker: a new process in place of the killed one.
        client.wait_for_workers(2, timeout=deadline(60))
        assert killer.killed["pid"] not in client.run(os.getpid).values()
    assert resume.finished(cfg, stage, key) is not None
    _same(_digest(cfg.output), _digest(reference.output))


def _ecodask(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ecodask.cli", *args], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _run_to_end(config: Path, env: dict[str, str]) -> str:
    proc = _ecodask("run", str(config), env=env)
    try:
        out, _ = proc.communicate(timeout=deadline(600))
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"ecodask run {config} did not finish:\n{out}")
    assert proc.returncode == 0, out
    return out


def test_flow_process_killed_mid_run(tmp_path: Path, prefect_api) -> None:
    # Worker threads in the flow's process: killing the process group kills them with it (a worker
    # process killed alone is test_worker_killed_mid_stage's), and a run costs ~2/3 of one on
    # worker processes.
    reference = _region(tmp_path / "reference", THREADS)
    _run_to_end(reference, prefect_api)
    config = _region(tmp_path / "killed", THREADS)
    out = RunFolder(config.parent / "out")
    proc = _ecodask("run", str(config), env=prefect_api)
    # Kill the flow and its Dask workers (the whole process group, as a machine going down would)
    # while the transitions + ESV stage is writing its grids: ingest finished, that stage not.
    layers = out.root / "stages" / "transitions_esv"  # where the stage writes its arrays

    def writing() -> bool:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        return any((layer / "esv" / "zarr.json").exists() for layer in layers.glob("*"))

    try:
        wait_until(writing, 300, "the transitions + ESV stage writing its grids", interval=0.01)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the group is gone if the run ended
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert out.manifest("ingest").exists()
    assert not out.manifest("transitions_esv").exists()
    assert not out.run_record.exists() and not out.store.exists()  # nothing published yet
    _run_to_end(config, prefect_api)
    record = json.loads(out.run_record.read_text())
    assert record["stage_ran"] == {"ingest": False, "transitions_esv": True, "driver_analysis": True,
                                   "compensation": True, "figures": True}
    _same(_digest(out.root), _digest(reference.parent / "out"))

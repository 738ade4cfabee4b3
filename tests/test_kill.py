"""Fault tolerance with real kills: a Dask worker process killed by pid in the middle of a stage (the
stage completes, its output byte-identical to an undisturbed run's), and the whole flow process
group killed in the middle of a run (a rerun completes, every output byte-identical to an
uninterrupted run's, the stages finished before the kill not redone)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ecodask.run import resume

from ecodask.run.stages import transitions_esv as stages
from ecodask.run.cluster import dask_client
from ecodask.run.config import load_config
from ecodask.science.grid import CHINA_ALBERS
from ecodask.io.grids import STAGING

from conftest import make_tiny_region

#: Big enough for many chunk tasks per stage (2 years of 1024 x 1024 px in 128 px chunks: 64 a year).
SHAPE = (1024, 1024)
GRID = {"crs": CHINA_ALBERS, "resolution": 30, "analysis_factor": 32, "chunk_size": 128}


def _region(folder: Path) -> Path:
    return make_tiny_region(folder, shape=SHAPE, grid=GRID)


def _digest(folder: Path, skip: tuple[str, ...] = ("run.json", "report.html", ".ecodask")) -> dict[str, str]:
    """sha256 of every file under ``folder`` by relative path, leaving out the run record and the
    stage manifests (they name the folder)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and not any(part in skip for part in p.relative_to(folder).parts)}


def _same(got: dict[str, str], want: dict[str, str]) -> None:
    """Equal digests, else the files that differ, are missing or are extra, by name."""
    differ = sorted(k for k in got.keys() & want.keys() if got[k] != want[k])
    assert got == want, {"differ": differ, "missing": sorted(want.keys() - got.keys()),
                         "extra": sorted(got.keys() - want.keys())}


def _ingest(cfg):
    return lambda: {"store": stages.ingest_stage(cfg)}


def _land_esv(cfg):
    return lambda: stages.land_esv_stage(cfg, cfg.output / "store.zarr")


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
    for c in (reference, cfg):
        if stage != "ingest":  # the stage's input, computed undisturbed
            with dask_client(c.cluster):
                _ingest(c)()
    fn = {"ingest": _ingest, "transitions_esv": _land_esv}[stage]
    with dask_client(reference.cluster):
        fn(reference)()
    with dask_client(cfg.cluster) as client:
        client.wait_for_workers(2)
        killer = _WorkerKiller(client)
        finished_at_kill = threading.Event()
        killer.start()
        key = resume.plan(cfg)[stage]
        resume.run_stage(cfg, stage, key, fn(cfg), log=str)
        finished_at_kill.set()
        killer.stop.set()
        killer.join()
        assert killer.killed, "no worker was running a task: the kill never happened"
        assert killer.killed["tasks_lost"] >= 1
        # The nanny restarted the worker: a new process in place of the killed one.
        client.wait_for_workers(2, timeout=60)
        assert killer.killed["pid"] not in client.run(os.getpid).values()
    assert resume.finished(cfg, stage, key) is not None
    _same(_digest(cfg.output), _digest(reference.output))


def _ecodask(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ecodask.cli", *args], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _run_to_end(config: Path, env: dict[str, str]) -> str:
    proc = _ecodask("run", str(config), env=env)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    return out


def test_flow_process_killed_mid_run(tmp_path: Path, prefect_api) -> None:
    reference = _region(tmp_path / "reference")
    _run_to_end(reference, prefect_api)
    config = _region(tmp_path / "killed")
    out = config.parent / "out"
    proc = _ecodask("run", str(config), env=prefect_api)
    # Kill the flow and its Dask workers (the whole process group, as a machine going down would)
    # while the transitions + ESV stage is writing its grids: ingest finished, that stage not.
    store = out / "store.zarr"
    deadline = time.monotonic() + 300
    while not (store.exists() and any(p.name.startswith(STAGING) for p in store.iterdir())):
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline, "the transitions + ESV stage never started"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (out / ".ecodask" / "stages" / "ingest.json").exists()
    assert not (out / ".ecodask" / "stages" / "transitions_esv.json").exists()
    assert not (out / "run.json").exists()
    _run_to_end(config, prefect_api)
    record = json.loads((out / "run.json").read_text())
    assert record["stage_ran"] == {"ingest": False, "transitions_esv": True, "driver_analysis": True,
                                   "compensation": True, "figures": True}
    _same(_digest(out), _digest(reference.parent / "out"))

"""A cluster whose workers share no disk with the flow: each Dask worker runs in a mount namespace of
its own (``unshare``) where the flow's work folder and the other worker's folder are empty
file systems, with a private folder of its own; the run's inputs and output are in a bucket (a local
moto S3 server). The flow writes only its small files in its work folder; the store's chunks are
written to the bucket by the workers.

Proved here: the whole flow on that cluster writes the tables of a run of the same inputs on local
disk byte for byte and its arrays value for value, and nothing on the workers' disks, even while a
worker is killed as it writes chunks to the bucket (its tasks redone by the other worker) and the
bucket fails a share of requests; so does a run whose flow process is killed mid-stage and then rerun.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ecodask.io import objstore
from ecodask.io.layers import committed
from ecodask.run import resume
from ecodask.run.config import load_config
from flows.run import run_flow

from conftest import make_tiny_region
from helpers import (
    assert_same_arrays,
    deadline,
    ecodask_run,
    finished_ok,
    inputs_in_bucket,
    kill_once,
    objects_under,
    run_stages,
    wait_until,
)
from s3_server import served_bucket

BUCKET = "ecodask-private"
KEY_ID, SECRET = "AKIAECODASKPRIVATE01", "s3cr3t/private+Test0123456789abcdefghij"
SHAPE = (512, 512)  # 16 chunks of 128 px a year: writes a worker can be caught in
# The reference run's cluster (in this process's Dask, threads); the remote runs use the harness's.
LOCAL_CLUSTER = {"kind": "local", "n_workers": 1, "threads_per_worker": 2, "memory_limit": "2GiB"}

pytestmark = pytest.mark.slow  # a moto S3 server, a Prefect server, a Dask cluster of processes


def _namespaces_work() -> bool:
    probe = subprocess.run(["unshare", "-r", "-m", "true"], capture_output=True)  # noqa: S607
    return shutil.which("unshare") is not None and probe.returncode == 0


needs_namespaces = pytest.mark.skipif(not (sys.platform == "linux" and shutil.which("unshare")
                                           and _namespaces_work()),
                                      reason="needs Linux user and mount namespaces (unshare -r -m)")


@pytest.fixture(scope="module")
def s3_server():
    with served_bucket(BUCKET, KEY_ID, SECRET) as server:
        yield server


@pytest.fixture(scope="module")
def s3(s3_server):
    fs, _ = objstore.filesystem(f"s3://{BUCKET}")
    return fs


class Harness:
    """A Dask scheduler and workers as processes: each worker in its own mount namespace, with a
    private folder, where ``hidden`` folders (the flow's) are empty."""

    def __init__(self, root: Path, hidden: list[Path]) -> None:
        self.root, self.hidden = root, hidden
        self.scheduler_file = root / "scheduler.json"
        self.procs: dict[str, subprocess.Popen] = {}
        self.folders: dict[str, Path] = {}

    def start(self, n_workers: int = 2) -> None:
        self.procs["scheduler"] = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
             "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(self.scheduler_file)],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.scheduler_file.is_file() and self.address, 60, "the scheduler's file")
        names = [f"private-{i}" for i in range(n_workers)]
        self.folders = {n: self.root / n for n in names}
        for name in names:
            self.folders[name].mkdir()
            others = [f for n, f in self.folders.items() if n != name]
            mounts = " && ".join(f"mount -t tmpfs -o size=1m hidden {shlex.quote(str(p))}"
                                 for p in [*self.hidden, *others])
            worker = shlex.join([sys.executable, "-m", "distributed.cli.dask_worker", self.address,
                                 "--no-nanny", "--nthreads", "1", "--memory-limit", "2GiB", "--name", name,
                                 "--local-directory", str(self.folders[name])])
            cmd = f"{mounts} && cd {shlex.quote(str(self.folders[name]))} && exec {worker}"
            self.procs[name] = subprocess.Popen(["unshare", "-r", "-m", "sh", "-c", cmd],  # noqa: S607
                                                start_new_session=True, stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
        with self.client() as client:
            client.wait_for_workers(n_workers, timeout=deadline(120))

    @property
    def address(self) -> str:
        try:
            return json.loads(self.scheduler_file.read_text())["address"]
        except (OSError, ValueError, KeyError):
            return ""

    def client(self):  # noqa: ANN201 - distributed.Client
        from distributed import Client

        return Client(self.address, timeout=deadline(60))

    def kill(self, name: str) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait()

    def stop(self) -> None:
        for name in list(self.procs):
            self.kill(name)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    flow = tmp_path / "flow"
    flow.mkdir()
    h = Harness(tmp_path, hidden=[flow])
    try:
        h.start()
        yield h
    finally:
        h.stop()


@pytest.fixture(scope="module")
def reference(s3, tmp_path_factory) -> tuple[Path, dict]:  # noqa: ANN001 - the bucket's filesystem
    """The region run on local disk (its output folder), and a configuration of the same inputs
    uploaded to the bucket (a mapping, without output, work folder or cluster)."""
    folder = tmp_path_factory.mktemp("reference")
    local_cfg = make_tiny_region(folder / "local", shape=SHAPE, cluster=LOCAL_CLUSTER)
    run_stages(load_config(local_cfg), "ingest", "transitions_esv", "driver_analysis", "compensation")
    doc = inputs_in_bucket(s3, local_cfg, f"s3://{BUCKET}/{folder.name}/inputs")
    return local_cfg.parent / "out", doc


def _remote(reference: tuple[Path, dict], folder: Path, out: str, address: str) -> tuple[Path, Path]:
    """The reference's output folder, and a configuration of its inputs in the bucket writing to
    ``out`` on the cluster at ``address``, working in ``folder/flow/work``."""
    local, doc = reference
    doc = doc | {"output": out, "work_dir": str(folder / "flow" / "work"),
                 "cluster": {"kind": "address", "address": address}}
    remote_cfg = folder / "remote.yaml"
    remote_cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    return local, remote_cfg


def _esv_chunks(remote_cfg: Path) -> str:
    """Where the run of ``remote_cfg`` writes the chunks of its 30 m ESV (bucket/key, no scheme)."""
    cfg = load_config(remote_cfg)
    layer = resume.store_arg(cfg, "transitions_esv", resume.plan(cfg), None).write
    return f"{layer.removeprefix('s3://')}/esv/c"


def _same_as_local(s3, out: str, local: Path, remote_cfg: Path) -> None:
    """The remote run's tables equal the local run's byte for byte, its arrays value for value."""
    s3.invalidate_cache()
    tables = {p.rsplit("/", 1)[1]: s3.cat_file(p) for p in s3.find(f"{out.removeprefix('s3://')}/tables")}
    assert set(tables) == {f.name for f in (local / "tables").iterdir()}
    assert {n for n, data in tables.items() if data != (local / "tables" / n).read_bytes()} == set()
    cfg = load_config(remote_cfg)
    assert resume.pending(cfg)[0] == {}  # every stage finished, as its manifest says
    assert_same_arrays(local / "store.zarr", committed(out))  # the run the bucket's pointer names


@needs_namespaces
def test_workers_without_the_flows_disk_write_the_local_runs_outputs_through_a_kill_and_faults(
        s3_server, s3, prefect_server, harness, reference, tmp_path: Path) -> None:
    with harness.client() as client:  # the workers cannot see the flow's folder, nor each other's
        (tmp_path / "flow" / "seen").write_text("the flow's")
        seen = client.run(lambda: sorted(os.listdir(tmp_path / "flow")))
        assert seen and all(v == [] for v in seen.values()), seen
    out = f"s3://{BUCKET}/runs/worker-killed"
    local, remote_cfg = _remote(reference, tmp_path, out, harness.address)
    layer = _esv_chunks(remote_cfg)

    s3_server.slow_puts(0.05)  # writes take a while: the worker is caught among them
    s3_server.faults(0.01, seed=11)  # 503 SlowDown and 500 InternalError on 1 % of the requests
    try:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:  # the flow sees this thread's settings (the test's server)
            run = pool.submit(contextvars.copy_context().run, run_flow, str(remote_cfg))
            wait_until(lambda: objects_under(s3, layer) or run.done(), 300,
                       "the first ESV chunks in the bucket", interval=0.02)
            assert not run.done(), run.result()
            written = len(s3.find(layer))
            harness.kill("private-0")  # SIGKILL, while the ESV stage writes its chunks
            s3_server.slow_puts(0)  # the rest at full speed (the faults go on)
            outputs = run.result(timeout=deadline(600))
    finally:
        s3_server.faults(0)
        s3_server.slow_puts(0)
    assert written < 2 * 16  # the stage was under way, not done
    assert s3_server.counts()["faults"] > 0
    _same_as_local(s3, out, local, remote_cfg)
    work = tmp_path / "flow" / "work" / "output"
    assert not (work / "store.zarr").exists() and outputs["store"].startswith(f"{out}/stages/ingest/")
    for folder in harness.folders.values():  # the workers kept nothing of the run
        assert not list(folder.rglob("*.zarr")) and not list(folder.rglob("*.parquet"))


@needs_namespaces
def test_a_flow_killed_mid_stage_reruns_to_the_same_outputs(s3_server, s3, prefect_api, harness, reference,
                                                            tmp_path: Path) -> None:
    out = f"s3://{BUCKET}/runs/flow-killed"
    local, remote_cfg = _remote(reference, tmp_path, out, harness.address)
    layer = _esv_chunks(remote_cfg)
    env = {**prefect_api, **{k: v for k, v in os.environ.items() if k.startswith("AWS_")}}
    s3_server.slow_puts(0.05)
    try:  # the flow's process, mid-stage; the cluster lives on
        kill_once(ecodask_run(remote_cfg, env), lambda: objects_under(s3, layer),
                  "the first ESV chunks in the bucket")
    finally:
        s3_server.slow_puts(0)
    s3.invalidate_cache()
    assert not s3.exists(f"{BUCKET}/runs/flow-killed/.ecodask/stages/transitions_esv.json")
    finished_ok(ecodask_run(remote_cfg, env))
    record = json.loads(s3.cat_file(f"{BUCKET}/runs/flow-killed/run.json"))
    assert record["stage_ran"]["ingest"] is False, record  # resumed at the first unfinished stage
    assert record["stage_ran"]["transitions_esv"] is True, record
    _same_as_local(s3, out, local, remote_cfg)

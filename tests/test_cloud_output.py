"""A run whose inputs and output are in Azure Blob Storage (``az://``, against Azurite) or Google Cloud
Storage (``gs://``, against fake-gcs-server), servers the tests start: the workers write the store's
layers and the run commits by its pointer, as on S3; the tables equal a local run's byte for byte and
the arrays value for value; a rerun verifies the objects' ETags from a listing and what it reads
back against their MD5s, and skips every stage; a process that wrote a store there exits quietly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from azurite_server import served_container
from gcs_server import served_gcs_bucket

from ecodask.io import bucket_lock, layers, objstore
from ecodask.io.layers import committed
from ecodask.run.config import load_config

from conftest import make_tiny_region
from helpers import (
    assert_same_arrays,
    deadline,
    ecodask_run,
    edit_yaml,
    finished_ok,
    inputs_in_bucket,
    run_stages,
)

pytestmark = pytest.mark.slow  # Azurite, fake-gcs-server, a Prefect server, whole runs as subprocesses

CONTAINER = "ecodask-cloud-test"
#: The variables that point a process at each local server (its credentials, its endpoint).
ENV_PREFIXES = {"az": ("AZURE_",), "gs": ("STORAGE_EMULATOR_HOST", "FSSPEC_GS_", "GCSFS_")}
CLUSTER = {"kind": "local", "n_workers": 1, "threads_per_worker": 2, "memory_limit": "2GiB"}


@pytest.fixture(scope="module", params=["az", "gs"])
def cloud(request):
    """The URL scheme and the container's (bucket's) filesystem, adlfs on Azurite or gcsfs on
    fake-gcs-server."""
    served = served_container if request.param == "az" else served_gcs_bucket
    with served(CONTAINER):
        fs, _ = objstore.filesystem(f"{request.param}://{CONTAINER}")
        yield request.param, fs


def test_an_output_in_cloud_storage_is_written_by_the_workers_and_committed(cloud, prefect_api,
                                                                            tmp_path: Path) -> None:
    scheme, az = cloud
    local_cfg = make_tiny_region(tmp_path / "local", cluster=CLUSTER)
    # with the cells' composition: an array the workers write into the layer, read back by a task a year
    edit_yaml(local_cfg, lambda d: d["esv"].update(cell_tradeoffs=True))
    run_stages(load_config(local_cfg), "ingest", "transitions_esv", "driver_analysis")
    local_tables = local_cfg.parent / "out" / "tables"
    doc = inputs_in_bucket(az, local_cfg, f"{scheme}://{CONTAINER}/inputs")
    out = f"{scheme}://{CONTAINER}/runs/tiny"
    doc |= {"output": out, "work_dir": "work"}
    remote_cfg = tmp_path / "remote" / "config.yaml"
    remote_cfg.parent.mkdir()
    remote_cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    env = {**prefect_api, **{k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES[scheme])}}

    finished_ok(ecodask_run(remote_cfg, env))
    az.invalidate_cache()
    pointer = layers.pointer(out)
    assert pointer is not None and {s["stage"] for s in pointer["stages"]} >= {"ingest", "transitions_esv"}
    for stage in pointer["stages"]:  # each stage's arrays in its own layer, written there by the workers
        assert az.exists(f"{CONTAINER}/runs/tiny/{stage['layer']}/zarr.json"), stage
    tables = {name.rpartition("/")[2]: az.cat_file(name) for name in az.find(f"{CONTAINER}/runs/tiny/tables")}
    assert {"esv_by_service.csv", "transitions.csv", "geodetector_factor.csv",
            "service_tradeoffs_cells.csv"} <= set(tables)
    differ = {name for name, data in tables.items()
              if (local_tables / name).is_file() and data != (local_tables / name).read_bytes()}
    assert not differ, differ
    assert_same_arrays(local_tables.parent / "store.zarr", committed(out))
    assert not az.exists(objstore.filesystem(bucket_lock.lock_url(out))[1])  # released

    # A rerun elsewhere (a fresh work folder) verifies what the container holds and skips it all.
    doc["work_dir"] = "work2"
    remote_cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    finished_ok(ecodask_run(remote_cfg, env))
    record = json.loads(az.cat_file(f"{CONTAINER}/runs/tiny/run.json"))
    assert not any(record["stage_ran"].values()), record["stage_ran"]
    assert layers.pointer(out) == pointer


def test_a_process_that_wrote_a_store_in_the_container_exits_quietly(cloud) -> None:
    # adlfs's clients for the stores zarr opens would each print a "Loop is not running" traceback
    # at exit (ecodask.io.azure_exit); a process that imported ecodask's object-store layer prints nothing.
    scheme, _ = cloud
    env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES[scheme]) or k in ("PATH", "HOME")}
    for imports in ("ecodask.io.objstore, zarr", "zarr, ecodask.io.objstore"):  # exit hooks in either order
        code = (f"import numpy as np, {imports}; "
                f"g = zarr.open_group('{scheme}://{CONTAINER}/exit-check', mode='w', zarr_format=3); "
                "a = g.create_array('x', shape=(8,), chunks=(4,), dtype='i4'); a[:] = np.arange(8); "
                "print(int(a[:].sum()))")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                              timeout=deadline(120))
        assert done.returncode == 0 and done.stdout.strip() == "28", done.stderr
        assert done.stderr == "", imports

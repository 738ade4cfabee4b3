"""The driver analysis runs one Dask task per year on the workers of a real distributed cluster
(worker processes), and a year that fails leaves the previous hot-spot arrays, tables and charts
whole, with nothing staged left behind."""

from __future__ import annotations

import threading
from pathlib import Path

import dask
import numpy as np
import pytest
import zarr
from dask.utils import key_split
from distributed import get_task_stream

from ecodask.errors import InputError
from ecodask.io.grids import STAGING
from ecodask.io.store import ANALYSIS_GROUP, ESV_DENSITY
from ecodask.run.cluster import dask_client
from ecodask.run.config import load_config
from ecodask.run.stages.driver_analysis import YEAR_TASK, _synchronous

from conftest import PROCESSES, make_tiny_region
from helpers import deadline, digest, run_stages

YEARS = (2000, 2005, 2010)


@pytest.mark.slow  # a LocalCluster of worker processes
def test_each_year_is_one_task_on_the_workers_and_a_failed_year_keeps_the_previous_output(
        tmp_path: Path) -> None:
    cfg = load_config(make_tiny_region(tmp_path / "r", years=YEARS, cluster=PROCESSES))
    store = cfg.output / "store.zarr"
    with dask_client(cfg.cluster) as client:
        client.wait_for_workers(2, timeout=deadline(60))
        workers = set(client.scheduler_info()["workers"])
        run_stages(cfg, "ingest", "transitions_esv")
        with get_task_stream(client) as stream:
            run_stages(cfg, "driver_analysis")
        ran = [t for t in stream.data if key_split(t["key"]) == YEAR_TASK]
        assert sorted(int(t["key"].split("-")[1]) for t in ran) == list(YEARS)  # one task per year
        assert {t["worker"] for t in ran} <= workers  # on the workers, not in this (the flow's) process
        # The per-year computations ran inside the task (synchronous), none reached the scheduler.
        prefixes = {key_split(t["key"]) for t in stream.data}
        nested = ("gi_star", "partial", "moran", "overlap")
        assert not {p for p in prefixes if any(s in p for s in nested)}, prefixes

        before = digest(cfg.output, skip=(".ecodask",))
        assert any(k.startswith(f"store.zarr/{ANALYSIS_GROUP}/esv_gi_z/") for k in before)
        assert (cfg.output / "figures" / "geodetector_q_2005.png").is_file()
        # 2000's and 2010's ESV density constant where it has a value: those years' regressions
        # cannot fit, and both are named at once; 2005 is computed (and its slice written to the
        # staged arrays) all the same.
        density = zarr.open_array(store / ANALYSIS_GROUP / ESV_DENSITY, mode="r+")
        for i in (0, 2):
            density[i] = np.where(np.isfinite(density[i]), 7.0, np.nan)
        changed = digest(cfg.output, skip=(".ecodask",))
        with pytest.raises(InputError) as info:
            run_stages(cfg, "driver_analysis")
    assert {p.key.split(":")[0] for p in info.value.problems} == {"2000", "2010"}, info.value
    after = digest(cfg.output, skip=(".ecodask",))
    assert after == changed  # every output of the first run whole, nothing added
    assert not list((store / ANALYSIS_GROUP).glob(f"{STAGING}*"))
    assert not list((cfg.output / "figures").glob("*_staging*"))


def test_nested_computations_are_synchronous_while_any_task_runs() -> None:
    # Two tasks of one worker process overlapping: the first out must not restore the scheduler
    # under the second; the last out restores it.
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def first() -> None:
        with _synchronous():
            first_in.set()
            second_in.wait(deadline(10))
        first_out.set()

    def second() -> None:
        first_in.wait(deadline(10))
        with _synchronous():
            second_in.set()
            first_out.wait(deadline(10))
            seen["after first left"] = dask.config.get("scheduler")

    with dask.config.set(scheduler="threads"):
        threads = [threading.Thread(target=f) for f in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(deadline(20))
        assert seen == {"after first left": "synchronous"}
        assert dask.config.get("scheduler") == "threads"

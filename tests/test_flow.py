"""The run flow under a real (temporary) Prefect server, on a real Dask LocalCluster with process
workers: outputs written, run.json recorded, the flow run and its tasks readable from the API,
and every output but run.json byte-identical from one run to the next."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.run import run_flow

from conftest import PROCESSES, make_tiny_region
from helpers import digest

pytestmark = pytest.mark.slow  # a Prefect server; whole flows on local clusters


def _digest(folder: Path) -> dict[str, object]:
    return digest(folder, skip=("run.json", "report.html"))  # both record the run's timings


def test_flow_end_to_end_and_reproducible(prefect_server, tmp_path: Path) -> None:
    cfg = make_tiny_region(tmp_path / "region", cluster=PROCESSES)  # a run's default cluster
    out = tmp_path / "region" / "out"
    outputs = run_flow(str(cfg))
    assert Path(outputs["store"]) == out / "store.zarr"
    table = pd.read_csv(out / "tables" / "class_area.csv", dtype={"zone_id": str})
    assert set(table.zone_id) == {"420101", "420102", "ALL"} and set(table.year) == {2000, 2010}
    for name in ("zones", "esv_by_service", "esv_change", "transitions", "dynamic_degree", "sensitivity",
                 "projection"):
        assert (out / "tables" / f"{name}.csv").exists() and (out / "tables" / f"{name}.parquet").exists()
    import xarray as xr

    pix = xr.open_zarr(out / "store.zarr", consolidated=False, decode_coords="all")
    assert pix["esv"].dtype == np.float32 and pix["esv"].rio.crs == pix["landcover"].rio.crs
    esv = pd.read_csv(out / "tables" / "esv_by_service.csv", dtype={"zone_id": str})
    total = esv[(esv.zone_id == "ALL") & (esv.level == "total")].sort_values("year").esv_cny.to_numpy()
    # The 30 m grid and the county table agree (grid in float32 per pixel).
    np.testing.assert_allclose(pix["esv"].sum(dim=("y", "x")).values, total, rtol=1e-5)
    record = json.loads((out / "run.json").read_text())
    assert record["config"]["name"] == "tiny"
    assert set(record["stage_seconds"]) >= {"validate", "ingest", "transitions_esv"}
    assert record["inputs"]["landcover.years.2000"]["checksum"].startswith("blake2b:")
    assert record["versions"]["prefect"] == "3.8.8"
    first = _digest(out)
    assert any(k.startswith("store.zarr/landcover/") for k in first)

    run_flow(str(cfg))  # every stage finished with the same inputs: all skipped, nothing changes
    assert _digest(out) == first
    again = json.loads((out / "run.json").read_text())
    assert again["stage_ran"] == dict.fromkeys(("ingest", "transitions_esv", "driver_analysis",
                                                "compensation", "figures"), False)


def test_flow_run_and_tasks_recorded_in_prefect(prefect_server, tmp_path: Path) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    cfg = make_tiny_region(tmp_path / "region")
    state = run_flow(str(cfg), return_state=True)
    assert state.is_completed()
    flow_run_id = state.state_details.flow_run_id

    import asyncio

    async def read():
        async with get_client() as client:
            fr = await client.read_flow_run(flow_run_id)
            tasks = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
            return fr, tasks

    fr, tasks = asyncio.run(read())
    assert fr.state.is_completed()
    names = {t.name.rsplit("-", 1)[0] for t in tasks}
    assert {"validate", "ingest", "transitions-esv", "record-run"} <= names
    assert all(t.state.is_completed() for t in tasks)
    from prefect.artifacts import Artifact

    summary = Artifact.get("esv-summary")
    assert summary is not None and summary.flow_run_id == flow_run_id
    assert "| total |" in summary.data


def test_flow_fails_cleanly_on_bad_config(prefect_server, tmp_path: Path) -> None:
    from ecodask.errors import ConfigError

    cfg = make_tiny_region(tmp_path / "region", esv={"table": "missing_table"})
    with pytest.raises(ConfigError, match="esv.table"):
        run_flow(str(cfg))
    assert not (tmp_path / "region" / "out").exists()


def test_rerun_redoes_only_what_changed_and_forced_stages(prefect_server, tmp_path: Path) -> None:
    import yaml

    cfg = make_tiny_region(tmp_path / "region")
    out = tmp_path / "region" / "out"
    run_flow(str(cfg))
    first = _digest(out)
    doc = yaml.safe_load(cfg.read_text())
    doc["analysis"] = {"alpha": 0.1}
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    run_flow(str(cfg))
    ran = json.loads((out / "run.json").read_text())["stage_ran"]
    assert ran == {"ingest": False, "transitions_esv": False, "driver_analysis": True, "compensation": False,
                   "figures": True}  # the figures draw the driver stage's grids
    changed = {k for k in first if _digest(out).get(k) != first[k]}
    expected = ("tables/geodetector_", "figures/geodetector_", ".ecodask/stages/driver_analysis",
                ".ecodask/stages/figures",  # alpha: detectors and their charts; the maps are the same
                ".ecodask/current.json")  # the pointer: the two stages' new layers
    assert changed and all(k.startswith(expected) for k in changed), changed
    second = _digest(out)
    run_flow(str(cfg), force=["transitions_esv"])  # forcing a stage redoes the stages built on it
    ran = json.loads((out / "run.json").read_text())["stage_ran"]
    assert ran == {"ingest": False, "transitions_esv": True, "driver_analysis": True, "compensation": True,
                   "figures": True}
    # The same inputs: the same outputs, the ESV grids rewritten (into layers beside the committed
    # ones, which the pointer and the manifests now name).
    state = (".ecodask/",)
    assert {k: v for k, v in _digest(out).items() if not k.startswith(state)} == {
        k: v for k, v in second.items() if not k.startswith(state)}
    assert any(k.startswith("store.zarr/esv/") for k in second)
    # Ingest redone (a new store, every later stage redone into it) is test_verify_rerun's: a zone
    # table deleted, a land-cover chunk flipped.

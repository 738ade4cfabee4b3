"""What the Prefect UI shows of a run, against a real ``prefect server`` started here on localhost
(its own PREFECT_HOME and SQLite database): the flow run and its stage task runs named with the
years, the progress artifact at 100 %, the county-ESV and compensation table artifacts equal to the
written tables, the key-figures Markdown; and the flow-run page rendered in headless Chromium.
Also the chunk-progress source alone, on the threaded scheduler and on a distributed client."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dask
import dask.array as da
import pandas as pd
import pytest
import yaml

from ecodask.present.progress import ChunkProgress, LocalCounter, RunProgress, tee
from ecodask.synth import make_region
from flows.run import run_flow

from conftest import CHROMIUM, CHROMIUM_ARGS, need_chromium
from helpers import deadline

YEARS = "2000to2020"
STAGE_RUNS = {f"{t}-{YEARS}" for t in ("ingest", "transitions-esv", "driver-analysis", "compensation",
                                       "figures")}
ARTIFACTS = {"ecodask-progress", "county-esv", "compensation-summary", "key-figures", "esv-summary",
             "driver-summary", "report"}


@pytest.fixture(scope="module")
def server(prefect_api: dict[str, str]) -> str:
    """The base URL of the session's Prefect server (conftest ``prefect_api``, UI served)."""
    return prefect_api["PREFECT_API_URL"].removesuffix("/api")


async def _read_back(flow_run_id) -> tuple:
    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )

    async with get_client() as client:
        fr = await client.read_flow_run(flow_run_id)
        runs = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        tasks = await client.read_task_runs(flow_run_filter=runs)
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
        logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return fr, tasks, artifacts, logs


@pytest.fixture(scope="module")
def cluster():
    """A Dask cluster in this process on a TCP port: the run connects to it by address, as to a
    remote cluster (its scheduler plugin and reads go over the wire)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp://",
                      host="127.0.0.1", dashboard_address=":0") as c:
        yield c


@dataclass
class UIRun:
    """A flow run as the server recorded it."""

    out: Path  # the run's output folder
    state: object  # the final state the flow returned
    flow_run: object
    tasks: list
    artifacts: dict  # by key
    logs: list[str]
    progress_sent: list[float]  # every progress value the flow sent, in order


@pytest.fixture(scope="module")
def ui_run(server, cluster, tmp_path_factory) -> Iterator[UIRun]:
    """The flow run on a small synthetic region (2 years, 3 counties, 2 drivers, compensation), read
    back from the server once its task runs are recorded."""
    from prefect.artifacts import update_progress_artifact
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    import flows.run

    folder = tmp_path_factory.mktemp("ui-region")
    cfg = make_region(folder, seed=5, width_km=6, height_km=5, n_counties=3, years=(2000, 2020))
    doc = yaml.safe_load(cfg.read_text())
    doc["grid"]["chunk_size"] = 128  # a few chunks per grid: progress moves in steps
    doc["drivers"] = {k: v for k, v in doc["drivers"].items() if k in ("elevation", "ndvi")}
    doc["cluster"] = {"kind": "address", "address": cluster.scheduler_address}
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    sent: list[float] = []

    def spy(artifact_id, progress: float, *args, **kwargs):
        sent.append(progress)
        return update_progress_artifact(artifact_id, progress, *args, **kwargs)

    prefect_log = logging.getLogger("prefect")  # make test runs Prefect at WARNING: the run logs at INFO
    level = prefect_log.level
    prefect_log.setLevel(logging.INFO)
    with pytest.MonkeyPatch.context() as mp, temporary_settings(updates={PREFECT_API_URL: f"{server}/api"}):
        mp.setattr(flows.run, "update_progress_artifact", spy)
        state = run_flow(str(cfg), return_state=True)
        APILogWorker.drain_all()
        EventsWorker.drain_all()
        flow_run_id = state.state_details.flow_run_id
        until = time.monotonic() + deadline(30)
        while True:  # task runs are recorded from events, a moment after the flow returns
            fr, tasks, artifacts, logs = asyncio.run(_read_back(flow_run_id))
            if (len(tasks) >= 8 and all(t.state and t.state.is_final() for t in tasks)) \
                    or time.monotonic() > until:
                break
            time.sleep(0.5)
        prefect_log.setLevel(level)
        yield UIRun(folder / "output", state, fr, tasks, {a.key: a for a in artifacts},
                    [lg.message for lg in logs], sent)


@pytest.mark.slow  # a Prefect server and a flow run
def test_run_tasks_and_artifacts_read_back_from_the_server(ui_run: UIRun) -> None:
    out, fr, tasks, artifacts = ui_run.out, ui_run.flow_run, ui_run.tasks, ui_run.artifacts
    state, logs = ui_run.state, ui_run.logs
    assert state.is_completed() and fr.state.is_completed()
    names = {t.name for t in tasks}
    assert STAGE_RUNS <= names, names
    assert {n.rsplit("-", 1)[0] for n in names - STAGE_RUNS} == {"validate", "record-run", "report"}
    assert all(t.state.is_completed() for t in tasks)
    assert any("dashboard" in m for m in logs), logs
    assert ARTIFACTS <= set(artifacts), set(artifacts)

    progress = artifacts["ecodask-progress"]
    assert progress.type == "progress" and float(progress.data) == 100.0
    assert progress.updated > progress.created  # created at 0, updated as the run went on
    sent = ui_run.progress_sent
    assert sent == sorted(sent) and sent[-1] == 100.0 and {20.0, 40.0, 60.0, 80.0} <= set(sent), sent

    county = json.loads(artifacts["county-esv"].data)
    esv = pd.read_parquet(out / "tables" / "esv_by_service.parquet")
    total = esv[(esv.level == "total") & (esv.zone_id != "ALL")]
    assert {r["county_id"] for r in county} == set(total.zone_id.astype(str))
    for row in county:
        t = total[total.zone_id.astype(str) == row["county_id"]].set_index("year").esv_1e8cny
        for year in (2000, 2020):
            assert row[f"esv_{year}_1e8cny"] == pytest.approx(t[year], rel=1e-12)
        assert row["change_2000_2020_1e8cny"] == pytest.approx(t[2020] - t[2000], rel=1e-9)
        assert row["county"] == str(total[total.zone_id.astype(str) == row["county_id"]].zone_name.iloc[0])

    comp = json.loads(artifacts["compensation-summary"].data)
    totals = pd.read_parquet(out / "tables" / "compensation_totals.parquet")
    assert len(comp) == len(totals) and {r["variant"] for r in comp} == {"all_land", "cultivated"}
    for row, expected in zip(comp, totals.to_dict("records"), strict=True):
        assert row.keys() == expected.keys()
        for k, v in expected.items():
            assert row[k] == (v if isinstance(v, str) else pytest.approx(v, rel=1e-12)), k

    report = artifacts["report"].data  # links the run's HTML report, which is there
    html = out / "report.html"
    assert html.resolve().as_uri() in report and html.stat().st_size > 100_000

    md = artifacts["key-figures"].data
    region = esv[(esv.level == "total") & (esv.zone_id == "ALL")].sort_values("year").esv_1e8cny.to_numpy()
    factor = pd.read_parquet(out / "tables" / "geodetector_factor.parquet")
    strongest = factor.loc[factor.groupby("year").q.idxmax()]
    assert "## Run synthetic-region: key figures" in md
    assert all(f"{v:,.4f}" in md for v in region)
    assert all(f"| {r.year} | {r.factor} | {r.q:,.4f} |" in md for r in strongest.itertuples())
    assert "### Compensation" in md and "### Stages" in md and "| ingest | ran |" in md
    assert "| total |" in artifacts["esv-summary"].data


@pytest.mark.slow  # a Prefect server, a flow run and a browser
def test_flow_run_page_shows_the_run_and_its_artifacts(server, ui_run: UIRun, tmp_path: Path) -> None:
    need_chromium()
    from playwright import sync_api
    fr = ui_run.flow_run
    wait_ms = deadline(30) * 1000  # for each thing the page shows
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=wait_ms)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(wait_ms)  # page.goto and clicks too
            page.goto(f"{server}/runs/flow-run/{fr.id}", wait_until="domcontentloaded")
            page.get_by_text(fr.name).first.wait_for(timeout=wait_ms)
            page.get_by_text("Completed").first.wait_for(timeout=wait_ms)
            page.screenshot(path=tmp_path / "flow-run.png", full_page=True)
            page.get_by_text("Artifacts", exact=True).first.click()
            for key in ("key-figures", "county-esv", "compensation-summary", "ecodask-progress"):
                page.get_by_text(key, exact=True).first.wait_for(timeout=wait_ms)
            page.get_by_text("Key figures of run synthetic-region").first.wait_for(timeout=wait_ms)
            page.screenshot(path=tmp_path / "flow-run-artifacts.png", full_page=True)
            page.get_by_text("key-figures", exact=True).first.click()  # the artifact's page
            page.get_by_text("Run synthetic-region: key figures").first.wait_for(timeout=wait_ms)
            page.get_by_text("Strongest driver of the ESV density").first.wait_for(timeout=wait_ms)
            page.screenshot(path=tmp_path / "key-figures.png", full_page=True)
        finally:
            browser.close()
    assert all((tmp_path / f).stat().st_size > 0 for f in ("flow-run-artifacts.png", "key-figures.png"))


def _work() -> float:
    x = da.arange(400 * 400, chunks=400 * 25).reshape(400, 400).rechunk(100)
    return float(((x + 1) ** 2).sum().compute() + (x.T * 2).mean().compute())


def test_chunk_progress_on_the_threaded_scheduler() -> None:
    events: list[tuple[str, int, int]] = []
    percents: list[float] = []
    run = RunProgress(["a", "b"], percents.append)
    with dask.config.set(scheduler="threads"), \
            ChunkProgress(tee(lambda *e: events.append(e), run), interval=0.01) as progress:
        assert isinstance(progress.counter, LocalCounter)
        with progress.stage("a"):
            _work()
        run.finish("a")
        with progress.stage("b"):
            pass  # a stage without Dask work
        run.finish("b")
    a = [e for e in events if e[0] == "a"]
    assert a[0] == ("a", 0, 0) and a[-1][1] == a[-1][2] > 0
    assert all(d1 <= d2 for (_, d1, _), (_, d2, _) in zip(a, a[1:], strict=False))
    assert [e for e in events if e[0] == "b"][-1] == ("b", 0, 0)
    assert percents == sorted(percents) and percents[-1] == 100.0 and 50.0 in percents


def test_chunk_progress_on_a_distributed_client() -> None:
    from distributed import Client, LocalCluster

    events: list[tuple[str, int, int]] = []
    sink = lambda *e: events.append(e)  # noqa: E731
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as c, \
            Client(c) as client, ChunkProgress(sink, client, interval=0.05) as progress:
        assert progress.counter.kind == "distributed"
        with progress.stage("x"):
            expected = _work()
        assert _work() == expected
        plugins = c.scheduler.plugins
        assert any(p.startswith("ecodask-chunks-") for p in plugins)
    assert not any(p.startswith("ecodask-chunks-") for p in c.scheduler.plugins)  # removed on closing
    assert events[0] == ("x", 0, 0)
    done, total = events[-1][1:]
    assert done == total > 16  # every chunk task of both computations


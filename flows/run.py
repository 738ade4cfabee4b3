"""The ecodask run flow: wiring only. Each stage is a task wrapping a function of
``ecodask.stages``; stages pass paths and small tables, never arrays."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from ecodask import drivers, stages
from ecodask.cluster import dask_client
from ecodask.compensation_stage import compensation_stage
from ecodask.config import RunConfig


@task(name="validate", cache_policy=NO_CACHE)
def validate_task(config_path: str) -> RunConfig:
    return stages.validate(config_path)


@task(name="ingest", cache_policy=NO_CACHE)
def ingest_task(cfg: RunConfig) -> Path:
    return stages.ingest_stage(cfg)


@task(name="transitions-esv", cache_policy=NO_CACHE)
def land_esv_task(cfg: RunConfig, store: Path) -> dict[str, Path]:
    return stages.land_esv_stage(cfg, store)


@task(name="driver-analysis", cache_policy=NO_CACHE)
def driver_analysis_task(cfg: RunConfig, store: Path) -> dict[str, Path]:
    return drivers.analysis_stage(cfg, store)


@task(name="compensation", cache_policy=NO_CACHE)
def compensation_task(cfg: RunConfig, store: Path) -> dict[str, Path]:
    return compensation_stage(cfg, store)


@task(name="record-run", cache_policy=NO_CACHE)
def record_task(cfg: RunConfig, timings: dict[str, float], outputs: dict, started: dt.datetime) -> Path:
    return stages.write_run_record(cfg, timings, outputs, started)


def _timed(timings: dict[str, float], name: str, fn, *args):
    t0 = time.perf_counter()
    result = fn(*args)
    timings[name] = time.perf_counter() - t0
    return result


@flow(name="ecodask-run", log_prints=True)
def run_flow(config_path: str) -> dict[str, str]:
    """Validate the configuration, start the Dask cluster, ingest, one pass for transitions and ESV
    (grids and tables), the driver analysis (Geographical Detector, stepwise regression, hot
    spots), county compensation (with county statistics), record the run."""
    log = get_run_logger()
    started = dt.datetime.now(dt.UTC)
    timings: dict[str, float] = {}
    cfg = _timed(timings, "validate", validate_task, str(config_path))
    with dask_client(cfg.cluster) as client:
        log.info("Dask scheduler %s, dashboard %s", client.scheduler.address, client.dashboard_link)
        store = _timed(timings, "ingest", ingest_task, cfg)
        tables = _timed(timings, "transitions_esv", land_esv_task, cfg, store)
        tables |= _timed(timings, "driver_analysis", driver_analysis_task, cfg, store)
        tables |= _timed(timings, "compensation", compensation_task, cfg, store)
    create_markdown_artifact(stages.esv_summary_markdown(cfg), key="esv-summary",
                             description=f"ESV of run {cfg.name}")
    if cfg.drivers:
        create_markdown_artifact(drivers.driver_summary_markdown(cfg), key="driver-summary",
                                 description=f"Geographical Detector q of run {cfg.name}")
    outputs = {"store": str(store), **{k: str(v) for k, v in tables.items()}}
    record = record_task(cfg, timings, outputs, started)
    outputs["run_record"] = str(record)
    log.info("Outputs in %s", cfg.output)
    return outputs

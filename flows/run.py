"""The ecodask run flow: wiring only. Each stage is a task wrapping a function of
``ecodask.stages`` (or its domain module); stages pass paths and small tables, never arrays.

Stages are resumable (:mod:`ecodask.resume`): a stage that finished earlier with the same inputs
is skipped with a log line, and when every stage is finished no Dask cluster is started at all.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from ecodask import drivers, resume, stages
from ecodask.cluster import dask_client
from ecodask.compensation_stage import compensation_stage
from ecodask.config import RunConfig
from ecodask.errors import ConfigError, problem


@task(name="validate", cache_policy=NO_CACHE)
def validate_task(config_path: str) -> RunConfig:
    return stages.validate(config_path)


def _stage_task(stage: str, fn: Callable[[RunConfig, object], dict]):
    """A Prefect task for one resumable stage (the store path comes from the ingest outputs)."""

    @task(name=stage.replace("_", "-"), cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5)
    def run(cfg: RunConfig, key: str, store: str | None, force: bool) -> tuple[dict[str, str], bool]:
        log = get_run_logger()
        return resume.run_stage(cfg, stage, key, lambda: fn(cfg, store), force=force, log=log.info)

    return run


ingest_task = _stage_task("ingest", lambda cfg, _: {"store": stages.ingest_stage(cfg)})
land_esv_task = _stage_task("transitions_esv", stages.land_esv_stage)
driver_analysis_task = _stage_task("driver_analysis", drivers.analysis_stage)
compensation_task = _stage_task("compensation", compensation_stage)
TASKS = {"ingest": ingest_task, "transitions_esv": land_esv_task, "driver_analysis": driver_analysis_task,
         "compensation": compensation_task}


@task(name="record-run", cache_policy=NO_CACHE)
def record_task(cfg: RunConfig, timings: dict[str, float], outputs: dict, started: dt.datetime,
                ran: dict[str, bool]) -> str:
    return str(stages.write_run_record(cfg, timings, outputs, started, ran))


@flow(name="ecodask-run", log_prints=True)
def run_flow(config_path: str, force: Sequence[str] = ()) -> dict[str, str]:
    """Validate the configuration, then the stages: ingest, one pass for transitions and ESV (grids
    and tables), the driver analysis (Geographical Detector, stepwise regression, hot spots), county
    compensation (with county statistics); record the run. ``force`` names stages to redo even if
    they finished earlier with the same inputs."""
    log = get_run_logger()
    unknown = sorted(set(force) - set(resume.STAGES))
    if unknown:
        raise ConfigError([problem("--force", "stage", unknown, f"stages are {', '.join(resume.STAGES)}")])
    started = dt.datetime.now(dt.UTC)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    cfg = validate_task(str(config_path))
    timings["validate"] = time.perf_counter() - t0
    keys = resume.plan(cfg)
    todo = [s for s in resume.STAGES if s in force or resume.finished(cfg, s, keys[s]) is None]
    outputs: dict[str, str] = {}
    ran: dict[str, bool] = {}

    def stages_in() -> None:
        store = None
        for stage in resume.STAGES:
            t = time.perf_counter()
            out, ran[stage] = TASKS[stage](cfg, keys[stage], store, stage in force)
            timings[stage] = time.perf_counter() - t
            outputs.update(out)
            store = outputs.get("store", store)

    if todo:
        with dask_client(cfg.cluster) as client:
            log.info("Dask scheduler %s, dashboard %s", client.scheduler.address, client.dashboard_link)
            stages_in()
    else:
        log.info("every stage finished earlier with the same inputs: nothing to compute")
        stages_in()
    create_markdown_artifact(stages.esv_summary_markdown(cfg), key="esv-summary",
                             description=f"ESV of run {cfg.name}")
    if cfg.drivers:
        create_markdown_artifact(drivers.driver_summary_markdown(cfg), key="driver-summary",
                                 description=f"Geographical Detector q of run {cfg.name}")
    outputs["run_record"] = record_task(cfg, timings, dict(outputs), started, ran)
    log.info("Outputs in %s", cfg.output)
    return outputs

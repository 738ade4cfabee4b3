"""The ecodask run flow: wiring only. Each stage record of :mod:`ecodask.run.stages` becomes a
Prefect task; stages pass paths and small tables, never arrays.

Stages are resumable (:mod:`ecodask.run.resume`): a stage that finished earlier with the same
inputs is skipped with a log line, and when every stage is finished no Dask cluster is started at
all. The configuration is loaded, and its inputs checked and hashed, once per process
(:mod:`ecodask.run.inputs`): the command line's checks before Prefect starts are the flow's.

What the Prefect UI shows of a run: one task run per stage named by stage and years
(``ingest-2000to2020``), the Dask dashboard link in the logs, a progress artifact
(``ecodask-progress``, % of the run, updated as Dask chunk tasks complete, see
:mod:`ecodask.present.progress`), table artifacts ``county-esv`` and ``compensation-summary`` and
Markdown artifacts ``key-figures``, ``esv-summary`` and ``driver-summary`` (built by
:mod:`ecodask.present.summaries` from the written tables), and ``report`` linking the run's HTML
report (:mod:`ecodask.present.report`, written after ``run.json``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Sequence
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE

from ecodask.errors import EcodaskError
from ecodask.io.layout import RunFolder
from ecodask.io.lock import run_lock
from ecodask.present import report, summaries
from ecodask.present.progress import ChunkProgress, RunProgress, display_sinks, tee
from ecodask.run import inputs, resume, transaction
from ecodask.run.cluster import dask_client
from ecodask.run.config import RunConfig
from ecodask.run.record import write_run_record
from ecodask.run.stages import NAMES, STAGES, Stage

#: Artifact keys (lowercase letters, digits and dashes).
PROGRESS_KEY = "ecodask-progress"
COUNTY_ESV_KEY = "county-esv"
COMPENSATION_KEY = "compensation-summary"
KEY_FIGURES_KEY = "key-figures"
REPORT_KEY = "report"
COVERAGE_KEY = "coverage"


@task(name="validate", cache_policy=NO_CACHE)
def validate_task(config_path: str) -> RunConfig:
    return inputs.validate(config_path)


def transient(task, task_run, state) -> bool:  # noqa: ANN001 - Prefect's retry_condition_fn
    """Retry a failed stage unless it failed on the user's input (an :class:`EcodaskError`: the
    same input fails the same way); a lost worker or a storage hiccup is retried."""
    exc = state.data if isinstance(state.data, BaseException) else None
    return not isinstance(exc, EcodaskError)


def _stage_task(stage: Stage):
    """A Prefect task for one resumable stage (the store path comes from the ingest outputs; a
    remote run's layers from the run's ``keys``)."""

    @task(name=stage.task_name, cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5,
          retry_condition_fn=transient)
    def run(cfg: RunConfig, key: str, store: str | None, force: bool, chunks: str = "sample",
            keys: dict[str, str] | None = None, verified: dict[str, str] | None = None,
            ) -> tuple[dict[str, str], bool]:
        log = get_run_logger()
        # A remote run's layers are named by every upstream stage's key: the run's plan.
        where = resume.store_arg(cfg, stage.name, keys if keys is not None else resume.plan(cfg), store)
        return resume.run_stage(cfg, stage.name, key, lambda: stage.run(cfg, where), force=force,
                                log=log.info, chunks=chunks, verified=verified)

    return run


TASKS = {stage.name: _stage_task(stage) for stage in STAGES}


def years_label(years: Sequence[int]) -> str:
    """The years of a run in a task run name: ``2000to2020`` (first to last), or one year."""
    years = sorted(int(y) for y in years)
    return f"{years[0]}to{years[-1]}" if len(years) > 1 else str(years[0])


def stage_run_name(stage: str, years: Sequence[int]) -> str:
    """The task run name of a stage: its task name and the run's years, e.g. ``ingest-2000to2020``."""
    return f"{TASKS[stage].name}-{years_label(years)}"


@task(name="record-run", cache_policy=NO_CACHE)
def record_task(cfg: RunConfig, timings: dict[str, float], outputs: dict, started: dt.datetime,
                ran: dict[str, bool], folder: str) -> str:
    return str(write_run_record(cfg, timings, outputs, started, ran, Path(folder)))


@task(name="report", cache_policy=NO_CACHE)
def report_task(cfg: RunConfig, shown_as: str) -> str:
    where = report.write_run_report(cfg.output, cfg.remote_output, Path(shown_as))
    create_markdown_artifact(summaries.report_markdown(cfg.name, where), key=REPORT_KEY,
                             description=f"The HTML report of run {cfg.name}")
    return where


def _publish_summaries(cfg: RunConfig, ran: dict[str, bool], timings: dict[str, float]) -> None:
    """The run's table and Markdown artifacts, from the written tables."""
    create_markdown_artifact(summaries.key_figures_markdown(cfg.output, cfg.name, ran, timings),
                             key=KEY_FIGURES_KEY, description=f"Key figures of run {cfg.name}")
    rows = summaries.county_esv_rows(cfg.output)
    if rows:
        create_table_artifact(rows, key=COUNTY_ESV_KEY,
                              description=f"Total ESV per county of run {cfg.name}, 10^8 CNY/yr")
    rows = summaries.compensation_summary_rows(cfg.output)
    if rows:
        create_table_artifact(rows, key=COMPENSATION_KEY,
                              description=f"Compensation totals per variant, year and role of run {cfg.name}")
    create_markdown_artifact(summaries.esv_summary_markdown(cfg.output, cfg.esv.table), key="esv-summary",
                             description=f"ESV of run {cfg.name}")
    if cfg.drivers:
        create_markdown_artifact(summaries.driver_summary_markdown(cfg.output), key="driver-summary",
                                 description=f"Geographical Detector q of run {cfg.name}")
    partial = summaries.coverage_markdown(cfg.output)
    if partial:
        create_markdown_artifact(partial, key=COVERAGE_KEY,
                                 description=f"Zones of run {cfg.name} the land cover covers only in part")
        get_run_logger().warning("%s", summaries.coverage_warning(cfg.output))


@flow(name="ecodask-run", log_prints=True)
def run_flow(config_path: str, force: list[str] | None = None, verify: bool = False) -> dict[str, str]:
    """Validate the configuration, then the stages: ingest, one pass for transitions and ESV (grids
    and tables), the driver analysis (Geographical Detector, stepwise regression, hot spots), county
    compensation (with county statistics), the figures; record the run. ``force`` names stages to
    redo even if they finished earlier with the same inputs; ``verify`` reads back every chunk a
    finished stage wrote before skipping it (else a sample, :mod:`ecodask.run.verify`)."""
    log = get_run_logger()
    force = resume.forced(force)  # a redone stage's outputs are what later stages read
    started = dt.datetime.now(dt.UTC)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    cfg = validate_task(str(config_path))
    timings["validate"] = time.perf_counter() - t0
    # One run per output (the command line's lock, again), in its bucket too when it is remote.
    with run_lock(RunFolder(cfg.output).state, cfg.remote_output):
        return _run_stages(cfg, force, "all" if verify else "sample", started, timings, log)


def _run_stages(cfg: RunConfig, force: list[str], read_back: str, started: dt.datetime,
                timings: dict[str, float], log) -> dict[str, str]:  # noqa: ANN001 - Prefect's run logger
    """The body of :func:`run_flow` once the configuration is valid and the output is locked: the
    stages write in the output's work copy when they compute, published whole at the end
    (:mod:`ecodask.run.transaction`); the output folder shows the previous run until then."""
    keys = resume.plan(cfg)
    work = transaction.begin(cfg, force, keys, read_back)
    final, cfg, todo = cfg, work.cfg, work.todo
    outputs: dict[str, str] = {}
    ran: dict[str, bool] = {}
    progress_id = create_progress_artifact(
        0.0, key=PROGRESS_KEY, description=f"Run {cfg.name}: % done (stages and their Dask chunk tasks)")
    run_progress = RunProgress(NAMES, lambda pct: update_progress_artifact(progress_id, pct))

    def stages_in(chunks: ChunkProgress | None) -> None:
        store = None
        for stage in NAMES:
            t = time.perf_counter()
            stage_task = TASKS[stage].with_options(task_run_name=stage_run_name(stage, cfg.years))
            with chunks.stage(stage) if chunks is not None else contextlib.nullcontext():
                out, ran[stage] = stage_task(cfg, keys[stage], store, stage in force, read_back, keys,
                                             work.done.get(stage))
            run_progress.finish(stage)
            timings[stage] = time.perf_counter() - t
            outputs.update(out)
            store = outputs.get("store", store)

    if todo:
        sink = tee(run_progress, *display_sinks())  # the artifact, and a terminal's progress display
        with dask_client(cfg.cluster) as client, ChunkProgress(sink, client) as chunks:
            log.info("Dask scheduler %s, dashboard %s", client.scheduler.address, client.dashboard_link)
            stages_in(chunks)
    else:
        log.info("every stage finished earlier with the same inputs: nothing to compute")
        stages_in(None)
    _publish_summaries(cfg, ran, timings)
    outputs = {k: work.published(v) for k, v in outputs.items()}
    record_task(final, timings, dict(outputs), started, ran, str(cfg.output))
    outputs["run_record"] = str(RunFolder(final.output).run_record)
    report_task(cfg, str(final.output))
    transaction.finish(work, log=log.info)
    outputs["report"] = report.published_report(final.output, final.remote_output)
    log.info("Outputs in %s", final.output)
    return outputs

"""A whole run in this Python process, without Prefect: for a notebook, a script or a test.

    from ecodask.run.inprocess import run
    outputs = run("region.yaml")                       # every stage, Dask's current scheduler
    outputs = run("region.yaml", stages=["ingest", "transitions_esv"])

The same steps as the Prefect flow (``flows/run.py``) but no server, no task runs and no cluster
of its own (use ``dask.config.set(scheduler=...)`` or a ``distributed.Client`` around the call): the
output's lock, the inputs checked once, the stages resumed from their manifests, computed in the
folder's work copy and published whole at the end (:mod:`ecodask.run.transaction`), ``run.json``
and the report written. Each stage's one-line summary goes to ``log``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ecodask.io.layout import RunFolder
from ecodask.io.lock import run_lock
from ecodask.run import inputs, resume, transaction
from ecodask.run.record import write_run_record
from ecodask.run.stages import NAMES, STAGES


def run(config: str | Path, stages: Sequence[str] | None = None, force: Sequence[str] = (),
        verify: bool = False, log: Callable[[str], None] = print, wait_s: float = 0.0) -> dict[str, str]:
    """Run the stages of ``config`` (all, or ``stages`` and those they build on, in run order);
    return the outputs by name (``run_record`` and ``report`` among them when every stage ran).
    ``force``: stages to redo (with those built on them); ``verify``: read back every chunk of a
    finished stage before skipping it; ``wait_s``: how long to wait for another run's lock."""
    from ecodask.present import report

    started = dt.datetime.now(dt.UTC)
    force = resume.forced(list(force))
    wanted = _with_upstream(stages) if stages else list(NAMES)
    final = inputs.load(config)
    inputs.checked(final)
    chunks = "all" if verify else "sample"
    with run_lock(RunFolder(final.output).state, final.remote_output, wait_s=wait_s):
        keys = resume.plan(final)
        work = transaction.begin(final, force, keys, chunks)
        cfg = work.cfg
        outputs: dict[str, str] = {}
        ran: dict[str, bool] = {}
        timings: dict[str, float] = {}
        store = None
        for stage in STAGES:
            if stage.name not in wanted:
                continue
            t = time.perf_counter()
            where = resume.store_arg(cfg, stage.name, keys, store)
            out, ran[stage.name] = resume.run_stage(
                cfg, stage.name, keys[stage.name], lambda stage=stage, where=where: stage.run(cfg, where),
                force=stage.name in force, log=log, chunks=chunks, verified=work.done.get(stage.name))
            timings[stage.name] = time.perf_counter() - t
            outputs |= out
            store = outputs.get("store", store)
        outputs = {k: str(work.published(v)) for k, v in outputs.items()}
        if len(wanted) == len(NAMES):
            write_run_record(final, timings, outputs, started, ran, cfg.output)
            report.write_run_report(cfg.output, final.remote_output, final.output)
            outputs["run_record"] = str(RunFolder(final.output).run_record)
            outputs["report"] = report.published_report(final.output, final.remote_output)
        transaction.finish(work, whole=len(wanted) == len(NAMES), log=log)
    return outputs


def _with_upstream(stages: Sequence[str]) -> list[str]:
    """The named stages and every stage they build on, in run order."""
    from ecodask.errors import ConfigError, problem
    from ecodask.run.stages import BY_NAME

    unknown = sorted(set(stages) - set(NAMES))
    if unknown:
        raise ConfigError([problem("stages", "stage", unknown, f"stages are {', '.join(NAMES)}")])
    chosen: set[str] = set()
    todo = list(stages)
    while todo:
        name = todo.pop()
        if name not in chosen:
            chosen.add(name)
            todo += BY_NAME[name].upstream
    return [n for n in NAMES if n in chosen]

"""Run every stage of a configuration as the run flow does, in this process and without Prefect
(Dask's threaded scheduler), for the tests that kill a run at a crash point:
``python tests/crash_run.py CONFIG``. The same steps as ``flows/run.py``: the lock, the work copy
(:mod:`ecodask.run.transaction`), each stage through resume, the record and the report written
in the work copy, then the commit."""

from __future__ import annotations

import datetime as dt
import sys

import dask

from ecodask.io.layout import RunFolder
from ecodask.io.lock import output_lock
from ecodask.present import report
from ecodask.run import inputs, resume, transaction
from ecodask.run.record import write_run_record
from ecodask.run.stages import STAGES


def main(config: str) -> None:
    started = dt.datetime.now(dt.UTC)
    final = inputs.load(config)
    inputs.checked(final)
    with output_lock(RunFolder(final.output).state), dask.config.set(scheduler="threads", num_workers=2):
        keys = resume.plan(final)
        work = transaction.begin(final, (), keys)
        cfg = work.cfg
        outputs: dict[str, str] = {}
        ran: dict[str, bool] = {}
        store = None
        for stage in STAGES:
            out, ran[stage.name] = resume.run_stage(
                cfg, stage.name, keys[stage.name], lambda stage=stage, store=store: stage.run(cfg, store),
                log=lambda line: print(line, flush=True))
            outputs |= out
            store = outputs.get("store", store)
        outputs = {k: str(work.published(v)) for k, v in outputs.items()}
        write_run_record(final, {}, outputs, started, ran, cfg.output)
        report.write_run_report(cfg.output, None, final.output)
        transaction.finish(work)


if __name__ == "__main__":
    main(sys.argv[1])

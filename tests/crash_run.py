"""Run every stage of a configuration in this process and without Prefect, on Dask's threaded
scheduler (:func:`ecodask.run.inprocess.run`: the flow's steps), for the tests that kill a run at
a crash point: ``python tests/crash_run.py CONFIG``."""

from __future__ import annotations

import sys

import dask

from ecodask.run.inprocess import run

if __name__ == "__main__":
    with dask.config.set(scheduler="threads", num_workers=2):
        run(sys.argv[1], log=lambda line: print(line, flush=True))

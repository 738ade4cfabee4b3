"""A local cluster's Dask scheduler in a process of its own, not the flow's.

In a ``LocalCluster`` the scheduler shares the flow's process: while the workers compute, its task
transitions, heartbeats and metrics take about 0.14 of a core there (BENCHMARKS.md, "The flow
process's share of the CPU"), and they compete for one interpreter lock with what the flow itself
does between computes (building tables, Prefect's client). :class:`SchedulerProcess` runs the
scheduler as ``python -m ecodask.run.scheduler_process OPTIONS_JSON PARENT_PID`` for a
``distributed.SpecCluster``: the flow keeps the nannies (which start the worker processes) and
its client. The scheduler process closes itself when the process that started it is gone (a flow
killed with SIGKILL leaves no scheduler behind), as the nannies' workers do.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

from distributed.deploy.spec import ProcessInterface

#: How often the scheduler process looks whether the process that started it is still there (s).
PARENT_CHECK_S = 1.0


class SchedulerProcess(ProcessInterface):
    """The scheduler of a ``SpecCluster`` as a child process; ``options`` are the keyword arguments
    of ``distributed.Scheduler`` (JSON values). Its log goes to this process's standard error at
    ``log_level``; ``start_timeout`` bounds the wait for its address (seconds)."""

    def __init__(self, options: dict | None = None, log_level: str = "warning", start_timeout: float = 60.0):
        super().__init__()
        self.options = dict(options or {})
        self.log_level = log_level
        self.start_timeout = start_timeout
        self.process: asyncio.subprocess.Process | None = None
        self._folder: tempfile.TemporaryDirectory | None = None

    async def start(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="ecodask-scheduler-")
        address_file = Path(self._folder.name) / "scheduler.json"
        options = self.options | {"scheduler_file": str(address_file)}
        env = os.environ | {"DASK_LOGGING__DISTRIBUTED": self.log_level}
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", __name__, json.dumps(options), str(os.getpid()), env=env)
        loop = asyncio.get_running_loop()
        until = loop.time() + self.start_timeout
        while self.address is None:
            if self.process.returncode is not None:
                raise RuntimeError(f"the Dask scheduler process exited with code {self.process.returncode}")
            if loop.time() > until:
                raise RuntimeError(f"the Dask scheduler process gave no address in {self.start_timeout} s")
            try:
                self.address = json.loads(address_file.read_text(encoding="utf-8"))["address"]
            except (OSError, ValueError, KeyError):  # not written yet, or half-written
                await asyncio.sleep(0.05)
        await super().start()

    async def close(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout=10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self.process = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
        await super().close()


async def _serve(options: dict, parent: int) -> None:
    """Run a scheduler until it closes, or until ``parent`` is no longer this process's parent."""
    from distributed import Scheduler

    async with Scheduler(**options) as scheduler:
        finished = asyncio.ensure_future(scheduler.finished())
        while not finished.done():
            if os.getppid() != parent:
                await scheduler.close(reason="the flow process that started it is gone")
                break
            await asyncio.wait([finished], timeout=PARENT_CHECK_S)


def main(argv: list[str]) -> None:
    """``python -m ecodask.run.scheduler_process OPTIONS_JSON PARENT_PID`` (the log level comes from
    ``DASK_LOGGING__DISTRIBUTED``, read when distributed is imported)."""
    asyncio.run(_serve(json.loads(argv[0]), int(argv[1])))


if __name__ == "__main__":
    main(sys.argv[1:])

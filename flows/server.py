"""Prefect's temporary server for a run that has no Prefect server, started without its modules.

With no ``PREFECT_API_URL``, Prefect's client starts a temporary ("ephemeral") server: uvicorn
serving ``prefect.server.api.server:create_app`` in a child process, on a free localhost port,
without the UI. To do so it imports ``prefect.server.api.server`` into the calling process, the
whole server application (FastAPI, SQLAlchemy, the API's models): 2 CPU s and 80 MB in the
run's flow process, which never uses it (BENCHMARKS.md, "The flow's own periodic work").
:func:`temporary_api` starts the same child process the same way, from the command line, and points
this process's Prefect settings at it for the run; with a server configured it does nothing.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

#: uvicorn's exit code when it cannot bind its port (another process took it first): try another.
PORT_TAKEN = 3
#: Seconds between looks at the starting server (its health, whether it exited).
POLL_S = 0.1
#: Seconds a stopped server may take to exit after SIGTERM before it is killed.
STOP_S = 5.0
#: Seconds the run's last log records and events may take to reach the server before it stops.
DRAIN_S = 30.0


def _free_port() -> int:
    """A localhost port nothing listens on now (the OS's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(port: int) -> subprocess.Popen:
    """The server's child process, as Prefect's ``SubprocessASGIServer`` runs it: the API only (no UI),
    marked ephemeral, with this process's Prefect settings in its environment."""
    import prefect
    from prefect.settings import get_current_settings

    env = {**os.environ, **get_current_settings().to_environment_variables(exclude_unset=True),
           "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(prefect.__file__).parent.parent), "--factory",
         "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "error", "--lifespan", "on"],
        env=env)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _drain() -> None:
    """Send the log records and events Prefect's workers still hold (batched in the background) to
    the server, before it stops: otherwise they are lost and Prefect prints a connection error at
    exit."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=DRAIN_S)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=STOP_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def temporary_api() -> Iterator[str | None]:
    """Within the block, this process's Prefect client talks to a temporary server started here
    (its API URL is yielded), stopped at the end; ``None`` and nothing started where a Prefect API
    is configured or Prefect's temporary server is turned off (``PREFECT_SERVER_EPHEMERAL_ENABLED``:
    Prefect's client then says what is missing).

    Waits for the server's ``/health`` for ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS``, as
    Prefect does, and raises ``RuntimeError`` naming its exit code if it exits before answering.
    """
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_EPHEMERAL_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        yield None
        return
    port = _free_port()
    proc = _start(port)
    try:
        end = time.monotonic() + float(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
        while not _healthy(url := f"http://127.0.0.1:{port}/api"):
            code = proc.poll()
            if code == PORT_TAKEN:  # taken between our look and its bind
                port = _free_port()
                proc = _start(port)
            elif code is not None:
                raise RuntimeError(f"the temporary Prefect server exited with code {code} before it answered")
            elif time.monotonic() > end:
                raise RuntimeError(f"the temporary Prefect server did not answer at {url} within "
                                   f"{PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()} s")
            time.sleep(POLL_S)
        with temporary_settings(updates={PREFECT_API_URL: url}):
            try:
                yield url
            finally:
                _drain()
    finally:
        _stop(proc)

"""A user's error raised inside a Dask task (a corrupt tile, a code the scheme lacks) is the user's
to fix: it reaches the run and is printed once, as one line. Dask's worker would also log it as
``Compute Failed`` with its traceback; :class:`QuietUserErrors` drops those records on every
worker (and :func:`install` in this process, where an in-process cluster's workers log). Any other
exception's record is kept: a bug's traceback is worth seeing. The nannies' "still alive after
4 s, killing" at shutdown is dropped too.
"""

from __future__ import annotations

import logging

from distributed.diagnostics.plugin import WorkerPlugin

from ecodask.errors import EcodaskError

WORKER_LOGGER = "distributed.worker"


def _user_error_names() -> set[str]:
    names, todo = set(), [EcodaskError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo += cls.__subclasses__()
    return names


class DropUserErrorTracebacks(logging.Filter):
    """Drops the worker's ``Compute Failed`` record of a task that raised an ecodask error."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not (isinstance(record.msg, str) and record.msg.startswith("Compute Failed")):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        text = str(args[3]) if len(args) > 3 else ""  # the exception's repr, e.g. InputError('...')
        return not any(text.startswith(f"{name}(") for name in _user_error_names())


class DropShutdownKills(logging.Filter):
    """Drops the nanny's "Worker process still alive after N seconds, killing" when a run closes
    its cluster: the run has its results; the worker is only slow to exit."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith("Worker process still alive after"))


_FILTER = DropUserErrorTracebacks()
_SHUTDOWN = DropShutdownKills()


def install() -> None:
    """Drop user errors' ``Compute Failed`` records of the workers in this process, and the
    nannies' kill notices at shutdown."""
    logging.getLogger(WORKER_LOGGER).addFilter(_FILTER)  # added once however often called
    logging.getLogger("distributed.nanny").addFilter(_SHUTDOWN)


class QuietUserErrors(WorkerPlugin):
    """A worker plugin doing :func:`install` in each worker's process."""

    name = "ecodask-quiet-user-errors"

    def setup(self, worker) -> None:  # noqa: ANN001 - distributed's Worker
        install()

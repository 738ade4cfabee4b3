"""Chunk progress of a run's stages, without Prefect: how many of the Dask tasks a stage has submitted
are finished, reported to pluggable sinks.

- A **counter** knows how many tasks were submitted and how many finished (cumulative counts, from
  the moment it was opened): :class:`SchedulerCounter` on a ``distributed`` scheduler (a small
  scheduler plugin counts task transitions; read back over the client, so a remote cluster works
  the same as a local one and needs no ecodask installed on the scheduler), :class:`LocalCounter`
  under the threaded / synchronous / multiprocessing schedulers (Dask's local callbacks), and
  :class:`NullCounter` where neither can count (no chunk counts, the stages still report).
- :class:`ChunkProgress` wraps each stage (``with progress.stage("ingest"): ...``): while the
  stage computes, a background thread reads the counter about once per ``interval`` seconds and
  calls the sink with ``(stage, done, total)`` — the tasks finished and submitted since the stage
  began — when they changed, and once more when the stage ends. The thread runs in a copy of the
  caller's context, so sinks see the caller's context variables (e.g. temporary settings).
- A **sink** is any callable ``(stage, done, total) -> None``: :class:`RunProgress` turns them into
  the whole run's percentage (each stage one equal share, or given weights; finished and skipped
  stages count in full) for a progress display; :func:`tee` feeds several sinks. A sink may also
  have ``end_stage(stage, failed=False)``, called after a stage's final report (``failed``: the
  stage's block raised, e.g. on Ctrl-C).
- **Display sinks** (:func:`displaying`, e.g. the command line's progress bar of
  :mod:`ecodask.present.progress_bar`) are fed by every run started in the process.

A task here is one node of the Dask graph (mostly one chunk of one step). The total grows as a stage
submits more computations, so a stage's fraction is an estimate; the run's percentage never goes
back and reaches 100 only when every stage is finished. On a scheduler shared with other clients
their tasks are counted too.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

log = logging.getLogger(__name__)

#: A progress sink: ``(stage, done, total)``, counts of Dask tasks since the stage began.
Sink = Callable[[str, int, int], None]


class Counter(Protocol):
    """Cumulative counts of Dask tasks since the counter was opened."""

    kind: str

    def counts(self) -> tuple[int, int]:
        """``(done, submitted)``: tasks finished (computed or failed) and tasks submitted."""
        ...

    def close(self) -> None:
        """Stop counting and release what the counter holds (a plugin, a callback)."""
        ...


class NullCounter:
    """Counts nothing: for a scheduler that cannot report (stages still report start and end)."""

    kind = "none"

    def counts(self) -> tuple[int, int]:
        return 0, 0

    def close(self) -> None:
        return None


class LocalCounter:
    """Counts the tasks of Dask's local schedulers (threaded, synchronous, processes) through Dask's
    callbacks, registered while the counter is open."""

    kind = "local"

    def __init__(self) -> None:
        from dask.callbacks import Callback

        self._lock = threading.Lock()
        self._done = 0
        self._total = 0
        self._callback = Callback(start_state=self._start_state, posttask=self._posttask)
        self._callback.register()

    def _start_state(self, dsk: Mapping, state: dict[str, Any]) -> None:
        finished = len(state["finished"])
        pending = sum(len(state[k]) for k in ("ready", "waiting", "running"))
        with self._lock:
            self._total += finished + pending
            self._done += finished

    def _posttask(self, key: object, result: object, dsk: Mapping, state: dict, worker_id: object) -> None:
        with self._lock:
            self._done += 1

    def counts(self) -> tuple[int, int]:
        with self._lock:
            return self._done, self._total

    def close(self) -> None:
        with contextlib.suppress(KeyError):
            self._callback.unregister()


#: The scheduler handler answering the counts of a plugin by name (installed by the plugin).
HANDLER = "ecodask_chunk_counts"


def _plugin_class() -> type:
    """The scheduler plugin class, defined here (not at module level) so that it is pickled by value:
    the scheduler needs ``distributed`` only, not ecodask."""
    from distributed.diagnostics.plugin import SchedulerPlugin

    class ChunkCounts(SchedulerPlugin):
        """Counts tasks entering the scheduler's pipeline (released -> waiting) and tasks finished
        (processing -> memory, or -> erred); installs the scheduler handler that reads them (a
        plain RPC, nothing logged on the scheduler)."""

        def __init__(self, name: str, handler: str) -> None:
            self.name = name
            self.handler = handler
            self.done = 0
            self.total = 0

        async def start(self, scheduler: Any) -> None:
            def counts(name: str) -> tuple[int, int]:
                plugin = scheduler.plugins.get(name)
                return (plugin.done, plugin.total) if plugin is not None else (0, 0)

            scheduler.handlers.setdefault(self.handler, counts)

        def transition(self, key: object, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
            if start == "released" and finish == "waiting":
                self.total += 1
            elif (finish == "memory" and start == "processing") or finish == "erred":
                self.done += 1

    return ChunkCounts


class SchedulerCounter:
    """Counts the tasks of a ``distributed`` scheduler (local or remote) with a scheduler plugin,
    registered on opening and removed on closing; :meth:`counts` is one round trip to the
    scheduler."""

    kind = "distributed"

    def __init__(self, client: Any) -> None:
        self._client = client
        self._name = f"ecodask-chunks-{uuid.uuid4().hex[:12]}"
        client.register_plugin(_plugin_class()(self._name, HANDLER), name=self._name)

    def counts(self) -> tuple[int, int]:
        done, total = self._client.sync(getattr(self._client.scheduler, HANDLER), name=self._name)
        return int(done), int(total)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the scheduler may be gone already
            self._client.unregister_scheduler_plugin(self._name)


def counter_for(client: Any = None) -> Counter:
    """The counter for ``client`` (a ``distributed.Client``), else for the default distributed
    client if there is one, else for Dask's local schedulers; a :class:`NullCounter` where the
    scheduler refuses the plugin (a warning is logged)."""
    if client is None:
        try:
            from distributed import default_client

            client = default_client()
        except (ImportError, ValueError):
            return LocalCounter()
    try:
        return SchedulerCounter(client)
    except Exception as exc:  # noqa: BLE001 - any refusal: degrade to stage-level progress
        log.warning("chunk progress unavailable on this Dask scheduler (%s): stages only", exc)
        return NullCounter()


class ChunkProgress:
    """Reports ``(stage, done, total)`` to ``sink`` while a stage computes, at most about once per
    ``interval`` seconds (only when the counts changed) and once at the end of the stage.

    ``counter`` defaults to :func:`counter_for` ``(client)``. Use as a context manager (closing
    the counter on exit); a sink that raises is logged once and otherwise ignored.
    """

    def __init__(self, sink: Sink, client: Any = None, interval: float = 1.0,
                 counter: Counter | None = None) -> None:
        self.sink = sink
        self.interval = float(interval)
        self.counter = counter if counter is not None else counter_for(client)
        self._sink_failed = False

    def __enter__(self) -> ChunkProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.counter.close()

    def _counts(self) -> tuple[int, int] | None:
        try:
            return self.counter.counts()
        except Exception as exc:  # noqa: BLE001 - a failed read only skips one report
            log.debug("chunk counts unavailable: %s", exc)
            return None

    def _emit(self, stage: str, done: int, total: int) -> None:
        try:
            self.sink(stage, done, total)
        except Exception as exc:  # noqa: BLE001 - progress must never fail the run
            if not self._sink_failed:
                log.warning("progress sink failed (%s); the run goes on", exc)
            self._sink_failed = True

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Report the tasks of ``name``'s computations while the block runs."""
        base = self._counts() or (0, 0)
        stop = threading.Event()
        last: list[tuple[int, int]] = [(0, 0)]
        lock = threading.Lock()

        def since_start() -> tuple[int, int] | None:
            now = self._counts()
            if now is None:
                return None
            return max(now[0] - base[0], 0), max(now[1] - base[1], 0)

        def report(counts: tuple[int, int], force: bool = False) -> None:
            with lock:
                if counts == last[0] and not force:
                    return
                last[0] = counts
                self._emit(name, *counts)

        def poll() -> None:
            while not stop.wait(self.interval):
                counts = since_start()
                if counts is not None:
                    report(counts)

        # The sink runs in the caller's context (settings held in context variables reach it).
        context = contextvars.copy_context()
        thread = threading.Thread(target=context.run, args=(poll,), name=f"ecodask-progress-{name}",
                                  daemon=True)
        report((0, 0), force=True)
        thread.start()
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            stop.set()
            thread.join()
            final = since_start()
            report(final if final is not None else last[0], force=True)
            self._end(name, failed)

    def _end(self, stage: str, failed: bool) -> None:
        end = getattr(self.sink, "end_stage", None)
        if not callable(end):
            return
        try:
            end(stage, failed=failed)
        except Exception as exc:  # noqa: BLE001 - progress must never fail the run
            if not self._sink_failed:
                log.warning("progress sink failed (%s); the run goes on", exc)
            self._sink_failed = True


class RunProgress:
    """A sink turning each stage's ``(done, total)`` into the whole run's percentage (0-100).

    Each stage has a share of the run (``weights``, default equal); a running stage counts its
    fraction ``done / total`` of its share (at most 99 % of it, since more tasks may follow), a
    finished or skipped stage (:meth:`finish`) its whole share. The percentage never decreases;
    ``on_percent`` is called when it grew by at least ``step`` points, and always when a stage
    finishes. A failing ``on_percent`` is logged once and otherwise ignored.
    """

    def __init__(self, stages: Sequence[str], on_percent: Callable[[float], None],
                 weights: Mapping[str, float] | None = None, step: float = 0.5) -> None:
        self.weights = {s: float((weights or {}).get(s, 1.0)) for s in stages}
        self.on_percent = on_percent
        self.step = float(step)
        self._fraction = dict.fromkeys(self.weights, 0.0)
        self._reported = 0.0
        self._lock = threading.Lock()
        self._failed = False

    @property
    def percent(self) -> float:
        """The run's percentage now (0-100)."""
        total = sum(self.weights.values())
        if total <= 0:
            return 100.0
        return 100.0 * sum(self.weights[s] * f for s, f in self._fraction.items()) / total

    def __call__(self, stage: str, done: int, total: int) -> None:
        if total > 0 and stage in self._fraction:
            self._set(stage, min(done / total, 0.99))

    def finish(self, stage: str) -> None:
        """The stage is finished (or skipped): its whole share counts (always reported)."""
        self._set(stage, 1.0, force=True)

    def _set(self, stage: str, fraction: float, force: bool = False) -> None:
        with self._lock:
            self._fraction[stage] = max(self._fraction[stage], fraction)
            pct = round(min(self.percent, 100.0), 1)
            if force or pct >= 100.0 or pct - self._reported >= self.step:
                if pct <= self._reported:
                    return
                self._reported = pct
                try:
                    self.on_percent(pct)
                except Exception as exc:  # noqa: BLE001 - progress must never fail the run
                    if not self._failed:
                        log.warning("progress display failed (%s); the run goes on", exc)
                    self._failed = True


#: Sinks that show progress to a person (a terminal progress bar), for the runs started in this
#: context (a context variable: a run in another thread or task does not feed them).
_displays: contextvars.ContextVar[tuple[Sink, ...]] = contextvars.ContextVar("ecodask_displays", default=())


@contextlib.contextmanager
def displaying(sink: Sink) -> Iterator[None]:
    """Feed ``sink`` the ``(stage, done, total)`` reports of the runs started in this context while
    the block runs (the command line's progress bar; the flow tees them in, see
    :func:`display_sinks`)."""
    token = _displays.set((*_displays.get(), sink))
    try:
        yield
    finally:
        _displays.reset(token)


def display_sinks() -> list[Sink]:
    """The sinks registered with :func:`displaying` in this context, now."""
    return list(_displays.get())


class _Tee:
    """Feeds each of its sinks; forwards ``end_stage`` to those that have it."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = tuple(sinks)

    def __call__(self, stage: str, done: int, total: int) -> None:
        for sink in self.sinks:
            sink(stage, done, total)

    def end_stage(self, stage: str, failed: bool = False) -> None:
        for sink in self.sinks:
            end = getattr(sink, "end_stage", None)
            if callable(end):
                end(stage, failed=failed)


def tee(*sinks: Sink) -> Sink:
    """One sink feeding each of ``sinks`` in turn (and passing on the end of a stage, see
    :class:`ChunkProgress`)."""
    return _Tee(sinks)

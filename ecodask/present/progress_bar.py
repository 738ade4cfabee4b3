"""The command line's progress display of a run: one row per stage with a bar, the Dask chunk tasks
done of those submitted, the time spent and an estimate of the time left.

:class:`StageProgressDisplay` is a progress sink (``(stage, done, total)``, see
:mod:`ecodask.present.progress`) and a context manager::

    with StageProgressDisplay(Console(stderr=True), stages=resume.STAGES) as display, \\
            progress.displaying(display):
        run_flow(...)

- On a terminal it is a rich live display. While it is shown, log handlers that write to a terminal
  (Prefect's console handler, Dask's ``distributed`` handler, any ``logging.StreamHandler``) print
  through the display's console, so their lines scroll above the bars instead of garbling them
  (rich's own redirection only covers ``sys.stdout`` / ``sys.stderr`` looked up at print time;
  these handlers hold the stream they were configured with).
- Elsewhere (a pipe, a file, CI, a scheduled job, ``TERM=dumb``) it prints plain lines: one when a
  stage ends (its task count and time, or that it was skipped) and, for a long stage, one every
  ``line_interval`` seconds; no control characters.

A stage begins with its first report and ends on :meth:`end_stage` (which
:class:`ecodask.present.progress.ChunkProgress` calls after the stage's final report, saying whether the
stage failed: it then shows as stopped), when the next stage begins, or when the display closes.
A stage named by :meth:`skipped` (the command line knows before the run which stages finished
earlier with the same inputs) shows as skipped, without a bar; another stage that ends without a
Dask task shows as done, with no Dask tasks (the counts alone cannot tell the two apart). The total
grows while a stage submits more computations; the time left is the tasks still to do over the
rate of completed tasks in the last ``rate_window`` seconds.

Sink calls come from a background thread: the sink's methods hold one lock, and the live display
draws from copies of the stages' state.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import io
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from rich.ansi import AnsiDecoder
from rich.console import Console
from rich.file_proxy import FileProxy
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.progress_bar import ProgressBar
from rich.text import Text

from ecodask.errors import EcodaskError

WAITING, RUNNING, DONE, SKIPPED, STOPPED = "waiting", "running", "done", "skipped", "stopped"


def clock_text(seconds: float | None) -> str:
    """``h:mm:ss`` of a duration (``-:--:--`` when unknown)."""
    if seconds is None:
        return "-:--:--"
    return str(dt.timedelta(seconds=max(int(round(seconds)), 0)))


@dataclass
class StageState:
    """What the display knows of one stage."""

    name: str
    state: str = WAITING
    done: int = 0
    total: int = 0
    started: float | None = None
    ended: float | None = None
    last_line: float = 0.0
    #: ``(time, done)`` of the recent reports (the rate window).
    samples: collections.deque | tuple = field(default_factory=collections.deque)

    def snapshot(self) -> StageState:
        """An unshared copy, for the display thread to read while reports go on."""
        return dataclasses.replace(self, samples=tuple(self.samples))

    def elapsed(self, now: float) -> float | None:
        if self.started is None:
            return None
        return (self.ended if self.ended is not None else now) - self.started

    def rate(self, now: float) -> float | None:
        """Completed tasks per second since the oldest report kept (about the rate window, the
        stage's start before that), or None before any task completed."""
        if self.started is None or not self.samples:
            return None
        t0, d0 = self.samples[0]
        if now <= t0 or self.done <= d0:
            return None
        return (self.done - d0) / (now - t0)

    def remaining(self, now: float) -> float | None:
        """Seconds left at the recent rate, or None when unknown."""
        if self.state != RUNNING or self.total <= 0:
            return None
        rate = self.rate(now)
        if not rate:
            return None
        return max(self.total - self.done, 0) / rate


class _Bar(BarColumn):
    """The bar: pulsing until the stage has tasks, full when done, blank when waiting or skipped."""

    def render(self, task: Task) -> Any:
        st: StageState = task.fields["stage"]
        if st.state in (WAITING, SKIPPED) or (st.state != RUNNING and st.total == 0):
            return Text(" " * (self.bar_width or 40))
        total = st.total if st.state == RUNNING else max(st.total, st.done)
        return ProgressBar(total=total if total > 0 else None, completed=st.done, width=self.bar_width,
                           pulse=total <= 0, animation_time=task.get_time(), style=self.style,
                           complete_style=self.complete_style, finished_style=self.finished_style,
                           pulse_style=self.pulse_style)


class _Counts(ProgressColumn):
    """``done/total tasks``, or the stage's state."""

    def render(self, task: Task) -> Text:
        st: StageState = task.fields["stage"]
        if st.state == WAITING:
            return Text("waiting", style="dim")
        if st.state == SKIPPED:
            return Text("skipped (finished earlier)", style="cyan")
        if st.state == DONE and st.total == 0:
            return Text("done (no Dask tasks)", style="green")
        text = Text(f"{st.done}/{st.total} tasks")
        if st.state == DONE:
            text.append(" done", style="green")
        elif st.state == STOPPED:
            text.append(" stopped", style="red")
        return text


class _Elapsed(ProgressColumn):
    """Time spent in the stage."""

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__()
        self._clock = clock

    def render(self, task: Task) -> Text:
        st: StageState = task.fields["stage"]
        if st.state in (WAITING, SKIPPED):
            return Text("")
        return Text(clock_text(st.elapsed(self._clock())), style="progress.elapsed")


class _Remaining(ProgressColumn):
    """Estimated time left of a running stage, from the rate of completed tasks."""

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__()
        self._clock = clock

    def render(self, task: Task) -> Text:
        st: StageState = task.fields["stage"]
        if st.state != RUNNING:
            return Text("")
        return Text(f"{clock_text(st.remaining(self._clock()))} left",
                    style="progress.remaining")


class ConsoleStream(io.TextIOBase):
    """A text stream whose lines are printed through ``console`` (above its live display), standing
    in for ``file`` (a terminal stream): ANSI colours in the text are kept, ``isatty`` and
    ``fileno`` are ``file``'s. Like rich's FileProxy, but safe to share between threads and
    handlers, and not unwrapped by a rich Console given it as its file (rich unwraps its own
    proxies, so Prefect's handler console would write past the display)."""

    def __init__(self, console: Console, file: IO[str]) -> None:
        self._console = console
        self._file = file
        self._buffer: list[str] = []
        self._lock = threading.Lock()
        self._decoder = AnsiDecoder()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._file, "encoding", None) or "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return _isatty(self._file)

    def fileno(self) -> int:
        return self._file.fileno()

    def write(self, text: str) -> int:
        with self._lock:
            lines: list[str] = []
            rest = text
            while rest:
                line, newline, rest = rest.partition("\n")
                if newline:
                    lines.append("".join(self._buffer) + line)
                    self._buffer.clear()
                else:
                    self._buffer.append(line)
            if lines:
                self._console.print(Text("\n").join(self._decoder.decode_line(ln) for ln in lines),
                                    soft_wrap=True)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._buffer:
                self._console.print(Text("").join(self._decoder.decode_line(ln) for ln in self._buffer),
                                    soft_wrap=True)
                self._buffer.clear()


def _all_handlers() -> list[logging.Handler]:
    loggers = [logging.getLogger()] + [
        lg for lg in list(logging.Logger.manager.loggerDict.values()) if isinstance(lg, logging.Logger)]
    seen: dict[int, logging.Handler] = {}
    for lg in loggers:
        for h in list(lg.handlers):
            seen.setdefault(id(h), h)
    return list(seen.values())


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except Exception:  # noqa: BLE001 - closed, or not a file
        return False


def route_log_handlers(console: Console) -> Callable[[], None]:
    """Make every logging handler that writes to a terminal write through ``console`` (so a live
    display on it stays intact); return the function that undoes it.

    Covers ``logging.StreamHandler`` s and their subclasses, including Prefect's
    ``PrefectConsoleHandler``, which prints through a rich Console of its own bound to its stream:
    that console's file is routed too (its colours are kept: rich decodes them)."""
    proxies: dict[int, ConsoleStream] = {}
    undo: list[Callable[[], None]] = []

    def proxy_for(stream: IO[str]) -> ConsoleStream:
        return proxies.setdefault(id(stream), ConsoleStream(console, stream))

    for handler in _all_handlers():
        stream = getattr(handler, "stream", None)
        if (not isinstance(handler, logging.StreamHandler) or isinstance(stream, FileProxy | ConsoleStream)
                or not _isatty(stream)):
            continue
        proxy = proxy_for(stream)
        handler.acquire()
        try:
            handler.stream = proxy
        except AttributeError:  # a handler whose stream is computed (logging's last resort)
            continue
        finally:
            handler.release()
        undo.append(lambda handler=handler, stream=stream: setattr(handler, "stream", stream))
        own = getattr(handler, "console", None)  # Prefect's handler prints through its own Console
        if isinstance(own, Console):
            before = own.file
            own.file = proxy
            undo.append(lambda own=own, before=before: setattr(own, "file", before))

    def restore() -> None:
        for proxy in proxies.values():
            with contextlib.suppress(Exception):
                proxy.flush()
        for step in reversed(undo):
            step()

    return restore


def prefect_console_handlers() -> list[logging.Handler]:
    """Prefect's console handlers in this process (none before Prefect is imported)."""
    if "prefect.logging.handlers" not in sys.modules:
        return []
    from prefect.logging.handlers import PrefectConsoleHandler

    return [h for h in _all_handlers() if isinstance(h, PrefectConsoleHandler)]


class _MessageOnly(logging.Filter):
    """Leaves a record about a user's error (an :class:`EcodaskError` attached to it) without its
    traceback: the command line prints the error itself, one line per problem."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, EcodaskError):
            record.exc_info = None
            record.exc_text = None
        return True


@contextlib.contextmanager
def user_errors_without_tracebacks() -> Iterator[None]:
    """While the block runs, Prefect's console handlers print a user's error (bad input, a bad
    configuration) as its log line without a traceback (``--debug`` shows them: don't use this)."""
    handlers = prefect_console_handlers()
    only = _MessageOnly()
    for h in handlers:
        h.addFilter(only)
    try:
        yield
    finally:
        for h in handlers:
            h.removeFilter(only)


@contextlib.contextmanager
def quiet_console_logs(level: int = logging.WARNING) -> Iterator[None]:
    """While the block runs, Prefect's console handlers print only records of ``level`` or above
    (the records still reach Prefect's API, so the UI keeps every line). Import Prefect first."""
    handlers = prefect_console_handlers()
    before = [h.level for h in handlers]
    for h in handlers:
        h.setLevel(max(h.level, level))
    try:
        yield
    finally:
        for h, lvl in zip(handlers, before, strict=True):
            h.setLevel(lvl)


class StageProgressDisplay:
    """Progress of a run's stages on ``console``: a live display on a terminal, plain lines
    elsewhere (see the module's docstring). A sink (call it with ``(stage, done, total)``) and a
    context manager (starts and stops the display).

    ``stages``: the stages expected, shown as waiting until they begin (others are added as they
    report). ``live``: force the live display on or off (default: whether ``console`` is a
    terminal, not a dumb one). ``clock``: seconds, monotonic (tests pass their own).
    """

    def __init__(self, console: Console | None = None, stages: Sequence[str] = (), *,
                 live: bool | None = None, line_interval: float = 120.0,
                 rate_window: float = 60.0, refresh_per_second: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console if console is not None else Console(stderr=True)
        self.live = live if live is not None else (self.console.is_terminal
                                                    and not self.console.is_dumb_terminal)
        self.line_interval = float(line_interval)
        self._skips: set[str] = set()
        self.rate_window = float(rate_window)
        self.clock = clock
        self._lock = threading.RLock()
        self._stages: dict[str, StageState] = {}
        self._ids: dict[str, TaskID] = {}
        self._current: str | None = None
        self._restore: Callable[[], None] | None = None
        self._progress: Progress | None = None
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), _Bar(bar_width=40), _Counts(),
                _Elapsed(clock), _Remaining(clock),
                console=self.console, auto_refresh=True, refresh_per_second=refresh_per_second,
                redirect_stdout=_isatty(sys.stdout), redirect_stderr=True, get_time=clock)
        for name in stages:
            self._state(name)

    # --- context manager -------------------------------------------------------------------------
    def __enter__(self) -> StageProgressDisplay:
        if self._progress is not None:
            self._progress.start()
            self._restore = route_log_handlers(self.console)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close(failed=exc_type is not None)

    def close(self, failed: bool = False) -> None:
        """End the running stage (stopped, when ``failed``) and stop the live display."""
        with self._lock:
            if self._current is not None:
                self._end(self._current, failed=failed)
        if self._progress is not None:  # not under the lock: the display thread may be drawing
            self._progress.stop()
        if self._restore is not None:
            self._restore()
            self._restore = None

    # --- sink ------------------------------------------------------------------------------------
    def __call__(self, stage: str, done: int, total: int) -> None:
        with self._lock:
            now = self.clock()
            st = self._state(stage)
            if st.state != RUNNING:
                if self._current is not None and self._current != stage:
                    self._end(self._current)
                st.state, st.started, st.ended, st.last_line = RUNNING, now, None, now
                st.samples.clear()
                self._current = stage
            st.done, st.total = int(done), max(int(total), int(done))
            st.samples.append((now, st.done))
            while len(st.samples) > 2 and st.samples[1][0] < now - self.rate_window:
                st.samples.popleft()
            self._update(st)
            if not self.live and now - st.last_line >= self.line_interval:
                st.last_line = now
                left = st.remaining(now)
                self._line(f"stage {stage}: {st.done}/{st.total} Dask tasks, "
                           f"{clock_text(st.elapsed(now))} elapsed"
                           + (f", about {clock_text(left)} left" if left is not None else ""))

    def end_stage(self, stage: str, failed: bool = False) -> None:
        """``stage`` ended (after its final report); ``failed``: it raised (or was interrupted)."""
        with self._lock:
            st = self._stages.get(stage)
            if st is not None and st.state == RUNNING:
                self._end(stage, failed=failed)

    def skipped(self, stage: str) -> None:
        """``stage`` is (or was) skipped: it finished earlier with the same inputs. Call it before
        the stage runs, while it runs or after."""
        with self._lock:
            self._skips.add(stage)
            st = self._state(stage)
            if st.state == DONE:
                st.state = SKIPPED
                self._update(st)

    def refresh(self) -> None:
        """Redraw the live display now."""
        if self._progress is not None:
            self._progress.refresh()

    @property
    def stages(self) -> dict[str, StageState]:
        """A snapshot of every stage's state."""
        with self._lock:
            return {k: v.snapshot() for k, v in self._stages.items()}

    # --- internals -------------------------------------------------------------------------------
    def _state(self, stage: str) -> StageState:
        st = self._stages.get(stage)
        if st is None:
            st = self._stages[stage] = StageState(stage)
            if self._progress is not None:
                width = max(len(s) for s in [*self._stages, "stage"])
                self._ids[stage] = self._progress.add_task(stage, start=False, stage=st.snapshot())
                for name, tid in self._ids.items():
                    self._progress.update(tid, description=name.ljust(width))
        return st

    def _update(self, st: StageState) -> None:
        if self._progress is not None:
            self._progress.update(self._ids[st.name], stage=st.snapshot())

    def _end(self, stage: str, failed: bool = False) -> None:
        st = self._stages[stage]
        now = self.clock()
        st.ended = now
        elapsed = st.elapsed(now) or 0.0
        if failed:
            st.state = STOPPED
        elif stage in self._skips:
            st.state = SKIPPED
        else:
            st.state = DONE
        if self._current == stage:
            self._current = None
        self._update(st)
        if not self.live:
            if st.state == SKIPPED:
                self._line(f"stage {stage}: skipped (finished earlier with the same inputs)")
            elif st.state == STOPPED:
                self._line(f"stage {stage}: stopped after {st.done}/{st.total} Dask tasks, "
                           f"{clock_text(elapsed)}")
            elif st.total == 0:
                self._line(f"stage {stage}: done in {clock_text(elapsed)} (no Dask tasks)")
            else:
                self._line(f"stage {stage}: done, {st.done} Dask tasks in {clock_text(elapsed)}")

    def _line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)


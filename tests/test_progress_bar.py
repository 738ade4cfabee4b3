"""The command line's progress display: a live rich display on a terminal (stages, counts, time
left, skipped stages), plain lines elsewhere, log lines routed above the bars, and the counts of a
real distributed cluster reaching it."""

from __future__ import annotations

import io
import logging

import dask.array as da
import pytest
from rich.console import Console

from ecodask.present.progress import ChunkProgress, NullCounter, displaying, tee
from ecodask.present.progress_bar import (
    DONE,
    SKIPPED,
    STOPPED,
    StageProgressDisplay,
    quiet_console_logs,
    route_log_handlers,
)

STAGES = ["ingest", "transitions_esv", "compensation"]


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class FakeTty(io.StringIO):
    """A stream that says it is a terminal (as a handler's stderr would)."""

    def isatty(self) -> bool:
        return True


def recording_console() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, record=True, width=120, color_system=None)


def last_frame(text: str) -> str:
    """The last drawing of the display (it starts with the first stage's row)."""
    return text[text.rindex("ingest "):]


def test_live_display_shows_stages_counts_time_left_and_skipped() -> None:
    console, clock = recording_console(), FakeClock()
    display = StageProgressDisplay(console, stages=STAGES, live=True, clock=clock)
    display.skipped("transitions_esv")  # the command line knows it finished earlier
    with display:
        display("ingest", 0, 0)
        clock.t += 1
        display("ingest", 10, 100)
        clock.t += 1
        display("ingest", 30, 100)  # 30 tasks in 2 s: 15/s, 70 to go: about 5 s left
        display.refresh()
        running = last_frame(console.export_text(clear=False))
        clock.t += 3
        display("ingest", 120, 120)  # more tasks were submitted meanwhile
        display.end_stage("ingest")
        display("transitions_esv", 0, 0)  # no task; ends when the next stage begins
        clock.t += 0.2
        display("transitions_esv", 0, 0)
        display("compensation", 0, 0)  # ran without Dask, ends with the display
        clock.t += 0.1
    final = last_frame(console.export_text())

    assert "30/100 tasks" in running and "0:00:02" in running and "0:00:05 left" in running
    assert "waiting" in running  # the stages not begun yet
    ingest, skipped, comp = [line for line in final.splitlines() if line.strip()][:3]
    assert "ingest" in ingest and "120/120 tasks done" in ingest and "0:00:05" in ingest
    assert "transitions_esv" in skipped and "skipped" in skipped and "tasks" not in skipped
    assert "━" not in skipped  # no bar for a skipped stage
    assert "compensation" in comp and "done (no Dask tasks)" in comp and "skipped" not in comp
    assert "left" not in final  # nothing is running any more
    states = display.stages
    assert [states[s].state for s in STAGES] == [DONE, SKIPPED, DONE]


def test_skipped_may_be_told_before_during_or_after_the_stage() -> None:
    display = StageProgressDisplay(recording_console(), live=True, clock=FakeClock())
    display.skipped("ingest")
    with display:
        for stage in ("ingest", "transitions_esv", "driver_analysis", "compensation"):
            display(stage, 0, 0)
            if stage == "transitions_esv":
                display.skipped(stage)
            display.end_stage(stage)
        display.skipped("driver_analysis")
    states = {k: v.state for k, v in display.stages.items()}
    assert states == {"ingest": SKIPPED, "transitions_esv": SKIPPED, "driver_analysis": SKIPPED,
                      "compensation": DONE}


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    console, clock = Console(file=out, width=120), FakeClock()
    display = StageProgressDisplay(console, stages=STAGES, clock=clock, line_interval=60)
    display.skipped("transitions_esv")
    assert display.live is False  # decided from the console
    with display:
        display("ingest", 0, 0)
        clock.t += 30
        display("ingest", 10, 40)
        clock.t += 31
        display("ingest", 20, 40)  # a minute: one progress line
        clock.t += 1
        display("ingest", 21, 40)  # not again so soon
        clock.t += 9
        display("ingest", 40, 40)
        display("transitions_esv", 0, 0)  # the next stage: ingest ended
        display("transitions_esv", 0, 0)
        display("compensation", 0, 0)
        clock.t += 3
    text = out.getvalue()
    assert "\x1b" not in text and "\r" not in text
    assert text.splitlines() == [
        "stage ingest: 20/40 Dask tasks, 0:01:01 elapsed, about 0:01:01 left",
        "stage ingest: done, 40 Dask tasks in 0:01:11",
        "stage transitions_esv: skipped (finished earlier with the same inputs)",
        "stage compensation: done in 0:00:03 (no Dask tasks)",
    ]


def test_a_failed_or_interrupted_stage_shows_stopped() -> None:
    out = io.StringIO()
    display = StageProgressDisplay(Console(file=out, width=120), clock=FakeClock())
    with pytest.raises(RuntimeError), display:
        display("ingest", 3, 9)
        raise RuntimeError("boom")
    assert display.stages["ingest"].state == STOPPED
    assert out.getvalue().startswith("stage ingest: stopped after 3/9 Dask tasks")

    # Ctrl-C in a stage: ChunkProgress ends it (its final report comes first) as failed
    display = StageProgressDisplay(recording_console(), live=True, clock=FakeClock())
    with (pytest.raises(KeyboardInterrupt), display,
          ChunkProgress(tee(display), counter=NullCounter(), interval=0.01) as chunks):
        with chunks.stage("transitions_esv"):
            pass
        with chunks.stage("driver_analysis"):
            raise KeyboardInterrupt
    assert display.stages["transitions_esv"].state == DONE
    assert display.stages["driver_analysis"].state == STOPPED


def test_log_lines_print_above_the_live_display_not_into_it() -> None:
    """Handlers holding the terminal stream (Prefect's console handler, distributed's handler) print
    through the display's console while it is live, and get their stream back after."""
    from prefect.logging.handlers import PrefectConsoleHandler

    tty = FakeTty()
    logger = logging.getLogger("ecodask.test_progress_bar")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    prefect_handler = PrefectConsoleHandler(stream=tty)
    plain_handler = logging.StreamHandler(tty)
    console = recording_console()
    try:
        for h in (prefect_handler, plain_handler):
            logger.addHandler(h)
        with StageProgressDisplay(console, stages=STAGES, live=True, clock=FakeClock()) as display:
            display("ingest", 1, 4)
            logger.info("created task run ingest-2000to2010")
            assert prefect_handler.stream is not tty
        assert tty.getvalue() == ""  # nothing written past the display
        recorded = console.export_text()
        assert recorded.count("created task run ingest-2000to2010") == 2  # both handlers
        assert prefect_handler.stream is tty and plain_handler.stream is tty
        logger.info("after")
        assert tty.getvalue().count("after") == 2
    finally:
        for h in (prefect_handler, plain_handler):
            logger.removeHandler(h)


def test_route_log_handlers_leaves_non_terminal_streams() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("ecodask.test_progress_bar.file")
    logger.addHandler(handler)
    try:
        restore = route_log_handlers(recording_console())
        assert handler.stream is stream
        restore()
    finally:
        logger.removeHandler(handler)


def test_quiet_console_logs_raises_prefect_console_level_and_restores_it() -> None:
    from prefect.logging.handlers import PrefectConsoleHandler

    handler = PrefectConsoleHandler(stream=io.StringIO(), level=logging.INFO)
    logger = logging.getLogger("ecodask.test_progress_bar.quiet")
    logger.addHandler(handler)
    try:
        with quiet_console_logs():
            assert handler.level == logging.WARNING
        assert handler.level == logging.INFO
    finally:
        logger.removeHandler(handler)


def test_counts_of_a_local_cluster_reach_the_display() -> None:
    from distributed import Client, LocalCluster

    out = io.StringIO()
    display = StageProgressDisplay(Console(file=out, width=120), stages=["compute"])
    with (
        LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster,
        Client(cluster) as client,
        display,
        displaying(display),
        ChunkProgress(tee(lambda *e: None, display), client, interval=0.05) as chunks,
    ):
        assert chunks.counter.kind == "distributed"
        with chunks.stage("compute"):
            x = da.ones((400, 400), chunks=50)
            assert float((x + 1).sum().compute()) == 2 * 400 * 400
        state = display.stages["compute"]
        assert state.state == DONE  # ended by ChunkProgress (end_stage through tee), not by close
    assert state.total == state.done > 64
    assert out.getvalue().startswith(f"stage compute: done, {state.done} Dask tasks in")

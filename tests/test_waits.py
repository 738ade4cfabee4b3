"""The tests' waits (helpers.deadline, helpers.wait_until): they scale with ECODASK_TEST_TIMEOUT_SCALE
and with the machine's load, and a wait polls for its event rather than sleeping a fixed time."""

from __future__ import annotations

import os
import time

import pytest

import helpers
from helpers import TIMEOUT_SCALE_ENV, deadline, wait_until


def test_deadline_scales_with_the_setting_and_the_load(monkeypatch) -> None:
    cpus = os.cpu_count() or 1
    monkeypatch.delenv(TIMEOUT_SCALE_ENV, raising=False)
    monkeypatch.setattr(helpers.os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert deadline(60) == 60  # an idle machine: as written
    monkeypatch.setattr(helpers.os, "getloadavg", lambda: (10.0 * cpus, 0.0, 0.0))
    assert deadline(60) == pytest.approx(600)  # 10 runnable processes per CPU: 10 times as long
    monkeypatch.setenv(TIMEOUT_SCALE_ENV, "2.5")
    assert deadline(60) == pytest.approx(1500)
    for bad in ("soon", "0", "-1"):
        monkeypatch.setenv(TIMEOUT_SCALE_ENV, bad)
        with pytest.raises(ValueError, match=TIMEOUT_SCALE_ENV):
            deadline(60)


def test_wait_until_returns_the_event_as_soon_as_it_happens() -> None:
    calls = []

    def third_time() -> str | None:
        calls.append(1)
        return "ready" if len(calls) == 3 else None

    start = time.monotonic()
    assert wait_until(third_time, 60, "the event", interval=0.01) == "ready"
    assert len(calls) == 3 and time.monotonic() - start < 30


def test_wait_until_fails_after_the_deadline_naming_what_it_waited_for(monkeypatch) -> None:
    monkeypatch.delenv(TIMEOUT_SCALE_ENV, raising=False)
    monkeypatch.setattr(helpers.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    seen = []
    with pytest.raises(pytest.fail.Exception, match=r"the server \(last: \d+\): not after 0 s"):
        wait_until(lambda: seen.append(len(seen)), 0.05, lambda: f"the server (last: {seen[-1]})",
                   interval=0.01)
    assert len(seen) >= 2  # polled, not slept through

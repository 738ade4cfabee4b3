"""One run per output folder: a second run while one holds the output exits 2 naming the holder;
a lock left by a process that died is taken over; ``--wait`` waits for the holder to finish."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ecodask.cli import app
from ecodask.io.layout import RunFolder
from ecodask.io.lock import OutputLockedError, holder, output_lock

from helpers import deadline, wait_until

HOLD = """
import sys
from pathlib import Path
from ecodask.io.lock import output_lock
with output_lock(sys.argv[1]):
    Path(sys.argv[2]).touch()  # the test waits for this
    sys.stdin.read()  # until the test closes it (or kills this process)
"""


def _holder(state: Path) -> subprocess.Popen:
    held = state.parent / "held.marker"
    held.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(state), str(held)], stdin=subprocess.PIPE,
                            text=True)
    wait_until(lambda: held.exists() or proc.poll() is not None, 60, "the holder takes the lock")
    assert proc.poll() is None, "the holder ended before taking the lock"
    return proc


def test_a_second_run_exits_2_naming_the_holder_then_takes_over_a_dead_ones_lock(tiny_region: Path) -> None:
    state = RunFolder(tiny_region.parent / "out").state
    proc = _holder(state)
    try:
        with pytest.raises(OutputLockedError) as info, output_lock(state):
            pass
        assert f"pid {proc.pid}" in str(info.value) and str(state / "lock") in str(info.value)
        result = CliRunner().invoke(app, ["run", str(tiny_region)])
        assert result.exit_code == 2
        text = " ".join(result.output.split())
        assert "in use by another ecodask run" in text and f"pid {proc.pid}" in text
        assert holder(state / "lock")["pid"] == proc.pid
    finally:
        proc.send_signal(signal.SIGKILL)  # dies holding it: the kernel releases the lock
        proc.wait(deadline(30))
    assert holder(state / "lock")["pid"] == proc.pid  # the dead holder's note is still there
    with output_lock(state):  # ... and is taken over
        assert holder(state / "lock")["pid"] == os.getpid()
    assert holder(state / "lock") == {}  # released: nobody holds it


def test_wait_for_the_holder_to_finish(tmp_path: Path) -> None:
    state = tmp_path / "out" / ".ecodask"
    proc = _holder(state)
    try:
        proc.stdin.close()  # the holder finishes now; the waiter gets the lock when it has
        with output_lock(state, wait_s=deadline(60)):
            assert holder(state / "lock")["pid"] == os.getpid()
    finally:
        proc.wait(deadline(30))


def test_the_same_process_may_take_it_again_and_releases_it_last(tmp_path: Path) -> None:
    state = tmp_path / ".ecodask"
    with output_lock(state), output_lock(state):
        pass  # the command line holds it, then its flow
    probe = ("import sys\nfrom ecodask.io.lock import output_lock\n"
             "with output_lock(sys.argv[1]):\n    print('free')\n")
    done = subprocess.run([sys.executable, "-c", probe, str(state)], capture_output=True, text=True,
                          timeout=deadline(60))
    assert done.stdout.strip() == "free", done.stderr
    with output_lock(state):
        with output_lock(state):
            pass
        other = subprocess.run([sys.executable, "-c", probe, str(state)], capture_output=True, text=True,
                               timeout=deadline(60))
        assert other.returncode != 0 and "in use by another ecodask run" in other.stderr
    wait_until(lambda: holder(state / "lock") == {}, 10, "the lock file emptied on release")

"""Named crash points, for the tests that kill a run at every instant that matters.

A crash point is a line of the form ``crash_point("publish:renamed")`` at a place where a process
may die (between two renames, after a file is written, before a manifest). In normal use it does
nothing but read one environment variable. The tests set:

- ``ECODASK_CRASH_TRACE=<file>``: every crash point passed is appended to the file, one name a
  line (how a test lists the instants of a run);
- ``ECODASK_CRASH_AT=<name>`` or ``<name>#<n>``: the process kills itself with SIGKILL at the first
  (or n-th) passing of that point, as a power cut or ``kill -9`` would, with no clean-up.
"""

from __future__ import annotations

import os
import signal

_TRACE = "ECODASK_CRASH_TRACE"
_AT = "ECODASK_CRASH_AT"
_passed: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Pass the crash point ``name`` (see the module's text)."""
    trace, at = os.environ.get(_TRACE), os.environ.get(_AT)
    if not trace and not at:
        return
    n = _passed[name] = _passed.get(name, 0) + 1
    if trace:
        with open(trace, "a", encoding="utf-8") as f:
            f.write(f"{name}#{n}\n")
    if at and at in (name, f"{name}#{n}"):
        os.kill(os.getpid(), signal.SIGKILL)

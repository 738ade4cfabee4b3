"""Removing a half-written output after a failed computation.

When one Dask task fails, ``compute`` raises at once while the tasks already running go on and
may still write their chunks, recreating folders that were just removed. :func:`remove_tree`
removes a folder and keeps removing it until it has stayed away for a short quiet period.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path


def remove_tree(path: str | Path, quiet_s: float = 0.5, timeout_s: float = 60.0) -> None:
    """Remove ``path`` (a folder) and anything written into it by tasks still running; returns
    once it has been absent for ``quiet_s`` seconds, or after ``timeout_s``."""
    path = Path(path)
    deadline = time.monotonic() + timeout_s
    absent_since = None
    while time.monotonic() < deadline:
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
            absent_since = None
        elif absent_since is None:
            absent_since = time.monotonic()
        elif time.monotonic() - absent_since >= quiet_s:
            return
        time.sleep(0.05)

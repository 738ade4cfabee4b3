"""One run at a time per output folder: an exclusive lock on ``<output>/.ecodask/lock`` (and with a
remote output, its lock in the bucket too: :func:`run_lock`, :mod:`ecodask.io.bucket_lock`).

The lock is the kernel's (``flock``) on that file, held while the process runs: it goes with the
process however it ends (a crash, a kill), so a lock left behind is never mistaken for a live
one. The file itself says who holds it (user, host, pid, start time, command) for the message a
second run prints; a file whose lock nobody holds is stale and simply taken over. A process that
holds the lock may take it again (the command line, then its flow): the lock is released when the
outermost holder lets go.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import getpass
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from ecodask.errors import EcodaskError

LOCK_FILE = "lock"

_held: dict[str, tuple[int, int]] = {}  # lock path -> (file descriptor, depth)
_guard = threading.Lock()


class OutputLockedError(EcodaskError):
    """Another run holds the output folder."""


def holder(lock_path: str | Path) -> dict[str, object]:
    """What the lock file says of its holder ({} when unreadable)."""
    try:
        info = json.loads(Path(lock_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def describe_holder(info: dict[str, object]) -> str:
    """A lock's holder in a message: its pid, host, user, start and command."""
    if not info:
        return "another process"
    return (f"pid {info.get('pid')} on {info.get('host')} (user {info.get('user')}, started "
            f"{info.get('started')}: {info.get('command')})")


@contextlib.contextmanager
def output_lock(state_dir: str | Path, wait_s: float = 0.0, poll_s: float = 0.2) -> Iterator[Path]:
    """Hold the lock of the output whose state folder is ``state_dir`` (``<output>/.ecodask``) for
    the block; wait up to ``wait_s`` seconds for another run to finish, then raise
    :class:`OutputLockedError` naming the lock file and its holder."""
    path = Path(state_dir) / LOCK_FILE
    key = os.path.abspath(path)
    with _guard:
        if key in _held:  # this process holds it already
            fd, depth = _held[key]
            _held[key] = (fd, depth + 1)
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield path
        finally:
            with _guard:
                fd, depth = _held[key]
                _held[key] = (fd, depth - 1)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + max(wait_s, 0.0)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise OutputLockedError(
                        f"{path}: the output is in use by another ecodask run, "
                        f"{describe_holder(holder(path))}; wait for it to finish (or --wait SECONDS), "
                        "or stop it") from None
                time.sleep(poll_s)
        info = {"user": getpass.getuser(), "host": socket.gethostname(), "pid": os.getpid(),
                "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        with _guard:
            _held[key] = (fd, 1)
    except BaseException:
        os.close(fd)
        raise
    try:
        yield path
    finally:
        with _guard:
            fd, depth = _held[key]
            if depth > 1:
                _held[key] = (fd, depth - 1)
            else:
                del _held[key]
        if depth == 1:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # nobody holds it now
            os.close(fd)  # releases the lock


@contextlib.contextmanager
def run_lock(state_dir: str | Path, remote: str | None = None, wait_s: float = 0.0) -> Iterator[Path]:
    """:func:`output_lock` of the output folder, and with a ``remote`` output URL the lock in its
    bucket as well (:func:`ecodask.io.bucket_lock.bucket_lock`): runs on machines that share no
    disk exclude each other there."""
    with output_lock(state_dir, wait_s=wait_s) as path:
        if remote is None:
            yield path
            return
        from ecodask.io.bucket_lock import bucket_lock

        with bucket_lock(remote, wait_s=wait_s):
            yield path

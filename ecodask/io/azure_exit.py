"""The Azure clients zarr opened, closed quietly when the process exits.

adlfs closes each filesystem's service client (and credential) by a ``weakref.finalize`` that
runs ``fsspec.asyn.sync(fs.loop, ...)``. The filesystems zarr opens for ``az://`` stores are
asynchronous: their ``loop`` is None, so at exit every one of those finalizers raises ``RuntimeError:
Loop is not running`` and prints its traceback, after a run that succeeded, in the flow process and
in every Dask worker that wrote chunks (an adlfs defect: fsspec/adlfs#495, open). :func:`install`
registers, once per process, an exit hook that runs before those finalizers: it takes each of them
back and runs its closing coroutine on zarr's event loop, where those clients were opened, if that
loop still runs (zarr's own exit hook stops it, and runs first when zarr was imported after this
module); else the coroutine is dropped unrun, as the process is ending anyway. Nothing else is
touched; a process that never imported adlfs does nothing, and installing imports nothing (a run's
planning stays free of zarr).
"""

from __future__ import annotations

import atexit
import contextlib
import sys
import threading
import weakref

_installed = False
_lock = threading.Lock()
#: How long each client may take to close at exit, seconds.
CLOSE_S = 5.0


def install() -> None:
    """Register :func:`close_async_clients` to run at exit before ``weakref.finalize``'s own exit
    hook (hooks run last registered first, so that one is made to exist first)."""
    global _installed
    with _lock:
        if _installed:
            return
        if not getattr(weakref.finalize, "_registered_with_atexit", True):
            weakref.finalize(install, lambda: None).detach()  # registers finalize's exit hook now
        atexit.register(close_async_clients)
        _installed = True


def close_async_clients() -> int:
    """Take back adlfs's finalizers of asynchronous filesystems (those with no loop, which would
    raise at exit) and close their clients on zarr's event loop; return how many were taken."""
    if "adlfs" not in sys.modules:
        return 0
    from fsspec.asyn import sync

    registry = getattr(weakref.finalize, "_registry", None)  # CPython's table of live finalizers
    if not isinstance(registry, dict):
        return 0
    taken = []
    for fin, info in list(registry.items()):
        args = getattr(info, "args", ())
        if (getattr(info, "func", None) is sync and len(args) == 3 and args[0] is None
                and getattr(args[1], "__module__", "").startswith("adlfs")):
            detached = fin.detach()
            if detached is not None:
                taken.append(args[1](args[2]))  # the closing coroutine, not yet run
    if taken:
        _run_on_zarrs_loop(taken)
    return len(taken)


def _run_on_zarrs_loop(coros: list) -> None:
    """Run the closing coroutines on zarr's event loop if it still runs; else drop them unrun."""
    try:
        from zarr.core import sync as zsync
    except ImportError:
        zsync = None
    loop = zsync.loop[0] if zsync is not None else None
    for coro in coros:
        if loop is None or not loop.is_running():
            coro.close()
            continue
        with contextlib.suppress(Exception):
            zsync.sync(coro, loop=loop, timeout=CLOSE_S)

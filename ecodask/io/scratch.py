"""Files a Dask task writes on a worker that shares no disk with the flow.

A task that writes small files (charts, maps, the compensation tables) writes them into a fresh
temporary folder of the machine it runs on and returns them as bytes (:func:`collected`); the flow
writes them into the run's folder, each atomically (:func:`placed`). Files a task reads from the
run's folder travel the same way, as bytes (:func:`seeded`). So the same task runs on a laptop's
worker and on a Kubernetes pod that sees only the bucket.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from ecodask.io.atomic import write_atomic

#: Files by path relative to a folder, as bytes.
Files = dict[str, bytes]


def collected(work: Callable[[Path], Mapping[str, Path]], inputs: Mapping[str, bytes] | None = None,
              ) -> tuple[dict[str, str], Files]:
    """Call ``work(folder)`` with a fresh temporary folder holding ``inputs`` (by relative path);
    return what it returns, each path relative to the folder, and every file it wrote there (not
    the inputs), as bytes."""
    with tempfile.TemporaryDirectory(prefix="ecodask-task-") as tmp:
        root = Path(tmp)
        seeded(inputs or {}, root)
        names = {k: Path(v).relative_to(root).as_posix() for k, v in work(root).items()}
        files = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
                 if p.is_file() and p.relative_to(root).as_posix() not in (inputs or {})}
    return names, files


def seeded(files: Mapping[str, bytes], folder: Path) -> None:
    """Write ``files`` under ``folder`` (plain writes: a fresh folder no one else reads)."""
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def placed(files: Mapping[str, bytes], folder: Path) -> dict[str, Path]:
    """Write ``files`` under ``folder``, each atomically (a reader sees the previous file or the new
    one); return their paths by relative name."""
    out = {}
    for rel, data in files.items():
        path = Path(folder) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        out[rel] = write_atomic(path, lambda p, data=data: p.write_bytes(data))
    return out

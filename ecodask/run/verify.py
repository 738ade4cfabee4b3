"""What a finished stage wrote, recorded in its manifest, and checked before a rerun trusts it.

When a stage finishes, its manifest lists every file it wrote (the files of the output folder
that are new or changed since it started) with its size and, for every file but the Zarr chunks,
a checksum. Before a rerun skips a stage it checks that each file the stage was the last to write
is still there with the same size and (chunks apart) the same checksum: a deleted chunk, a
truncated table or an edited figure makes the stage run again, saying what changed. A later stage
that rewrites a file an earlier stage wrote (an array added to the store's group) takes it over:
each file is checked against the last stage that wrote it.

Chunks (``store.zarr/**/c/...``) are checked by listing and size, which is cheap at any scale; their
content is not hashed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from ecodask.io.layout import STATE_DIR, STORE
from ecodask.run.inputs import checksum

#: A file's record: size in bytes and checksum (None for a Zarr chunk).
Record = tuple[int, str | None]


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time (ns) of every file under ``root`` but the run's state folder."""
    out: dict[str, tuple[int, int]] = {}
    for folder, dirs, files in os.walk(root):
        if Path(folder) == root:
            dirs[:] = [d for d in dirs if d != STATE_DIR]
        for name in files:
            path = Path(folder, name)
            with contextlib.suppress(OSError):
                st = path.stat()
                out[path.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)
    return out


def is_chunk(rel: str) -> bool:
    """Whether ``rel`` (relative to the output folder) is a chunk file of the Zarr store."""
    parts = rel.split("/")
    return parts[0] == STORE and "c" in parts[1:-1]


def is_partial(rel: str) -> bool:
    """Temporary files and staged arrays a stage leaves behind for a moment: never recorded."""
    name = rel.rsplit("/", 1)[-1]
    return name.startswith(".") or ".partial" in rel or "/_staging_" in f"/{rel}"


def written(root: Path, before: Mapping[str, tuple[int, int]]) -> dict[str, Record]:
    """The files under ``root`` that are new or changed since ``before`` (a :func:`snapshot`), with
    their size and checksum (chunks: size only)."""
    out: dict[str, Record] = {}
    for rel, now in sorted(snapshot(root).items()):
        if before.get(rel) == now or is_partial(rel):
            continue
        out[rel] = (now[0], None if is_chunk(rel) else checksum(root / rel))
    return out


def owners(records: Iterable[tuple[str, Mapping[str, Record]]]) -> dict[str, tuple[str, Record]]:
    """Each recorded file's last writer and its record, from ``(stage, files)`` in run order."""
    out: dict[str, tuple[str, Record]] = {}
    for stage, files in records:
        for rel, rec in files.items():
            out[rel] = (stage, (int(rec[0]), rec[1]))
    return out


def changes(root: Path, stage: str, owned: Mapping[str, tuple[str, Record]]) -> list[str]:
    """What differs, on disk, from the records of the files ``stage`` was the last to write: one
    short line per file (missing, another size, another checksum)."""
    out: list[str] = []
    for rel, (owner, (size, digest)) in owned.items():
        if owner != stage:
            continue
        path = root / rel
        try:
            now = path.stat().st_size
        except OSError:
            out.append(f"{rel}: missing")
            continue
        if now != size:
            out.append(f"{rel}: {now} bytes, {size} when written")
        elif digest is not None and checksum(path) != digest:
            out.append(f"{rel}: its content changed")
    return out

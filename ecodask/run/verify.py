"""What a finished stage wrote, recorded in its manifest, and checked before a rerun trusts it.

When a stage finishes, its manifest lists every file it wrote (the files of the output folder
that are new or changed since it started) with its size and checksum (BLAKE2b), Zarr chunks
included (hashed by the run's cluster, :func:`checksums`). Before a rerun skips a stage it
checks each file the stage was the last to write:

- always: that it is there with the same size (a deleted chunk, a truncated table);
- always: the content of every file but the chunks (tables, figures, metadata);
- chunks' content: a random sample by default (:data:`SAMPLE_SHARE` of the stage's chunks, at least
  :data:`MIN_SAMPLE`, drawn anew on each rerun), every chunk with ``verify="all"``
  (``ecodask run --verify``).

Anything that differs makes the stage run again, saying what changed. A later stage that rewrites
a file an earlier stage wrote (an array added to the store's group) takes it over: each file is
checked against the last stage that wrote it.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

from ecodask.chunked.batches import map_batches
from ecodask.io import layers
from ecodask.io.commit import leftover
from ecodask.io.layout import STATE_DIR, STORE, in_chunk_folder
from ecodask.io.provenance import file_checksum

#: A file's record: size in bytes and checksum (None in manifests of earlier versions, for chunks).
Record = tuple[int, str | None]
#: How much of a stage's chunk content a rerun reads back: a sample, or all of it.
Verify = Literal["sample", "all"]
SAMPLE_SHARE = 0.01
MIN_SAMPLE = 32


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time (ns) of every file under ``root`` but the run's state folder, by
    path relative to ``root`` (``/``-separated). Symbolic links to folders are not followed.

    Taken before and after every stage in the flow's process, so kept cheap: one ``scandir`` a
    folder and string paths (a ``Path`` and its ``relative_to`` per file took 0.56 CPU s a walk of
    2,336 files, this 0.047 s; BENCHMARKS.md)."""
    out: dict[str, tuple[int, int]] = {}

    def walk(folder: str, rel: str) -> None:
        try:
            entries = os.scandir(folder)
        except OSError:
            return
        with entries:
            for entry in entries:
                name = rel + entry.name
                with contextlib.suppress(OSError):
                    if entry.is_dir():
                        if not entry.is_symlink() and not (not rel and entry.name == STATE_DIR):
                            walk(entry.path, name + "/")
                        continue
                    st = entry.stat()
                    out[name] = (st.st_size, st.st_mtime_ns)

    walk(os.fspath(root), "")
    return out


def is_chunk(rel: str) -> bool:
    """Whether ``rel`` (relative to the output folder) is a chunk file of the Zarr store or of a
    stage's layer (``stages/<stage>/<key16>/<array>/c/...``)."""
    parts = rel.split("/")
    if parts[0] == layers.STAGES:
        return len(parts) > 3 and layers.is_chunk("/".join(parts[3:]))
    return parts[0] == STORE and in_chunk_folder(parts[1:])


def is_partial(rel: str) -> bool:
    """Temporary files and staged arrays a stage leaves behind for a moment (what
    :func:`ecodask.io.commit.leftover` calls a writer's leftover, in any part of the path, and
    hidden files): never recorded."""
    parts = rel.split("/")
    return parts[-1].startswith(".") or any(leftover(p, i < len(parts) - 1) for i, p in enumerate(parts))


def hash_files(root: Path, rels: Sequence[str]) -> list[str]:
    """The checksums of the files ``rels`` under ``root``, on a thread per core of this machine
    (hashing releases the GIL)."""
    if len(rels) < 64:
        return [file_checksum(root / rel) for rel in rels]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(lambda rel: file_checksum(root / rel), rels, chunksize=256))


#: Files hashed by one task of :func:`checksums`.
HASH_BATCH = 1024


def checksums(root: Path, rels: Sequence[str]) -> list[str]:
    """The checksums of the files ``rels`` under ``root``: up to :data:`HASH_BATCH` files here,
    more in tasks of that many on the current Dask scheduler, so that a run's cluster (whose workers
    see the output folder: they wrote it) hashes what a stage wrote, not the flow's process alone."""
    return map_batches(functools.partial(hash_files, root), list(rels), HASH_BATCH)


def written(root: Path, before: Mapping[str, tuple[int, int]]) -> dict[str, Record]:
    """The files under ``root`` that are new or changed since ``before`` (a :func:`snapshot`), with
    their size and checksum."""
    sizes = {rel: now[0] for rel, now in sorted(snapshot(root).items())
             if before.get(rel) != now and not is_partial(rel)}
    rels = list(sizes)
    return {rel: (sizes[rel], digest) for rel, digest in zip(rels, checksums(root, rels), strict=True)}


def owners(records: Iterable[tuple[str, Mapping[str, Record]]]) -> dict[str, tuple[str, Record]]:
    """Each recorded file's last writer and its record, from ``(stage, files)`` in run order."""
    out: dict[str, tuple[str, Record]] = {}
    for stage, files in records:
        for rel, rec in files.items():
            out[rel] = (stage, (int(rec[0]), rec[1]))
    return out


def sampled(chunk_files: Sequence[str], chunks: Verify = "sample", rng: random.Random | None = None,
            ) -> list[str]:
    """The chunks among ``chunk_files`` whose content a rerun reads back: all with ``chunks="all"``,
    else a random sample of :data:`SAMPLE_SHARE` of them, at least :data:`MIN_SAMPLE`."""
    if chunks == "all" or not chunk_files:
        return list(chunk_files)
    n = min(len(chunk_files), max(MIN_SAMPLE, math.ceil(SAMPLE_SHARE * len(chunk_files))))
    return (rng or random.Random()).sample(list(chunk_files), n)


def read_back(files: Sequence[str], is_chunk: Callable[[str], bool], chunks: Verify = "sample",
              rng: random.Random | None = None) -> list[str]:
    """The files among ``files`` whose content a rerun reads back, on disk or in a bucket: every one
    that is no chunk (``is_chunk``), and the chunks :func:`sampled` picks."""
    return [f for f in files if not is_chunk(f)] + sampled([f for f in files if is_chunk(f)], chunks, rng)


def changes(root: Path, stage: str, owned: Mapping[str, tuple[str, Record]], chunks: Verify = "sample",
            rng: random.Random | None = None) -> list[str]:
    """What differs, on disk, from the records of the files ``stage`` was the last to write: one
    short line per file (missing, another size, another checksum). The content of chunks is read
    for a sample of them, or all with ``chunks="all"`` (see the module's text)."""
    mine = {rel: rec for rel, (owner, rec) in owned.items() if owner == stage}
    out: list[str] = []
    recorded: list[str] = []
    for rel, (size, digest) in mine.items():
        try:
            now = (root / rel).stat().st_size
        except OSError:
            out.append(f"{rel}: missing")
            continue
        if now != size:
            out.append(f"{rel}: {now} bytes, {size} when written")
        elif digest is not None:
            recorded.append(rel)
    read = read_back(recorded, is_chunk, chunks, rng)
    for rel, digest in zip(read, checksums(root, read), strict=True):
        if digest != mine[rel][1]:
            out.append(f"{rel}: its content changed")
    return sorted(out)

"""The one atomic write: a file is written under a partial name beside its final path and renamed
into place only when complete, so a reader (or a rerun) never sees half a file and a failed write
leaves the previous file whole. Every file ecodask writes goes through here."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ecodask.crashpoints import crash_point


def partial_path(path: str | Path, keep_suffix: bool = False) -> Path:
    """The partial name of ``path``: ``.<name>.partial`` beside it, or ``.<stem>.partial<suffix>``
    with ``keep_suffix`` (for writers, such as GDAL's, that pick the format by suffix)."""
    path = Path(path)
    if keep_suffix:
        return path.with_name(f".{path.stem}.partial{path.suffix}")
    return path.with_name(f".{path.name}.partial")


@contextmanager
def replacing(path: str | Path, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield the partial path to write; on success rename it onto ``path``; always remove what is
    left of the partial file (a failed write's)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path, keep_suffix)
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
        crash_point("atomic:written")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, write: Callable[[Path], object], keep_suffix: bool = False) -> Path:
    """Call ``write(partial_path)`` and rename the result onto ``path``; return ``path``."""
    with replacing(path, keep_suffix) as tmp:
        write(tmp)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(obj: object, path: str | Path, sort_keys: bool = False) -> Path:
    """Write ``obj`` as indented JSON (a final newline) atomically."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=sort_keys, default=str) + "\n")

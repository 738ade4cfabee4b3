"""A run's outputs change as one transaction: built in a work copy, published whole by a journal.

The output folder always shows one finished run. A run that has anything to compute works in
``<output>/.ecodask/work``, a copy of the run's entries (the store, the tables, the figures,
``run.json``, the report and the stage manifests, :data:`ENTRIES`) made by :func:`clone` with
hard links where a file is only ever replaced, never written into (every file ecodask writes goes
through :mod:`ecodask.io.atomic`, and every Zarr array a stage writes is created anew), and copies
where it may be written into (the Zarr metadata and the small coordinate arrays). The copy costs
a directory entry per file, not the bytes.

When the run has finished, :func:`publish` swaps the work copy's entries in for the folder's:

1. a journal ``.ecodask/commit.json`` names the entries (and which the work copy has) and is
   written atomically: this is the commit point;
2. each entry of the folder is renamed into ``.ecodask/old``, and the work copy's renamed into its
   place;
3. what is left of the work copy is removed, then the journal, then ``.ecodask/old``.

A process killed before (1) leaves the folder as it was, and the work copy for the next run to
resume from; killed after it, the next command on the folder finishes the renames first
(:func:`recover`), which is safe to repeat at any step. So after a crash at any instant the folder
holds either the previous run's outputs or the new run's, whole, never a mix, and while a run
computes (hours, at national scale) its readers see the previous run, untouched.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ecodask.crashpoints import crash_point
from ecodask.io.atomic import write_json
from ecodask.io.layout import FIGURES, REPORT, RUN_RECORD, STATE_DIR, STORE, TABLES
from ecodask.io.lock import output_lock

#: What a run owns in its output folder, relative to it: swapped whole at commit.
ENTRIES = (STORE, TABLES, FIGURES, RUN_RECORD, REPORT, f"{STATE_DIR}/stages")
WORK = f"{STATE_DIR}/work"
OLD = f"{STATE_DIR}/old"
JOURNAL = f"{STATE_DIR}/commit.json"


def work_folder(root: str | Path) -> Path:
    """The work copy of the output folder ``root`` (it may not exist)."""
    return Path(root) / WORK


def _array_ndim(folder: str) -> int | None:
    """The number of dimensions of the Zarr array in ``folder`` (None if it holds none)."""
    try:
        with open(os.path.join(folder, "zarr.json"), encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("node_type") != "array":
        return None
    return len(meta.get("shape") or ())


def _link_or_copy(src: str, dst: str, link: bool) -> None:
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:  # a file system without hard links: copy
            pass
    shutil.copy2(src, dst)


def _clone_tree(src: Path, dst: Path, in_store: bool) -> int:
    """Copy the folder ``src`` to ``dst`` (hard links for files never written into); return the
    number of files."""
    n = 0
    linked_under: str | None = None  # the chunk folder of a 2-D or larger array being walked
    for folder, dirs, files in os.walk(src):
        dirs.sort()
        rel = os.path.relpath(folder, src)
        out = dst if rel == "." else dst / rel
        out.mkdir(parents=True, exist_ok=True)
        if in_store:
            if linked_under is not None and not (folder + os.sep).startswith(linked_under):
                linked_under = None
            ndim = _array_ndim(folder)
            if ndim is not None and ndim >= 2:
                linked_under = os.path.join(folder, "c") + os.sep
        for name in files:
            path = os.path.join(folder, name)
            link = not in_store or (linked_under is not None and path.startswith(linked_under))
            _link_or_copy(path, str(out / name), link)
            n += 1
    return n


def clone(root: str | Path) -> Path:
    """Make a fresh work copy of the output folder ``root`` (of its :data:`ENTRIES`); return it.
    Zarr chunks of arrays with two or more dimensions and every file outside the store are hard
    links: they are only ever replaced (renamed over) or removed, never written into."""
    root = Path(root)
    work = work_folder(root)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for entry in ENTRIES:
        src = root / entry
        if src.is_dir():
            _clone_tree(src, work / entry, in_store=entry == STORE)
        elif src.is_file():
            (work / entry).parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(str(src), str(work / entry), link=True)
        crash_point("clone:entry")
    return work


def leftover(name: str, is_dir: bool) -> bool:
    """What a killed writer leaves: partial files (``.x.partial``, zarr's ``zarr.<id>.partial``,
    ``.x.partial.png``), a store or array being staged (``store.zarr.partial``, ``_staging_esv``)
    or set aside (``store.zarr.old``)."""
    return ".partial" in name or (is_dir and (name.startswith("_staging_") or name.endswith(".old")))


def sweep(work: str | Path) -> list[str]:
    """Remove from a work copy a killed run left what its writers had not finished (see
    :func:`leftover`), so that a resumed run publishes none of it; return what was removed,
    relative to the copy. Its manifests (``.ecodask/``) are left alone."""
    work = Path(work)
    removed: list[str] = []
    for folder, dirs, files in os.walk(work):
        here = Path(folder)
        if here == work:
            dirs[:] = [d for d in dirs if d != STATE_DIR]
        for d in [d for d in dirs if leftover(d, True)]:
            shutil.rmtree(here / d, ignore_errors=True)
            removed.append((here / d).relative_to(work).as_posix())
            dirs.remove(d)
        for f in files:
            if leftover(f, False):
                (here / f).unlink(missing_ok=True)
                removed.append((here / f).relative_to(work).as_posix())
    return sorted(removed)


def publish(root: str | Path) -> None:
    """Swap the work copy's entries in for the output folder's (see the module's text), then
    remove the previous ones and the work copy."""
    root = Path(root)
    work = work_folder(root)
    shutil.rmtree(root / OLD, ignore_errors=True)
    journal = {"entries": {e: (work / e).exists() for e in ENTRIES}}
    write_json(journal, root / JOURNAL)
    crash_point("publish:journal")
    _finish(root, journal["entries"])


def _finish(root: Path, entries: dict[str, bool]) -> None:
    """Do (again) every rename of a journalled commit, then clean up; each step is skipped when
    already done, so a commit interrupted anywhere finishes the same way."""
    work, old = work_folder(root), root / OLD
    for entry, new in entries.items():
        final, staged, aside = root / entry, work / entry, old / entry
        if new and not staged.exists():
            continue  # renamed into place already
        if final.exists() or final.is_symlink():
            aside.parent.mkdir(parents=True, exist_ok=True)
            if aside.exists():
                _remove(aside)
            final.rename(aside)
            crash_point("publish:aside")
        if new:
            final.parent.mkdir(parents=True, exist_ok=True)
            staged.rename(final)
            crash_point("publish:renamed")
    shutil.rmtree(work, ignore_errors=True)  # before the journal: a work copy left means "resume"
    (root / JOURNAL).unlink()
    crash_point("publish:done")
    shutil.rmtree(old, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def pending_commit(root: str | Path) -> dict[str, bool] | None:
    """The entries of a commit that was journalled but not finished (a killed run), or None."""
    path = Path(root) / JOURNAL
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        journal = json.loads(text)
        entries = journal["entries"]
        if not isinstance(entries, dict) or not set(entries) <= set(ENTRIES):
            raise ValueError(entries)
    except (ValueError, KeyError, TypeError):  # written atomically: only damage makes it so
        raise RuntimeError(f"{path}: not a commit journal of ecodask; the output folder needs a look"
                           " by hand (the previous outputs are in .ecodask/old, the new in .ecodask/work)"
                           ) from None
    return {str(k): bool(v) for k, v in entries.items()}


def recover(root: str | Path) -> bool:
    """Finish a commit a killed run journalled (True if there was one), and remove the previous
    entries a finished commit left. The work copy of a run killed before its commit is kept: the
    next run resumes from it. Call with the output's lock held."""
    root = Path(root)
    entries = pending_commit(root)
    if entries is not None:
        _finish(root, entries)
        return True
    shutil.rmtree(root / OLD, ignore_errors=True)
    return False


def settle(root: str | Path, wait_s: float = 60.0) -> None:
    """Before reading a run's output folder: finish a commit that a killed run journalled (under
    the output's lock, waiting up to ``wait_s`` for a run that is publishing right now)."""
    root = Path(root)
    if pending_commit(root) is None:
        return
    with output_lock(root / STATE_DIR, wait_s=wait_s):
        recover(root)

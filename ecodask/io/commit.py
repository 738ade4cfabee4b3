"""A folder's outputs change as one transaction: assembled in a work folder, published whole by a
journal.

The output folder always shows one finished run. A run that computes assembles the folder's next
plain view in ``<output>/.ecodask/work``: the tables, figures and charts its stages wrote or
linked there, ``run.json``, the report, the store's view (``store.zarr``, a Zarr group whose arrays
are links into the stages' layers, :mod:`ecodask.io.view`) and the run's pointer
(``.ecodask/current.json``, naming those layers: :mod:`ecodask.io.layers`); :data:`ENTRIES`.
The layers themselves are never in the swap: each stage writes a new one beside the committed
run's.

When the run has finished, :func:`publish` swaps the work folder's entries in for the folder's:

1. a journal ``.ecodask/commit.json`` names the entries (and which the work folder has) and is
   written atomically: this is the commit point;
2. each entry of the folder is renamed into ``.ecodask/old``, and the work folder's renamed into
   its place;
3. what is left of the work folder is removed, then the journal, then ``.ecodask/old``.

A process killed before (1) leaves the folder as it was, and the work folder for the next run to
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
from ecodask.io.layout import FIGURES, POINTER, REPORT, RUN_RECORD, STATE_DIR, STORE, TABLES
from ecodask.io.lock import output_lock

#: What a run owns in its output folder, relative to it: swapped whole at commit.
#: The run's pointer (:mod:`ecodask.io.layers`) is one of them: published with the view it names.
ENTRIES = (STORE, TABLES, FIGURES, RUN_RECORD, REPORT, POINTER)
WORK = f"{STATE_DIR}/work"
OLD = f"{STATE_DIR}/old"
JOURNAL = f"{STATE_DIR}/commit.json"


def work_folder(root: str | Path) -> Path:
    """The work copy of the output folder ``root`` (it may not exist)."""
    return Path(root) / WORK


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

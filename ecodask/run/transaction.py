"""A run as one transaction, in a folder and in a bucket alike: :func:`begin`, the stages, :func:`finish`.

The same three steps hold for both, under the output's lock (:func:`ecodask.io.lock.run_lock`:
the folder's ``flock``, and with a remote output the bucket's lease too):

1. :func:`begin` chooses where the run writes, beside what readers read: each stage writes a
   layer of its own, named by its key, beside the committed run's (:mod:`ecodask.io.layers`: under
   the output folder or the bucket's prefix), and its small files (tables, figures) in the work
   folder ``<output>/.ecodask/work``, the one a killed run left (swept of what its writers had
   not finished) or a new one.
2. Each stage is committed by its manifest, written last, and trusted by a rerun only once what it
   recorded checks (:mod:`ecodask.run.resume`, :mod:`ecodask.run.verify`): sizes and checksums of
   the files in a folder, sizes, ETags and read-back MD5s in a bucket; a sample of the chunks'
   content, or all of it. A finished stage's small files are kept in its layer too.
3. :func:`finish` makes the finished run the one readers see, by one atomic step written last: the
   run's pointer, naming each stage's layer. In a bucket it is one PUT
   (:func:`ecodask.run.resume.commit_run`); in a folder it is published together with the
   folder's plain view of the run (``store.zarr``, whose arrays link into the layers, the tables,
   the figures, ``run.json``, the report), assembled in the work folder and swapped in by one
   journalled step (:func:`ecodask.io.commit.publish`). Until then readers see the previous run,
   whole, however the run ends; then the layers the pointer does not name go.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ecodask.crashpoints import crash_point
from ecodask.io import commit, layers, view
from ecodask.io.atomic import write_json
from ecodask.io.layout import REPORT, RUN_RECORD, STORE
from ecodask.run import resume, verify
from ecodask.run.config import RunConfig


@dataclass(frozen=True)
class Work:
    """A run's configuration (``final``) and the same configuration computing in the work folder
    (``cfg``: its output is the work folder, its layers under the final output), with the stages to
    do (``todo``)."""

    final: RunConfig
    cfg: RunConfig
    todo: dict[str, str]  # the stages to do, by key (resume.pending of cfg)
    keys: dict[str, str]  # every stage's key (resume.plan): the run the pointer names
    done: dict[str, dict[str, str]]  # the finished stages' outputs, checked here under the lock

    def published(self, value: object) -> object:
        """A path the run wrote as it reads once published (a file of the work folder in the
        output folder; the ingest stage's layer in a folder as the folder's ``store.zarr``);
        anything else as is."""
        text = str(value)
        try:
            return str(self.final.output / Path(text).relative_to(self.cfg.output))
        except ValueError:
            pass
        if self.final.remote_output is None:
            try:
                Path(text).relative_to(self.final.output / layers.STAGES)
                return str(self.final.output / STORE)
            except ValueError:
                pass
        return value


def begin(cfg: RunConfig, force: Sequence[str] = (), keys: dict[str, str] | None = None,
          chunks: verify.Verify = "sample") -> Work:
    """Finish a commit a killed run journalled, then set up the work folder (the one a killed run
    left, swept, or a new one) and find the stages to do."""
    commit.recover(cfg.output)
    keys = keys if keys is not None else resume.plan(cfg)
    work = commit.work_folder(cfg.output)
    in_work = cfg.model_copy(update={"output": work,
                                     "layers_root": str(cfg.output) if cfg.remote_output is None else None})
    if work.is_dir():  # a killed run's: what its writers left half-done goes, its stages stay
        commit.sweep(work)
    work.mkdir(parents=True, exist_ok=True)
    todo, done = resume.pending(in_work, force, keys, chunks)
    return Work(cfg, in_work, todo, keys, _trusted(done, todo))


def _trusted(done: dict[str, dict[str, str]], todo: dict[str, str]) -> dict[str, dict[str, str]]:
    """The finished stages a run may skip on this check alone: not those built on a stage it redoes,
    which are checked again when their turn comes."""
    again = set(resume.with_downstream(list(todo)))
    return {s: out for s, out in done.items() if s not in again}


def finish(work: Work, whole: bool = True, log: Callable[[str], None] = print) -> None:
    """Commit the run (``whole``: every stage ran or was verified; a run of some stages only
    commits no bucket run): in a bucket its pointer, then the work folder published as the local
    folder's view; in a folder the pointer and the plain view published together, then the layers
    it does not name removed."""
    final = work.final
    if final.remote_output is not None:
        if whole:  # the bucket's run, replaced in one write
            resume.commit_run(work.cfg, work.keys, log)
        commit.publish(final.output)
        return
    stages = resume.run_layers(work.cfg, work.keys)
    # A run of some stages only: the others' files from their layers, the last record and report.
    resume.gather(work.cfg, stages)
    for entry in (RUN_RECORD, REPORT):
        if not (work.cfg.output / entry).exists() and (final.output / entry).is_file():
            resume.link(final.output / entry, work.cfg.output / entry)
    view.link_store([Path(layer) for _, _, layer in stages], work.cfg.output / STORE, final.output / STORE)
    crash_point("view:linked")
    write_json(layers.pointer_doc(stages), work.cfg.output / layers.POINTER, sort_keys=True)
    commit.publish(final.output)
    layers.sweep(str(final.output), stages)
    crash_point("layers:swept")

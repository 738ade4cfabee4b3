"""A run as one transaction, on disk and in a bucket: :func:`begin`, the stages, :func:`finish`.

The same three steps hold for both, under the output's lock (:func:`ecodask.io.lock.run_lock`:
the folder's ``flock``, and with a remote output the bucket's lease too):

1. :func:`begin` chooses where the run writes, beside what readers read: the output folder's work
   copy (``<output>/.ecodask/work``, :mod:`ecodask.io.commit`), a fresh copy of the folder or the
   copy a killed run left, whose finished stages it resumes; in a bucket each stage writes a layer
   of its own beside the committed run's (:mod:`ecodask.io.layers`).
2. Each stage is committed by its manifest, written last, and trusted by a rerun only once what it
   recorded checks (:mod:`ecodask.run.resume`, :mod:`ecodask.run.verify`): sizes and checksums of
   files on disk, sizes, ETags and read-back MD5s in a bucket; a sample of the chunks' content, or
   all of it.
3. :func:`finish` makes the finished run the one readers see, by one atomic step written last: the
   bucket's pointer (one PUT, :func:`ecodask.run.resume.commit_run`), and the folder's journalled
   swap of the work copy (:func:`ecodask.io.commit.publish`). Until then readers see the previous
   run, whole, however the run ends.

A run that has nothing to compute writes only its record and report, each one file replaced
atomically, in the folder itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ecodask.io import commit
from ecodask.run import resume, verify
from ecodask.run.config import RunConfig


@dataclass(frozen=True)
class Work:
    """A run's configuration (``final``) and the same configuration writing where the run writes
    (``cfg``: its output is the work copy, or the folder itself when nothing is computed), with
    the stages to do there (``todo``, checked once: a fresh copy holds the folder's own files)."""

    final: RunConfig
    cfg: RunConfig
    todo: dict[str, str]  # the stages to do there, by key (resume.pending of cfg)
    keys: dict[str, str]  # every stage's key (resume.plan): the run a bucket's pointer names
    done: dict[str, dict[str, str]]  # the finished stages' outputs, checked here under the lock

    @property
    def in_copy(self) -> bool:
        """Whether the run writes in the work copy (and :func:`finish` publishes it)."""
        return self.cfg.output != self.final.output

    def published(self, value: object) -> object:
        """A path the run wrote (in the work copy) as it reads once published; anything else as is."""
        if not self.in_copy:
            return value
        try:
            rel = Path(str(value)).relative_to(self.cfg.output)
        except ValueError:
            return value
        return str(self.final.output / rel)


def begin(cfg: RunConfig, force: Sequence[str] = (), keys: dict[str, str] | None = None,
          chunks: verify.Verify = "sample") -> Work:
    """Finish a commit a killed run journalled, then choose where this run writes: the work copy a
    killed run left (resumed), a fresh one when any stage is to be done, else the folder itself."""
    commit.recover(cfg.output)
    keys = keys if keys is not None else resume.plan(cfg)
    work = commit.work_folder(cfg.output)
    in_copy = cfg.model_copy(update={"output": work})
    if work.is_dir():  # a killed run's: what its writers left half-done goes, its stages stay
        commit.sweep(work)
        todo, done = resume.pending(in_copy, force, keys, chunks)
        return Work(cfg, in_copy, todo, keys, _trusted(done, todo))
    todo, done = resume.pending(cfg, force, keys, chunks)  # the copy holds the same files: checked once
    if not todo:
        return Work(cfg, cfg, {}, keys, done)
    commit.clone(cfg.output)
    done = {s: _in_copy(out, cfg.output, work) for s, out in done.items()}
    return Work(cfg, in_copy, todo, keys, _trusted(done, todo))


def _trusted(done: dict[str, dict[str, str]], todo: dict[str, str]) -> dict[str, dict[str, str]]:
    """The finished stages a run may skip on this check alone: not those built on a stage it redoes
    (a stage redone after its files failed the check keeps its key, but may rewrite what the
    stages after it wrote: ingest makes a new store), which are checked again when their turn
    comes."""
    again = set(resume.with_downstream(list(todo)))
    return {s: out for s, out in done.items() if s not in again}


def _in_copy(outputs: dict[str, str], root: Path, copy: Path) -> dict[str, str]:
    """Outputs found under the folder ``root`` as they lie in its work copy ``copy`` (a URL, or
    anything outside the folder, as it is)."""
    out = {}
    for name, value in outputs.items():
        try:
            out[name] = str(copy / Path(value).relative_to(root))
        except ValueError:
            out[name] = value
    return out


def finish(work: Work, whole: bool = True, log: Callable[[str], None] = print) -> None:
    """Commit the run (``whole``: every stage ran or was verified; a run of some stages only
    commits no bucket run): with a remote output the bucket's pointer, then the work copy (when the
    run wrote one) published in place of the folder's outputs."""
    if whole and work.final.remote_output is not None:  # the bucket's run, replaced in one write
        resume.commit_run(work.cfg, work.keys, log)
    if work.in_copy:
        commit.publish(work.final.output)

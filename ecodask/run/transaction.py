"""Where a run writes: its output folder's work copy, published whole when the run has finished.

See :mod:`ecodask.io.commit` for the mechanism. A run that has nothing to compute writes only its
record and report, each one file replaced atomically, in the folder itself. A run that computes
works in the work copy (``<output>/.ecodask/work``): a fresh copy of the folder, or the copy a
killed run left, whose finished stages it resumes (their manifests and keys decide, as in the
folder). Its readers see the previous run until :func:`finish` publishes the new one.

Call everything here with the output's lock held (:func:`ecodask.io.lock.output_lock`).
"""

from __future__ import annotations

from collections.abc import Sequence
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
    work = commit.work_folder(cfg.output)
    in_copy = cfg.model_copy(update={"output": work})
    if work.is_dir():  # a killed run's: what its writers left half-done goes, its stages stay
        commit.sweep(work)
        return Work(cfg, in_copy, resume.pending(in_copy, force, keys, chunks)[0])
    todo, _ = resume.pending(cfg, force, keys, chunks)  # the copy holds the same files: checked once
    if not todo:
        return Work(cfg, cfg, {})
    commit.clone(cfg.output)
    return Work(cfg, in_copy, todo)


def finish(work: Work) -> None:
    """Publish the work copy (when the run wrote one) in place of the folder's outputs."""
    if work.in_copy:
        commit.publish(work.final.output)

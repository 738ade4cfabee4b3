"""The stages of a run, each one module exporting one :class:`Stage` record.

A record says everything the run needs of its stage: its name, the stages it builds on, the parts
of the configuration and the files it reads (its resume key, :mod:`ecodask.run.resume`) and the
function that does it. ``flows/run.py`` makes one Prefect task of each record; resume plans from
them. A new stage is a new module here and one line in :func:`_records`.

A stage module imports its heavy dependencies (Dask, xarray, matplotlib, scipy) inside the
functions that compute, so that planning a run, which reads every record, stays light: a rerun of
a finished run only hashes its inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecodask.io.catalogs import catalog_files
from ecodask.run.config import RunConfig


@dataclass(frozen=True)
class Stage:
    """One resumable stage of a run.

    name: the stage's name (manifest, ``--force``, Prefect task ``name`` with dashes).
    upstream: the stages whose outputs it reads; their keys are part of its key.
    config_parts: the parts of the configuration it reads, by dotted configuration key (``landcover``,
        ``grid.crs``), taken from the configuration as JSON by content
        (:func:`ecodask.run.config.content_dump`: an input file as its checksum, no other path).
    input_files: the files it reads beyond its upstream stages' outputs, by role
        (``landcover.2000``, ``class_schemes.clcd``; their checksums enter the key).
    run: does the stage: ``run(cfg, store)`` with the store of the ingest stage (None for ingest
        itself), or with a remote output the run's layers (:class:`ecodask.io.layers.Layers`, its
        own to write; :func:`ecodask.run.resume.store_arg`), returns its outputs by name;
        everything is written atomically.
    """

    name: str
    upstream: tuple[str, ...]
    config_parts: Callable[[dict], dict[str, object]]
    input_files: Callable[[RunConfig], dict[str, Path]]
    run: Callable[[RunConfig, Any], dict[str, Path]]

    @property
    def task_name(self) -> str:
        return self.name.replace("_", "-")


def catalog_entry(kind: str, name: str, cfg: RunConfig) -> dict[str, Path]:
    """The YAML file of a catalog entry a stage reads, as ``{"<kind>.<name>": path}``."""
    path = catalog_files(kind, tuple(cfg.catalogs)).get(name)
    return {f"{kind}.{name}": path} if path else {}


def _records() -> tuple[Stage, ...]:
    from ecodask.run.stages import compensation, driver_analysis, figures, ingest, transitions_esv

    return (ingest.STAGE, transitions_esv.STAGE, driver_analysis.STAGE, compensation.STAGE, figures.STAGE)


#: The stages of a run, in run order (each after those it builds on).
STAGES: tuple[Stage, ...] = _records()
#: Their names, in run order.
NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)
BY_NAME: dict[str, Stage] = {s.name: s for s in STAGES}

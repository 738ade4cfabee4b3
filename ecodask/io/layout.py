"""The output folder of a run, named once, and the one reader of a finished run.

::

    <output>/store.zarr        the Zarr store (see :mod:`ecodask.io.store`): a view whose arrays
                               link into the stages' layers
    <output>/stages/<stage>/<key16>/   each stage's layer: its arrays and files (:mod:`ecodask.io.layers`)
    <output>/tables/<name>.csv, <name>.parquet   every table (see the README's output section)
    <output>/figures/*.png     maps and charts
    <output>/run.json          configuration, versions, input checksums, stage timings, outputs
    <output>/report.html       the run's HTML report, written after run.json
    <output>/.ecodask/stages/<stage>.json   the manifest of each finished stage (resume)
    <output>/.ecodask/current.json          the run's pointer: the layers it is made of
    <output>/export/           what ``ecodask export`` writes
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

STORE = "store.zarr"
TABLES = "tables"
FIGURES = "figures"
RUN_RECORD = "run.json"
REPORT = "report.html"
STATE_DIR = ".ecodask"
#: The run a folder or a bucket shows: each stage's key and layer (:mod:`ecodask.io.layers`).
POINTER = f"{STATE_DIR}/current.json"
EXPORT = "export"
#: The separator under which Zarr v3 keeps an array's chunks (``<array>/c/<i>/<j>``).
CHUNKS = "c"
#: Figures the report embeds in its sections (``figures/<name>``), named here once for their writers
#: and the report: the land-use scenarios' chart; the trade-off heat map of a table
#: (``service_tradeoffs`` or ``service_tradeoffs_cells``); a year's scale chart of q (``"*"``: every year's).
SCENARIOS_FIGURE = "scenarios.png"


def tradeoffs_figure(table: str) -> str:
    return f"{table}.png"


def scale_figure(year: int | str) -> str:
    return f"geodetector_scale_{year}.png"


def in_chunk_folder(parts: list[str]) -> bool:
    """Whether a path, split at ``/`` and relative to a store or to a group of arrays, is the key of
    a chunk of one of its Zarr v3 arrays (a ``c`` folder below the array's name)."""
    return CHUNKS in parts[1:-1]


@dataclass(frozen=True)
class RunFolder:
    """Paths of a run's output folder and reads of what a run wrote there (plain files, no
    configuration needed)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def store(self) -> Path:
        return self.root / STORE

    @property
    def tables(self) -> Path:
        return self.root / TABLES

    @property
    def figures(self) -> Path:
        return self.root / FIGURES

    @property
    def run_record(self) -> Path:
        return self.root / RUN_RECORD

    @property
    def report(self) -> Path:
        return self.root / REPORT

    @property
    def state(self) -> Path:
        return self.root / STATE_DIR

    def manifest(self, stage: str) -> Path:
        """The manifest a finished stage leaves (see :mod:`ecodask.run.resume`)."""
        return self.state / "stages" / f"{stage}.json"

    def table_path(self, name: str, ext: str = "parquet") -> Path:
        return self.tables / f"{name}.{ext}"

    def table(self, name: str, filters: list[tuple[str, str, Any]] | None = None) -> pd.DataFrame | None:
        """``tables/<name>.parquet`` (only its rows that pass Arrow's ``filters``, e.g.
        ``[("zone_id", "==", "ALL")]``, when given), or None if the run did not write it."""
        import pandas as pd

        path = self.table_path(name)
        return pd.read_parquet(path, filters=filters) if path.is_file() else None

    def record(self) -> dict[str, Any] | None:
        """The run record (``run.json``), or None when it is missing or unreadable."""
        try:
            record = json.loads(self.run_record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

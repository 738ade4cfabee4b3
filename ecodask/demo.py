"""The demo's set-up, kept cheap on a rerun: the synthetic region is generated only when its files
are missing or differ from what the generator wrote, and a run whose every stage finished earlier
with the same inputs is reported without starting Prefect or Dask.

The region's record ``<out>/inputs/region.json`` holds the generator's arguments, the ecodask
version and the checksum of every file it wrote (``config.yaml`` included); it is written last, so
an interrupted generation has none and is redone.
"""

from __future__ import annotations

import json
from pathlib import Path

from ecodask import __version__
from ecodask.io.atomic import write_json
from ecodask.io.provenance import file_checksum

RECORD = "region.json"


def _record(out: Path) -> Path:
    return out / "inputs" / RECORD


def _written(out: Path) -> list[Path]:
    """The files of a generated region: its inputs and its config."""
    inputs = out / "inputs"
    return sorted(p for p in inputs.iterdir() if p.is_file() and p.name != RECORD) + [out / "config.yaml"]


def region_current(out_dir: str | Path, args: dict) -> Path | None:
    """The config path of the region in ``out_dir`` if it was generated with ``args`` by this ecodask
    version and none of its files has changed since; else None."""
    out = Path(out_dir)
    try:
        rec = json.loads(_record(out).read_text(encoding="utf-8"))
        if rec.get("args") != json.loads(json.dumps(args)) or rec.get("ecodask_version") != __version__:
            return None
        files = rec["files"]
        if sorted(files) != sorted(str(p.relative_to(out)) for p in _written(out)):
            return None
        if any(file_checksum(out / name) != digest for name, digest in files.items()):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return out / "config.yaml"


def prepare_region(out_dir: str | Path, seed: int = 0, **region: object) -> tuple[Path, bool]:
    """The demo region's config: reused when current, else generated (``make_region(out_dir, seed=seed,
    **region)``) and recorded. Returns ``(config path, generated)``."""
    args = {"seed": int(seed), **region}
    current = region_current(out_dir, args)
    if current is not None:
        return current, False
    from ecodask.synth import make_region  # heavy imports only when generating

    out = Path(out_dir)
    _record(out).unlink(missing_ok=True)
    config = make_region(out, **args)
    rec = {"args": args, "ecodask_version": __version__,
           "files": {str(p.relative_to(out)): file_checksum(p) for p in _written(out)}}
    write_json(rec, _record(out), sort_keys=True)
    return config, True

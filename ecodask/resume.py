"""Resumable stages: a stage that finished with the same inputs is not run again.

Each stage of a run has a **key**: a hash of the stage's name, the ecodask version, the parts of the
configuration the stage reads, the checksums of the files it reads (inputs and catalog entries)
and the keys of the stages it builds on. When a stage completes, a **manifest**
``<output>/.ecodask/stages/<stage>.json`` is written last and atomically, naming the key and the
outputs. Before a stage runs, its manifest is removed, so a stage interrupted half-way (a killed
process, a failed task) has none and runs again next time; the outputs themselves are each written
atomically (stores staged and renamed, tables written to a temporary file and renamed).

A rerun skips a stage whose manifest holds the same key and whose outputs all exist; a change
anywhere upstream changes the keys downstream, so only what depends on the change is redone.
``force`` names stages to redo regardless.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from ecodask import __version__
from ecodask.config import RunConfig
from ecodask.io.catalogs import catalog_files
from ecodask.provenance import file_checksum

STATE_DIR = ".ecodask"
#: Stages of a run, in order.
STAGES = ("ingest", "transitions_esv", "driver_analysis", "compensation")


def _config_parts(cfg: RunConfig, stage: str) -> dict[str, object]:
    c = cfg.model_dump(mode="json")
    if stage == "ingest":
        return {k: c[k] for k in ("grid", "landcover", "zones", "drivers")} | {
            "county_stats": c["county_stats"] if cfg.compensation.enabled else None,
            "compensation.enabled": cfg.compensation.enabled}
    if stage == "transitions_esv":
        return {"landcover": c["landcover"], "esv": c["esv"], "drivers": c["drivers"]}
    if stage == "driver_analysis":
        return {"analysis": c["analysis"], "drivers": c["drivers"]}
    if stage == "compensation":
        return {"compensation": c["compensation"], "county_stats": c["county_stats"]}
    raise ValueError(f"unknown stage {stage!r}")


def _files(cfg: RunConfig, stage: str) -> dict[str, Path]:
    """The files a stage reads (beyond its upstream stages' outputs)."""
    files: dict[str, Path] = {}
    if stage == "ingest":
        files |= {f"landcover.{y}": p for y, p in sorted(cfg.landcover.years.items())}
        files["zones"] = cfg.zones.path
        files |= {f"drivers.{n}": d.path for n, d in sorted(cfg.drivers.items())}
        if cfg.county_stats is not None and cfg.compensation.enabled:
            files["county_stats"] = cfg.county_stats
    elif stage == "transitions_esv":
        files |= _catalog("class_schemes", cfg.landcover.scheme, cfg)
        files |= _catalog("esv_tables", cfg.esv.table, cfg)
        if cfg.esv.standard_equivalent == "from_county_stats" and cfg.county_stats is not None:
            files["county_stats"] = cfg.county_stats
    elif stage == "compensation" and cfg.county_stats is not None:
        files["county_stats"] = cfg.county_stats
        files |= _catalog("esv_tables", cfg.compensation.cultivated_table, cfg)
        files |= _catalog("footprint_tables", cfg.compensation.footprint_table, cfg)
    return files


def _catalog(kind: str, name: str, cfg: RunConfig) -> dict[str, Path]:
    path = catalog_files(kind, tuple(cfg.catalogs)).get(name)
    return {f"{kind}.{name}": path} if path else {}


def stage_key(cfg: RunConfig, stage: str, upstream: Sequence[str] = ()) -> str:
    """The stage's key (hex): what it reads and which ecodask reads it."""
    doc = {
        "stage": stage,
        "ecodask": __version__,
        "config": _config_parts(cfg, stage),
        "files": {k: file_checksum(p) for k, p in _files(cfg, stage).items()},
        "upstream": list(upstream),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _manifest(cfg: RunConfig, stage: str) -> Path:
    return cfg.output / STATE_DIR / "stages" / f"{stage}.json"


def finished(cfg: RunConfig, stage: str, key: str) -> dict[str, str] | None:
    """The outputs recorded by the stage's manifest if it holds ``key`` and every output exists."""
    path = _manifest(cfg, stage)
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if m.get("key") != key or not all(Path(p).exists() for p in m.get("outputs", {}).values()):
        return None
    return m["outputs"]


#: The stages each stage builds on.
UPSTREAM = {"ingest": (), "transitions_esv": ("ingest",), "driver_analysis": ("transitions_esv",),
            "compensation": ("transitions_esv",)}


def plan(cfg: RunConfig) -> dict[str, str]:
    """The key of every stage of a run, each chained to its upstream stages' keys."""
    keys: dict[str, str] = {}
    for stage in STAGES:
        keys[stage] = stage_key(cfg, stage, [keys[u] for u in UPSTREAM[stage]])
    return keys


def run_stage(cfg: RunConfig, stage: str, key: str, fn: Callable[[], dict], force: bool = False,
              log: Callable[[str], None] = print) -> tuple[dict[str, str], bool]:
    """Run ``fn`` (a stage returning its outputs by name) unless it finished earlier with ``key``
    (or ``force``); return ``(outputs, ran)``."""
    done = None if force else finished(cfg, stage, key)
    if done is not None:
        log(f"stage {stage}: finished earlier with the same inputs (key {key[:12]}), skipped")
        return done, False
    path = _manifest(cfg, stage)
    path.unlink(missing_ok=True)
    outputs = {k: str(v) for k, v in fn().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps({"stage": stage, "key": key, "outputs": outputs}, indent=2, sort_keys=True)
                   + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return outputs, True


def pending(cfg: RunConfig, force: Sequence[str] = ()) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """The stages a run of ``cfg`` would do, and the outputs of those it would skip.

    Returns ``(todo, done)``: ``todo`` maps each stage to run (changed inputs, never finished,
    or forced) to its key; ``done`` maps each finished stage to its recorded outputs."""
    keys = plan(cfg)
    todo: dict[str, str] = {}
    done: dict[str, dict[str, str]] = {}
    for stage in STAGES:
        outputs = None if stage in force else finished(cfg, stage, keys[stage])
        if outputs is None:
            todo[stage] = keys[stage]
        else:
            done[stage] = outputs
    return todo, done

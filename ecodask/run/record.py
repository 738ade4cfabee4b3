"""The run record, ``run.json``: configuration, versions, input checksums (computed once, see
:func:`ecodask.run.inputs.checksum`), stage timings and which stages ran, and the outputs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ecodask import __version__
from ecodask.io import bucket_lock, objstore
from ecodask.io.atomic import write_json
from ecodask.io.catalogs import load_esv_table
from ecodask.io.layout import RUN_RECORD, RunFolder
from ecodask.io.provenance import package_versions
from ecodask.run.config import RunConfig
from ecodask.run.inputs import checksum, input_files


def write_run_record(
    cfg: RunConfig, timings: dict[str, float], outputs: dict[str, object], started: dt.datetime,
    ran: dict[str, bool] | None = None, folder: Path | None = None,
) -> Path:
    """Write ``run.json``: configuration, versions, input checksums, stage timings (s), which
    stages ran (false: finished earlier with the same inputs, skipped), outputs. With a remote
    output, outputs are named by their URLs and ``run.json`` is uploaded beside them. ``folder``: where
    to write it (the run's work copy), if not in ``cfg.output``."""
    remote = cfg.remote_output
    if remote is not None:
        outputs = {k: _published(cfg, remote, v) for k, v in outputs.items()}
    record = {
        "ecodask_version": __version__,
        "config_file": str(cfg.source) if cfg.source else None,
        "config": cfg.model_dump(mode="json"),
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "stage_seconds": {k: round(v, 3) for k, v in timings.items()},
        "stage_ran": ran or {},
        "inputs": {k: {"path": objstore.source(p), "checksum": checksum(p)}
                   for k, p in input_files(cfg).items()},
        "outputs": outputs,
        "tables": esv_table_facts(cfg),
        "versions": package_versions(),
    }
    path = write_json(record, RunFolder(folder or cfg.output).run_record)
    if remote is not None:
        bucket_lock.check(remote)
        objstore.put_file(path, objstore.join(remote, RUN_RECORD))
    return path


def esv_table_facts(cfg: RunConfig) -> dict[str, dict]:
    """What a reader of the run's numbers needs of its ESV tables, by configuration key: the
    table's name, its market and non-market services and its notes."""
    keys = {"esv.table": cfg.esv.table}
    comp = cfg.compensation
    if cfg.county_stats is not None and comp.enabled and "cultivated" in comp.variants:
        keys["compensation.cultivated_table"] = cfg.compensation.cultivated_table
    facts = {}
    for key, name in keys.items():
        table = load_esv_table(name, cfg.catalogs)
        market = table.market_services
        facts[key] = {"name": name, "market_groups": list(table.market_groups), "market_services": market,
                      "non_market_services": [s for s in table.service_names if s not in market],
                      "notes": list(table.notes)}
    return facts


def _published(cfg: RunConfig, remote: str, value: object) -> object:
    """An output path inside the output folder as its URL under ``remote``; anything else as is."""
    try:
        rel = Path(str(value)).relative_to(cfg.output)
    except ValueError:
        return value
    return objstore.join(remote, rel.as_posix())

"""A run's way in is done once: one load of the configuration, one check of the inputs and one
checksum of each input file, shared by the command line's checks, the flow, the stage keys and
run.json (counted in this process through the real command, Prefect flow and Dask cluster)."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ecodask.run.inputs as inputs
from ecodask.cli import app
from ecodask.io.layout import RunFolder

pytestmark = pytest.mark.slow


def test_config_loaded_inputs_checked_and_hashed_once(tiny_region: Path, monkeypatch) -> None:
    calls: collections.Counter[str] = collections.Counter()

    def counting(name: str):
        real = getattr(inputs, name)

        def wrapper(*args, **kwargs):
            calls[name if name != "file_checksum" else f"checksum {Path(args[0]).name}"] += 1
            return real(*args, **kwargs)

        return wrapper

    for name in ("load_config", "check_inputs", "file_checksum"):
        monkeypatch.setattr(inputs, name, counting(name))
    monkeypatch.setattr(inputs, "_MEMO", inputs._Memo())  # nothing remembered from other tests
    result = CliRunner().invoke(app, ["--quiet", "run", str(tiny_region)])
    assert result.exit_code == 0, result.output
    assert calls["load_config"] == 1 and calls["check_inputs"] == 1
    hashed = {k: v for k, v in calls.items() if k.startswith("checksum ")}
    for name in ("lc_2000.tif", "lc_2010.tif", "zones.gpkg", "elev.tif", "clcd.yaml", "xinzhou_2023.yaml"):
        assert hashed.get(f"checksum {name}") == 1, hashed
    inputs_hashed = {k: v for k, v in hashed.items() if k.endswith((".tif", ".gpkg", ".yaml"))
                     and not k.startswith("checksum compensation")}  # outputs are hashed as written
    assert all(v == 1 for v in inputs_hashed.values()), inputs_hashed
    record = json.loads(RunFolder(tiny_region.parent / "out").run_record.read_text(encoding="utf-8"))
    assert {v["checksum"] for v in record["inputs"].values()} and all(
        v["checksum"].startswith("blake2b:") for v in record["inputs"].values())


def test_a_changed_input_is_hashed_again(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"one")
    first = inputs.checksum(path)
    assert inputs.checksum(path) == first
    path.write_bytes(b"three")  # another size: another key
    assert inputs.checksum(path) != first

"""A rerun verifies before it trusts: each stage's manifest records the files it wrote (size, and
a checksum for all but the Zarr chunks), and a stage whose files were deleted, truncated or edited
since runs again, saying what changed; untouched stages are still skipped, and the outputs come
back identical."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecodask.io.layout import RunFolder
from ecodask.run import resume
from ecodask.run.config import load_config
from ecodask.run.stages import BY_NAME, NAMES

from helpers import digest

pytestmark = pytest.mark.usefixtures("dask_threads")


def _run(cfg) -> tuple[list[str], list[str]]:
    """Every stage through resume, as the flow runs them; the stages run and the log lines."""
    lines: list[str] = []
    ran: list[str] = []
    keys = resume.plan(cfg)
    store = None
    for name in NAMES:
        outputs, did = resume.run_stage(cfg, name, keys[name],
                                        lambda name=name, store=store: BY_NAME[name].run(cfg, store),
                                        log=lines.append)
        store = outputs.get("store", store)
        if did:
            ran.append(name)
    return ran, lines


@pytest.fixture
def finished(tiny_region: Path):
    cfg = load_config(tiny_region)
    ran, _ = _run(cfg)
    assert ran == list(NAMES)
    return cfg, digest(cfg.output, skip=(".ecodask",))


def test_manifests_record_what_each_stage_wrote(finished) -> None:
    cfg, _ = finished
    folder = RunFolder(cfg.output)
    files = {s: json.loads(folder.manifest(s).read_text())["files"] for s in NAMES}
    assert any(k.startswith("store.zarr/landcover/c/") for k in files["ingest"])
    assert files["transitions_esv"]["tables/esv_by_service.csv"][1].startswith("blake2b:")
    chunk = next(k for k in files["transitions_esv"] if k.startswith("store.zarr/esv/c/"))
    assert files["transitions_esv"][chunk][1] is None and files["transitions_esv"][chunk][0] > 0
    assert resume.pending(cfg)[0] == {}  # a later stage rewriting a group's metadata is no change


@pytest.mark.parametrize(("damage", "stage"), [
    ("delete a chunk of esv", "transitions_esv"),
    ("truncate a table", "transitions_esv"),
    ("edit a figure, same size", "figures"),
    ("delete the zone table", "ingest"),
])
def test_a_changed_output_is_redone_and_comes_back_identical(finished, damage: str, stage: str) -> None:
    cfg, before = finished
    out = cfg.output
    if damage == "delete a chunk of esv":
        target = sorted((out / "store.zarr" / "esv" / "c").rglob("*"))[-1]
        target.unlink()
        what = "missing"
    elif damage == "truncate a table":
        target = out / "tables" / "esv_by_service.csv"
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
        what = "bytes"
    elif damage == "edit a figure, same size":
        target = next((out / "figures").glob("esv_*.png"))
        data = bytearray(target.read_bytes())
        data[-20] ^= 0xFF
        target.write_bytes(bytes(data))
        what = "content changed"
    else:
        target = out / "tables" / "zones.csv"
        target.unlink()
        what = "missing"
    todo, _ = resume.pending(cfg)
    assert stage in todo
    ran, lines = _run(cfg)
    assert stage in ran and ran[0] == stage
    said = [line for line in lines if "outputs changed since" in line]
    assert said and str(target.relative_to(out)) in said[0] and what in said[0]
    assert digest(out, skip=(".ecodask",)) == before
    assert resume.pending(cfg)[0] == {}

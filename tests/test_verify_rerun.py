"""A rerun verifies before it trusts: each stage's manifest records the files it wrote (size, and
a checksum for all but the Zarr chunks), and a stage whose files were deleted, truncated or edited
since runs again, saying what changed; untouched stages are still skipped, and the outputs come
back identical."""

from __future__ import annotations

import json
import random
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from ecodask.io.layout import RunFolder
from ecodask.run import resume, transaction, verify
from ecodask.run.config import load_config
from ecodask.run.stages import BY_NAME, NAMES

from conftest import make_tiny_region
from helpers import digest

pytestmark = pytest.mark.usefixtures("dask_threads")


def _run(cfg, chunks: verify.Verify = "sample") -> tuple[list[str], list[str]]:
    """Every stage through resume, as the flow runs them (in a transaction: the layers, the work
    folder, the published view); the stages run and the log lines."""
    lines: list[str] = []
    ran: list[str] = []
    keys = resume.plan(cfg)
    work = transaction.begin(cfg, (), keys, chunks)
    for name in NAMES:
        where = resume.store_arg(work.cfg, name, keys)
        _, did = resume.run_stage(work.cfg, name, keys[name],
                                  lambda name=name, where=where: BY_NAME[name].run(work.cfg, where),
                                  log=lines.append, chunks=chunks, verified=work.done.get(name))
        if did:
            ran.append(name)
    transaction.finish(work, log=lines.append)
    return ran, lines


@pytest.fixture(scope="module")
def _finished_once(tmp_path_factory) -> Path:
    """The config of a tiny region whose every stage has finished: run once for the module."""
    import dask

    config = make_tiny_region(tmp_path_factory.mktemp("finished") / "region")
    with dask.config.set(scheduler="threads", num_workers=2):
        ran, _ = _run(load_config(config))
    assert ran == list(NAMES)
    return config


@pytest.fixture
def finished(_finished_once: Path, tmp_path: Path):
    """A copy of that region, inputs and output, for the test to damage: a finished run moved to
    another folder, whose every stage is still trusted (keys and manifests name no folder)."""
    folder = tmp_path / "region"
    # As it is (cp -a): the published tables and figures are the layers' files, hard links of them.
    subprocess.run(["cp", "-a", str(_finished_once.parent), str(folder)], check=True)
    cfg = load_config(folder / _finished_once.name)
    assert resume.pending(cfg)[0] == {}
    return cfg, digest(cfg.output, skip=(".ecodask",))


def test_manifests_record_what_each_stage_wrote(finished) -> None:
    cfg, _ = finished
    folder = RunFolder(cfg.output)
    manifests = {s: json.loads(folder.manifest(s).read_text()) for s in NAMES}
    files = {s: m["files"] for s, m in manifests.items()}
    ingest, esv = (manifests[s]["layer"] for s in ("ingest", "transitions_esv"))
    assert any(k.startswith(f"{ingest}/landcover/c/") for k in files["ingest"])
    assert files["transitions_esv"][f"{esv}/files/tables/esv_by_service.csv"][1].startswith("blake2b:")
    chunk = next(k for k in files["transitions_esv"] if k.startswith(f"{esv}/esv/c/"))
    size, digest_ = files["transitions_esv"][chunk]
    assert digest_.startswith("blake2b:") and size > 0
    assert resume.pending(cfg)[0] == {}


@pytest.mark.parametrize(("damage", "stage"), [
    ("delete a chunk of esv", "transitions_esv"),
    ("flip a byte of a chunk of esv, same size", "transitions_esv"),
    ("truncate a table", "transitions_esv"),
    ("edit a figure, same size", "figures"),
    ("delete the zone table", None),  # a link of the view, not its stage's file: published again
])
def test_a_changed_output_is_redone_and_comes_back_identical(finished, damage: str,
                                                             stage: str | None) -> None:
    cfg, before = finished
    out = cfg.output
    chunks = "sample"
    if damage == "delete a chunk of esv":
        target = sorted((out / "store.zarr" / "esv" / "c").rglob("*"))[-1]
        target.unlink()
        what = "missing"
    elif damage.startswith("flip a byte"):  # found when every chunk is read (ecodask run --verify)
        target = sorted((out / "store.zarr" / "esv" / "c").rglob("*"))[-1]
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
        what = "content changed"
        chunks = "all"
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
    todo, _ = resume.pending(cfg, chunks=chunks)
    if stage is None:  # the stage's own file is whole: nothing to redo, the view is made again
        assert todo == {}
        ran, _ = _run(cfg, chunks)
        assert ran == [] and digest(out, skip=(".ecodask",)) == before
        return
    assert stage in todo
    ran, lines = _run(cfg, chunks)
    assert stage in ran and ran[0] == stage
    said = [line for line in lines if "outputs changed since" in line]
    assert said and str(target.relative_to(out)) in said[0] and what in said[0]
    assert digest(out, skip=(".ecodask",)) == before
    assert resume.pending(cfg)[0] == {}


def test_chunk_content_is_read_for_a_sample_or_all(tmp_path: Path) -> None:
    """Sizes of every file and content of every table always; the content of chunks for a sample
    (1 %, at least 32) by default, of every chunk with ``verify="all"`` (``ecodask run --verify``)."""
    root = tmp_path / "out"
    chunks = [f"store.zarr/esv/c/0/{i}/0" for i in range(100)]
    for rel in [*chunks, "tables/t.csv"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"abcd")
    files = verify.written(root, {})
    assert set(files) == {*chunks, "tables/t.csv"}
    assert all(d.startswith("blake2b:") for _, d in files.values())
    owned = verify.owners([("transitions_esv", files)])
    assert verify.changes(root, "transitions_esv", owned) == []
    for rel in [*chunks, "tables/t.csv"]:
        (root / rel).write_bytes(b"abce")  # same size, other bytes
    sample = verify.changes(root, "transitions_esv", owned, "sample", random.Random(1))
    every = verify.changes(root, "transitions_esv", owned, "all")
    assert "tables/t.csv: its content changed" in sample
    assert len(sample) == 1 + verify.MIN_SAMPLE and len(every) == 1 + len(chunks)
    (root / chunks[0]).unlink()
    again = verify.changes(root, "transitions_esv", owned, "sample", random.Random(1))
    assert f"{chunks[0]}: missing" in again


@pytest.mark.slow
def test_ecodask_run_verify_reads_every_chunk(finished, monkeypatch) -> None:
    """With a sample of none (share and minimum 0), a flipped chunk goes unseen by a plain rerun
    and ``ecodask run --verify`` finds it, redoes the stage and restores the bytes."""
    from typer.testing import CliRunner

    from ecodask.cli import app

    cfg, before = finished
    monkeypatch.setattr(verify, "MIN_SAMPLE", 0)
    monkeypatch.setattr(verify, "SAMPLE_SHARE", 0.0)
    target = sorted(p for p in (cfg.output / "store.zarr" / "esv" / "c").rglob("*") if p.is_file())[0]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    assert resume.pending(cfg)[0] == {}  # the sample of none reads no chunk
    hashed: Counter[str] = Counter()
    plain = verify.hash_files

    def counting(root, rels):  # noqa: ANN001, ANN202 - verify.hash_files's
        hashed.update(rels)
        return plain(root, rels)

    monkeypatch.setattr(verify, "hash_files", counting)
    result = CliRunner().invoke(app, ["run", str(cfg.source), "--verify"])
    assert result.exit_code == 0, result.output
    ran = json.loads(RunFolder(cfg.output).run_record.read_text())["stage_ran"]
    assert ran["ingest"] is False and ran["transitions_esv"] is True  # the flipped chunk's stage redone
    # Each chunk of the skipped stage read twice: the command's look (is anything to do?) and the
    # check under the run's lock, which the stage then trusts (not a third time when it is skipped).
    landcover = json.loads(RunFolder(cfg.output).manifest("ingest").read_text())["layer"] + "/landcover/c/"
    read = {rel: n for rel, n in hashed.items() if rel.startswith(landcover)}
    assert read and set(read.values()) == {2}, read
    assert digest(cfg.output, skip=(".ecodask", "run.json", "report.html")) == {
        k: v for k, v in before.items() if k not in ("run.json", "report.html")}


@pytest.mark.slow
def test_a_stage_redone_for_its_own_files_sends_the_stages_built_on_it_through_their_checks(finished) -> None:
    """A flipped land-cover chunk: ``ecodask run --verify`` redoes ingest (same key) into a new layer
    beside the committed one; the later stages are not skipped on the check made before ingest ran
    but checked again when their turn comes: their own layers are whole, so they are kept, and the
    outputs come back identical."""
    from typer.testing import CliRunner

    from ecodask.cli import app

    cfg, before = finished
    target = sorted(p for p in (cfg.output / "store.zarr" / "landcover" / "c").rglob("*") if p.is_file())[0]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    result = CliRunner().invoke(app, ["run", str(cfg.source), "--verify"])
    assert result.exit_code == 0, result.output
    ran = json.loads(RunFolder(cfg.output).run_record.read_text())["stage_ran"]
    assert ran["ingest"] is True and not any(ran[s] for s in NAMES[1:]), ran
    assert sum("finished earlier with the same inputs" in line for line in result.output.splitlines()) >= 4
    assert digest(cfg.output, skip=(".ecodask", "run.json", "report.html")) == {
        k: v for k, v in before.items() if k not in ("run.json", "report.html")}

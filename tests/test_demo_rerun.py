"""A rerun of a finished demo is cheap and writes nothing: the synthetic region is reused while its
files are unchanged (regenerated when one changes), and a run whose every stage finished with the
same inputs is reported from the stage manifests without starting Prefect or Dask."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from ecodask.cli import app
from ecodask.demo import prepare_region, region_current
from ecodask.run import resume
from ecodask.run.config import load_config
from ecodask.run.stages import NAMES

from conftest import make_tiny_region
from helpers import digest, stage_call

SMALL = {"width_km": 4.0, "height_km": 3.0, "n_counties": 2, "years": (2000, 2010)}


def _tree(folder: Path) -> dict[str, object]:
    """Checksum and modification time (ns) of every file under ``folder``."""
    return digest(folder, mtimes=True)


def test_region_is_reused_until_a_file_changes(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    config, generated = prepare_region(out, seed=3, **SMALL)
    assert generated and config == out / "config.yaml"
    first = _tree(out)
    assert prepare_region(out, seed=3, **SMALL) == (config, False)
    assert _tree(out) == first  # nothing rewritten
    assert region_current(out, {"seed": 4, **SMALL}) is None  # other arguments: not current
    stats = out / "inputs" / "county_stats.csv"
    stats.write_bytes(stats.read_bytes() + b"\n")  # an edited input is regenerated
    assert prepare_region(out, seed=3, **SMALL) == (config, True)
    assert {k: v[0] for k, v in _tree(out).items()} == {k: v[0] for k, v in first.items()}
    (out / "inputs" / "extra.tif").write_bytes(b"x")  # a stray file: not the generator's region
    assert region_current(out, {"seed": 3, **SMALL}) is None


def test_run_of_a_finished_config_writes_nothing(tmp_path: Path) -> None:
    config = make_tiny_region(tmp_path / "r")
    cfg = load_config(config)
    keys, store = resume.plan(cfg), None
    for stage in NAMES:  # every stage run and recorded, without Prefect
        outputs, ran = resume.run_stage(cfg, stage, keys[stage], stage_call(cfg, stage, store), log=str)
        assert ran
        store = outputs.get("store", store)
    before = _tree(cfg.output)
    result = CliRunner().invoke(app, ["run", str(config)])
    assert result.exit_code == 0, result.output
    for stage in NAMES:
        assert f"stage {stage}: finished earlier with the same inputs, skipped" in result.output
    assert "store" in result.output
    assert _tree(cfg.output) == before  # not a byte, not a modification time
    todo, done = resume.pending(cfg, force=["compensation"])
    assert list(todo) == ["compensation"] and set(done) == set(NAMES) - {"compensation"}

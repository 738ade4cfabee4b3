"""Resumable stages: keys follow exactly what a stage reads, a finished stage is skipped, an
interrupted one (no manifest) runs again, and a change upstream reaches every stage below it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecodask.errors import ConfigError
from ecodask.run import resume
from ecodask.run.config import load_config
from ecodask.run.stages import BY_NAME, NAMES, STAGES

from conftest import make_tiny_region


@pytest.fixture
def cfg(tmp_path: Path):
    return load_config(make_tiny_region(tmp_path / "r"))


def _changed(a: dict[str, str], b: dict[str, str]) -> set[str]:
    return {s for s in NAMES if a[s] != b[s]}


def test_keys_follow_what_each_stage_reads(cfg) -> None:
    base = resume.plan(cfg)
    assert resume.plan(cfg) == base  # deterministic
    analysis = cfg.model_copy(update={"analysis": cfg.analysis.model_copy(update={"alpha": 0.1})})
    assert _changed(base, resume.plan(analysis)) == {"driver_analysis", "figures"}  # figures draw its grids
    esv = cfg.model_copy(update={"esv": cfg.esv.model_copy(update={"table": "xie2015"})})
    assert _changed(base, resume.plan(esv)) == {"transitions_esv", "driver_analysis", "compensation",
                                                "figures"}
    comp = cfg.model_copy(update={"compensation": cfg.compensation.model_copy(update={"r_form": "seed"})})
    assert _changed(base, resume.plan(comp)) == {"compensation"}
    cluster = cfg.model_copy(update={"cluster": cfg.cluster.model_copy(update={"n_workers": 1})})
    assert _changed(base, resume.plan(cluster)) == set()  # where it runs does not change results
    report = cfg.model_copy(update={"report": cfg.report.model_copy(update={"figures": False})})
    assert _changed(base, resume.plan(report)) == {"figures"}
    # An input file's bytes (not its name or time) are part of the key.
    elev = cfg.drivers["elevation"].path
    elev.write_bytes(elev.read_bytes() + b"\0")
    assert _changed(base, resume.plan(cfg)) == set(NAMES)


def test_finished_stage_skipped_interrupted_stage_rerun(cfg, tmp_path: Path) -> None:
    calls = []
    out = tmp_path / "result.txt"

    def stage() -> dict[str, Path]:
        calls.append(1)
        out.write_text("done")
        return {"result": out}

    key = resume.plan(cfg)["ingest"]
    logged: list[str] = []
    assert resume.run_stage(cfg, "ingest", key, stage) == ({"result": str(out)}, True)
    assert resume.run_stage(cfg, "ingest", key, stage, log=logged.append) == ({"result": str(out)}, False)
    assert len(calls) == 1 and "skipped" in logged[0]
    assert resume.run_stage(cfg, "ingest", key, stage, force=True)[1] and len(calls) == 2
    assert resume.run_stage(cfg, "ingest", "another key", stage)[1] and len(calls) == 3
    # A missing output, or a stage that failed half-way (its manifest is removed first), runs again.
    out.unlink()
    assert resume.run_stage(cfg, "ingest", "another key", stage)[1] and len(calls) == 4

    def failing() -> dict[str, Path]:
        raise RuntimeError("worker lost")

    with pytest.raises(RuntimeError):
        resume.run_stage(cfg, "ingest", "another key", failing, force=True)
    assert resume.finished(cfg, "ingest", "another key") is None
    assert resume.run_stage(cfg, "ingest", "another key", stage)[1] and len(calls) == 5


def test_forcing_a_stage_forces_the_stages_built_on_it() -> None:
    assert resume.with_downstream(["ingest"]) == list(NAMES)
    assert resume.with_downstream(["transitions_esv"]) == list(NAMES[1:])
    assert resume.with_downstream(["driver_analysis"]) == ["driver_analysis", "figures"]
    assert resume.with_downstream(["compensation"]) == ["compensation"]
    assert resume.with_downstream(["compensation", "driver_analysis"]) == ["driver_analysis", "compensation",
                                                                          "figures"]
    assert resume.with_downstream([]) == []


def test_stage_records_in_run_order() -> None:
    assert NAMES == ("ingest", "transitions_esv", "driver_analysis", "compensation", "figures")
    assert tuple(s.name for s in STAGES) == NAMES and all(BY_NAME[s.name] is s for s in STAGES)
    for i, stage in enumerate(STAGES):  # each after the stages it builds on
        assert set(stage.upstream) <= set(NAMES[:i]), stage.name
    assert {s.name: s.upstream for s in STAGES} == {
        "ingest": (), "transitions_esv": ("ingest",), "driver_analysis": ("transitions_esv",),
        "compensation": ("transitions_esv",), "figures": ("driver_analysis",)}


def test_forced_names_are_checked_and_reach_downstream() -> None:
    assert resume.forced(None) == [] and resume.forced([]) == []
    assert resume.forced(["driver_analysis"]) == ["driver_analysis", "figures"]
    assert resume.forced(["figures", "ingest"]) == list(NAMES)
    with pytest.raises(ConfigError) as info:
        resume.forced(["ingest", "ingets", "figure"])
    [p] = info.value.problems
    assert (p.key, p.value) == ("stage", ["figure", "ingets"]) and ", ".join(NAMES) in p.message

"""A run killed at any instant leaves the output folder holding the previous run's outputs or the
new run's, whole, never a mix; and the next run finishes what is left, from the last stage that
finished.

A finished run A is on disk; run B (the two land-cover years swapped: every stage's outputs
change) is killed with SIGKILL at a crash point (:mod:`ecodask.crashpoints`): as a stage sweeps
its earlier layers, starts, computes, links its files into its layer and records its manifest,
after table and figure writes, once the store's view is linked, at every step of the publication
and after the old layers are removed. After each kill the folder is
read as a user would find it: byte for byte run A (run.json and the report too) unless the kill
came after the commit point; then the next command finishes the commit and it is run B's
outputs. A rerun of B then completes and equals an undisturbed run of B byte for byte.

The kills in the publication start from run B killed once at its last stage's manifest: the run
that publishes resumes its five finished stages (checked, not redone) and publishes as an
undisturbed run does, in a third of the time.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ecodask.io import commit
from ecodask.run.stages import NAMES

from conftest import make_tiny_region
from helpers import deadline, digest

pytestmark = pytest.mark.slow

RUNNER = Path(__file__).with_name("crash_run.py")
ROOT = Path(__file__).resolve().parents[1]
#: What a rerun writes anew even with the same inputs: the run's times and folder.
RECORDS = ("run.json", "report.html")

#: Where run B is killed (a name, or name#n for its n-th passing; see tests/crash_run.py).
POINTS = [
    "layer:swept#1", "stage:ingest:start", "stage:ingest:files", "stage:ingest:manifest",
    "stage:transitions_esv:start", "atomic:written#10", "stage:transitions_esv:computed",
    "stage:transitions_esv:files", "stage:transitions_esv:manifest",
    "stage:driver_analysis:computed", "atomic:written#40", "stage:compensation:manifest",
    "stage:figures:start", "atomic:written#55",
    "view:linked", "publish:journal", "publish:aside#1", "publish:renamed#1", "publish:aside#3",
    "publish:renamed#5", "publish:aside#6", "publish:done", "layers:swept",
]
#: After these, the rerun is run to the end too (the others' reruns are the same code).
RERUN = {"layer:swept#1", "stage:transitions_esv:computed", "stage:compensation:manifest", "publish:journal",
         "publish:renamed#1", "layers:swept"}
#: The points of the commit, once every stage has finished: killed there, run B starts from a run
#: whose stages all finished (and is resumed, none redone).
FINISH = ("view:", "publish:", "layers:")
#: Killed at these, the commit is done: the folder is run B's.
COMMITTED = ("publish:done", "layers:swept")


def _run(config: Path, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECODASK_CRASH")}
    if crash_at:
        env["ECODASK_CRASH_AT"] = crash_at
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, str(RUNNER), str(config)], env=env, capture_output=True,
                          text=True, timeout=deadline(600), check=False)


def _ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, object]:
    """Run A finished in ``a/``; run B's configuration beside it; an undisturbed run of B after
    A in ``b/``; the digests of both folders."""
    base = tmp_path_factory.mktemp("crash")
    region = base / "a"
    config = make_tiny_region(region)
    _ok(_run(config))
    text = config.read_text()
    swapped = (text.replace("lc_2000.tif", "lc_x").replace("lc_2010.tif", "lc_2000.tif")
               .replace("lc_x", "lc_2010.tif"))
    assert swapped != text
    (region / "config_b.yaml").write_text(swapped)
    b = base / "b"
    shutil.copytree(region, b, symlinks=True)
    _ok(_run(b / "config_b.yaml"))
    out_a = digest(region / "out", skip=(".ecodask",))
    out_b = digest(b / "out", skip=(".ecodask", *RECORDS))
    differ = [k for k in out_b if out_a.get(k) != out_b[k]]
    assert len(differ) > len(out_b) // 2, "run B must change most files for the test to tell A from B"
    staged = base / "staged"  # run A published, run B's stages all finished in the work copy
    shutil.copytree(region, staged, symlinks=True)
    last = f"stage:{NAMES[-1]}:manifest"
    killed = _run(staged / "config_b.yaml", crash_at=last)
    assert killed.returncode == -signal.SIGKILL, f"never reached {last}: {killed.stderr[-2000:]}"
    assert digest(staged / "out", skip=(".ecodask",)) == out_a
    return {"a": region, "staged": staged, "digest_a": out_a, "digest_b": out_b}


@pytest.mark.parametrize("point", POINTS)
def test_killed_anywhere_the_folder_is_one_run_whole(runs, tmp_path: Path, point: str) -> None:
    case = tmp_path / "case"
    shutil.copytree(runs["staged" if point.startswith(FINISH) else "a"], case, symlinks=True)
    out = case / "out"
    proc = _run(case / "config_b.yaml", crash_at=point)
    assert proc.returncode == -signal.SIGKILL, f"never reached {point}: {proc.stderr[-2000:]}"
    if point.startswith(FINISH):  # from the staged run: its stages resumed, none redone
        resumed = [s for s in NAMES if f"stage {s}: finished earlier with the same inputs" in proc.stdout]
        assert resumed == list(NAMES), proc.stdout

    journalled = commit.pending_commit(out) is not None
    if not journalled and point not in COMMITTED:
        assert digest(out, skip=(".ecodask",)) == runs["digest_a"]  # untouched, byte for byte
    else:
        commit.recover(out)  # what the next command on the folder does first
        assert commit.pending_commit(out) is None
        assert digest(out, skip=(".ecodask", *RECORDS)) == runs["digest_b"]
        assert not commit.work_folder(out).exists()
    assert journalled == (point.startswith("publish:") and point not in COMMITTED)

    if point in RERUN:
        log = _ok(_run(case / "config_b.yaml")).stdout
        assert digest(out, skip=(".ecodask", *RECORDS)) == runs["digest_b"]
        assert not commit.work_folder(out).exists()
        if point.startswith("stage:") and point.endswith(":manifest"):
            done = NAMES[: NAMES.index(point.split(":")[1]) + 1]
            for stage in done:  # the finished stages of the killed run are resumed, not redone
                assert f"stage {stage}: finished earlier with the same inputs" in log, log


def test_a_reader_finishes_a_commit_left_half_done(runs, tmp_path: Path) -> None:
    """``ecodask export`` (and ``report``, and ``run``) on a folder whose commit was cut short
    finishes it before reading: it reads run B whole."""
    from ecodask.export import open_run

    case = tmp_path / "case"
    shutil.copytree(runs["staged"], case, symlinks=True)
    out = case / "out"
    assert _run(case / "config_b.yaml", crash_at="publish:renamed#2").returncode == -signal.SIGKILL
    assert commit.pending_commit(out) is not None
    assert open_run(out).record["config"]["landcover"]["years"]["2000"].endswith("lc_2010.tif")
    assert commit.pending_commit(out) is None
    assert digest(out, skip=(".ecodask", *RECORDS)) == runs["digest_b"]


def test_a_resumed_work_copy_is_swept_of_what_killed_writers_left(tmp_path: Path) -> None:
    """A writer killed mid-write leaves partial files (zarr's own ``zarr.<id>.partial`` among them)
    and staged arrays: a resumed run removes them, so it publishes none of them."""
    work = tmp_path / "work"
    for rel in ["store.zarr/zarr.json", "store.zarr/zarr.745e7d25.partial",
                "store.zarr/_staging_esv/zarr.json", "store.zarr/esv/c/0/0/0", "store.zarr.partial/zarr.json",
                "tables/.t.csv.partial", "figures/.esv_2000.partial.png", "tables/t.csv",
                ".ecodask/stages/ingest.json"]:
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text("x")
    removed = commit.sweep(work)
    assert removed == ["figures/.esv_2000.partial.png", "store.zarr.partial", "store.zarr/_staging_esv",
                       "store.zarr/zarr.745e7d25.partial", "tables/.t.csv.partial"]
    left = sorted(p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file())
    assert left == [".ecodask/stages/ingest.json", "store.zarr/esv/c/0/0/0", "store.zarr/zarr.json",
                    "tables/t.csv"]

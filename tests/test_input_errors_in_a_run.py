"""A bad input found inside a stage (here: a land-cover code the class scheme lacks, seen only in
the pass over the pixels) ends the run with exit 2 and the one line naming file, field and value:
never retried as if transient, and no traceback unless --debug. A transient failure is retried."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from affine import Affine
from prefect.states import Failed

from ecodask.errors import InputError, problem
from ecodask.science.grid import CHINA_ALBERS
from flows.run import transient

from conftest import PROCESSES, RES, X0, Y1, make_tiny_region, tiny_landcover, write_tif
from helpers import corrupt_tile, deadline


def _bad_code_region(folder: Path) -> Path:
    config = make_tiny_region(folder)
    lc = tiny_landcover(0, 1)
    lc[10, :15] = 200  # not a CLCD code
    write_tif(folder / "lc_2010.tif", lc, CHINA_ALBERS, Affine(RES, 0, X0, 0, -RES, Y1), 0)
    return config


def _run(config: Path, *options: str, api_url: str | None = None) -> subprocess.CompletedProcess:
    """``ecodask [OPTIONS] run CONFIG`` as a user without a Prefect server runs it (the run starts
    Prefect's temporary server), or reporting to the server at ``api_url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return subprocess.run([sys.executable, "-m", "ecodask.cli", *options, "run", str(config)],
                          cwd=config.parent, env=env, capture_output=True, text=True, timeout=deadline(300))


@pytest.mark.slow
def test_bad_input_inside_a_stage_is_one_line_not_retried_no_traceback(tmp_path: Path,
                                                                     prefect_api: dict[str, str]) -> None:
    config = _bad_code_region(tmp_path / "r")
    done = _run(config)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    assert "Retry" not in done.stderr  # Prefect says "Retry 1/1 will start ..." when it retries
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    where = config.parent / "lc_2010.tif"
    assert errors == [f"error: {where}: class code = 200: not in class scheme 'clcd' (15 pixels)"]
    # The temporary server sent nothing after it stopped (the run's records went before).
    assert "Error logging to API" not in done.stderr
    debug = _run(config, "--debug", api_url=prefect_api["PREFECT_API_URL"])  # one temporary server is enough
    assert debug.returncode == 2 and "Traceback" in debug.stderr


def test_only_transient_failures_are_retried() -> None:
    bad = InputError([problem("lc.tif", "class code", 200, "not in class scheme 'clcd'")])
    assert transient(None, None, Failed(data=bad)) is False
    assert transient(None, None, Failed(data=OSError("connection reset"))) is True
    assert transient(None, None, Failed(data=KeyError("zones"))) is True


@pytest.mark.slow
def test_a_corrupt_tile_is_exit_2_naming_the_file_and_window_from_a_worker_process(
        tmp_path: Path, prefect_api: dict[str, str]) -> None:
    import rasterio

    config = make_tiny_region(tmp_path / "r", cluster=PROCESSES)  # the error is pickled back
    lc = tiny_landcover(0, 1)
    path = tmp_path / "r" / "lc_2010.tif"
    with rasterio.open(path, "w", driver="GTiff", width=lc.shape[1], height=lc.shape[0], count=1,
                       dtype=lc.dtype, crs=CHINA_ALBERS, transform=Affine(RES, 0, X0, 0, -RES, Y1), nodata=0,
                       tiled=True, blockxsize=128, blockysize=128, compress="deflate") as dst:
        dst.write(lc, 1)
    corrupt_tile(path)
    done = _run(config, api_url=prefect_api["PREFECT_API_URL"])
    assert done.returncode == 2, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(
        f"error: {path}: band 1, window on the run's grid = 'rows 128:256, columns 128:256': cannot be read")
    assert "Retry" not in done.stderr
    # The workers (other processes) log no "Compute Failed" with the error's traceback either.
    assert "Compute Failed" not in done.stderr and "raise InputError" not in done.stderr
    assert not list((tmp_path / "r" / "out").glob("store.zarr*"))  # nothing of the store left

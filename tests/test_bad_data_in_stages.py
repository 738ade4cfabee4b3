"""Data that reads but cannot be used, found in the stage that first sees it, before that stage
writes anything: an exit-2 error naming the input file, not a message about esv_density."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from ecodask.errors import InputError
from ecodask.io.layout import RunFolder
from ecodask.io.store import ingest
from ecodask.run.config import load_config
from ecodask.run.inputs import checked
from ecodask.science.grid import CHINA_ALBERS

from conftest import COLS, RES, ROWS, X0, Y1, make_tiny_region, tiny_landcover, write_tif
from helpers import run_stages

pytestmark = pytest.mark.usefixtures("dask_threads")
TRANSFORM = Affine(RES, 0, X0, 0, -RES, Y1)


def test_a_year_with_no_data_in_the_zones_is_named(tmp_path: Path) -> None:
    config = make_tiny_region(tmp_path / "r")
    write_tif(tmp_path / "r" / "lc_2010.tif", np.zeros((ROWS, COLS), np.uint8), CHINA_ALBERS, TRANSFORM, 0)
    cfg = load_config(config)
    with pytest.raises(InputError) as info:  # ingest's pass counts the codes inside the zones
        run_stages(cfg, "ingest")
    [p] = info.value.problems
    assert Path(p.file).name == "lc_2010.tif" and "no classified pixel inside the zones in 2010" in p.message
    assert not list(cfg.output.glob("store.zarr*"))
    # A store made without that check: the ESV pass names the year's file too.
    store = ingest(checked(cfg), cfg.output)
    with pytest.raises(InputError) as info:
        run_stages(cfg, "transitions_esv")
    [p] = info.value.problems
    assert Path(p.file).name == "lc_2010.tif" and "no classified pixel inside the zones in 2010" in p.message
    assert not (store / "esv").exists() and not list(store.glob("_staging_*"))


def test_a_driver_without_data_is_named_with_its_file_by_ingest(tmp_path: Path) -> None:
    config = make_tiny_region(tmp_path / "r")
    values = np.full((ROWS, COLS), -9999.0, np.float32)
    elev = write_tif(tmp_path / "r" / "elev.tif", values, CHINA_ALBERS, TRANSFORM, -9999.0)
    cfg = load_config(config)
    with pytest.raises(InputError) as info:  # counted as ingest writes it, before any ESV
        run_stages(cfg, "ingest")
    [p] = info.value.problems
    assert Path(p.file) == elev and p.key == "drivers.elevation" and "no value on the run's grid" in p.message
    assert not list(cfg.output.glob("store.zarr*"))


def test_a_driver_with_no_value_where_there_is_esv_is_named_with_its_file(tmp_path: Path) -> None:
    # The driver has values only in the first column of analysis cells (32 px), where both years'
    # land cover is no data: ingest finds values, the driver analysis none beside an ESV.
    config = make_tiny_region(tmp_path / "r")
    for i, year in enumerate((2000, 2010)):
        lc = tiny_landcover(0, i)
        lc[:, :32] = 0
        write_tif(tmp_path / "r" / f"lc_{year}.tif", lc, CHINA_ALBERS, TRANSFORM, 0)
    values = np.full((ROWS, COLS), -9999.0, np.float32)
    values[:, :32] = 5.0
    elev = write_tif(tmp_path / "r" / "elev.tif", values, CHINA_ALBERS, TRANSFORM, -9999.0)
    cfg = load_config(config)
    run_stages(cfg, "ingest", "transitions_esv")
    with pytest.raises(InputError) as info:
        run_stages(cfg, "driver_analysis")
    [p] = info.value.problems
    assert Path(p.file) == elev and p.key == "drivers.elevation"
    assert "no value on any analysis cell with ESV" in p.message
    assert not RunFolder(cfg.output).table_path("geodetector_factor").exists()


def test_an_infinite_driver_value_is_named_with_its_file(tiny_region: Path) -> None:
    # GDAL's average leaves infinities out when it brings a driver onto the analysis grid; a driver
    # stored on that grid already (or by mode) keeps them: the check names its file.
    import dask.array as da

    from ecodask.run.stages.driver_analysis import _check_drivers

    cfg = load_config(tiny_region)
    density = da.from_array(np.ones((2, 4, 4)), chunks=(1, 2, 2))
    elev = np.arange(16, dtype=np.float32).reshape(4, 4)
    _check_drivers(cfg, {"elevation": da.from_array(elev, chunks=2)}, density)  # fine
    elev[1, 2] = np.inf
    with pytest.raises(InputError) as info:
        _check_drivers(cfg, {"elevation": da.from_array(elev, chunks=2)}, density)
    [p] = info.value.problems
    assert Path(p.file) == cfg.drivers["elevation"].path and (p.key, p.value) == ("drivers.elevation", "inf")
    assert "1 analysis cells are infinite" in p.message


def test_a_constant_driver_is_named_with_its_file(tmp_path: Path) -> None:
    # One value everywhere: no discretization gives two strata. The detector names the factor; the
    # run names the driver's file.
    config = make_tiny_region(tmp_path / "r")
    elev = write_tif(tmp_path / "r" / "elev.tif", np.full((ROWS, COLS), 42.0, np.float32), CHINA_ALBERS,
                     TRANSFORM, -9999.0)
    cfg = load_config(config)
    run_stages(cfg, "ingest", "transitions_esv")
    with pytest.raises(InputError) as info:
        run_stages(cfg, "driver_analysis")
    assert {Path(p.file) for p in info.value.problems} == {elev}
    p = info.value.problems[0]
    assert p.key.startswith("drivers.elevation (") and "ESV of 2000" in p.key

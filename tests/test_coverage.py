"""Coverage: how much of each zone the land cover covers, per year. A zone partly outside the
rasters (or under no data) is counted by its pixels with data, flagged below ``min_coverage``, and
can be left out of the compensation tables; per-hectare figures divide by the area with data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from affine import Affine

from ecodask.io.layout import RunFolder
from ecodask.run.config import load_config
from ecodask.science.grid import CHINA_ALBERS
from ecodask.science.landuse import coverage_table

from conftest import COLS, RES, ROWS, SPLIT_COL, X0, Y1, make_tiny_region, tiny_landcover, write_tif
from helpers import edit_yaml, run_stages

pytestmark = pytest.mark.usefixtures("dask_threads")
TRANSFORM = Affine(RES, 0, X0, 0, -RES, Y1)


def test_coverage_table_by_hand() -> None:
    zones = pd.DataFrame({"zone": [1, 2], "zone_id": ["a", "b"], "zone_name": ["A", "B"]})
    data = np.array([[100, 30], [100, 0]])  # (years, zones): pixels of a known class
    table = coverage_table(data, np.array([100, 40]), [2000, 2010], zones, 0.09, 0.99)
    got = table.set_index(["zone_id", "year"])
    assert got.loc[("a", 2000), "coverage"] == 1.0 and not got.loc[("a", 2000), "partial"]
    assert got.loc[("b", 2000), "coverage"] == 0.75 and got.loc[("b", 2000), "partial"]
    assert got.loc[("b", 2010), "coverage"] == 0.0 and got.loc[("b", 2010), "data_area_ha"] == 0.0
    assert got.loc[("ALL", 2000), "zone_pixels"] == 140 and got.loc[("ALL", 2000), "data_pixels"] == 130
    assert got.loc[("ALL", 2000), "coverage"] == pytest.approx(130 / 140)
    assert got.loc[("a", 2010), "data_area_ha"] == pytest.approx(9.0)
    lax = coverage_table(data, np.array([100, 40]), [2000, 2010], zones, 0.7, 0.5)
    assert lax.loc[lax.partial, ["zone_id", "year"]].values.tolist() == [["b", 2010]]


def test_a_zone_half_under_no_data_is_counted_and_flagged(tmp_path: Path) -> None:
    config = make_tiny_region(tmp_path / "r")
    lc = tiny_landcover(0, 1)
    lc[:, :64] = 0  # 2010: the western 64 columns (part of the West zone) no data
    write_tif(tmp_path / "r" / "lc_2010.tif", lc, CHINA_ALBERS, TRANSFORM, 0)
    cfg = load_config(config)
    run_stages(cfg, "ingest", "transitions_esv")
    folder = RunFolder(cfg.output)
    cov = folder.table("coverage").set_index(["zone_id", "year"])
    zones = folder.table("zones").set_index("zone_id")
    # Independent count: the zones are boxes on the pixel grid (West: columns 0..159).
    lcs = {2000: tiny_landcover(0, 0), 2010: lc}
    for zone_id, cols in (("420101", slice(0, SPLIT_COL)), ("420102", slice(SPLIT_COL, COLS))):
        n = ROWS * (cols.stop - cols.start)
        assert zones.loc[int(zone_id), "pixels"] == n
        for year, arr in lcs.items():
            data = int((arr[:, cols] != 0).sum())
            row = cov.loc[(zone_id, year)]
            assert (row.zone_pixels, row.data_pixels) == (n, data)
            assert row.coverage == pytest.approx(data / n)
            assert row.partial == (data / n < 0.99)
    assert cov.loc[("420101", 2010), "partial"] and not cov.loc[("420102", 2010), "partial"]
    # Per hectare: over the area with data, not the polygon's (the export's esv_total layer).
    from ecodask.export import esv_total_layer

    layer = esv_total_layer(folder.table("esv_by_service"), zones["area_ha"].rename(index=str),
                            folder.table("coverage")).set_index(["zone_id", "year"])
    west = layer.loc[("420101", 2010)]
    assert west.esv_cny_per_ha == pytest.approx(west.esv_cny / cov.loc[("420101", 2010), "data_area_ha"])
    assert west.esv_cny_per_ha > 1.5 * west.esv_cny / west.area_ha  # 60 % coverage: not 40 % low


def test_min_coverage_is_configurable_and_reruns_only_the_tables(tmp_path: Path) -> None:
    config = make_tiny_region(tmp_path / "r")
    cfg = load_config(config)
    from ecodask.run import resume

    before = resume.plan(cfg)
    edit_yaml(config, lambda d: d["zones"].__setitem__("min_coverage", 0.5))
    after = resume.plan(load_config(config))
    assert before["ingest"] == after["ingest"] and before["transitions_esv"] != after["transitions_esv"]


@pytest.mark.slow
def test_a_run_says_which_zones_are_partial(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from helpers import deadline

    config = make_tiny_region(tmp_path / "r")
    lc = tiny_landcover(0, 1)
    lc[:, :64] = 0
    write_tif(tmp_path / "r" / "lc_2010.tif", lc, CHINA_ALBERS, TRANSFORM, 0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    done = subprocess.run([sys.executable, "-m", "ecodask.cli", "run", str(config)], env=env, text=True,
                          capture_output=True, timeout=deadline(300), check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    warning = [x for x in done.stderr.splitlines() if x.startswith("warning: ")]
    share = 1 - 64 / SPLIT_COL  # the West zone's 2010 pixels with data (tiny land cover: no no-data)
    assert warning and warning[0].startswith(
        "warning: 1 of 2 zones have land cover on only part of their area: "
        f"West (420101) {share * 100:.1f} % in 2010"), warning
    out = RunFolder(config.parent / "out")
    assert (out.figures / "coverage.png").is_file()
    assert "Zones the land cover covers only in part" in out.report.read_text()


def test_compensation_rows_carry_coverage_and_partial_zones_can_be_left_out(tmp_path: Path) -> None:
    from ecodask.io.tables import write_table
    from ecodask.run.stages.compensation import _with_coverage

    zones = pd.DataFrame({"zone": [1, 2], "zone_id": ["420101", "420102"], "zone_name": ["W", "E"]})
    data = np.array([[100, 40], [100, 38]])
    cov = coverage_table(data, np.array([100, 40]), [2000, 2010], zones, 0.09, 0.99)
    folder = RunFolder(tmp_path)
    write_table(cov, folder.tables, "coverage")
    table = pd.DataFrame({"zone_id": [420101, 420102] * 2, "year": [2000, 2000, 2010, 2010],
                          "amount_cny": [1.0, 2.0, 3.0, 4.0]})
    kept = _with_coverage(table, folder, exclude=False)
    assert kept["coverage"].tolist() == [1.0, 1.0, 1.0, 0.95] and kept["partial"].tolist() == [
        False, False, False, True]
    assert kept["zone_id"].dtype == table["zone_id"].dtype  # the table's own id type kept
    left = _with_coverage(table, folder, exclude=True)
    assert left[["zone_id", "year"]].values.tolist() == [[420101, 2000], [420102, 2000], [420101, 2010]]

"""Class areas per zone and year: one-pass chunked histogram == plain numpy; area = pixels x 0.09 ha."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from ecodask.chunked.class_counts import class_areas, zone_class_pixel_counts
from ecodask.errors import InputError
from ecodask.io.catalogs import load_class_scheme
from ecodask.io.store import ingest
from ecodask.kernels.histogram import zone_class_counts
from ecodask.run.config import load_config
from ecodask.run.inputs import checked
from ecodask.science.grid import CHINA_ALBERS
from ecodask.science.landuse import REGION_ID

from conftest import SPLIT_COL, X0, Y1, make_tiny_region, tiny_landcover, write_tif
from helpers import run_stages

pytestmark = pytest.mark.usefixtures("dask_threads")


def _numpy_counts(zone: np.ndarray, lc: np.ndarray, n_zones: int) -> np.ndarray:
    idx = zone.astype(np.int64)[None] * 256 + lc
    return np.stack([np.bincount(i.ravel(), minlength=(n_zones + 1) * 256) for i in idx]).reshape(
        lc.shape[0], n_zones + 1, 256
    )


@settings(max_examples=30, deadline=None)
@given(
    rows=st.integers(1, 70),
    cols=st.integers(1, 70),
    years=st.integers(1, 3),
    n_zones=st.integers(1, 300),
    chunk=st.integers(4, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_chunked_histogram_equals_numpy(rows, cols, years, n_zones, chunk, seed) -> None:
    rng = np.random.default_rng(seed)
    ztype = np.uint8 if n_zones < 256 else np.uint16
    zone = rng.integers(0, n_zones + 1, (rows, cols)).astype(ztype)
    lc = rng.integers(0, 256, (years, rows, cols)).astype(np.uint8)
    got = zone_class_pixel_counts(
        da.from_array(zone, chunks=chunk), da.from_array(lc, chunks=(1, chunk, chunk)), n_zones
    )
    np.testing.assert_array_equal(got, _numpy_counts(zone, lc, n_zones))


def test_kernel_rejects_zone_out_of_range() -> None:
    with pytest.raises(ValueError, match="n_zones"):
        zone_class_counts(np.array([[3]], np.uint8), np.array([[1]], np.uint8), 2)
    with pytest.raises(TypeError):
        zone_class_counts(np.array([[1]], np.int32), np.array([[1]], np.uint8), 2)


def test_class_areas_are_pixel_counts_times_009_ha(tiny_region: Path) -> None:
    cfg = load_config(tiny_region)
    _, paths = run_stages(cfg, "ingest", "transitions_esv")  # class areas: the transfer histograms' margins
    import pandas as pd

    table = pd.read_csv(paths["class_area.csv"], dtype={"zone_id": str})
    assert table.equals(pd.read_parquet(paths["class_area.parquet"]).astype({"zone_id": str}))
    scheme = load_class_scheme("clcd")
    for i, year in enumerate((2000, 2010)):
        lc = tiny_landcover(0, i)
        for zone_id, part in (("420101", lc[:, :SPLIT_COL]), ("420102", lc[:, SPLIT_COL:]), (REGION_ID, lc)):
            rows = table[(table.zone_id == zone_id) & (table.year == year)]
            assert rows.class_code.tolist() == sorted(scheme.classes)
            expect = np.bincount(part.ravel(), minlength=10)[1:]
            np.testing.assert_array_equal(rows.pixels.to_numpy(), expect)
            # exactly pixels x 0.09 ha, the pixel area of a 30 m equal-area grid
            assert (rows.area_ha.to_numpy() == expect * 0.09).all()
            assert rows.share.sum() == pytest.approx(1.0)
    west = table[(table.zone_id == "420101") & (table.year == 2000)]
    assert west.zone_name.iloc[0] == "West" and west.area_ha.sum() == pytest.approx(160 * 256 * 0.09)


def test_unknown_code_named_with_file_and_pixel_count(tmp_path: Path) -> None:
    path = make_tiny_region(tmp_path / "r")
    lc = tiny_landcover(0, 1)
    lc[:3, :5] = 12  # 15 pixels of a code CLCD does not have
    write_tif(path.parent / "lc_2010.tif", lc, CHINA_ALBERS, Affine(30, 0, X0, 0, -30, Y1), 0)
    cfg = load_config(path)
    with pytest.raises(InputError) as info:  # found by ingest's pass, before the drivers and the ESV
        run_stages(cfg, "ingest")
    msg = str(info.value)
    assert "lc_2010.tif" in msg and "class code = 12" in msg and "15 pixels" in msg
    assert not list(cfg.output.glob("store.zarr*"))  # no store, not even a partial one
    # A store made without that check (an earlier version's): the ESV pass finds the code too.
    store = ingest(checked(cfg), cfg.output)
    with pytest.raises(InputError) as info:
        run_stages(cfg, "transitions_esv")
    assert "class code = 12" in str(info.value) and "15 pixels" in str(info.value)
    assert not (path.parent / "out" / "tables" / "class_area.csv").exists()
    assert sorted(p.name for p in store.iterdir() if "esv" in p.name) == []  # nothing staged is left


def test_class_areas_count_nodata_nowhere() -> None:
    zone = np.array([[1, 1], [0, 1]], np.uint8)
    lc = np.array([[[0, 1], [1, 4]]], np.uint8)
    import pandas as pd

    zones = pd.DataFrame({"zone": [1], "zone_id": [7], "zone_name": ["z"], "area_ha": [0.27]})
    t = class_areas(da.from_array(zone), da.from_array(lc), [2020], zones, load_class_scheme("clcd"), 0.09)
    z = t[t.zone_id == "7"].set_index("class_code")
    assert z.pixels.sum() == 2 and z.loc[1, "pixels"] == 1 and z.loc[4, "pixels"] == 1


def test_class_areas_name_unknown_codes_inside_zones_only() -> None:
    import pandas as pd

    zone = np.array([[1, 1], [0, 1]], np.uint8)
    lc = np.array([[[12, 1], [13, 12]]], np.uint8)  # 13 lies outside every zone
    zones = pd.DataFrame({"zone": [1], "zone_id": [7], "zone_name": ["z"], "area_ha": [0.27]})
    with pytest.raises(InputError) as info:
        class_areas(da.from_array(zone), da.from_array(lc), [2020], zones, load_class_scheme("clcd"), 0.09,
                    sources={2020: "lc_2020.tif"})
    assert str(info.value) == "lc_2020.tif: class code = 12: not in class scheme 'clcd' (2 pixels)"

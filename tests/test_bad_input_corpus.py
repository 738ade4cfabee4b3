"""The bad-input corpus: one case per kind of bad input, each run through ``ecodask run`` over the
output folder of a finished run, as a user (or a cron job) would meet it.

For every case: exit code 2; exactly one ``error:`` line naming the file, the field and the value
(several faults: that line as a heading, then one line each); no traceback; and the previous
run's output folder byte for byte as it was (run.json, the report and the stage manifests too).
Faults found before the first pass also leave no work copy; those only a pass over the pixels
can see (an unknown class code, a corrupt tile, a year or a driver without data: all found by
ingest's pass, the first) leave the previous output whole because the run computes in the work
copy and publishes only when it has finished (:mod:`ecodask.io.commit`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine

from ecodask.io import commit
from ecodask.science.grid import CHINA_ALBERS

from conftest import COLS, RES, ROWS, X0, Y1, make_tiny_region, tiny_landcover, write_tif
from helpers import corrupt_tile, deadline, digest, edit_yaml

pytestmark = pytest.mark.slow

TRANSFORM = Affine(RES, 0, X0, 0, -RES, Y1)


@dataclass(frozen=True)
class Case:
    """A bad input: how to make it in a copy of the region, and what the error line must say."""

    spoil: Callable[[Path], object]
    says: tuple[str, ...]
    in_pass: bool = False  # only a pass over the pixels can see it


def _lc(folder: Path, name: str, data: np.ndarray, **profile: object) -> None:
    kw = {"driver": "GTiff", "width": data.shape[1], "height": data.shape[0], "count": 1,
          "dtype": data.dtype, "transform": TRANSFORM, "nodata": 0, "crs": CHINA_ALBERS} | profile
    with rasterio.open(folder / name, "w", **kw) as dst:
        dst.write(data, 1)


def _twice(folder: Path) -> None:
    path = folder / "config.yaml"
    path.write_text(path.read_text() + "name: tiny2\n")


def _output_a_file(folder: Path) -> None:
    (folder / "notafolder").write_text("a file\n")
    edit_yaml(folder / "config.yaml", lambda d: d.__setitem__("output", "notafolder"))


def _no_crs(folder: Path) -> None:
    _lc(folder, "lc_2010.tif", tiny_landcover(0, 1), crs=None)


def _zones_no_crs(folder: Path) -> None:
    import geopandas as gpd

    zones = gpd.read_file(folder / "zones.gpkg")
    zones.set_crs(None, allow_override=True).to_file(folder / "zones.gpkg")


def _zones_elsewhere(folder: Path) -> None:
    import geopandas as gpd

    zones = gpd.read_file(folder / "zones.gpkg")
    zones.geometry = zones.geometry.translate(500_000, 0)
    zones.to_file(folder / "zones.gpkg")


def _truncated(folder: Path) -> None:
    path = folder / "lc_2010.tif"
    path.write_bytes(path.read_bytes()[:200])


def _float_codes(folder: Path) -> None:
    _lc(folder, "lc_2010.tif", tiny_landcover(0, 1).astype(np.float32))


def _unknown_code(folder: Path) -> None:
    lc = tiny_landcover(0, 1)
    lc[10, :15] = 200
    write_tif(folder / "lc_2010.tif", lc, CHINA_ALBERS, TRANSFORM, 0)


def _corrupt_tile(folder: Path) -> None:
    _lc(folder, "lc_2010.tif", tiny_landcover(0, 1), tiled=True, blockxsize=128, blockysize=128,
        compress="deflate")
    corrupt_tile(folder / "lc_2010.tif")


def _empty_year(folder: Path) -> None:
    write_tif(folder / "lc_2010.tif", np.zeros((ROWS, COLS), np.uint8), CHINA_ALBERS, TRANSFORM, 0)


def _empty_driver(folder: Path) -> None:
    write_tif(folder / "elev.tif", np.full((ROWS, COLS), -9999.0, np.float32), CHINA_ALBERS, TRANSFORM,
              -9999.0)


def _constant_driver(folder: Path) -> None:
    write_tif(folder / "elev.tif", np.full((ROWS, COLS), 42.0, np.float32), CHINA_ALBERS, TRANSFORM, -9999.0)


CASES: dict[str, Case] = {
    "a key given twice": Case(_twice, ("config.yaml", "name = ['tiny', 'tiny2']", "given 2 times")),
    "output names a file": Case(_output_a_file, ("notafolder", "output", "not a folder")),
    "an input missing": Case(lambda f: (f / "elev.tif").unlink(), ("elev.tif",)),
    "land cover without a CRS": Case(_no_crs, ("lc_2010.tif", "landcover.years.2010 (crs) = None",
                                               "the raster has no CRS")),
    "zones without a CRS": Case(_zones_no_crs, ("zones.gpkg", "crs = None", "no CRS")),
    "zones off the rasters": Case(_zones_elsewhere, ("lc_2000.tif", "(bounds)", "does not overlap")),
    "a truncated GeoTIFF": Case(_truncated, ("lc_2010.tif",)),
    "land cover of floats": Case(_float_codes, ("lc_2010.tif", "(dtype) = 'float32'", "integer codes")),
    "an unknown ESV table": Case(lambda f: edit_yaml(f / "config.yaml", lambda d: d["esv"].__setitem__(
        "table", "no_such_table")), ("esv.table", "no_such_table")),
    "a code not in the scheme": Case(_unknown_code, ("lc_2010.tif", "class code = 200",
                                                     "not in class scheme 'clcd' (15 pixels)"), True),
    "a corrupt tile": Case(_corrupt_tile, ("lc_2010.tif", "rows 128:256, columns 128:256",
                                           "cannot be read"), True),
    "a year without data": Case(_empty_year, ("lc_2010.tif", "no classified pixel inside the zones in 2010"),
                                True),
    "a driver without data": Case(_empty_driver, ("elev.tif", "drivers.elevation",
                                                  "no value on the run's grid"), True),
    "a constant driver": Case(_constant_driver, ("elev.tif", "drivers.elevation ("), True),
}


#: The case run as a user without a Prefect server meets it: the run starts Prefect's temporary
#: server. The others report to the tests' server (``prefect_api``): the same lines, ~10 s of CPU
#: less each.
ON_A_TEMPORARY_SERVER = "a code not in the scheme"


def _ecodask(config: Path, api_url: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "ECODASK_CRASH"))}
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return subprocess.run([sys.executable, "-m", "ecodask.cli", "run", str(config)], cwd=config.parent,
                          env=env, capture_output=True, text=True, timeout=deadline(300), check=False)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, prefect_api: dict[str, str]) -> Path:
    """A region whose run has finished (its output folder ``out/``)."""
    region = tmp_path_factory.mktemp("corpus") / "region"
    config = make_tiny_region(region)
    done = _ecodask(config, prefect_api["PREFECT_API_URL"])
    assert done.returncode == 0, done.stderr[-3000:]
    return region


@pytest.mark.parametrize("kind", list(CASES))
def test_bad_input_is_one_line_and_the_previous_output_stays_whole(finished: Path, tmp_path: Path, kind: str,
                                                                   prefect_api: dict[str, str]) -> None:
    case = CASES[kind]
    folder = tmp_path / "region"
    shutil.copytree(finished, folder)
    before = digest(folder / "out", skip=("lock",))
    outside = digest(folder, skip=("out",))
    case.spoil(folder)
    spoiled = {k for k, v in digest(folder, skip=("out",)).items() if outside.get(k) != v}

    server = None if kind == ON_A_TEMPORARY_SERVER else prefect_api["PREFECT_API_URL"]
    done = _ecodask(folder / "config.yaml", server)

    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr + done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr[-3000:]
    # One line, or for several faults a heading and one indented line per fault.
    lines = done.stderr.splitlines()
    at = lines.index(errors[0])
    block = [errors[0], *(x for x in lines[at + 1:] if x.startswith("  "))]
    for text in case.says:
        assert any(text in line for line in block), block
    # Byte for byte: the folder's view and its pointer (the stages' manifests apart: those of stages
    # that finished before the bad input was found are kept, for the next run to resume from).
    assert digest(folder / "out", skip=("lock", "work", "stages")) == {
        k: v for k, v in before.items() if not k.startswith(".ecodask/stages/")}
    assert commit.work_folder(folder / "out").exists() == case.in_pass
    # Nothing written beside the inputs either (the spoiled files apart).
    assert {k for k, v in digest(folder, skip=("out",)).items() if outside.get(k) != v} == spoiled


def test_a_repaired_polygon_is_one_warning_line_with_its_area(tiny_region: Path) -> None:
    import geopandas as gpd
    from shapely.geometry import Polygon

    zones = gpd.read_file(tiny_region.parent / "zones.gpkg")
    x0, y0, x1, y1 = zones.geometry[0].bounds
    zones.loc[0, "geometry"] = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])  # a bow tie
    zones.to_file(tiny_region.parent / "zones.gpkg")
    done = subprocess.run([sys.executable, "-m", "ecodask.cli", "validate", str(tiny_region)],
                          capture_output=True, text=True, timeout=deadline(120), check=False)
    assert done.returncode == 0, done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.strip()]
    area = (x1 - x0) * (y1 - y0) / 1e4 / 2  # the bow tie's two triangles: half the box
    assert line == (f"warning: {tiny_region.parent / 'zones.gpkg'}: geometry: 1 invalid (self-intersecting) "
                    f"polygons repaired; code and area before -> after: {zones.code[0]}: 0 -> {area:.6g} ha")
    assert yaml.safe_load(tiny_region.read_text())["zones"]["id_field"] == "code"

"""Bad input to the transitions + ESV stage: a clear error naming file, key and value, and nothing
written (or overwritten).

Through the real stages (the ingest and transitions_esv stage records) on the tiny region, Dask
threaded scheduler: unknown class codes, a land-cover year on another grid, ESV tables and class schemes
that do not fit each other, and the configuration options of the ESV stage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
import zarr
from affine import Affine

from ecodask.errors import InputError
from ecodask.io.catalogs import builtin_catalog_dir
from ecodask.io.layout import TABLES
from ecodask.run.config import load_config
from ecodask.run.inputs import check_inputs
from ecodask.science import landuse
from ecodask.science.grid import CHINA_ALBERS

from conftest import X0, Y1, make_tiny_region, tiny_landcover, write_tif
from helpers import config_error, digest, edit_yaml, run_stages

TRANSFORM = Affine(30, 0, X0, 0, -30, Y1)

pytestmark = pytest.mark.usefixtures("dask_threads")


# ------------------------------------------------------------------------------------------
# (a) unknown class codes


def _unchecked_ingest(cfg, monkeypatch) -> Path:  # noqa: ANN001
    """The store as ingest writes it, without ingest's own check of the codes (as an earlier
    version wrote it): what the transitions + ESV pass must still judge."""
    monkeypatch.setattr(landuse, "check_landcover_counts", lambda *args: None)
    store, _ = run_stages(cfg, "ingest")
    monkeypatch.undo()
    return store


@pytest.mark.parametrize("group_grids", [
    False,
    True,
])
def test_unknown_code_named_and_nothing_written(tmp_path: Path, group_grids: bool, monkeypatch) -> None:
    path = make_tiny_region(tmp_path / "r", esv={"table": "xinzhou_2023", "group_grids": group_grids})
    lc = tiny_landcover(0, 1)
    lc[:3, :5] = 200  # 15 pixels of a code CLCD does not have, inside the zones
    write_tif(path.parent / "lc_2010.tif", lc, CHINA_ALBERS, TRANSFORM, 0)
    cfg = load_config(path)
    with pytest.raises(InputError, match="class code = 200"):  # ingest's pass finds it first
        run_stages(cfg, "ingest")
    store = _unchecked_ingest(cfg, monkeypatch)
    tables = cfg.output / TABLES
    before_store, before_tables = digest(store), digest(tables)
    assert set(before_tables) == {"zones.csv", "zones.parquet"}

    with pytest.raises(InputError) as info:
        run_stages(cfg, "transitions_esv")
    [p] = info.value.problems
    assert Path(p.file).name == "lc_2010.tif"
    assert (p.key, p.value) == ("class code", 200)
    assert "15 pixels" in p.message and "'clcd'" in p.message
    msg = str(info.value)
    assert str(path.parent / "lc_2010.tif") in msg and "class code = 200" in msg and "15 pixels" in msg

    assert not (store / "esv").exists() and not (store / "esv_group").exists()
    assert not list(store.glob("_staging_*"))
    assert not (store / "analysis" / "esv").exists()
    assert digest(tables) == before_tables  # only the zone table from ingest
    assert digest(store) == before_store


def test_unknown_codes_in_two_years_reported_together(tmp_path: Path, monkeypatch) -> None:
    path = make_tiny_region(tmp_path / "r", years=(2000, 2010, 2020))
    for i, (year, code, n) in enumerate(((2000, 13, 4), (2020, 255, 7))):
        lc = tiny_landcover(0, 2 * i)
        lc[10, :n] = code
        write_tif(path.parent / f"lc_{year}.tif", lc, CHINA_ALBERS, TRANSFORM, 0)
    cfg = load_config(path)
    with pytest.raises(InputError) as info:
        run_stages(cfg, "ingest")
    assert len(info.value.problems) == 2  # both years' codes, from ingest's pass
    store = _unchecked_ingest(cfg, monkeypatch)
    with pytest.raises(InputError) as info:
        run_stages(cfg, "transitions_esv")
    got = {(Path(p.file).name, p.key, p.value, p.message.split("(")[-1]) for p in info.value.problems}
    assert got == {("lc_2000.tif", "class code", 13, "4 pixels)"),
                   ("lc_2020.tif", "class code", 255, "7 pixels)")}
    assert str(info.value).startswith("2 problems:")
    assert not (store / "esv").exists() and not list(store.glob("_staging_*"))


@pytest.mark.parametrize("group_grids", [False, True])
def test_failed_rerun_keeps_the_previous_results_byte_identical(tmp_path: Path, group_grids: bool) -> None:
    path = make_tiny_region(tmp_path / "r", esv={"table": "xinzhou_2023", "group_grids": group_grids})
    cfg = load_config(path)
    store, _ = run_stages(cfg, "ingest", "transitions_esv")
    assert (store / "esv").is_dir() and (store / "analysis" / "esv").is_dir()
    assert (store / "esv_group").is_dir() == group_grids
    # a bad code appears in the store's 2010 layer (12 pixels, inside the East county)
    lcarr = zarr.open_array(str(store / "landcover"), mode="r+")
    lcarr[1, 100:104, 200:203] = 200
    before = digest(cfg.output)
    assert any(k.startswith(f"{TABLES}/esv_by_service") for k in before)

    with pytest.raises(InputError) as info:
        run_stages(cfg, "transitions_esv")
    [p] = info.value.problems
    assert Path(p.file).name == "lc_2010.tif" and (p.key, p.value) == ("class code", 200)
    assert "12 pixels" in p.message
    assert digest(cfg.output) == before  # esv, esv_group, analysis/esv*, every table: untouched
    assert not list(store.glob("_staging_*"))


def test_rerun_without_group_grids_leaves_no_stale_group_grids(tmp_path: Path) -> None:
    cfg = load_config(_region(tmp_path, group_grids=True))
    store, _ = run_stages(cfg, "ingest", "transitions_esv")
    assert (store / "esv_group").is_dir()
    plain = cfg.model_copy(update={"esv": cfg.esv.model_copy(update={"group_grids": False})})
    run_stages(plain, "transitions_esv")
    assert (store / "esv").is_dir()
    left = [n for n in ("esv_group", "group", "analysis/esv_group", "analysis/group") if (store / n).exists()]
    assert left == []


# ------------------------------------------------------------------------------------------
# (b) a land-cover year on another grid


@pytest.mark.parametrize(("what", "transform", "shape_div", "value"), [
    ("transform", Affine(30, 0, X0 + 30, 0, -30, Y1), 1, (30.0, 0.0, X0 + 30, 0.0, -30.0, Y1)),
    ("transform", Affine(60, 0, X0, 0, -60, Y1), 1, (60.0, 0.0, X0, 0.0, -60.0, Y1)),
    ("shape", Affine(60, 0, X0, 0, -60, Y1), 2, (128, 160)),
])
def test_landcover_year_on_another_grid(tmp_path: Path, what, transform, shape_div, value) -> None:
    path = make_tiny_region(tmp_path / "r")
    lc = np.ascontiguousarray(tiny_landcover(0, 1)[::shape_div, ::shape_div])
    write_tif(path.parent / "lc_2010.tif", lc, CHINA_ALBERS, transform, 0)
    cfg = load_config(path)  # the config alone cannot tell
    for step in (check_inputs, lambda c: run_stages(c, "ingest")):
        with pytest.raises(InputError) as info:
            step(cfg)
        [p] = info.value.problems
        assert Path(p.file).name == "lc_2010.tif"
        assert p.key == f"landcover.years.2010 ({what})"
        assert p.value == value
        assert "lc_2000.tif" in p.message and "share one grid" in p.message
        assert f"landcover.years.2010 ({what}) = {value!r}" in str(info.value)
    assert not cfg.output.exists()  # no store, no tables, no partial store


# ------------------------------------------------------------------------------------------
# (c) ESV tables and class schemes that do not fit


def _catalog(tmp_path: Path, table_edit=None, scheme_edit=None) -> tuple[Path, Path]:
    """Copies of xinzhou_2023 and clcd under new names in a catalog folder, edited."""
    cat = tmp_path / "cat"
    src = builtin_catalog_dir()
    t = yaml.safe_load((src / "esv_tables" / "xinzhou_2023.yaml").read_text())
    t["name"] = "my_table"
    if table_edit:
        table_edit(t)
    s = yaml.safe_load((src / "class_schemes" / "clcd.yaml").read_text())
    s["name"] = "my_scheme"
    if scheme_edit:
        scheme_edit(s)
    files = []
    for kind, name, data in (("esv_tables", "my_table", t), ("class_schemes", "my_scheme", s)):
        (cat / kind).mkdir(parents=True, exist_ok=True)
        f = cat / kind / f"{name}.yaml"
        f.write_text(yaml.safe_dump(data, sort_keys=False))
        files.append(f)
    path = make_tiny_region(tmp_path / "r", catalogs=["../cat"], esv={"table": "my_table"})
    edit_yaml(path, lambda d: d["landcover"].__setitem__("scheme", "my_scheme"))
    return path, *files


def test_copied_catalog_loads(tmp_path: Path) -> None:
    path, _, _ = _catalog(tmp_path)
    cfg = load_config(path)
    assert (cfg.esv.table, cfg.landcover.scheme) == ("my_table", "my_scheme")


def _drop_class(t):
    del t["classes"]["UL"]
    for row in t["values"].values():
        del row["UL"]


def test_table_without_a_class_the_scheme_maps_onto(tmp_path: Path) -> None:
    path, tfile, _ = _catalog(tmp_path, table_edit=_drop_class)
    [p] = config_error(path).problems
    assert p.file == str(tfile.resolve()) or Path(p.file).resolve() == tfile.resolve()
    assert (p.key, p.value) == ("classes", "UL")
    assert "my_scheme" in p.message
    assert f"{tfile.name}: classes = 'UL'" in str(config_error(path))


def _drop_class_from_rows(t):
    for row in t["values"].values():
        del row["UL"]


def _drop_service_row(t):
    del t["values"]["biodiversity"]


def _drop_service_entry(t):
    t["services"] = [s for s in t["services"] if s["name"] != "biodiversity"]


@pytest.mark.parametrize("edit", [_drop_class_from_rows, _drop_service_row, _drop_service_entry])
def test_incomplete_table_is_a_config_error(tmp_path: Path, edit) -> None:
    path, tfile, _ = _catalog(tmp_path, table_edit=edit)
    err = config_error(path)
    [p] = err.problems
    assert Path(p.file).resolve() == tfile.resolve()  # the faulty table, not the run config
    # what is wrong with it is said: the row or service that does not match
    assert "must have exactly the" in p.message
    assert ("UL" in p.message) if edit is _drop_class_from_rows else ("biodiversity" in p.message)


@pytest.mark.parametrize("edit", [_drop_class_from_rows, _drop_service_row])
def test_incomplete_table_names_its_own_file(tmp_path: Path, edit) -> None:
    path, tfile, _ = _catalog(tmp_path, table_edit=edit)
    msg = str(config_error(path))
    assert str(tfile.resolve()) in msg or str(tfile) in msg
    assert "unknown ESV table" not in msg and "Value error" not in msg


def test_scheme_code_not_mapped(tmp_path: Path) -> None:
    def unmap(s):
        del s["mappings"]["seed002_six"][9]

    path, _, sfile = _catalog(tmp_path, scheme_edit=unmap)
    [p] = config_error(path).problems
    assert Path(p.file).resolve() == sfile.resolve()
    assert (p.key, p.value) == ("mappings.seed002_six", 9)
    assert "wetland" in p.message and "not mapped" in p.message


def test_scheme_without_a_mapping_for_the_table(tmp_path: Path) -> None:
    path, _, _ = _catalog(tmp_path, scheme_edit=lambda s: s["mappings"].pop("seed002_six"))
    [p] = config_error(path).problems
    assert (p.key, p.value) == ("esv.table", "my_table")
    assert "'seed002_six' has no mapping" in p.message


# ------------------------------------------------------------------------------------------
# (d) the ESV options


def _region(tmp_path: Path, **esv) -> Path:
    return make_tiny_region(tmp_path / "r", esv={"table": "xinzhou_2023", **esv})


def _one_problem(path: Path):
    err = config_error(path)
    [p] = err.problems
    assert Path(p.file).resolve() == path.resolve()
    assert f"{p.key} = {p.value!r}" in str(err)
    return p


def test_standard_equivalent_on_a_value_table(tmp_path: Path) -> None:
    path = _region(tmp_path, standard_equivalent=3406.5)
    p = _one_problem(path)
    assert (p.key, p.value) == ("esv.standard_equivalent", 3406.5)
    assert "CNY/ha/yr" in p.message and "xinzhou_2023" in p.message


def test_from_county_stats_needs_county_stats(tmp_path: Path) -> None:
    path = _region(tmp_path, table="xie2015", standard_equivalent="from_county_stats")
    p = _one_problem(path)
    assert (p.key, p.value) == ("esv.standard_equivalent", "from_county_stats")
    assert "county_stats" in p.message
    # with the table's own standard equivalent the same config is valid
    edit_yaml(path, lambda d: d["esv"].pop("standard_equivalent"))
    assert load_config(path).esv.table == "xie2015"


def test_adjustment_naming_an_unknown_driver(tmp_path: Path) -> None:
    path = _region(tmp_path, adjustment={"regulating": "npp"})
    p = _one_problem(path)
    assert (p.key, p.value) == ("esv.adjustment.regulating", "npp")
    assert "no such driver" in p.message and "elevation" in p.message


def test_adjustment_naming_a_categorical_driver(tmp_path: Path) -> None:
    path = _region(tmp_path, adjustment={"supporting": "soil"})
    edit_yaml(path, lambda d: d["drivers"].__setitem__("soil", {"path": "elev.tif", "kind": "categorical"}))
    p = _one_problem(path)
    assert (p.key, p.value) == ("esv.adjustment.supporting", "soil")
    assert "continuous" in p.message


def test_adjustment_naming_an_unknown_group(tmp_path: Path) -> None:
    path = _region(tmp_path, adjustment={"ecological": "elevation"})
    p = _one_problem(path)
    assert p.key.startswith("esv.adjustment.ecological") and p.value == "ecological"
    assert "'regulating'" in p.message


def test_adjustment_naming_a_group_the_table_lacks(tmp_path: Path) -> None:
    def no_cultural(t):
        t["services"] = [s for s in t["services"] if s["group"] != "cultural"]
        del t["values"]["aesthetic_landscape"]

    path, _, _ = _catalog(tmp_path, table_edit=no_cultural)
    edit_yaml(path, lambda d: d["esv"].__setitem__("adjustment", {"cultural": "elevation"}))
    p = _one_problem(path)
    assert (p.key, p.value) == ("esv.adjustment.cultural", "elevation")
    assert "my_table" in p.message and "no such group" in p.message


@pytest.mark.parametrize(("years", "proj", "why"), [
    ((2000, 2010), 2025,
     "landcover.projection_year = 2025: must be 2010 plus a whole multiple of the last interval (10 years): "
     "2020, 2030, 2040, ..."),
    ((2000, 2010), 2010, "landcover.projection_year = 2010: must be 2010 plus"),
    ((2000, 2010), 2005, "landcover.projection_year = 2005: must be 2010 plus"),
    ((2000,), 2015, "landcover.projection_year = 2015: needs at least two land-cover years"),
])
def test_projection_year_not_on_the_step(tmp_path: Path, years, proj, why) -> None:
    path = make_tiny_region(tmp_path / "r", years=years)
    edit_yaml(path, lambda d: d["landcover"].__setitem__("projection_year", proj))
    err = config_error(path)
    [p] = err.problems
    msg = str(err)
    assert str(path) in msg or str(path.resolve()) in msg
    assert (p.key, p.value) == ("landcover.projection_year", proj) and why in msg
    assert "projection_year" in msg and str(proj) in msg


def test_projection_year_on_the_step_loads(tmp_path: Path) -> None:
    path = make_tiny_region(tmp_path / "r", years=(2000, 2010))
    edit_yaml(path, lambda d: d["landcover"].__setitem__("projection_year", 2030))
    assert load_config(path).landcover.projection_year == 2030


def test_projection_year_error_names_its_own_key(tmp_path: Path) -> None:
    path = make_tiny_region(tmp_path / "r", years=(2000, 2010))
    edit_yaml(path, lambda d: d["landcover"].__setitem__("projection_year", 2025))
    [p] = config_error(path).problems
    assert (p.key, p.value) == ("landcover.projection_year", 2025)


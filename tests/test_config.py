"""Run configuration: a valid file loads; every fault names the file, the key and the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecodask.run.config import load_config

from conftest import make_tiny_region
from helpers import config_error, edit_yaml


def test_valid_config_resolves_paths(tiny_region: Path) -> None:
    cfg = load_config(tiny_region)
    assert cfg.years == [2000, 2010]
    assert cfg.landcover.years[2000] == (tiny_region.parent / "lc_2000.tif").resolve()
    assert cfg.output == (tiny_region.parent / "out").resolve()
    assert cfg.drivers["elevation"].kind == "continuous"
    assert cfg.cluster.kind == "local" and cfg.cluster.n_workers == 1 and not cfg.cluster.processes
    assert cfg.source == tiny_region.resolve()


def test_driver_shorthand_is_a_path(tiny_region: Path) -> None:
    edit_yaml(tiny_region, lambda d: d.__setitem__("drivers", {"elevation": "elev.tif"}))
    assert load_config(tiny_region).drivers["elevation"].path.name == "elev.tif"


def test_wrong_key_is_named_with_a_suggestion(tiny_region: Path) -> None:
    edit_yaml(tiny_region, lambda d: d["grid"].__setitem__("resolutoin", 30))
    err = config_error(tiny_region)
    msg = str(err)
    assert str(tiny_region) in msg and "grid.resolutoin" in msg and "unknown key" in msg
    assert "'resolution'" in msg


def test_missing_file_names_key_and_value(tiny_region: Path) -> None:
    edit_yaml(tiny_region, lambda d: d["landcover"]["years"].__setitem__(2010, "nowhere/lc.tif"))
    err = config_error(tiny_region)
    [p] = err.problems
    assert p.file == str(tiny_region)
    assert p.key == "landcover.years.2010"
    assert p.value == "nowhere/lc.tif"
    assert "file not found" in p.message


def test_unknown_class_scheme(tiny_region: Path) -> None:
    edit_yaml(tiny_region, lambda d: d["landcover"].__setitem__("scheme", "glc_fcs30"))
    [p] = config_error(tiny_region).problems
    assert (p.key, p.value) == ("landcover.scheme", "glc_fcs30")
    assert "unknown class scheme" in p.message and "clcd" in p.message


def test_unknown_esv_table(tiny_region: Path) -> None:
    edit_yaml(tiny_region, lambda d: d["esv"].__setitem__("table", "nope"))
    [p] = config_error(tiny_region).problems
    assert (p.key, p.value) == ("esv.table", "nope")
    assert "xinzhou_2023" in p.message


@pytest.mark.parametrize(
    ("crs", "why"),
    [
        ("EPSG:4326", "not a projected CRS"),
        ("EPSG:32649", "Transverse Mercator"),
        ("EPSG:3857", "does not preserve area"),
        ("not a crs", "not a CRS"),
    ],
)
def test_crs_must_be_equal_area(tiny_region: Path, crs: str, why: str) -> None:
    edit_yaml(tiny_region, lambda d: d["grid"].__setitem__("crs", crs))
    [p] = config_error(tiny_region).problems
    assert (p.key, p.value) == ("grid.crs", crs)
    assert why in p.message


@pytest.mark.parametrize("crs", ["EPSG:6933", "EPSG:3035", "ESRI:102025", "+proj=eqearth"])
def test_equal_area_crs_accepted(tiny_region: Path, crs: str) -> None:
    edit_yaml(tiny_region, lambda d: d["grid"].__setitem__("crs", crs))
    assert load_config(tiny_region).grid.crs == crs


def test_all_faults_reported_at_once(tiny_region: Path) -> None:
    def bad(d):
        d["grid"]["resolution"] = -30
        d["zones"]["id_field"] = "adcode"
        d["cluster"] = {"kind": "address"}
        del d["output"]

    edit_yaml(tiny_region, bad)
    keys = {p.key for p in config_error(tiny_region).problems}
    assert {"grid.resolution", "cluster", "output"} <= keys


def test_zone_fields_checked_against_file(tiny_region: Path) -> None:
    edit_yaml(tiny_region, lambda d: d["zones"].__setitem__("id_field", "adcode"))
    [p] = config_error(tiny_region).problems
    assert (p.key, p.value) == ("zones.id_field", "adcode")
    assert "code" in p.message  # lists the fields that exist


def test_chunk_must_nest_analysis_cells(tiny_region: Path) -> None:
    edit_yaml(tiny_region, lambda d: d["grid"].__setitem__("chunk_size", 100))
    [p] = config_error(tiny_region).problems
    assert p.key == "grid" and "multiple of analysis_factor" in p.message


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("grid: [unclosed")
    assert "not valid YAML" in str(config_error(f))
    f.write_text("- a\n- b\n")
    assert "must be a mapping" in str(config_error(f))
    assert "cannot read" in str(config_error(tmp_path / "missing.yaml"))


def test_extra_catalog_folder_adds_a_table(tmp_path: Path) -> None:
    cat = tmp_path / "mycat" / "esv_tables"
    cat.mkdir(parents=True)
    src = Path(__file__).resolve().parents[1] / "catalogs" / "esv_tables" / "xinzhou_2023.yaml"
    text = src.read_text().replace("name: xinzhou_2023", "name: my_region")
    (cat / "my_region.yaml").write_text(text)
    path = make_tiny_region(tmp_path / "r", catalogs=["../mycat"], esv={"table": "my_region"})
    assert load_config(path).esv.table == "my_region"


def test_zone_names_are_optional(tiny_region: Path) -> None:
    from ecodask.io.zones import read_zones

    edit_yaml(tiny_region, lambda d: d["zones"].pop("name_field"))
    cfg = load_config(tiny_region)
    assert cfg.zones.name_field is None
    zones = read_zones(cfg.zones.path, cfg.zones.id_field, cfg.zones.name_field, cfg.grid.crs)
    assert zones["zone_name"].tolist() == [str(i) for i in zones["zone_id"]]

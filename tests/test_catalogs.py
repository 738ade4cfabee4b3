"""Catalogs: the built-in YAML entries match the reference tables they were transcribed from."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ecodask.errors import CatalogError
from ecodask.io.catalogs import builtin_catalog_dir, catalog_files, load_class_scheme, load_esv_table
from ecodask.science.catalogs import EsvTable

from conftest import shared


def test_clcd_default_mapping_is_methods_section_1() -> None:
    scheme = load_class_scheme("clcd")
    assert scheme.nodata == 0
    assert sorted(scheme.classes) == list(range(1, 10))
    assert scheme.mapping_to("seed002_six") == {
        1: "FaL", 2: "FoL", 3: "FoL", 4: "GL", 5: "WL", 9: "WL", 8: "CL", 6: "UL", 7: "UL"
    }
    # every ESV table's class set is mapped, onto classes that table has
    for name in catalog_files("esv_tables"):
        table = load_esv_table(name)
        assert set(scheme.mapping_to(table.class_set).values()) <= set(table.classes)
        assert set(scheme.mapping_to(table.class_set)) == set(scheme.classes)


def test_xinzhou_table_matches_reference_csv() -> None:
    table = load_esv_table("xinzhou_2023")
    assert table.units == "CNY/ha/yr"
    rows = list(csv.DictReader(open(shared("xinzhou_esv_coefficients.csv"), encoding="utf-8")))
    assert table.service_names == [r["service"] for r in rows]
    for r in rows:
        svc = next(s for s in table.services if s.name == r["service"])
        assert svc.group == r["group"]
        for cls in table.classes:
            assert table.values[r["service"]][cls] == float(r[cls])
    assert table.market_services == ["food_production", "raw_materials", "water_supply"]


def test_xie2015_matches_reference_csv_with_verification_flags() -> None:
    table = load_esv_table("xie2015")
    assert table.kind == "equivalent" and table.standard_equivalent.value == 3406.50
    for r in csv.DictReader(open(shared("xie2015_equivalent_factors.csv"), encoding="utf-8")):
        lt = r["land_type"]
        assert table.verified[lt] == (r["verified"] == "yes")
        for s in table.service_names:
            assert table.values[s][lt] == float(r[s])
    assert all(table.values[s]["construction"] == 0 for s in table.service_names)


def test_unknown_name_lists_known() -> None:
    with pytest.raises(CatalogError, match="xinzhou_2023"):
        load_esv_table("atlantis")


def test_bad_entry_names_file_and_key(tmp_path: Path) -> None:
    folder = tmp_path / "esv_tables"
    folder.mkdir()
    src = Path(__file__).resolve().parents[1] / "catalogs" / "esv_tables" / "xinzhou_2023.yaml"
    text = src.read_text().replace("name: xinzhou_2023", "name: broken").replace("CL: 0.0", "XX: 0.0", 1)
    (folder / "broken.yaml").write_text(text)
    with pytest.raises(CatalogError) as info:
        load_esv_table("broken", [tmp_path])
    msg = str(info.value)
    assert "broken.yaml" in msg and "values." in msg and "classes" in msg


def test_the_catalogs_command_lists_and_checks_a_scheme_of_ones_own(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ecodask.cli import app

    listing = CliRunner().invoke(app, ["catalogs"])
    assert listing.exit_code == 0, listing.output
    assert "plus " in listing.output and "clcd " in listing.output and "xinzhou_2023 " in listing.output
    flat = " ".join(listing.output.split())
    assert "market: food_production, raw_materials, water_supply" in flat
    assert "china_nbs 2000-2024, CNY/person, current prices" in flat
    own = tmp_path / "cat" / "class_schemes"
    own.mkdir(parents=True)
    text = (builtin_catalog_dir() / "class_schemes" / "plus.yaml").read_text()
    text = text.replace("name: plus", "name: mine").replace("5: UL, 6: WL", "6: Water")
    (own / "mine.yaml").write_text(text)
    res = CliRunner().invoke(app, ["catalogs", "--catalog", str(tmp_path / "cat"), "--check", "mine",
                                   "--table", "xinzhou_2023"])
    assert res.exit_code == 2
    flat = " ".join(res.output.split())
    assert ("mine.yaml: mappings.seed002_six = 5: class code 5 (bare_land) is not mapped: "
            "add `5: <class>`") in flat
    assert "xinzhou_2023.yaml: classes = 'Water': missing" in flat
    assert "one of FaL, FoL, GL, WL, CL, UL" in flat
    fine = CliRunner().invoke(app, ["catalogs", "--check", "plus", "--table", "xinzhou_2023"])
    assert fine.exit_code == 0 and "plus with xinzhou_2023: fits" in fine.output


def test_market_split_is_the_tables_property_with_per_service_overrides() -> None:
    """Provisioning = market by default; a table may name other groups, and a service its own side."""
    base = load_esv_table("xie2015").model_dump()
    assert EsvTable(**base).market_services == ["food_production", "raw_materials", "water_supply"]
    services = [dict(s, market=False) if s["name"] == "water_supply" else s for s in base["services"]]
    table = EsvTable(**{**base, "services": services})
    assert table.market_services == ["food_production", "raw_materials"]
    table = EsvTable(**{**base, "market_groups": ["provisioning", "cultural"]})
    assert table.market_services == ["food_production", "raw_materials", "water_supply",
                                     "aesthetic_landscape"]
    table = EsvTable(**{**base, "market_groups": []})
    assert table.market_services == []
    with pytest.raises(ValueError, match="market_groups"):
        EsvTable(**{**base, "market_groups": ["markets"]})


def test_national_gdp_series_is_whole_and_plausible() -> None:
    """A transcription check: every year 2000-2024, nominal growth between 2 % and 25 % a year (a
    typo of one digit breaks it), the 2017 figure within 0.2 % of its first release (59,660)."""
    from ecodask.io.catalogs import load_gdp_per_capita

    g = load_gdp_per_capita("china_nbs")
    years = sorted(g.values)
    assert years == list(range(2000, 2025)) and g.units == "CNY/person" and g.prices == "current"
    growth = [g.values[b] / g.values[a] - 1 for a, b in zip(years, years[1:], strict=False)]
    assert all(0.02 < x < 0.25 for x in growth), dict(zip(years[1:], growth, strict=True))
    assert abs(g.values[2017] / 59_660 - 1) < 0.002

"""County statistics input: a clean table reads back canonical; every bad input names file, county, field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecodask.errors import InputError
from ecodask.io.county_stats import canonical_role, read_county_stats
from ecodask.science.compensation import PAYING, RECEIVING, ROLES
from ecodask.synth import make_county_stats

YEARS = (2010, 2020)
CODES = ["420102", "420101", "420103"]
NAMES = ["Hongshan", "Jiangan", "Qiaokou"]


def zones_frame() -> pd.DataFrame:
    # Deliberately not sorted by id: the output follows this order.
    return pd.DataFrame({"zone": [1, 2, 3], "zone_id": CODES, "zone_name": NAMES})


def valid_table() -> pd.DataFrame:
    rows = []
    roles = ["Key development zone", "main-agricultural", "KEY_ECOLOGICAL_FUNCTION"]
    for i, (code, name) in enumerate(zip(CODES, NAMES, strict=True)):
        for j, year in enumerate(YEARS):
            rows.append({
                "code": int(code), "name": name, "year": year,
                "population": 300_000 + 1000 * i, "gdp_cny": 2.0e10 * (1 + j),
                "engel_urban": 0.30, "engel_rural": 0.35, "urbanization_rate": 0.5 + 0.1 * j,
                "role": roles[i], "cultivated_area_ha": 12_000.0 + i, "income_per_capita_cny": 30_000.0,
                "rice_sown_ha": 5000.0, "rice_price_cny_per_kg": 2.3, "rice_yield_kg_per_ha": 7000.0,
            })
    # Rows in another order than the zones, plus a year nobody asked for.
    extra = dict(rows[0], year=2000)
    return pd.DataFrame([*rows[::-1], extra])


def write(tmp_path: Path, table: pd.DataFrame, name: str = "county_stats.csv") -> Path:
    path = tmp_path / name
    if name.endswith(".parquet"):
        table.to_parquet(path)
    else:
        table.to_csv(path, index=False)
    return path


def errors(path: Path, years=YEARS, zones: pd.DataFrame | None = None) -> InputError:
    with pytest.raises(InputError) as info:
        read_county_stats(path, zones_frame() if zones is None else zones, years=years)
    return info.value


def the_problem(err: InputError, key: str, words: str):
    found = [p for p in err.problems if p.key == key and words in p.message]
    assert found, f"no problem on {key!r} with {words!r} in:\n{err}"
    return found[0]


def assert_names(err: InputError, path: Path, key: str, words: str, county: str, name: str | None = None):
    p = the_problem(err, key, words)
    text = str(p)
    assert p.file == str(path) and str(path) in text
    assert f"{key} = " in text
    assert county in p.message
    if name is not None:
        assert f"{county} ({name})" in p.message
    return p


def test_clean_table_reads_canonical(tmp_path):
    path = write(tmp_path, valid_table())
    out = read_county_stats(path, zones_frame(), years=YEARS)
    assert list(out["zone_id"]) == [c for c in CODES for _ in YEARS]
    assert list(out["zone_name"]) == [n for n in NAMES for _ in YEARS]
    assert list(out["zone"]) == [1, 1, 2, 2, 3, 3]
    assert list(out["year"]) == list(YEARS) * 3 and out["year"].dtype == np.int64
    assert list(out["role"]) == ["key_development"] * 2 + ["main_agricultural"] * 2 + ["key_ecological"] * 2
    assert set(out["role"]) <= set(ROLES) and PAYING | RECEIVING == set(ROLES)
    assert out["gdp_cny"].dtype == np.float64
    assert out.loc[1, "gdp_cny"] == 4.0e10
    assert {"rice_sown_ha", "rice_price_cny_per_kg", "rice_yield_kg_per_ha"} <= set(out.columns)
    assert "name" not in out.columns and "code" not in out.columns


def test_parquet_and_all_years(tmp_path):
    table = valid_table()
    table = table[table["year"] != 2000]
    path = write(tmp_path, table, "county_stats.parquet")
    out = read_county_stats(path, zones_frame())
    assert len(out) == 6 and sorted(set(out["year"])) == list(YEARS)


def test_role_aliases():
    for label in ("key development zone", "Key-Development", "key_development_area"):
        assert canonical_role(label) == "key_development"
    for label in ("main agricultural production area", "main_agricultural_production", "Main Agricultural"):
        assert canonical_role(label) == "main_agricultural"
    for label in ("key ecological function area", "key_ecological_function", "KEY ECOLOGICAL"):
        assert canonical_role(label) == "key_ecological"
    assert canonical_role("industrial") is None and canonical_role(None) is None


def test_county_missing_from_table(tmp_path):
    table = valid_table()
    path = write(tmp_path, table[table["code"] != 420103])
    err = errors(path)
    assert_names(err, path, "code", "in the zones but not in the table", "420103", "Qiaokou")


def test_county_not_in_zones(tmp_path):
    table = valid_table()
    table = pd.concat([table, table.iloc[[0]].assign(code=429999, name="Nowhere")])
    path = write(tmp_path, table)
    err = errors(path)
    assert_names(err, path, "code", "not in the zones", "429999", "Nowhere")


def test_missing_year_row(tmp_path):
    table = valid_table()
    path = write(tmp_path, table[~((table["code"] == 420101) & (table["year"] == 2020))])
    err = errors(path)
    p = assert_names(err, path, "year", "no row", "420101", "Jiangan")
    assert "420101 (Jiangan) in 2020" in p.message
    assert len(err.problems) == 1


def test_year_absent_everywhere(tmp_path):
    path = write(tmp_path, valid_table())
    err = errors(path, years=(2010, 2030))
    p = the_problem(err, "year", "no rows for this year")
    assert p.value == 2030


def test_duplicated_id(tmp_path):
    table = valid_table()
    table = pd.concat([table, table[(table["code"] == 420102) & (table["year"] == 2010)]])
    path = write(tmp_path, table)
    err = errors(path)
    p = assert_names(err, path, "code", "duplicated", "420102", "Hongshan")
    assert "in 2010" in p.message and "2 rows" in p.message


def test_negative_gdp(tmp_path):
    table = valid_table()
    table.loc[(table["code"] == 420103) & (table["year"] == 2010), "gdp_cny"] = -5.0
    path = write(tmp_path, table)
    err = errors(path)
    p = assert_names(err, path, "gdp_cny", "must be > 0", "420103", "Qiaokou")
    assert p.value == -5.0 and "420103 (Qiaokou) in 2010" in p.message


def test_missing_population(tmp_path):
    table = valid_table()
    table.loc[(table["code"] == 420101) & (table["year"] == 2020), "population"] = np.nan
    path = write(tmp_path, table)
    err = errors(path)
    p = assert_names(err, path, "population", "missing", "420101", "Jiangan")
    assert p.value is None and "in 2020" in p.message


def test_engel_in_percent(tmp_path):
    table = valid_table()
    table["engel_rural"] = 35.0
    path = write(tmp_path, table)
    err = errors(path)
    p = assert_names(err, path, "engel_rural", "not percent", "420102", "Hongshan")
    assert "fractions in (0, 1]" in p.message
    assert "420101 (Jiangan)" in p.message and "420103 (Qiaokou)" in p.message
    assert "2000" not in p.message  # rows of years not asked for are ignored


def test_engel_of_zero_is_refused_as_the_formula_refuses_it(tmp_path):
    # The reader and seed 003's eq. 8 share one rule (compensation.ENGEL_RULE): (0, 1]; the
    # urbanization rate may be 0.
    table = valid_table()
    table["engel_urban"] = 0.0
    table["urbanization_rate"] = 0.0
    err = errors(write(tmp_path, table))
    assert [p.key for p in err.problems] == ["engel_urban"]
    assert "must be > 0" in err.problems[0].message and "(0, 1]" in err.problems[0].message


def test_negative_urbanisation(tmp_path):
    table = valid_table()
    table.loc[table["code"] == 420102, "urbanization_rate"] = -0.2
    path = write(tmp_path, table)
    err = errors(path)
    p = assert_names(err, path, "urbanization_rate", "must be >= 0", "420102", "Hongshan")
    assert "in 2010" in p.message and "in 2020" in p.message


def test_unknown_role(tmp_path):
    table = valid_table()
    table.loc[table["code"] == 420103, "role"] = "industrial park"
    path = write(tmp_path, table)
    err = errors(path)
    p = assert_names(err, path, "role", "unknown role", "420103", "Qiaokou")
    assert "key_development, main_agricultural, key_ecological" in p.message
    assert p.value == ["industrial park", "industrial park"]


def test_missing_column(tmp_path):
    path = write(tmp_path, valid_table().drop(columns="income_per_capita_cny"))
    err = errors(path)
    p = the_problem(err, "income_per_capita_cny", "column missing")
    assert str(path) in str(p) and len(err.problems) == 1


def test_incomplete_crop_columns(tmp_path):
    path = write(tmp_path, valid_table().drop(columns="rice_price_cny_per_kg"))
    err = errors(path)
    the_problem(err, "rice_price_cny_per_kg", "crop 'rice'")


def test_text_in_numeric_column(tmp_path):
    table = valid_table().astype({"cultivated_area_ha": object})
    table.loc[(table["code"] == 420101) & (table["year"] == 2010), "cultivated_area_ha"] = "n/a?"
    path = write(tmp_path, table)
    err = errors(path)
    p = assert_names(err, path, "cultivated_area_ha", "not a number", "420101", "Jiangan")
    assert p.value == "n/a?"
    assert len(err.problems) == 1


def test_several_faults_reported_together(tmp_path):
    table = valid_table()
    table.loc[table["code"] == 420102, "gdp_cny"] = 0.0
    table.loc[(table["code"] == 420101) & (table["year"] == 2010), "engel_urban"] = 1.5
    table.loc[table["code"] == 420103, "role"] = "town"
    table = table[~((table["code"] == 420103) & (table["year"] == 2020))]
    table = pd.concat([table, table.iloc[[0]].assign(code=999, name="Elsewhere")])
    path = write(tmp_path, table)
    err = errors(path)
    keys = {(p.key, p.message.split(": ")[-1][:12]) for p in err.problems}
    assert len(err.problems) == 5, str(err)
    assert {k for k, _ in keys} == {"gdp_cny", "engel_urban", "role", "year", "code"}
    assert str(err).startswith("5 problems:")


def test_long_listing_is_capped(tmp_path):
    codes = [str(420000 + i) for i in range(30)]
    zones = pd.DataFrame({"zone": range(1, 31), "zone_id": codes, "zone_name": [f"C{i}" for i in range(30)]})
    base = valid_table().iloc[0].to_dict()
    table = pd.DataFrame([dict(base, code=int(c), name=None, year=2010, population=-1) for c in codes])
    path = write(tmp_path, table)
    err = errors(path, years=(2010,), zones=zones)
    p = assert_names(err, path, "population", "must be > 0", "420000", "C0")
    assert "and 10 more" in p.message and len(p.value) == 20


def test_synthetic_table_passes(tmp_path):
    rng = np.random.default_rng(3)
    codes, names, years = [420101, 420102, 420103, 420104], ["A", "B", "C", "D"], (2000, 2010, 2020)
    counts = {y: rng.integers(100, 5000, size=(len(codes), 10)) for y in years}
    table = make_county_stats(rng, codes, names, years, counts)
    path = write(tmp_path, table)
    zones = pd.DataFrame({"zone": [1, 2, 3, 4], "zone_id": [str(c) for c in codes], "zone_name": names})
    out = read_county_stats(path, zones, years=years)
    assert len(out) == 12 and set(out["role"]) == set(ROLES)
    assert {f"{c}_sown_ha" for c in ("rice", "wheat", "maize")} <= set(out.columns)


def test_county_without_cultivated_land_is_named(tmp_path) -> None:
    table = valid_table()
    table.loc[(table["code"] == int(CODES[0])) & (table["year"] == YEARS[0]), "cultivated_area_ha"] = 0.0
    path = write(tmp_path, table)
    assert_names(errors(path), path, "cultivated_area_ha", "must be > 0", str(CODES[0]), NAMES[0])

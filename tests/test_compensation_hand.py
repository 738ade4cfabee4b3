"""Footprint and compensation (methods.md sections 7-8) against cases worked out by hand below.

The three-county example (table ``ROUND``, footprint items of the ``ROUND`` table):
one item, c = 100 kg/person, p = 1000 kg/ha, so sum c/p = 0.1 ha/person; r = 2, y = 1.5, reserve 0.2.
    EF = N * 2 * 0.1 = 0.2 N             EC = A * 2 * 1.5 * (1 - 0.2) = 2.4 A
    A  main_agricultural  N 120,000  A 20,000 ha  EF  24,000  EC  48,000  Q = -24,000/48,000 = -0.5
    B  main_agricultural  N 240,000  A 50,000 ha  EF  48,000  EC 120,000  Q = -72,000/120,000 = -0.6
    C  key_development    N 600,000  A 12,500 ha  EF 120,000  EC  30,000  Q =  90,000/30,000  =  3.0
"""

from __future__ import annotations

import csv
import itertools
import math

import numpy as np
import pandas as pd
import pytest

from ecodask.errors import ConfigError, InputError
from ecodask.io.catalogs import catalog_files, load_esv_table, load_footprint_table
from ecodask.science import compensation as comp
from ecodask.science.catalogs import FootprintTable
from ecodask.science.footprint import footprint

from conftest import shared

ROUND = FootprintTable(
    name="round", title="round numbers", source="test", verification="by hand",
    items={"grain": {"c_kg_per_capita": 100.0, "p_kg_per_ha": 1000.0}},
    equivalence_factor=2.0, yield_factor=1.5, biodiversity_reserve=0.2,
)


def stats3() -> pd.DataFrame:
    return pd.DataFrame({
        "zone_id": ["A", "B", "C"],
        "zone_name": ["Alpha", "Beta", "Gamma"],
        "year": [2017, 2017, 2017],
        "role": ["main_agricultural", "main_agricultural", "key_development"],
        "population": [120_000, 240_000, 600_000],
        "gdp_cny": [3.6e9, 9.6e9, 6.0e10],          # per capita 30,000 / 40,000 / 100,000
        "engel_urban": [0.5, 0.2, 0.2],
        "engel_rural": [0.5, 0.3, 0.6],
        "urbanization_rate": [0.4, 0.5, 0.9],       # En = 0.5 / 0.25 / 0.24
        "income_per_capita_cny": [20_000, 25_000, 50_000],
        "cultivated_area_ha": [20_000, 50_000, 12_500],
    })


def esv3() -> pd.DataFrame:
    return pd.DataFrame({
        "zone_id": ["A", "B", "C"], "year": [2017] * 3,
        "esv_market_cny": [0.9e8, 1.2e8, 0.6e8],
        "esv_nonmarket_cny": [3.6e8, 4.8e8, 6.0e8],
        "esv_total_cny": [4.5e8, 6.0e8, 6.6e8],
    })


def _by_zone(df: pd.DataFrame) -> pd.DataFrame:
    return df.set_index("zone_id")


# ------------------------------------------------------------------------------ catalogs


def test_footprint_table_matches_reference_csv() -> None:
    table = load_footprint_table("hubei_2017")
    assert "hubei_2017" in catalog_files("footprint_tables")
    with open(shared("hubei_footprint_items.csv"), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(table.items) == [r["item"] for r in rows]
    for r in rows:
        assert table.items[r["item"]].c_kg_per_capita == float(r["c_kg_per_capita"])
        assert table.items[r["item"]].p_kg_per_ha == float(r["p_kg_per_ha"])
    assert (table.equivalence_factor, table.yield_factor, table.biodiversity_reserve) == (2.52, 1.28, 0.035)


def test_seed003_equivalent_factor_sums() -> None:
    # seed 003 Table 3: market = food 1.00 + raw materials 0.39 = 1.39;
    # non-market = 0.72 + 0.97 + 0.77 + 1.39 + 1.47 + 1.02 + 0.17 = 6.51; total 7.9
    table = load_esv_table("hubei_cultivated_2017")
    market = sum(table.values[s.name]["cultivated"] for s in table.services if table.is_market(s))
    nonmarket = sum(table.values[s.name]["cultivated"] for s in table.services if not table.is_market(s))
    assert market == pytest.approx(1.39, abs=1e-12)
    assert nonmarket == pytest.approx(6.51, abs=1e-12)
    assert market + nonmarket == pytest.approx(7.9, abs=1e-12)


# ----------------------------------------------------------------------------- footprint


def test_footprint_hubei_items_by_hand() -> None:
    # sum c/p = (15.70 + 106.54)/2744 + (7.70 + 14.10)/1856 + (113.01 + 28.68)/18000
    #         = 122.24/2744 + 21.80/1856 + 141.69/18000 = 0.0445481 + 0.0117457 + 0.0078717 = 0.0641655
    table = load_footprint_table("hubei_2017")
    per_capita_ha = 122.24 / 2744 + 21.80 / 1856 + 141.69 / 18000
    assert table.ha_per_capita == pytest.approx(per_capita_ha, rel=1e-14)
    stats = pd.DataFrame({"zone_id": ["X"], "year": [2017], "population": [1_000_000],
                          "cultivated_area_ha": [100_000]})
    out = footprint(stats, table).iloc[0]
    # EF = 1e6 * 2.52 * 0.0641655 = 161,697 gha; EC = 1e5 * 2.52 * 1.28 * 0.965 = 1e5 * 3.112704 = 311,270.4
    assert out["ef_gha"] == pytest.approx(1e6 * 2.52 * per_capita_ha, rel=1e-12)
    assert out["ef_gha"] == pytest.approx(161_697.0, abs=0.5)
    assert out["ec_gha"] == pytest.approx(311_270.4, rel=1e-12)
    assert out["overload_q"] == pytest.approx((out["ef_gha"] - 311_270.4) / 311_270.4, rel=1e-12)
    assert out["ef_gha_per_capita"] == pytest.approx(2.52 * per_capita_ha, rel=1e-12)
    assert out["ec_gha_per_capita"] == pytest.approx(0.3112704, rel=1e-12)


def test_seed003_footprint_from_its_table_2_and_population() -> None:
    """Seed 003 prints EF = 1078.73 x 10^4 gha for Hubei in 2017 (section 3.1). Its own inputs give
    less: Table 2 and r = 2.52 (section 2.2.1) make ef = 2.52 * 0.0641655 = 0.1616970 gha per person,
    and with the population it prints (59,020,000, section 2.1) EF = 954.34 x 10^4 gha. The
    population that would give 1078.73 is 1078.73e4 / 0.1616970 = 6671.3 x 10^4 persons
    (docs/science.md records the mismatch)."""
    table = load_footprint_table("hubei_2017")
    # cultivated_area_ha only has to be valid here: EC is not part of this check.
    stats = pd.DataFrame({"zone_id": ["hubei"], "year": [2017], "population": [59_020_000],
                          "cultivated_area_ha": [1.0]})
    out = footprint(stats, table).iloc[0]
    assert out["ef_gha_per_capita"] == pytest.approx(0.1616970, abs=5e-8)
    assert round(out["ef_gha"] / 1e4, 2) == 954.34
    assert round(1078.73e4 / out["ef_gha_per_capita"] / 1e4, 1) == 6671.3


def test_footprint_three_counties() -> None:
    out = _by_zone(footprint(stats3(), ROUND))
    assert list(out["ef_gha"]) == pytest.approx([24_000, 48_000, 120_000], rel=1e-12)
    assert list(out["ec_gha"]) == pytest.approx([48_000, 120_000, 30_000], rel=1e-12)
    assert list(out["overload_q"]) == pytest.approx([-0.5, -0.6, 3.0], rel=1e-12)
    # per capita: EF 0.2 gha each; EC 48,000/120,000 = 0.4, 120,000/240,000 = 0.5, 30,000/600,000 = 0.05
    assert list(out["ef_gha_per_capita"]) == pytest.approx([0.2, 0.2, 0.2], rel=1e-12)
    assert list(out["ec_gha_per_capita"]) == pytest.approx([0.4, 0.5, 0.05], rel=1e-12)


def test_footprint_without_cultivated_land_names_the_county() -> None:
    stats = stats3()
    stats.loc[1, "cultivated_area_ha"] = 0
    with pytest.raises(InputError) as info:
        footprint(stats, ROUND, file="stats.csv")
    msg = str(info.value)
    assert "stats.csv" in msg and "cultivated_area_ha" in msg and "'B'" in msg and "= 0" in msg


# ------------------------------------------------------------------------------ formulas


def test_development_stage_seed_and_pearl() -> None:
    # En = Ea*theta + Eb*(1-theta):
    #   0.5*0.4 + 0.5*0.6 = 0.5;  0.2*0.5 + 0.3*0.5 = 0.25;  0.2*0.9 + 0.6*0.1 = 0.24
    en = comp.combined_engel(np.array([0.5, 0.2, 0.2]), np.array([0.5, 0.3, 0.6]), np.array([0.4, 0.5, 0.9]))
    assert en == pytest.approx([0.5, 0.25, 0.24], rel=1e-12)
    # seed (as eq. 8 prints it): t = En; R(0.5) = 1/(1 + e^-0.5) = 1/1.6065307 = 0.6224593
    assert comp.development_stage(0.5, 0.5, 0.4, form="seed") == pytest.approx(0.6224593, abs=1e-7)
    # ... and it rises with the food share (poorer -> higher R), the opposite of the seed's prose
    poor, rich = (comp.development_stage(e, e, 0.5, form="seed") for e in (0.6, 0.3))
    assert poor > rich
    # Pearl: t = 1/En - 3: En 0.25 -> t 1 -> R = 1/(1 + e^-1) = 0.7310586; En 0.5 -> t -1 -> 0.2689414;
    # En 1/3 -> t 0 -> 0.5
    assert comp.development_stage(0.2, 0.3, 0.5, form="pearl") == pytest.approx(0.7310586, abs=1e-7)
    assert comp.development_stage(0.5, 0.5, 0.4, form="pearl") == pytest.approx(0.2689414, abs=1e-7)
    assert comp.development_stage(1 / 3, 1 / 3, 0.3, form="pearl") == pytest.approx(0.5, abs=1e-12)
    # the default is Pearl: R falls as the food share rises, towards 1 ("extremely rich") as En -> 0
    assert comp.development_stage(0.2, 0.3, 0.5) == comp.development_stage(0.2, 0.3, 0.5, form="pearl")
    assert comp.development_stage(0.05, 0.05, 0.5) > 0.99
    with pytest.raises(InputError, match="engel_urban.*30 %"):
        comp.development_stage(30.0, 0.4, 0.5)
    with pytest.raises(ConfigError, match="form"):
        comp.development_stage(0.3, 0.4, 0.5, form="logistic")


def test_affordability_priority_amount() -> None:
    # G = (3.6e9 / 120,000) / 50,000 = 30,000 / 50,000 = 0.6
    assert comp.affordability(3.6e9, 120_000, 50_000) == pytest.approx(0.6, rel=1e-12)
    # IND = 3.6e8 / 3.6e9 = 0.1
    assert comp.priority_index(3.6e8, 3.6e9) == pytest.approx(0.1, rel=1e-12)
    # P = 1e8 * 0.5 * 2 * |-0.25| = 2.5e7, the same for Q = +0.25
    assert comp.amount(1e8, 0.5, 2.0, -0.25) == pytest.approx(2.5e7, rel=1e-12)
    assert comp.amount(1e8, 0.5, 2.0, 0.25) == pytest.approx(2.5e7, rel=1e-12)
    with pytest.raises(InputError, match="gdp_cny"):
        comp.priority_index(1.0, 0.0)


def test_direction_and_sign_mismatch() -> None:
    assert comp.direction("key_ecological") == "receive"
    assert comp.direction("main_agricultural") == "receive"
    assert comp.direction("key_development") == "pay"
    eco, dev = "key_ecological", "key_development"
    roles = pd.Series([eco, eco, dev, dev, eco])
    q = pd.Series([-0.5, 0.2, 3.0, -0.1, 0.0])
    # receiving in surplus ok, receiving in deficit flagged, paying in deficit ok, paying in surplus flagged,
    # balance never flagged
    assert list(comp.role_sign_mismatch(roles, q)) == [False, True, False, True, False]
    assert comp.role_sign_mismatch("key_development", -0.1) is True
    with pytest.raises(InputError, match="role"):
        comp.direction("restricted")


def test_loss_based_discounting() -> None:
    # r = 0: total = n L = 3 * 100 = 300; annual = 300 / 3 = 100
    total, annual = comp.loss_based(100.0, 3, 0.0)
    assert (total, annual) == (300.0, 100.0)
    # r = 0.1: total = 100/1.1 + 100/1.21 + 100/1.331 = 90.9091 + 82.6446 + 75.1315 = 248.6852
    # annual = 248.6852 * 0.1 / (1 - 1/1.331) = 24.86852 / 0.2486852 = 100
    total, annual = comp.loss_based(np.array([100.0, 0.0]), 3, 0.1, "annuity")
    assert total[0] == pytest.approx(100 / 1.1 + 100 / 1.21 + 100 / 1.331, rel=1e-14)
    assert total[0] == pytest.approx(248.6852, abs=1e-4)
    assert annual[0] == pytest.approx(100.0, rel=1e-12)
    assert total[1] == annual[1] == 0.0
    with pytest.raises(InputError, match="esv_loss_cny"):
        comp.loss_based(-1.0, 3, 0.1)
    with pytest.raises(ConfigError, match="horizon_years"):
        comp.loss_based(1.0, 0, 0.1)


def test_opportunity_cost() -> None:
    # (40,000 - 20,000) * 120,000 = 2.4e9; (40,000 - 50,000) < 0 -> 0
    oc = comp.opportunity_cost(np.array([20_000.0, 50_000.0]), np.array([120_000, 600_000]), 40_000.0)
    assert list(oc) == [2.4e9, 0.0]


def _sdam(groups) -> float:
    return sum(float(np.sum((g - g.mean()) ** 2)) for g in groups)


def test_fisher_jenks_levels_hand_case() -> None:
    values = np.array([1, 2, 3, 10, 11, 12, 30, 31, 50, 100], float)
    # five separated clusters {1,2,3} {10,11,12} {30,31} {50} {100}: squared deviations 2 + 2 + 0.5 = 4.5;
    # every other split of the sorted values into 5 runs (C(9, 4) = 126 of them) is worse
    best = min(_sdam(np.split(values, list(cuts))) for cuts in itertools.combinations(range(1, 10), 4))
    assert best == pytest.approx(4.5)
    levels = comp.natural_break_levels(values, 5)
    assert list(levels) == [5, 5, 5, 4, 4, 4, 3, 3, 2, 1]  # level 1 = the highest class
    # fewer distinct values than k: as many levels as values; all equal: one level
    assert list(comp.natural_break_levels(np.array([0.2, 0.2, 0.1]), 5)) == [1, 1, 2]
    assert list(comp.natural_break_levels(np.array([0.3, 0.3]), 5)) == [1, 1]


def test_priority_levels_within_role() -> None:
    ind = pd.Series([0.1, 0.05, 0.1, 0.01, 0.5, 0.2], index=[10, 11, 12, 13, 14, 15])
    roles = pd.Series(["key_ecological"] * 4 + ["key_development"] * 2, index=ind.index)
    rank, level = comp.priority_levels(ind, roles, k=5)
    # key_ecological: 0.1, 0.1 share rank 1; 0.05 rank 3; 0.01 rank 4; three distinct values -> levels 1, 2, 3
    assert list(rank) == [1, 3, 1, 4, 1, 2]
    assert list(level) == [1, 2, 1, 3, 1, 2]


# --------------------------------------------------------------------------------- table


def _table(**kw) -> pd.DataFrame:
    stats = kw.pop("stats", stats3())
    esv = kw.pop("esv", esv3())
    opts = {"variant": "cultivated", "reference_gdp_per_capita": 50_000.0}
    opts.update(kw)
    return comp.compensation_table(esv, stats, footprint(stats, ROUND), **opts)


def test_three_county_table_by_hand() -> None:
    loss = pd.DataFrame({"zone_id": ["A"], "year": [2017], "esv_loss_cny": [1e6]})
    t = _by_zone(_table(loss=loss, horizon_years=3, discount_rate=0.1, r_form="seed"))
    assert list(t.index) == ["A", "B", "C"]
    assert list(t["direction"]) == ["receive", "receive", "pay"]
    assert list(t["overload_q"]) == pytest.approx([-0.5, -0.6, 3.0], rel=1e-12)
    assert list(t["engel_combined"]) == pytest.approx([0.5, 0.25, 0.24], rel=1e-12)
    r = [1 / (1 + math.exp(-0.5)), 1 / (1 + math.exp(-0.25)), 1 / (1 + math.exp(-0.24))]
    # = 0.6224593, 0.5621765, 0.5597136
    assert list(t["r_stage"]) == pytest.approx(r, rel=1e-12)
    assert r == pytest.approx([0.6224593, 0.5621765, 0.5597136], abs=1e-7)
    # G: 30,000 / 50,000 = 0.6; 40,000 / 50,000 = 0.8; 100,000 / 50,000 = 2.0
    assert list(t["gdp_per_capita_cny"]) == pytest.approx([30_000, 40_000, 100_000], rel=1e-12)
    assert list(t["g_affordability"]) == pytest.approx([0.6, 0.8, 2.0], rel=1e-12)
    # IND: 3.6e8/3.6e9 = 0.1; 4.8e8/9.6e9 = 0.05; 6e8/6e10 = 0.01
    assert list(t["ind"]) == pytest.approx([0.1, 0.05, 0.01], rel=1e-12)
    # main_agricultural: A rank 1 level 1, B rank 2 level 2 (two distinct values -> two levels); C alone
    assert list(t["rank"]) == [1, 2, 1]
    assert list(t["level"]) == [1, 2, 1]
    # P = ESV_nm R G |Q|: A 3.6e8 * R * 0.6 * 0.5 = 1.08e8 R; B 4.8e8 * R * 0.8 * 0.6 = 2.304e8 R;
    # C 6e8 * R * 2 * 3 = 3.6e9 R  ->  6.7225604e7, 1.2952547e8, 2.0149690e9 CNY
    expected = [1.08e8 * r[0], 2.304e8 * r[1], 3.6e9 * r[2]]
    assert list(t["amount_cny"]) == pytest.approx(expected, rel=1e-12)
    assert list(t["amount_cny"]) == pytest.approx([6.7225604e7, 1.2952547e8, 2.0149690e9], rel=1e-7)
    assert list(t["amount_1e8cny"]) == pytest.approx([e / 1e8 for e in expected], rel=1e-12)
    assert not t["role_sign_mismatch"].any()
    # loss: A 1e6/yr over 3 years at 10 %: total 1e6 * 2.486852 = 2,486,852; annual 1e6; B, C none -> 0
    assert list(t["loss_cny_per_yr"]) == [1e6, 0.0, 0.0]
    assert t.loc["A", "loss_total_cny"] == pytest.approx(2_486_851.99, abs=0.01)
    # seed 001's reading: the total over the horizon, 2,486,851.99 / 3
    assert list(t["loss_annual_cny"]) == pytest.approx([2_486_851.99 / 3, 0.0, 0.0], rel=1e-8)
    annuity = _by_zone(_table(loss=loss, horizon_years=3, discount_rate=0.1, annual_form="annuity"))
    assert list(annuity["loss_annual_cny"]) == pytest.approx([1e6, 0.0, 0.0], rel=1e-12)
    assert (annuity["annual_form"] == "annuity").all() and (t["annual_form"] == "seed001").all()
    # reference income (population-weighted): (20,000*120,000 + 25,000*240,000 + 50,000*600,000) / 960,000
    #   = (2.4e9 + 6.0e9 + 3.0e10) / 9.6e5 = 40,000; OC = 20,000*120,000 = 2.4e9; 15,000*240,000 = 3.6e9; 0
    assert list(t["reference_income"]) == pytest.approx([40_000] * 3, rel=1e-12)
    assert list(t["opportunity_cost_cny"]) == pytest.approx([2.4e9, 3.6e9, 0.0], rel=1e-12)
    assert set(t["r_form"]) == {"seed"} and set(t["horizon_years"]) == {3}
    assert set(t["discount_rate"]) == {0.1}
    assert list(t.reset_index().columns) == list(comp.TABLE_COLUMNS)


def test_table_options_pearl_and_default_references() -> None:
    t = _by_zone(_table(reference_gdp_per_capita=None, reference_income=30_000.0))
    assert set(t["r_form"]) == {"pearl"}  # the default
    # Pearl: A En 0.5 -> t = 2 - 3 = -1; B En 0.25 -> t = 4 - 3 = 1
    assert t.loc["A", "r_stage"] == pytest.approx(1 / (1 + math.e), rel=1e-12)
    assert t.loc["B", "r_stage"] == pytest.approx(1 / (1 + math.exp(-1)), rel=1e-12)
    # reference GDP per capita = total GDP / total population = (3.6e9 + 9.6e9 + 6e10) / 960,000 = 76,250
    assert list(t["reference_gdp_per_capita"]) == pytest.approx([76_250] * 3, rel=1e-12)
    assert t.loc["A", "g_affordability"] == pytest.approx(30_000 / 76_250, rel=1e-12)
    # OC with reference 30,000: A (30,000 - 20,000) * 120,000 = 1.2e9; B 5,000 * 240,000 = 1.2e9; C 0
    assert list(t["opportunity_cost_cny"]) == pytest.approx([1.2e9, 1.2e9, 0.0], rel=1e-12)
    assert list(t["loss_total_cny"]) == [0.0, 0.0, 0.0]


def test_reference_by_year_from_a_series() -> None:
    # a series by year (the national figure, seed 003 eq. 9): A's G = 30,000 / 59,592 in 2017
    t = _by_zone(_table(reference_gdp_per_capita={2016: 53_783.0, 2017: 59_592.0}))
    assert list(t["reference_gdp_per_capita"]) == [59_592.0] * 3
    assert t.loc["A", "g_affordability"] == pytest.approx(30_000 / 59_592, rel=1e-12)
    with pytest.raises(ConfigError, match="no figure for year 2017 .has 2018-2019."):
        _table(reference_gdp_per_capita={2018: 1.0, 2019: 2.0})
    with pytest.raises(ConfigError, match=r"reference_gdp_per_capita\[2017\]"):
        _table(reference_gdp_per_capita={2017: -1.0})


def test_ranks_within_year_and_role_totals() -> None:
    stats, esv = stats3(), esv3()
    s2, e2 = stats.assign(year=2018), esv.assign(year=2018)
    # 2018: B's non-market ESV doubles to 9.6e8 -> IND 9.6e8 / 9.6e9 = 0.1, a tie with A: both rank 1, level 1
    e2.loc[1, ["esv_nonmarket_cny", "esv_total_cny"]] = [9.6e8, 10.8e8]
    t = _table(stats=pd.concat([stats, s2]), esv=pd.concat([esv, e2]))
    y17, y18 = _by_zone(t[t["year"] == 2017]), _by_zone(t[t["year"] == 2018])
    assert list(y17["rank"]) == [1, 2, 1] and list(y17["level"]) == [1, 2, 1]
    assert list(y18["rank"]) == [1, 1, 1] and list(y18["level"]) == [1, 1, 1]
    totals = comp.role_totals(t)
    for _, row in totals.iterrows():
        sel = t[(t["year"] == row["year"]) & (t["role"] == row["role"])]
        assert row["amount_cny"] == pytest.approx(sel["amount_cny"].sum(), rel=1e-12)
        assert row["counties"] == len(sel)
    ag17 = totals[(totals["year"] == 2017) & (totals["role"] == "main_agricultural")].iloc[0]
    assert ag17["direction"] == "receive" and ag17["counties"] == 2
    assert ag17["amount_cny"] == pytest.approx(y17.loc["A", "amount_cny"] + y17.loc["B", "amount_cny"])
    by_dir = comp.role_totals(t, by="direction")
    assert set(by_dir["direction"]) == {"receive", "pay"} and by_dir["counties"].sum() == 6


def test_mismatch_is_flagged_not_dropped() -> None:
    stats = stats3()
    stats.loc[2, "role"] = "key_ecological"  # C is in deficit (Q = 3) but would receive
    raw = _table(stats=stats)
    t = _by_zone(raw)
    assert list(t["role_sign_mismatch"]) == [False, False, True]
    assert t.loc["C", "direction"] == "receive"
    # Pearl R (the default): C's En 0.24 -> t = 1/0.24 - 3 = 1.1667 -> R = 0.76254
    assert t.loc["C", "amount_cny"] == pytest.approx(3.6e9 / (1 + math.exp(-(1 / 0.24 - 3))), rel=1e-12)
    assert comp.role_totals(raw)["sign_mismatches"].sum() == 1


def test_table_input_errors_name_file_field_value() -> None:
    stats = stats3()
    stats.loc[0, "engel_rural"] = 45.0  # percent instead of a fraction
    with pytest.raises(InputError) as info:
        _table(stats=stats, files=("esv.csv", "stats.csv", "fp", "loss.csv"))
    msg = str(info.value)
    assert "stats.csv: engel_rural = 45.0" in msg and "'A'" in msg
    with pytest.raises(InputError, match="esv.csv: zone_id = 'C'.*no row"):
        _table(esv=esv3().iloc[:2], files=("esv.csv", "stats.csv", "fp", "loss.csv"))
    bad = stats3()
    bad.loc[1, "role"] = "restricted"
    with pytest.raises(InputError, match="role = 'restricted'"):
        _table(stats=bad)
    with pytest.raises(ConfigError, match="r_form"):
        _table(r_form="logistic")
    loss = pd.DataFrame({"zone_id": [1], "year": [2017], "esv_loss_cny": [1e6]})  # int ids, stats has str
    with pytest.raises(InputError, match="loss.csv: zone_id = 1: no row matches"):
        _table(loss=loss, files=("esv.csv", "stats.csv", "fp", "loss.csv"))


@pytest.mark.parametrize("rate", [0.0, 0.03, 0.08, 0.12])
def test_loss_based_annual_amount_is_seed_001_s_reading_at_any_rate(rate: float) -> None:
    """Seed 001 prints a total of 229.5956 and an annual amount of 8.8306 (10^6 CNY): a ratio of
    26.0000, i.e. annual = total / n with n = 26, whatever the discount rate; the annuity reading
    gives that ratio only at r = 0."""
    assert 229.5956 / 8.8306 == pytest.approx(26.0, abs=5e-5)
    total, annual = comp.loss_based(1.0e6, 26, rate)
    assert total / annual == pytest.approx(26.0, rel=1e-12)
    total, annual = comp.loss_based(1.0e6, 26, rate, "annuity")
    assert (total / annual == pytest.approx(26.0, rel=1e-12)) == (rate == 0.0)
    with pytest.raises(ConfigError, match="annual_form"):
        comp.loss_based(1.0, 26, rate, "perpetuity")

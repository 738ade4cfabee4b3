"""Land-use scenarios: the restricted Markov projection worked by hand, its tables, the configuration's
checks and a run (business as usual is the run's own projection)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecodask.science import landuse
from ecodask.science.catalogs import ClassScheme
from ecodask.science.landuse import ClassIndex
from ecodask.science.scenarios import (
    Restriction,
    Scenario,
    project,
    restricted,
    scenario_tables,
)

# One zone, two classes: 100 px each at the start; 20 of class 0 became 1, 10 of class 1 became 0.
# P = [[0.8, 0.2], [0.1, 0.9]], areas at the end [90, 110].
TM = np.array([[[80.0, 20.0], [10.0, 90.0]]])
BAU = Scenario("business_as_usual")
HALF = Scenario("protect_0", (Restriction((0,), None, 0.5),))
NEVER = Scenario("forbid_0", (Restriction((0,), None, 0.0),))


def test_the_projection_worked_by_hand() -> None:
    # business as usual: [90 x 0.8 + 110 x 0.1, 90 x 0.2 + 110 x 0.9] = [83, 117], then [78.1, 121.9]
    assert project(TM, BAU, [1, 2])[:, 0] == pytest.approx(np.array([[83.0, 117.0], [78.1, 121.9]]))
    # class 0 keeps half of what it lost: P' = [[0.9, 0.1], [0.1, 0.9]] -> [92, 108]
    assert project(TM, HALF, [1])[0, 0] == pytest.approx([92.0, 108.0])
    # class 0 loses nothing: P' = [[1, 0], [0.1, 0.9]] -> [101, 99]
    assert project(TM, NEVER, [1])[0, 0] == pytest.approx([101.0, 99.0])


def test_a_restriction_into_some_classes_leaves_the_others() -> None:
    p = np.array([[[0.5, 0.3, 0.2], [0.0, 1.0, 0.0], [0.1, 0.1, 0.8]]])
    r = restricted(p, [Restriction((0,), (2,), 0.25)])
    assert r[0, 0] == pytest.approx([0.5 + 0.15, 0.3, 0.05])
    assert r[0, 1:] == pytest.approx(p[0, 1:])
    with pytest.raises(ValueError, match="factor"):
        Restriction((0,), None, 1.5)


def test_restricted_rows_stay_probabilities_and_business_as_usual_is_the_markov_projection() -> None:
    rng = np.random.default_rng(4)
    tm = rng.integers(0, 50, (5, 4, 4)).astype(float)
    tm[1, 2] = 0.0  # a class absent at the start of zone 1
    rules = [Restriction((0, 2), None, 0.3), Restriction((1,), (3,), 0.0)]
    p = restricted(landuse.transition_probabilities(tm), rules)
    assert p.sum(axis=2) == pytest.approx(np.ones((5, 4)))
    assert (p >= 0).all()
    assert project(tm, BAU, [3])[0] == pytest.approx(landuse.markov_projection(tm, 3))


def _index() -> ClassIndex:
    return ClassIndex(ClassScheme(name="two", title="two", source="hand", nodata=0, mappings={},
                                  classes={1: {"name": "crop", "color": "#FFFF00"},
                                           2: {"name": "forest", "color": "#00FF00"}}))


def test_tables_value_the_areas_and_compare_with_business_as_usual() -> None:
    zones = pd.DataFrame({"zone": [1], "zone_id": ["a"], "zone_name": ["A"]})
    vc = np.array([[10.0, 100.0]])  # one service, CNY/ha/yr of crop and forest
    t = scenario_tables(TM, [BAU, HALF], (2010, 2020), [2030, 2040], vc, ["food"], zones, _index(), 0.09)
    area, esv = t["scenario_area"], t["scenario_esv"]
    row = area[(area["zone_id"] == "a") & (area["scenario"] == "protect_0") & (area["year"] == 2030)]
    assert row["area_ha"].to_numpy() == pytest.approx([92 * 0.09, 108 * 0.09])
    assert row["change_ha"].to_numpy() == pytest.approx([2 * 0.09, -2 * 0.09])
    total = esv[(esv["zone_id"] == "ALL") & (esv["item"] == "total")].set_index(["scenario", "year"])
    bau_2030 = (83 * 10 + 117 * 100) * 0.09
    assert total.loc[("business_as_usual", 2030), "esv_cny"] == pytest.approx(bau_2030)
    base_2020 = (90 * 10 + 110 * 100) * 0.09
    assert total.loc[("business_as_usual", 2030), "change_cny"] == pytest.approx(bau_2030 - base_2020)
    assert total.loc[("protect_0", 2030), "vs_business_as_usual_cny"] == pytest.approx(
        (92 * 10 + 108 * 100) * 0.09 - bau_2030)
    assert (total.loc["business_as_usual", "vs_business_as_usual_cny"] == 0).all()
    rules = t["scenario_rules"]
    assert rules.to_dict("records") == [{"scenario": "protect_0", "rule": 0, "out_of": "crop", "into": "",
                                         "factor": 0.5}]
    with pytest.raises(ValueError, match="multiples"):
        scenario_tables(TM, [BAU], (2010, 2020), [2025], vc, ["food"], zones, _index(), 0.09)
    with pytest.raises(ValueError, match="distinct"):
        scenario_tables(TM, [BAU], (2010, 2020), [2030, 2030], vc, ["food"], zones, _index(), 0.09)


def test_without_business_as_usual_there_is_no_comparison_with_it() -> None:
    zones = pd.DataFrame({"zone": [1], "zone_id": ["a"], "zone_name": ["A"]})
    t = scenario_tables(TM, [HALF], (2010, 2020), [2030], np.array([[10.0, 100.0]]), ["food"], zones,
                        _index(), 0.09)
    assert "vs_business_as_usual_cny" not in t["scenario_esv"]
    assert t["scenario_esv"]["esv_cny"].notna().all()


def test_the_report_leaves_out_the_comparison_without_business_as_usual(tmp_path: Path) -> None:
    from ecodask.present.report import _scenarios

    zones = pd.DataFrame({"zone": [1], "zone_id": ["a"], "zone_name": ["A"]})
    t = scenario_tables(TM, [HALF], (2010, 2020), [2030], np.array([[10.0, 100.0]]), ["food"], zones,
                        _index(), 0.09)
    (tmp_path / "tables").mkdir()
    for name, frame in t.items():
        frame.to_parquet(tmp_path / "tables" / f"{name}.parquet")
    section = "\n".join(_scenarios(tmp_path))
    assert "business_as_usual" not in section and "business as usual" not in section
    assert "<li>protect 0: out of crop into any other class × 0.5</li>" in section
    assert "<td>–</td>" not in section
    assert "data:image/png" not in section  # no chart drawn: none shown


def test_the_region_is_the_sum_of_its_zones() -> None:
    # zone b: crop 50 px all stays, forest 50 px: 25 become crop. P_b = [[1, 0], [0.5, 0.5]], end [75, 25]
    # -> 2030 [75 + 12.5, 12.5] = [87.5, 12.5]. Zone a as above: [83, 117]. Region [170.5, 129.5]
    # (the pooled matrix [[130, 20], [35, 115]] would give [165 x 130/150 + 135 x 35/150, ...] =
    # [174.5, 125.5]).
    tm = np.concatenate([TM, [[[50.0, 0.0], [25.0, 25.0]]]])
    zones = pd.DataFrame({"zone": [1, 2], "zone_id": ["a", "b"], "zone_name": ["A", "B"]})
    vc = np.array([[10.0, 100.0], [0.0, 0.0]])  # a second service of another group, valued at zero
    t = scenario_tables(tm, [BAU], (2010, 2020), [2030], vc, ["food", "climate"], zones, _index(), 1.0,
                        g_of=np.array([0, 1]))  # the run's groups, no adjustment
    area = t["scenario_area"].set_index(["zone_id", "class_name"])["area_ha"]
    assert area.loc["b"].to_numpy() == pytest.approx([87.5, 12.5])
    assert area.loc["ALL"].to_numpy() == pytest.approx([170.5, 129.5])
    esv = t["scenario_esv"].set_index(["zone_id", "item"])
    assert esv.loc[("ALL", "total"), "esv_cny"] == pytest.approx(170.5 * 10 + 129.5 * 100)
    assert esv.loc[("ALL", "total"), "change_cny"] == pytest.approx((170.5 - 165) * 10 + (129.5 - 135) * 100)


def test_the_esv_keeps_the_spatial_adjustment_of_the_last_year() -> None:
    # zone a (TM; end areas 90 and 110 px): effective areas of group 0 (food) 135 and 55 px (mean
    # multipliers 1.5 and 0.5), of group 1 (climate) 90 and 220 px (1 and 2).
    zones = pd.DataFrame({"zone": [1], "zone_id": ["a"], "zone_name": ["A"]})
    vc = np.array([[10.0, 100.0], [1.0, 2.0]])
    effective = np.array([[[135.0, 90.0], [55.0, 220.0]]])  # (zones, classes, groups) px
    t = scenario_tables(TM, [BAU], (2010, 2020), [2030], vc, ["food", "climate"], zones, _index(), 0.09,
                        effective=effective, g_of=np.array([0, 1]))
    esv = t["scenario_esv"].set_index(["zone_id", "item"])
    # observed 2020 (adjusted): food (135 x 10 + 55 x 100) 0.09 = 616.5, climate (90 + 220 x 2) 0.09 = 47.7
    base = esv["esv_cny"] - esv["change_cny"]
    assert base.loc[("a", "food")] == pytest.approx(616.5)
    assert base.loc[("a", "climate")] == pytest.approx(47.7)
    assert base.loc[("ALL", "total")] == pytest.approx(616.5 + 47.7)
    # 2030 areas [83, 117]: food (83 x 1.5 x 10 + 117 x 0.5 x 100) 0.09, climate (83 x 1 + 117 x 2 x 2) 0.09
    assert esv.loc[("a", "food"), "esv_cny"] == pytest.approx(638.55)
    assert esv.loc[("a", "climate"), "esv_cny"] == pytest.approx(49.59)


def test_the_configuration_names_what_is_wrong(tmp_path: Path) -> None:
    from conftest import make_tiny_region
    from helpers import config_error, edit_yaml

    path = make_tiny_region(tmp_path / "r", years=(2000, 2010, 2020))
    classes = "cropland, forest, shrub, grassland, water, snow_ice, barren, impervious, wetland"
    cases = [
        ({"years": [2030, 2035]}, "landcover.scenarios.years = [2035]: each year must be 2020 plus a whole "
         "multiple of the last interval (10 years): 2030, 2040, 2050, ..."),
        ({"years": [2030, 2030]}, "landcover.scenarios.years = [2030, 2030]: 2030 given more than once: "
         "give each year once"),
        ({"years": [2030], "named": {"mine": [{"out_of": ["forrest"], "factor": 0.5}]}},
         f"landcover.scenarios.named.mine.0.out_of = ['forrest']: 'forrest' not a class of scheme 'clcd' "
         f"({classes})"),
        ({"years": [2030], "named": {"mine": [
            {"out_of": ["forest"], "factor": 0},
            {"out_of": ["water"], "into": ["forest", "citty"], "factor": 0}]}},
         f"landcover.scenarios.named.mine.1.into = ['forest', 'citty']: 'citty' not a class of scheme 'clcd' "
         f"({classes})"),
    ]
    for scenarios, line in cases:
        edit_yaml(path, lambda d, sc=scenarios: d["landcover"].update(scenarios=sc))
        err = config_error(path)
        assert [str(p) for p in err.problems] == [f"{path}: {line}"]


@pytest.mark.usefixtures("dask_threads")
def test_a_run_with_an_adjustment_starts_its_scenarios_at_the_observed_esv(tmp_path: Path) -> None:
    """Business as usual is the run's own projection; with a spatial adjustment every scenario's ESV
    in the last year (its ESV less its change) is the observed ESV, per zone and for the region; the
    region is the sum of the zones; the report's section shows the chart and each scenario's rules."""
    from ecodask.io.layout import RunFolder
    from ecodask.present.report import _DATA, _scenarios
    from ecodask.run.config import load_config

    from conftest import make_tiny_region
    from helpers import edit_yaml, run_stages

    path = make_tiny_region(tmp_path / "r", years=(2000, 2010, 2020))

    def configure(d: dict) -> None:
        d["landcover"]["scenarios"] = {"years": [2030, 2040]}
        d["esv"]["adjustment"] = {"regulating": "elevation"}

    edit_yaml(path, configure)
    cfg = load_config(path)
    run_stages(cfg, "ingest", "transitions_esv")
    out = RunFolder(cfg.output)
    area, proj = out.table("scenario_area"), out.table("projection")
    assert list(area["scenario"].unique()) == ["business_as_usual", "ecological_protection",
                                               "cropland_protection"]  # the scheme's own three
    bau = area[(area["scenario"] == "business_as_usual") & (area["year"] == 2030)]
    keys = ["zone_id", "class_code"]
    merged = bau.merge(proj, on=keys, suffixes=("", "_projection"))
    assert len(merged) == len(proj)
    assert merged["area_ha"].to_numpy() == pytest.approx(merged["area_ha_projection"].to_numpy())
    eco = area[(area["scenario"] == "ecological_protection") & (area["zone_id"] == "ALL")
               & (area["year"] == 2040)].set_index("class_name")["area_ha"]
    base = area[(area["scenario"] == "business_as_usual") & (area["zone_id"] == "ALL")
                & (area["year"] == 2040)].set_index("class_name")["area_ha"]
    assert eco.sum() == pytest.approx(base.sum())  # restrictions move area, never make it
    zones_only = area[area["zone_id"] != "ALL"].groupby(["scenario", "year", "class_code"])["area_ha"].sum()
    region = area[area["zone_id"] == "ALL"].set_index(["scenario", "year", "class_code"])["area_ha"]
    assert region.sort_index().to_numpy() == pytest.approx(zones_only.sort_index().to_numpy())

    observed = out.table("esv_by_service")
    observed = observed[(observed["year"] == 2020) & (observed["level"] == "service")]
    observed = observed.set_index(["zone_id", "item"])["esv_cny"]
    esv = out.table("scenario_esv")
    assert {"vs_business_as_usual_cny"} <= set(esv.columns)
    esv = esv[esv["item"] != "total"]
    start = (esv["esv_cny"] - esv["change_cny"]).to_numpy()
    expected = observed.loc[list(zip(esv["zone_id"], esv["item"], strict=True))].to_numpy()
    assert start == pytest.approx(expected, rel=1e-9)
    # the adjustment matters: a regulating service's observed ESV is not its plain areas' value
    from ecodask.io.catalogs import load_class_scheme, load_esv_table
    from ecodask.science.esv import coefficient_matrix

    scheme, table = load_class_scheme("clcd"), load_esv_table("xinzhou_2023")
    f = next(k for k, sv in enumerate(table.services) if sv.group == "regulating")
    vc = coefficient_matrix(table, scheme, ClassIndex(scheme), None)[f]
    ca = out.table("class_area")
    for zone in ("420101", "420102"):  # the multiplier's mean over both zones is 1, not over each
        rows = ca[(ca["zone_id"] == zone) & (ca["year"] == 2020)].sort_values("class_code")
        plain = float(rows["area_ha"].to_numpy() @ vc)
        assert abs(observed.loc[(zone, table.service_names[f])] / plain - 1) > 0.05

    chart = out.figures / "scenarios.png"
    chart.parent.mkdir(parents=True, exist_ok=True)
    chart.write_bytes(b"png")
    section = "\n".join(_scenarios(cfg.output))
    assert f"{_DATA}{chart}{_DATA}" in section  # the chart's data goes here
    assert "<li>business as usual: no restriction (the observed transitions)</li>" in section
    assert "<li>cropland protection: out of cropland into any other class × 0.5</li>" in section
    assert ("<li>ecological protection: out of forest, shrub, grassland, water, wetland into any other "
            "class × 0.5</li>") in section
    assert "<th>scenario</th>" not in section.split("Class areas")[1]  # no stray header row

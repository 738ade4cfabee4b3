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
    tm = landuse.with_region(TM, axis=0)  # the zone and the region
    vc = np.array([[10.0, 100.0]])  # one service, CNY/ha/yr of crop and forest
    t = scenario_tables(tm, [BAU, HALF], (2010, 2020), [2030, 2040], vc, ["food"], zones, _index(), 0.09)
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
    with pytest.raises(ValueError, match="multiples"):
        scenario_tables(tm, [BAU], (2010, 2020), [2025], vc, ["food"], zones, _index(), 0.09)


def test_the_configuration_names_what_is_wrong(tmp_path: Path) -> None:
    from conftest import make_tiny_region
    from helpers import config_error, edit_yaml

    path = make_tiny_region(tmp_path / "r", years=(2000, 2010, 2020))
    edit_yaml(path, lambda d: d["landcover"].update(scenarios={"years": [2030, 2035]}))
    err = config_error(path)
    assert "landcover.scenarios" in str(err) and "[2035]" in str(err)
    edit_yaml(path, lambda d: d["landcover"].update(scenarios={
        "years": [2030], "named": {"mine": [{"out_of": ["forrest"], "factor": 0.5}]}}))
    err = config_error(path)
    assert "landcover.scenarios.named.mine" in str(err) and "forrest" in str(err)


@pytest.mark.usefixtures("dask_threads")
def test_a_runs_business_as_usual_is_its_own_projection(tmp_path: Path) -> None:
    from ecodask.io.layout import RunFolder
    from ecodask.run.config import load_config

    from conftest import make_tiny_region
    from helpers import edit_yaml, run_stages

    path = make_tiny_region(tmp_path / "r", years=(2000, 2010, 2020))
    edit_yaml(path, lambda d: d["landcover"].update(scenarios={"years": [2030, 2040]}))
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

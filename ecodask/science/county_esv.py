"""County ESV for compensation (methods.md sections 7-8), two variants (``variant`` column):

- ``all_land`` (seed 002): total, market and non-market ESV of every land class, from a run's
  ``esv_by_service`` table (the 30 m grids summed per county);
- ``cultivated`` (seed 003): cultivated land only, ``ESV = F × Ea × S`` with F the summed
  equivalent factors of the cultivated-land table (market 1.39, non-market 6.51), Ea each
  county's standard equivalent from its crops (eq. 4) and S its cultivated area (ha) from the
  statistics;

and the ESV a county lost through land-use transitions between consecutive years (the gross loss:
the sum of the negative ESV changes of the county's transitions, CNY/yr, booked in the later
year), which the loss-based amount values.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ecodask.errors import InputError, problem
from ecodask.science.catalogs import EsvTable
from ecodask.science.esv import standard_equivalent_from_crops
from ecodask.science.landuse import REGION_ID, TOTAL

#: The columns of a run's tables these functions read.
ESV_BY_SERVICE_COLUMNS = ("zone_id", "year", "level", "item", "esv_cny")
TRANSITIONS_COLUMNS = ("zone_id", "year_from", "year_to", "esv_change_cny")


def county_esv_all_land(esv_by_service: pd.DataFrame) -> pd.DataFrame:
    """zone_id, year, esv_total_cny, esv_market_cny, esv_nonmarket_cny (CNY/yr) per county from an
    ``esv_by_service`` table (the whole-region rows left out)."""
    t = esv_by_service.assign(zone_id=esv_by_service["zone_id"].astype(str))
    t = t[t["zone_id"] != REGION_ID]
    total = t[t["level"] == TOTAL].set_index(["zone_id", "year"])["esv_cny"]
    market = t[t["level"] == "market"].pivot_table(index=["zone_id", "year"], columns="item",
                                                   values="esv_cny", aggfunc="sum")
    out = pd.DataFrame({"esv_total_cny": total, "esv_market_cny": market["market"],
                        "esv_nonmarket_cny": market["non_market"]})
    return out.reset_index()


def county_esv_cultivated(stats: pd.DataFrame, table: EsvTable, source: str | Path) -> pd.DataFrame:
    """Cultivated-land ESV per county and year (seed 003): ``F × Ea × S``, CNY/yr, with F the
    table's summed equivalent factors (market, non-market), Ea = (1/7) Σ m_i v_i q_i / M of the
    county's crops (CNY/ha/yr) and S = ``cultivated_area_ha``."""
    if table.kind != "equivalent":
        raise InputError([problem(table.name, "kind", table.kind, "the cultivated variant needs an "
                                  "equivalent-factor table")])
    cls = next(iter(table.classes))  # the cultivated class (first class of the table)
    f_market = sum(table.values[s.name][cls] for s in table.services if table.is_market(s))
    f_nonmarket = sum(table.values[s.name][cls] for s in table.services if not table.is_market(s))
    rows = []
    for (zone_id, year), g in stats.groupby(["zone_id", "year"], sort=False):
        ea = standard_equivalent_from_crops(g, int(year), source)
        s = float(g["cultivated_area_ha"].iloc[0])
        rows.append({"zone_id": zone_id, "year": int(year), "ea_cny_per_ha": ea,
                     "esv_market_cny": f_market * ea * s, "esv_nonmarket_cny": f_nonmarket * ea * s})
    out = pd.DataFrame(rows)
    out["esv_total_cny"] = out["esv_market_cny"] + out["esv_nonmarket_cny"]
    return out


def county_loss(transitions: pd.DataFrame, years: list[int]) -> pd.DataFrame:
    """zone_id, year, esv_loss_cny: ESV lost through transitions between consecutive years (CNY/yr,
    >= 0), booked in the later year."""
    consecutive = set(zip(years[:-1], years[1:], strict=True))
    t = transitions.assign(zone_id=transitions["zone_id"].astype(str))
    t = t[[(a, b) in consecutive for a, b in zip(t["year_from"], t["year_to"], strict=True)]]
    t = t[t["zone_id"] != REGION_ID]
    lost = (-t["esv_change_cny"].clip(upper=0.0)).groupby([t["zone_id"], t["year_to"]]).sum()
    return lost.rename("esv_loss_cny").rename_axis(["zone_id", "year"]).reset_index()

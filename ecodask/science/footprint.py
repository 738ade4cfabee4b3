"""Cultivated-land ecological footprint, capacity and overload index (methods.md section 7, seed 003).

Pure pandas/numpy; one row per county and year. Units: population N in persons, cultivated area
in ha, footprint and capacity in global hectares (gha), the overload index Q dimensionless.

- ``EF = N * r * sum_i c_i / p_i`` (seed 003 eq. 1): c_i per-capita consumption (kg/person/yr),
  p_i world average yield (kg/ha), r the equivalence factor (gha/ha).
- ``EC = N * b * r * y * (1 - reserve) = A_cult * r * y * (1 - reserve)`` (eq. 2, less the
  biodiversity reserve): b per-capita cultivated area, so ``N * b`` is the county's cultivated
  area A_cult (ha); y the yield factor.
- ``Q = (EF - EC) / EC`` (eq. 10) with the formula's sign: Q > 0 the footprint exceeds the
  capacity (deficit), Q < 0 surplus, Q = 0 balance. (The seed's prose reads the sign the other
  way round; methods.md keeps the formula's.)

A county with no cultivated land (EC = 0) has no overload index: it is an :class:`InputError`
naming the county, not an infinite or missing Q that would flow silently into the amounts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ecodask.errors import InputError, Problem, problem
from ecodask.science.catalogs import FootprintTable

FOOTPRINT_INPUT = ("zone_id", "year", "population", "cultivated_area_ha")
FOOTPRINT_COLUMNS = ("zone_id", "year", "population", "cultivated_area_ha", "ef_gha", "ec_gha",
                     "overload_q", "ef_gha_per_capita", "ec_gha_per_capita", "footprint_table")


def _bad_rows(stats: pd.DataFrame, col: str, ok: np.ndarray, file: str | Path, why: str) -> list[Problem]:
    out = []
    for i in np.flatnonzero(~ok):
        z, y, v = (stats[c].iloc[i] for c in ("zone_id", "year", col))
        z, y, v = (x.item() if isinstance(x, np.generic) else x for x in (z, y, v))
        out.append(problem(file, col, v, f"zone {z!r}, year {y}: {why}"))
    return out


def footprint(stats: pd.DataFrame, table: FootprintTable, file: str | Path = "county_stats") -> pd.DataFrame:
    """Footprint EF (gha), capacity EC (gha) and overload index Q of each county and year.

    ``stats``: columns ``zone_id``, ``year``, ``population`` (persons, > 0) and
    ``cultivated_area_ha`` (ha, > 0); other columns are ignored. ``file`` names the source in
    errors. Returns the columns of :data:`FOOTPRINT_COLUMNS`, in the rows' order:
    ``ef_gha = N r sum_i c_i/p_i``, ``ec_gha = A_cult r y (1 - reserve)``,
    ``overload_q = (EF - EC) / EC``, and the per-capita ``ef_gha_per_capita = EF / N`` and
    ``ec_gha_per_capita = EC / N`` (gha/person).

    Raises :class:`InputError` for a missing column, a duplicate (zone_id, year), a population
    that is not a finite number > 0, or a cultivated area that is not a finite number > 0 (a
    county without cultivated land has EC = 0 and no overload index).
    """
    missing = [c for c in FOOTPRINT_INPUT if c not in stats.columns]
    if missing:
        raise InputError([problem(file, c, None, "column missing (needed for the footprint)")
                          for c in missing])
    dup = stats.duplicated(["zone_id", "year"], keep=False).to_numpy()
    problems = _bad_rows(stats, "zone_id", ~dup, file, "duplicate county and year")
    n = pd.to_numeric(stats["population"], errors="coerce").to_numpy(np.float64)
    a = pd.to_numeric(stats["cultivated_area_ha"], errors="coerce").to_numpy(np.float64)
    with np.errstate(invalid="ignore"):
        problems += _bad_rows(stats, "population", np.isfinite(n) & (n > 0), file, "must be a number > 0")
        problems += _bad_rows(stats, "cultivated_area_ha", np.isfinite(a) & (a > 0), file,
                              "must be a number > 0 (no cultivated land: EC = 0, no overload index Q)")
    if problems:
        raise InputError(problems)
    r, y, reserve = table.equivalence_factor, table.yield_factor, table.biodiversity_reserve
    ef_pc = r * table.ha_per_capita  # gha/person
    ef = n * ef_pc
    ec = a * r * y * (1.0 - reserve)
    return pd.DataFrame({
        "zone_id": stats["zone_id"].to_numpy(),
        "year": stats["year"].to_numpy(),
        "population": n,
        "cultivated_area_ha": a,
        "ef_gha": ef,
        "ec_gha": ec,
        "overload_q": (ef - ec) / ec,
        "ef_gha_per_capita": np.full(len(stats), ef_pc),
        "ec_gha_per_capita": ec / n,
        "footprint_table": table.name,
    })

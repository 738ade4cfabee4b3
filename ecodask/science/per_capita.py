"""ESV per capita and per unit GDP per zone and year.

``esv_per_capita_cny = ESV / population`` (CNY per person and year) and ``esv_per_gdp = ESV / GDP``
(CNY of ESV a year per CNY of GDP a year), from each source of population and GDP the run has: the
county statistics (persons and CNY per zone and year) and drivers that are densities (persons/km²,
CNY/km²) summed over each zone's analysis cells (the zone of a cell's centre pixel), the same for
every year: a driver's ratios change only with ESV, so their trend is the ESV's, not a per-capita
trend. The region's row sums its zones' where every zone has a value. A source without a single
population or GDP figure (a statistics file with neither column) is left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ecodask.science.landuse import TOTAL, tile_text, zone_labels

COLUMNS = ["zone_id", "zone_name", "year", "source", "esv_cny", "population", "esv_per_capita_cny", "gdp_cny",
           "esv_per_gdp"]


def with_region_total(a: np.ndarray) -> np.ndarray:
    """(..., zones) -> (..., zones + 1): the region's total appended, NaN unless every zone has one."""
    a = np.asarray(a, dtype=np.float64)
    total = np.where(np.isfinite(a).all(axis=-1), np.nansum(a, axis=-1), np.nan)
    return np.concatenate([a, total[..., None]], axis=-1)


def zone_esv(esv_by_service: pd.DataFrame, zones: pd.DataFrame, years: Sequence[int]) -> np.ndarray:
    """Total ESV (years, zones + region), CNY/yr, from the ``esv_by_service`` table."""
    ids, _ = zone_labels(zones)
    total = esv_by_service[esv_by_service["level"] == TOTAL].pivot(index="year", columns="zone_id",
                                                                   values="esv_cny")
    return total.reindex(index=list(years), columns=list(ids)).to_numpy(np.float64)


def stats_source(stats: pd.DataFrame, zones: pd.DataFrame,
                 years: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(population, GDP), each (years, zones + region), from ``stats`` (zone_id, year, population,
    gdp_cny: :func:`ecodask.io.county_stats.population_and_gdp`)."""
    ids, _ = zone_labels(zones)
    pop, gdp = (with_region_total(stats.pivot(index="year", columns="zone_id", values=c)
                                  .reindex(index=list(years), columns=list(ids)[:-1]).to_numpy(np.float64))
                for c in ("population", "gdp_cny"))
    return pop, gdp


def driver_source(per_zone: np.ndarray, density_of: str, n_years: int) -> tuple[np.ndarray, np.ndarray]:
    """(population, GDP), each (years, zones + region), from a density driver's total per zone
    (``per_zone``: zones in zone order; persons or CNY/yr), the same every year."""
    totals = np.broadcast_to(with_region_total(per_zone), (n_years, len(per_zone) + 1))
    nothing = np.full(totals.shape, np.nan)
    return (np.array(totals), nothing) if density_of == "population" else (nothing, np.array(totals))


def with_values(sources: Mapping[str, tuple[np.ndarray, np.ndarray]]
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The ``sources`` (name -> (population, GDP)) with at least one finite population or GDP figure."""
    return {name: (pop, gdp) for name, (pop, gdp) in sources.items()
            if np.isfinite(pop).any() or np.isfinite(gdp).any()}


def per_capita_table(esv: np.ndarray, years: Sequence[int], zones: pd.DataFrame,
                     sources: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """``esv``: (years, zones + region) total ESV, CNY/yr; ``sources``: name -> (population, GDP), each
    (years, zones + region) in persons and CNY/yr (NaN: unknown)."""
    ids, names = zone_labels(zones)
    n_t, n_z = esv.shape
    parts = []
    for source, (pop, gdp) in sources.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            per_person = np.where(pop > 0, esv / pop, np.nan)
            per_gdp = np.where(gdp > 0, esv / gdp, np.nan)
        parts.append(pd.DataFrame({
            "zone_id": tile_text(ids, n_t), "zone_name": tile_text(names, n_t),
            "year": np.repeat(np.asarray(years, dtype=np.int64), n_z), "source": source,
            "esv_cny": esv.reshape(-1), "population": pop.reshape(-1),
            "esv_per_capita_cny": per_person.reshape(-1),
            "gdp_cny": gdp.reshape(-1), "esv_per_gdp": per_gdp.reshape(-1),
        }))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)



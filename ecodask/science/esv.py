"""Ecosystem service value by the equivalent-factor method (methods.md sections 2 and 3).

Coefficients ``VC[f, k]`` (CNY/ha/yr) come from a catalog table, either directly (``kind:
value``) or as equivalent factors times the standard equivalent ``Ea`` (CNY/ha/yr). County
tables are small matrix products of class areas (ha) and coefficients; with a spatial
adjustment the areas are replaced by "effective areas" (the multiplier summed over a class's
pixels, times the pixel area), which keeps them exact.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ecodask.errors import InputError, problem
from ecodask.kernels.draws import summarize_draws
from ecodask.science import landuse
from ecodask.science.catalogs import ClassScheme, EsvTable
from ecodask.science.intensity_tables import intensity_tables
from ecodask.science.landuse import ClassIndex, repeat_text, text, tile_text, zone_labels
from ecodask.science.scenarios import Scenario, scenario_tables
from ecodask.science.tradeoffs import service_tradeoffs
from ecodask.science.uncertainty import Summarizer, UncertaintySpec, area_adjusted_tables, uncertainty_tables

GROUPS = ("provisioning", "regulating", "supporting", "cultural")
#: 1 CNY in units of 10^8 CNY, the unit the seeds' tables use.
E8 = 1e-8

CROP_SUFFIXES = ("_sown_ha", "_price_cny_per_kg", "_yield_kg_per_ha")


def standard_equivalent_from_crops(
    stats: pd.DataFrame, year: int, file: str | Path = "county_stats"
) -> float:
    """Standard equivalent ``Ea = (1/7) sum_i m_i v_i q_i / M`` (CNY/ha/yr), seed 003 eq. (4).

    ``stats``: a table with a ``year`` column and, for each crop i, the columns
    ``<crop>_sown_ha`` (m_i, ha), ``<crop>_price_cny_per_kg`` (v_i) and ``<crop>_yield_kg_per_ha``
    (q_i); all rows of ``year`` (e.g. every county) are summed. ``M`` is the total sown area.
    """
    cols = set(stats.columns)
    crops = sorted(c[: -len("_sown_ha")] for c in cols if c.endswith("_sown_ha")
                   and all(c[: -len("_sown_ha")] + s in cols for s in CROP_SUFFIXES))
    if not crops:
        raise InputError([problem(file, "columns", None, "no crop columns <crop>_sown_ha, <crop>_price_"
                                  "cny_per_kg, <crop>_yield_kg_per_ha for the standard equivalent")])
    if "year" not in cols:
        raise InputError([problem(file, "year", None, "column missing")])
    rows = stats[stats["year"] == year]
    if rows.empty:
        raise InputError([problem(file, "year", year, "no crop data for this land-cover year")])
    problems = []
    num = sown = 0.0
    for crop in crops:
        vals = [rows[crop + s].to_numpy(dtype=np.float64) for s in CROP_SUFFIXES]
        for s, v in zip(CROP_SUFFIXES, vals, strict=True):
            bad = ~np.isfinite(v) | (v < 0)
            if bad.any():
                problems.append(problem(file, crop + s, v[bad][0], f"year {year}: must be a number >= 0"))
        m, price, q = vals
        num += float(np.sum(m * price * q))
        sown += float(np.sum(m))
    if not problems and sown <= 0:
        problems.append(problem(file, "*_sown_ha", 0, f"year {year}: total sown area is zero"))
    if problems:
        raise InputError(problems)
    return num / sown / 7.0


def coefficient_matrix(
    table: EsvTable, scheme: ClassScheme, index: ClassIndex, ea: float | None
) -> np.ndarray:
    """``VC[f, k]`` in CNY/ha/yr: services in table order x the scheme's known codes in ``index``.

    Codes are mapped onto the table's classes by the scheme's mapping for ``table.class_set``.
    ``ea`` (CNY/ha/yr) multiplies equivalent-factor tables and must be None for value tables.
    """
    if (table.kind == "equivalent") != (ea is not None):
        need = "a value" if table.kind == "equivalent" else "None"
        raise ValueError(f"table {table.name!r} of kind {table.kind!r} needs ea={need}")
    mapping = scheme.mapping_to(table.class_set)
    factor = 1.0 if ea is None else float(ea)
    return np.array([[table.values[s][mapping[c]] * factor for c in index.codes]
                     for s in table.service_names])


def service_groups(table: EsvTable) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The groups present in the table (in GROUPS order), each service's group index, market flags."""
    groups = [g for g in GROUPS if any(s.group == g for s in table.services)]
    g_of = np.array([groups.index(s.group) for s in table.services])
    market = np.array([table.is_market(s) for s in table.services])
    return groups, g_of, market


def pixel_values(vc: np.ndarray, g_of: np.ndarray, n_groups: int, index: ClassIndex,
                 pixel_area_ha: float) -> np.ndarray:
    """Per-pixel ESV lookup (years, groups, 256) in CNY/yr for the ESV kernels.

    ``vc``: (years, services, n) CNY/ha/yr. Value of group g for code c: pixel area x the sum of
    the group's coefficients of c's class. No-data and unknown codes are NaN.
    """
    n_years = vc.shape[0]
    out = np.full((n_years, n_groups, 256), np.nan)
    for g in range(n_groups):
        out[:, g, index.codes] = vc[:, g_of == g, :].sum(axis=1) * pixel_area_ha
    return out


def cell_density(esv: np.ndarray, npix: np.ndarray, pixel_area_ha: float) -> np.ndarray:
    """ESV density of analysis cells, CNY/ha/yr: a cell's ESV (CNY/yr) over the area of its valued
    pixels (``npix`` x ``pixel_area_ha``, ha); NaN where no pixel is valued (methods.md section 5:
    the driver analysis's y)."""
    npix = np.asarray(npix)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(npix > 0, np.asarray(esv, np.float64) / (npix * float(pixel_area_ha)), np.nan)


def esv_by_service(vc: np.ndarray, eff_area: np.ndarray, g_of: np.ndarray) -> np.ndarray:
    """``ESV[t, z, f] = sum_k VC[t, f, k] * A[t, z, k, g(f)]`` in CNY/yr.

    ``vc``: (years, services, n) CNY/ha/yr; ``eff_area``: (years, zones, n, groups) ha (class
    areas repeated over groups when there is no spatial adjustment).
    """
    a = eff_area[..., g_of]  # (t, z, n, f)
    return np.einsum("tfk,tzkf->tzf", vc, a)


def esv_table(esv: np.ndarray, years: Sequence[int], zones: pd.DataFrame, table: EsvTable) -> pd.DataFrame:
    """ESV per zone (and region) and year, by service, group, market / non-market and in total.

    ``esv``: (years, zones + region, services) CNY/yr. Columns: zone_id, zone_name, year, level
    (service, group, market, total), item, group, esv_cny, esv_1e8cny; the labels are categoricals
    (written as their text, :func:`ecodask.io.tables.write_table`). Rows by zone (the region last),
    then year, then item.
    """
    groups, g_of, market = service_groups(table)
    names = table.service_names
    items: list[tuple[str, str, str, np.ndarray]] = []
    for f, s in enumerate(names):
        items.append(("service", s, groups[g_of[f]], esv[:, :, f]))
    for g, name in enumerate(groups):
        items.append(("group", name, name, esv[:, :, g_of == g].sum(axis=2)))
    items.append(("market", "market", "", esv[:, :, market].sum(axis=2)))
    items.append(("market", "non_market", "", esv[:, :, ~market].sum(axis=2)))
    items.append((landuse.TOTAL, landuse.TOTAL, "", esv.sum(axis=2)))
    ids, znames = zone_labels(zones)
    n_t, n_z = esv.shape[:2]
    n_i = len(items)
    # by zone (in zone order, the region last), then year, then the items in the order above: made in
    # that order (an item's label a code per row, its values laid out once)
    values = np.empty((n_z, n_t, n_i))
    for i, (*_, v) in enumerate(items):
        values[:, :, i] = v.T
    each = n_t * n_i
    out = pd.DataFrame({
        "zone_id": repeat_text(ids, each), "zone_name": repeat_text(znames, each),
        "year": np.tile(np.repeat(np.asarray(years, dtype=np.int64), n_i), n_z),
        **{col: tile_text(text([it[k] for it in items]), n_t * n_z)
           for k, col in enumerate(("level", "item", "group"))},
        "esv_cny": values.reshape(-1)})
    del values
    out["esv_1e8cny"] = out["esv_cny"] * E8
    return out


def esv_change_table(
    table: pd.DataFrame, pairs: Sequence[tuple[int, int]], years: Sequence[int]
) -> pd.DataFrame:
    """Change ``ESV_t2 - ESV_t1`` (CNY/yr and 10^8 CNY/yr) and rate ``change / ESV_t1 x 100`` (%)
    for every row of :func:`esv_table` and every pair of years (seed 002 App. A.1); the rate is NaN
    where ``ESV_t1`` is 0. Rows pair by pair, each in the order of the table's rows of ``t1``.

    Every year of :func:`esv_table` holds the same rows (zone, level, item, group) in the same
    order, so the pairs are taken by position, all at once (a pandas alignment per pair took 1.03
    of the flow's CPU s at 39 years for 28 counties, this 0.07 s)."""
    keys = ["zone_id", "zone_name", "level", "item", "group"]
    cols = ["zone_id", "zone_name", "year_from", "year_to", *keys[2:], "esv_from_cny", "esv_to_cny",
            "change_cny", "change_1e8cny", "rate_pct"]
    pairs = [(a, b) for a, b in pairs if a != b]
    if not pairs:
        return pd.DataFrame(columns=cols)
    year = table["year"].to_numpy()
    rows = {y: np.flatnonzero(year == y) for y in {years[i] for pair in pairs for i in pair}}
    first = table.iloc[rows[years[pairs[0][0]]]][keys].reset_index(drop=True)
    for y, at in rows.items():
        if not first.equals(table.iloc[at][keys].reset_index(drop=True)):
            raise ValueError(f"esv_change_table: the rows of year {y} differ from those of year "
                             f"{years[pairs[0][0]]}")
    n = len(first)
    src = np.concatenate([rows[years[a]] for a, _ in pairs])
    dst = np.concatenate([rows[years[b]] for _, b in pairs])
    esv = table["esv_cny"].to_numpy(dtype=np.float64)
    t1, t2 = esv[src], esv[dst]
    change = t2 - t1
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(t1 != 0, change / np.where(t1 != 0, t1, np.nan), np.nan) * 100.0
    out = table.iloc[src][keys].reset_index(drop=True)
    out.insert(2, "year_from", np.repeat(np.asarray([years[a] for a, _ in pairs], dtype=np.int64), n))
    out.insert(3, "year_to", np.repeat(np.asarray([years[b] for _, b in pairs], dtype=np.int64), n))
    out["esv_from_cny"] = t1
    out["esv_to_cny"] = t2
    out["change_cny"] = change
    out["change_1e8cny"] = change * E8
    out["rate_pct"] = rate
    return out[cols]


def sensitivity_table(
    vc: np.ndarray,
    eff_area: np.ndarray,
    g_of: np.ndarray,
    years: Sequence[int],
    zones: pd.DataFrame,
    table: EsvTable,
    scheme: ClassScheme,
    index: ClassIndex,
    change: float = 0.5,
) -> pd.DataFrame:
    """Sensitivity coefficients (Kreuter et al. 2001; seed 002 §3.4) per zone, year, class and direction.

    For table class c, every coefficient of c is scaled by (1 +/- ``change``):
    ``CS = |((ESV_j - ESV_i) / ESV_i) / ((VC_jc - VC_ic) / VC_ic)|``. NaN where the class has no
    value (all coefficients zero) or the zone has no ESV.
    """
    mapping = scheme.mapping_to(table.class_set)
    base = esv_by_service(vc, eff_area, g_of).sum(axis=2)  # (t, z)
    ids, znames = zone_labels(zones)
    n_t, n_z = base.shape
    parts = []
    for cls in table.classes:
        members = np.array([mapping[c] == cls for c in index.codes])
        vc_cls = vc[:, :, members].sum(axis=(1, 2))  # (t,) total coefficient mass of the class
        for sign in (+1, -1):
            d = sign * change
            scaled = vc.copy()
            scaled[:, :, members] *= 1.0 + d
            esv_j = esv_by_service(scaled, eff_area, g_of).sum(axis=2)
            vc_i = vc_cls[:, None]
            vc_j = vc_i * (1.0 + d)
            with np.errstate(divide="ignore", invalid="ignore"):
                rel_esv = np.where(base != 0, (esv_j - base) / np.where(base != 0, base, 1.0), np.nan)
                rel_vc = np.where(vc_i != 0, (vc_j - vc_i) / np.where(vc_i != 0, vc_i, 1.0), np.nan)
                cs = np.abs(rel_esv / rel_vc)
            parts.append(pd.DataFrame({
                "zone_id": tile_text(ids, n_t), "zone_name": tile_text(znames, n_t),
                "year": np.repeat(np.asarray(years, dtype=np.int64), n_z),
                "esv_class": cls, "direction": f"{sign * change * 100:+.0f}%",
                "esv_cny": base.reshape(-1), "esv_adjusted_cny": esv_j.reshape(-1),
                "cs": np.broadcast_to(cs, (n_t, n_z)).reshape(-1),
            }))
    return pd.concat(parts, ignore_index=True)


def projection_table(
    area_ha: np.ndarray,
    vc_total: np.ndarray,
    base: tuple[int, int],
    year: int,
    zones: pd.DataFrame,
    index: ClassIndex,
    observed_ha: np.ndarray,
) -> pd.DataFrame:
    """Projected class areas (ha) and the ESV they imply (CNY/yr, at the last year's coefficients).

    ``area_ha``: (zones + region, n) projected; ``observed_ha``: the same at the base pair's end;
    ``vc_total``: (n,) CNY/ha/yr summed over services.
    """
    ids, znames = zone_labels(zones)
    n_z, n = area_ha.shape
    return pd.DataFrame({
        "zone_id": repeat_text(ids, n), "zone_name": repeat_text(znames, n),
        "base_from": base[0], "base_to": base[1], "year": year,
        "class_code": np.tile(index.codes, n_z), "class_name": tile_text(text(index.names), n_z),
        "area_ha": area_ha.reshape(-1), "change_ha": (area_ha - observed_ha).reshape(-1),
        "esv_cny": (area_ha * vc_total[None, :]).reshape(-1),
    })


@dataclass(frozen=True)
class EsvModel:
    """The ESV model of a run: a class scheme's codes valued by an ESV table, per year.

    ``vc``: (years, services, n) coefficients in CNY/ha/yr, services in table order, classes as
    ``index`` orders the scheme's codes; ``pixel_area_ha``: the area of one pixel, ha.
    ``projection_year``: the Markov projection's year (default: the last year plus the last interval);
    ``intensity``: with the intensity-analysis tables (:mod:`ecodask.science.intensity_tables`);
    ``uncertainty``: with the Monte Carlo's tables (:mod:`ecodask.science.uncertainty`);
    ``scenarios`` projected to ``scenario_years`` (:mod:`ecodask.science.scenarios`). Built by
    :meth:`build` from Ea (CNY/ha/yr) per year (None for value tables).
    """

    scheme: ClassScheme
    table: EsvTable
    years: tuple[int, ...]
    vc: np.ndarray
    pixel_area_ha: float
    projection_year: int | None = None
    intensity: bool = False
    uncertainty: UncertaintySpec | None = None
    scenarios: tuple[Scenario, ...] = ()
    scenario_years: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        n = ClassIndex(self.scheme).n
        if self.vc.shape != (len(self.years), len(self.table.service_names), n):
            raise ValueError(f"vc has shape {self.vc.shape}; expected (years, services, classes) = "
                             f"({len(self.years)}, {len(self.table.service_names)}, {n})")
        if not self.pixel_area_ha > 0:
            raise ValueError(f"pixel_area_ha must be positive, not {self.pixel_area_ha}")

    @classmethod
    def build(cls, scheme: ClassScheme, table: EsvTable, years: Sequence[int],
              standard_equivalents: Sequence[float | None], pixel_area_ha: float,
              projection_year: int | None = None, intensity: bool = False,
              uncertainty: UncertaintySpec | None = None, scenarios: Sequence[Scenario] = (),
              scenario_years: Sequence[int] = ()) -> EsvModel:
        """The model with ``VC`` from :func:`coefficient_matrix` for each year's Ea (CNY/ha/yr)."""
        index = ClassIndex(scheme)
        vc = np.stack([coefficient_matrix(table, scheme, index, e) for e in standard_equivalents])
        return cls(scheme, table, tuple(int(y) for y in years), vc, float(pixel_area_ha), projection_year,
                   intensity, uncertainty, tuple(scenarios), tuple(int(y) for y in scenario_years))

    @property
    def index(self) -> ClassIndex:
        return ClassIndex(self.scheme)

    @property
    def pairs(self) -> list[tuple[int, int]]:
        """Index pairs of the years the land pass counts (see :func:`landuse.year_pairs`)."""
        return landuse.year_pairs(list(self.years))

    @property
    def groups(self) -> list[str]:
        """The service groups of the table, in :data:`GROUPS` order."""
        return service_groups(self.table)[0]

    def pixel_values(self) -> np.ndarray:
        """The per-pixel lookup (years, groups, 256) in CNY/yr (:func:`pixel_values`)."""
        groups, g_of, _ = service_groups(self.table)
        return pixel_values(self.vc, g_of, len(groups), self.index, self.pixel_area_ha)

    def tables(self, counts: np.ndarray, zone_sums: np.ndarray | None,
               zones: pd.DataFrame, summarizer: Summarizer = summarize_draws) -> dict[str, pd.DataFrame]:
        """Every table of the transitions + ESV stage from the land pass's histograms, by name
        (:meth:`each_table`, gathered; a table given in parts concatenated)."""
        return {name: t if isinstance(t, pd.DataFrame) else pd.concat(list(t), ignore_index=True)
                for name, t in self.each_table(counts, zone_sums, zones, summarizer)}

    def each_table(self, counts: np.ndarray, zone_sums: np.ndarray | None, zones: pd.DataFrame,
                   summarizer: Summarizer = summarize_draws,
                   ) -> Iterator[tuple[str, pd.DataFrame | Iterator[pd.DataFrame]]]:
        """Every table of the transitions + ESV stage from the land pass's histograms, as (name, table),
        each built once the one before has been taken: a caller that writes each and lets it go holds
        one at a time (or the few built together: the intensity analysis' four, the Monte Carlo's
        two), not all of them (at 10,000 zones x 39 years ~7 GB; BENCHMARKS.md, "Tables").
        ``transitions`` and ``intensity_transition`` come as their rows in parts, a frame per pair of
        years or interval (:func:`~ecodask.science.landuse.transitions_parts`,
        :func:`~ecodask.science.intensity_tables.intensity_tables`), for
        :func:`~ecodask.io.tables.write_table` to write one after the other.

        ``counts``: int64 (pairs, zones, K, K) pixels per zone and class index of each pair of
        :attr:`pairs`; ``zone_sums``: float64 (years, zones, K, groups) the adjustment multiplier
        summed per zone and class, or None. Tables: class_area, esv_by_service, esv_change,
        transitions, dynamic_degree, sensitivity, service_tradeoffs, with two years or more, projection,
        and the intensity and uncertainty tables where the model has them (the Monte Carlo's draws
        summarized by ``summarizer``: :data:`ecodask.science.uncertainty.Summarizer`).
        """
        index, years, pairs, table, vc = self.index, list(self.years), self.pairs, self.table, self.vc
        area = self.pixel_area_ha
        n = index.n
        pixels = landuse.year_class_pixels(counts, pairs, len(years), n)
        yield "class_area", landuse.class_area_from_pixels(pixels, years, zones, index.codes, index.names,
                                                           area)
        areas = landuse.with_region(pixels, axis=1) * area  # (t, z+1, n) ha
        groups, g_of, _ = service_groups(table)
        if zone_sums is None:
            eff = np.repeat(areas[..., None], len(groups), axis=3)
        else:
            eff = landuse.with_region(zone_sums[:, :, :n, :], axis=1) * area
        esv = esv_by_service(vc, eff, g_of)
        by_service = esv_table(esv, years, zones, table)
        yield "esv_by_service", by_service
        land = areas.sum(axis=2)[:, :-1, None]  # ha with a known class, per zone (the region left out)
        density = np.divide(esv[:, :-1, :], land, out=np.full(esv[:, :-1, :].shape, np.nan), where=land > 0)
        yield "service_tradeoffs", service_tradeoffs(density, years, table.service_names)
        change = esv_change_table(by_service, pairs, years)
        del by_service
        yield "esv_change", change
        del change
        moves = [(p, ab) for p, ab in enumerate(pairs) if ab[0] != ab[1]]
        tm = landuse.transfer_matrices(counts, n)
        sel = [p for p, _ in moves]
        mpairs = [ab for _, ab in moves]
        yield "transitions", landuse.transitions_parts(tm[sel], mpairs, years, zones, index, area,
                                                       vc.sum(axis=1))
        yield "dynamic_degree", landuse.dynamic_degree_table(tm[sel], mpairs, years, zones, index, area)
        if self.intensity:
            steps = [p for p, (a, b) in moves if b == a + 1]  # the intervals between consecutive years
            yield from _handed_over(intensity_tables(tm[steps], [pairs[p] for p in steps], years, zones,
                                                     index, area, parts=True))
        yield "sensitivity", sensitivity_table(vc, eff, g_of, years, zones, table, self.scheme, index)
        if self.uncertainty is not None:
            yield from _handed_over(uncertainty_tables(self.uncertainty, self.scheme, index, eff, g_of, esv,
                                                       years, pairs, zones, summarizer))
            if self.uncertainty.errors is not None:
                yield from _handed_over(area_adjusted_tables(self.uncertainty.errors, areas, years, zones,
                                                             index))
        if len(years) >= 2:  # a single year has no transitions to project
            last = len(years) - 2  # the last consecutive pair
            step = years[-1] - years[-2]
            target = self.projection_year or years[-1] + step
            # zone by zone from the last year's class areas; the region: the sum of its zones
            start = pixels[-1]  # (z, n) px
            proj = landuse.markov_projection(tm[last, :-1], (target - years[-1]) // step, start) * area
            yield "projection", projection_table(landuse.with_region(proj, axis=0), vc[-1].sum(axis=0),
                                                 (years[-2], years[-1]), target, zones, index, areas[-1])
            if self.scenarios:
                effective = None if zone_sums is None else zone_sums[-1, :, :n, :]
                yield from _handed_over(scenario_tables(tm[last, :-1], self.scenarios, (years[-2], years[-1]),
                                                        self.scenario_years, vc[-1], table.service_names,
                                                        zones, index, area, start, effective, g_of))


def _handed_over(tables: dict[str, pd.DataFrame | Iterator[pd.DataFrame]],
                 ) -> Iterator[tuple[str, pd.DataFrame | Iterator[pd.DataFrame]]]:
    """Each of ``tables`` as (name, table), taken out of the dict as it is handed over (so that the dict
    does not keep it once the taker lets it go)."""
    while tables:
        name = next(iter(tables))
        yield name, tables.pop(name)

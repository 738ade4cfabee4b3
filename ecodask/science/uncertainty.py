"""ESV uncertainty by Monte Carlo, from the per-zone class areas (no pixel pass).

Each draw d takes, independently:
- **an ESV table** ``c_d``: the run's own or one of the alternatives, with equal probability;
- **its coefficients**: every cell (service x table class) from its range in the table's units
  (:class:`~ecodask.science.catalogs.CellRange`: uniform or triangular; default uniform within
  +/- ``spread`` of the value, as the sensitivity analysis varies it, methods.md section 3); a cell is
  one draw shared by every code the scheme maps onto that class and by every year;
- **the land-cover error** (with an error matrix): the map-to-reference shares ``Q_d`` drawn row by row
  (:func:`~ecodask.science.accuracy.draw_conditionals`), the areas becoming ``A Q_d`` (Olofsson et al.
  2014's area-adjusted estimate on average), one ``Q_d`` for every zone and year.

``ESV_d[t, z, f] = Ea_c[t] sum_j V_d[f, j] sum_i A[t, z, i] Q_d[i, j]`` (CNY/yr), with ``Ea_c[t]`` the
standard equivalent of year t for an equivalent-factor table (1 for a table of values). Summaries per
zone, year and service (and their total): the mean and the 5 % and 95 % quantiles of ESV and of its
change between the compared years, and the share of draws in which it fell.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ecodask.kernels.draws import summarize_draws
from ecodask.science import accuracy
from ecodask.science.catalogs import CellRange, ClassScheme, EsvTable
from ecodask.science.landuse import TOTAL, ClassIndex, repeat_text, text, tile_text, zone_labels

#: The interval the tables report: 5 % and 95 % quantiles of the draws.
QUANTILES = (0.05, 0.95)

#: What summarizes the draws: :func:`~ecodask.kernels.draws.summarize_draws` (numba's threads in this
#: process) or a function of the same arguments and result, such as
#: :func:`ecodask.chunked.draws.summarize_draws_by_zones` (the zones dealt out to a Dask cluster).
Summarizer = Callable[..., dict[str, np.ndarray]]


@dataclass(frozen=True)
class Candidate:
    """One ESV table a draw may take: ``table`` read through ``scheme``; ``scale`` (years,) its
    standard equivalent per year in CNY/ha/yr (1.0 for a table of values); ``basis``: where that
    standard equivalent comes from, in words, for the reader of the tables (empty for a table of
    values)."""

    table: EsvTable
    scale: tuple[float, ...]
    basis: str = ""


@dataclass(frozen=True)
class UncertaintySpec:
    """The Monte Carlo of a run: ``candidates`` (the run's table first), ``draws``, ``seed``, the default
    relative ``spread`` of a coefficient, and ``errors`` (K, K) sample counts of the map's error matrix
    in the class index's order (None: no land-cover error)."""

    candidates: tuple[Candidate, ...]
    draws: int = 1000
    seed: int = 0
    spread: float = 0.5
    errors: np.ndarray | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.candidates:
            raise ValueError("needs at least the run's own ESV table")
        names = self.candidates[0].table.service_names
        for c in self.candidates[1:]:
            if c.table.service_names != names:
                raise ValueError(f"table {c.table.name!r} has services {c.table.service_names}, "
                                 f"not {names}: alternatives must value the same services")
        if self.draws < 2:
            raise ValueError("needs at least 2 draws")


def cell_ranges(table: EsvTable, spread: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(low, high, triangular) per service x table class (in ``table.classes`` order), table units."""
    default = table.uncertainty.default or CellRange(spread=spread)
    classes = list(table.classes)
    shape = (len(table.service_names), len(classes))
    low, high, tri = np.empty(shape), np.empty(shape), np.zeros(shape, dtype=bool)
    for f, svc in enumerate(table.service_names):
        for c, cls in enumerate(classes):
            rng = table.uncertainty.cells.get(svc, {}).get(cls, default)
            low[f, c], high[f, c] = rng.bounds(table.values[svc][cls])
            tri[f, c] = rng.distribution == "triangular"
    return low, high, tri


def draw_cells(table: EsvTable, spread: float, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Draws of every cell of ``table`` (services, table classes, draws), in the table's units."""
    low, high, tri = cell_ranges(table, spread)
    mode = np.array([[table.values[s][c] for c in table.classes] for s in table.service_names])
    u = rng.random((*low.shape, draws))
    out = low[..., None] + u * (high - low)[..., None]
    if tri.any():  # the triangular distribution's inverse CDF
        a, b, m = low[..., None], high[..., None], mode[..., None]
        width = np.where(b > a, b - a, 1.0)
        cut = (m - a) / width
        left = a + np.sqrt(u * width * np.where(m > a, m - a, 0.0))
        right = b - np.sqrt((1.0 - u) * width * np.where(b > m, b - m, 0.0))
        out = np.where(tri[..., None], np.where(u < cut, left, right), out)
    return out


def coefficient_draws(spec: UncertaintySpec, scheme: ClassScheme, index: ClassIndex,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(w, scale, choice): ``w`` (services, classes of ``index``, draws) the drawn coefficients in the
    table's units mapped onto the scheme's codes, ``scale`` (years, draws) each draw's standard
    equivalent (CNY/ha/yr; 1 for tables of values), ``choice`` (draws,) the candidate each draw took."""
    n_c = len(spec.candidates)
    choice = rng.integers(0, n_c, size=spec.draws)
    n_t = len(spec.candidates[0].scale)
    w = np.empty((len(spec.candidates[0].table.service_names), index.n, spec.draws))
    scale = np.empty((n_t, spec.draws))
    for c, cand in enumerate(spec.candidates):
        cells = draw_cells(cand.table, spec.spread, spec.draws, rng)
        mapping = scheme.mapping_to(cand.table.class_set)
        cols = [list(cand.table.classes).index(mapping[code]) for code in index.codes]
        mine = choice == c
        w[:, :, mine] = cells[:, cols][:, :, mine]
        scale[:, mine] = np.asarray(cand.scale, dtype=np.float64)[:, None]
    return w, scale, choice


def land_cover_error(w: np.ndarray, errors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``W_d = Q_d V_d``: each draw's coefficients (services, classes, draws) with the map's error
    folded in, so that ``sum_i A[i] W_d[f, i] = sum_j (A Q_d)[j] V_d[f, j]``."""
    q = accuracy.draw_conditionals(errors, w.shape[2], rng)  # (draws, K, K)
    return np.einsum("dij,fjd->fid", q, w)


def summarize(spec: UncertaintySpec, scheme: ClassScheme, index: ClassIndex, eff: np.ndarray,
              g_of: np.ndarray, pairs: Sequence[tuple[int, int]],
              summarizer: Summarizer = summarize_draws) -> dict[str, np.ndarray]:
    """The Monte Carlo's summaries (:func:`~ecodask.kernels.draws.summarize_draws`, or ``summarizer``)
    for effective areas ``eff`` (years, zones, classes, groups) in ha and the pairs of year indices
    compared, and ``candidate_draws`` (candidates,): how many draws took each table. The draws are made
    here; only their summaries depend on ``summarizer``."""
    rng = np.random.default_rng(spec.seed)
    w, scale, choice = coefficient_draws(spec, scheme, index, rng)
    if spec.errors is not None:
        w = land_cover_error(w, spec.errors, rng)
    moves = np.array([(a, b) for a, b in pairs if a != b], dtype=np.int64).reshape(-1, 2)
    out = summarizer(eff, g_of, w, scale, moves, QUANTILES)
    out["candidate_draws"] = np.bincount(choice, minlength=len(spec.candidates))
    return out


def candidates_table(spec: UncertaintySpec, years: Sequence[int], draws: np.ndarray) -> pd.DataFrame:
    """``esv_uncertainty_tables``: per table the draws took (the run's first) and year, its kind, its
    standard equivalent (CNY/ha/yr; empty for a table of values) with where it comes from, and the
    number of draws that took it (``draws`` (candidates,), :func:`summarize`)."""
    return pd.DataFrame([
        {"table": c.table.name, "kind": c.table.kind, "year": int(year),
         "standard_equivalent_cny_per_ha": float(ea) if c.table.kind == "equivalent" else np.nan,
         "price_basis": c.basis, "draws": int(n)}
        for c, n in zip(spec.candidates, draws, strict=True)
        for year, ea in zip(years, c.scale, strict=True)])


def uncertainty_tables(
    spec: UncertaintySpec,
    scheme: ClassScheme,
    index: ClassIndex,
    eff: np.ndarray,
    g_of: np.ndarray,
    esv: np.ndarray,
    years: Sequence[int],
    pairs: Sequence[tuple[int, int]],
    zones: pd.DataFrame,
    summarizer: Summarizer = summarize_draws,
) -> dict[str, pd.DataFrame]:
    """Tables ``esv_uncertainty`` and ``esv_change_uncertainty`` (CNY/yr) per zone (and the region),
    year or pair of years, and item (each service, then ``total``); ``esv_uncertainty_tables``
    (:func:`candidates_table`).

    ``eff``: (years, zones + region, classes, groups) ha; ``esv``: (years, zones + region, services) the
    run's own ESV (CNY/yr), reported beside the draws' summaries as ``esv_cny`` / ``change_cny``;
    ``summarizer``: see :func:`summarize`.
    """
    s = summarize(spec, scheme, index, eff, g_of, pairs, summarizer)
    items = [*spec.candidates[0].table.service_names, TOTAL]
    point = np.concatenate([esv, esv.sum(axis=2, keepdims=True)], axis=2)  # (t, z, F + 1)
    ids, names = zone_labels(zones)
    n_t, n_z, n_i = point.shape
    # the summaries' arrays not copied: at 40,000 zones and 39 years each table has 18.7 M rows
    # (BENCHMARKS.md, "ESV uncertainty")
    level = pd.DataFrame({
        "zone_id": tile_text(repeat_text(ids, n_i), n_t),
        "zone_name": tile_text(repeat_text(names, n_i), n_t),
        "year": np.repeat(np.asarray(years, dtype=np.int64), n_z * n_i),
        "item": tile_text(text(items), n_t * n_z),
        "esv_cny": point.reshape(-1), "mean_cny": s["mean"].reshape(-1),
        "p05_cny": s["low"].reshape(-1), "p95_cny": s["high"].reshape(-1),
    }, copy=False)
    moves = [(a, b) for a, b in pairs if a != b]
    n_p = len(moves)
    change_point = np.stack([point[b] - point[a] for a, b in moves]) if moves else np.empty((0, n_z, n_i))
    change = pd.DataFrame({
        "zone_id": tile_text(repeat_text(ids, n_i), n_p),
        "zone_name": tile_text(repeat_text(names, n_i), n_p),
        "year_from": np.repeat(np.asarray([years[a] for a, _ in moves], dtype=np.int64), n_z * n_i),
        "year_to": np.repeat(np.asarray([years[b] for _, b in moves], dtype=np.int64), n_z * n_i),
        "item": tile_text(text(items), n_p * n_z),
        "change_cny": change_point.reshape(-1), "mean_cny": s["change_mean"].reshape(-1),
        "p05_cny": s["change_low"].reshape(-1), "p95_cny": s["change_high"].reshape(-1),
        "p_fell": s["fell"].reshape(-1),
    }, copy=False)
    return {"esv_uncertainty": level, "esv_change_uncertainty": change,
            "esv_uncertainty_tables": candidates_table(spec, years, s["candidate_draws"])}


def area_adjusted_tables(errors: np.ndarray, areas: np.ndarray, years: Sequence[int], zones: pd.DataFrame,
                         index: ClassIndex) -> dict[str, pd.DataFrame]:
    """Olofsson et al. (2014)'s estimates from the map's error matrix ``errors`` (K, K) and the mapped
    areas ``areas`` (years, zones + region, K) ha: ``area_adjusted`` (per zone, year and class: the
    mapped and the adjusted area, its standard error and 95 % interval, ha) and ``map_accuracy`` (per
    year, the region's user's, producer's and overall accuracy with standard errors). The region's rows
    are the paper's estimator; a zone's apply the region's sample to the zone's mapped shares, which
    assumes the map errs alike in every zone: approximate, and so are their standard errors."""
    ids, names = zone_labels(zones)
    n_t, n_z, n = areas.shape
    adj, se = accuracy.adjusted_area(areas, errors)
    adjusted = pd.DataFrame({
        "zone_id": tile_text(repeat_text(ids, n), n_t), "zone_name": tile_text(repeat_text(names, n), n_t),
        "year": np.repeat(np.asarray(years, dtype=np.int64), n_z * n),
        "class_code": np.tile(index.codes, n_t * n_z), "class_name": tile_text(text(index.names), n_t * n_z),
        "mapped_ha": areas.reshape(-1), "adjusted_ha": adj.reshape(-1), "se_ha": se.reshape(-1),
        "ci95_low_ha": (adj - accuracy.Z95 * se).reshape(-1),
        "ci95_high_ha": (adj + accuracy.Z95 * se).reshape(-1),
    })
    rows = []
    ua, ua_se = accuracy.users_accuracy(errors)
    for t, year in enumerate(years):
        region = areas[t, -1]
        if region.sum() <= 0:
            continue
        pa, pa_se = accuracy.producers_accuracy(region, errors)
        oa, oa_se = accuracy.overall_accuracy(region, errors)
        rows.append(pd.DataFrame({
            "year": year, "class_code": index.codes, "class_name": list(index.names),
            "users_accuracy": ua, "users_se": ua_se, "producers_accuracy": pa, "producers_se": pa_se,
            "overall_accuracy": oa, "overall_se": oa_se,
        }))
    cols = ["year", "class_code", "class_name", "users_accuracy", "users_se", "producers_accuracy",
            "producers_se", "overall_accuracy", "overall_se"]
    acc = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=cols)
    return {"area_adjusted": adjusted, "map_accuracy": acc}


def error_counts(matrix_counts: dict[int, dict[int, int]], index: ClassIndex) -> np.ndarray:
    """The error matrix's counts (K, K) in the order of ``index``'s codes; codes the matrix lacks get
    no samples (their rows: mapped without error)."""
    pos = {code: i for i, code in enumerate(index.codes)}
    out = np.zeros((index.n, index.n))
    for m, row in matrix_counts.items():
        for r, count in row.items():
            if m in pos and r in pos:
                out[pos[m], pos[r]] = count
    return out

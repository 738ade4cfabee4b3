"""Land-use scenarios: the first-order Markov projection under restricted transitions, and its ESV.

A scenario is the observed transition probabilities of the last pair of years (per zone: ``P[i, j] =
T[i, j] / sum_j T[i, j]``, as :func:`ecodask.science.landuse.markov_projection`) with restrictions: a
restriction scales the probability of leaving each class of ``out_of`` for each class of ``into``
(default: every other class) by ``factor`` in [0, 1], and the probability taken away stays in the
class (``P'[i, i] += (1 - factor) P[i, j]``), so every row still sums to 1. Business as usual has no
restriction. Areas ``A_(s+1) = A_s P'`` from the last year's, ``steps`` intervals of the last pair's
length to each target year, zone by zone; the whole region's areas and ESV are the sums of its zones'.
Their ESV at the last year's coefficients, ``ESV_f = sum_k A_k r_k,g(f) VC[f, k]`` (CNY/yr), where
``r_k,g`` is the zone's ratio of effective to plain area of class k and service group g in the last
year (1 without a spatial adjustment): the adjustment's multipliers are not projected, each class's
new area is valued at the zone's last-year mean multiplier of that class, so a scenario's ESV at the
last year is the observed ESV.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ecodask.science import landuse
from ecodask.science.landuse import (
    TOTAL,
    ClassIndex,
    repeat_text,
    text,
    tile_text,
    transition_probabilities,
    zone_labels,
)

#: The scenario the others are compared with, where the run has it.
BUSINESS_AS_USUAL = "business_as_usual"


@dataclass(frozen=True)
class Restriction:
    """Scale the probabilities of the transitions from each class index of ``out_of`` to each of
    ``into`` (None: every other class) by ``factor`` (0: forbidden, 1: as observed)."""

    out_of: tuple[int, ...]
    into: tuple[int, ...] | None
    factor: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.factor <= 1.0:
            raise ValueError(f"factor must be in [0, 1], not {self.factor}")


@dataclass(frozen=True)
class Scenario:
    """A named scenario: its restrictions, applied in order."""

    name: str
    restrictions: tuple[Restriction, ...] = ()


def restricted(p: np.ndarray, restrictions: Sequence[Restriction]) -> np.ndarray:
    """``p`` (zones, n, n) with each restriction applied: the probability it takes from a transition
    i -> j (i != j) is added to staying in i."""
    out = np.array(p, dtype=np.float64, copy=True)
    n = out.shape[1]
    for r in restrictions:
        into = range(n) if r.into is None else r.into
        for i in r.out_of:
            for j in into:
                if j == i:
                    continue
                moved = (1.0 - r.factor) * out[:, i, j]
                out[:, i, j] -= moved
                out[:, i, i] += moved
    return out


def project(tm: np.ndarray, scenario: Scenario, steps: Sequence[int], start: np.ndarray | None = None,
            ) -> np.ndarray:
    """Areas (len(steps), zones, n) after each number of ``steps`` (ascending, >= 1) under
    ``scenario``, from ``start`` (zones, n; default: the later year's areas of ``tm``, zones x n x n,
    in the unit of ``tm``)."""
    p = restricted(transition_probabilities(tm), scenario.restrictions)
    area = np.asarray(tm, dtype=np.float64).sum(axis=1) if start is None else np.asarray(start, np.float64)
    out = np.empty((len(steps), *area.shape))
    done = 0
    for k, s in enumerate(steps):
        for _ in range(s - done):
            area = np.einsum("zi,zij->zj", area, p)
        done = s
        out[k] = area
    return out


def effective_ratio(start: np.ndarray, effective: np.ndarray | None) -> np.ndarray:
    """Each zone's ratio of effective to plain area (zones, n, groups), dimensionless: ``effective``
    (zones, n, groups; the spatial adjustment's multiplier summed over the class's pixels) over
    ``start`` (zones, n; pixels), in the same unit; 1 where a class has no area (it gains none in a
    projection: no transition of the last pair went into it) and everywhere without an adjustment
    (``effective`` None)."""
    start = np.asarray(start, dtype=np.float64)
    if effective is None:
        return np.ones((*start.shape, 1))
    eff = np.asarray(effective, dtype=np.float64)
    a = start[..., None]
    return np.divide(eff, a, out=np.ones(eff.shape), where=a > 0)


def restriction_rows(scenarios: Sequence[Scenario], index: ClassIndex) -> pd.DataFrame:
    """``scenario_rules``: each scenario's restrictions as the run applied them, one row per rule
    (scenario, rule: its place, out_of and into: class names joined by ', ', into empty for every
    other class, factor); a scenario without restrictions has no row."""
    names = list(index.names)
    rows = [{"scenario": s.name, "rule": k, "out_of": ", ".join(names[i] for i in r.out_of),
             "into": "" if r.into is None else ", ".join(names[j] for j in r.into), "factor": r.factor}
            for s in scenarios for k, r in enumerate(s.restrictions)]
    return pd.DataFrame(rows, columns=["scenario", "rule", "out_of", "into", "factor"])


def scenario_tables(
    tm: np.ndarray,
    scenarios: Sequence[Scenario],
    base: tuple[int, int],
    targets: Sequence[int],
    vc: np.ndarray,
    services: Sequence[str],
    zones: pd.DataFrame,
    index: ClassIndex,
    pixel_area_ha: float,
    start: np.ndarray | None = None,
    effective: np.ndarray | None = None,
    g_of: np.ndarray | None = None,
) -> dict[str, pd.DataFrame]:
    """``scenario_area`` and ``scenario_esv`` per zone and the region (the sum of the zones),
    scenario and target year, and ``scenario_rules`` (:func:`restriction_rows`).

    ``tm``: the last pair's transfer matrices of the zones (zones, n, n) in pixels, the region left
    out; ``base``: that pair's years; ``targets``: years after it, each its end plus a multiple of its
    length; ``vc``: (services, n) the last year's coefficients, CNY/ha/yr. ``start``: (zones, n) the
    pixels of each class in the last year (default: the column sums of ``tm``, which leave out the
    pixels without data in the pair's first year); ``effective``: (zones, n, groups) the spatial
    adjustment's multiplier summed over those pixels, or None without an adjustment, with ``g_of``
    (services,) each service's group (:func:`effective_ratio`). Areas in ha with their change from
    the last year; ESV in CNY/yr with its change from the last year's (at the same coefficients and
    adjustment: the observed ESV) and, where a ``business_as_usual`` scenario is run, a column
    ``vs_business_as_usual_cny``: the difference from it in the same year.
    """
    step = base[1] - base[0]
    targets = sorted(int(y) for y in targets)
    steps = [(y - base[1]) // step for y in targets]
    if len(set(targets)) != len(targets) or any(
            s < 1 or base[1] + s * step != y for s, y in zip(steps, targets, strict=True)):
        raise ValueError(f"target years {targets} must be {base[1]} plus distinct multiples of {step}")
    ids, names = zone_labels(zones)
    tm = np.asarray(tm, dtype=np.float64)
    start_px = tm.sum(axis=1) if start is None else np.asarray(start, dtype=np.float64)
    ratio = effective_ratio(start_px, effective)  # (z, n, groups)
    one_group = effective is None or g_of is None  # the ratio (all 1) has a single group
    ratio_f = ratio[..., np.zeros(len(services), dtype=np.int64) if one_group else np.asarray(g_of)]
    vc_zone = np.einsum("zkf,fk->zkf", ratio_f, vc)  # (z, n, F) CNY/ha/yr of plain area
    observed = landuse.with_region(start_px * pixel_area_ha, axis=0)  # (z + 1, n) ha
    items = [*services, TOTAL]

    def esv_of(area: np.ndarray) -> np.ndarray:  # (..., z, n) ha of the zones -> (..., z + 1, F + 1) CNY/yr
        by_service = landuse.with_region(np.einsum("...zk,zkf->...zf", area, vc_zone), axis=-2)
        return np.concatenate([by_service, by_service.sum(axis=-1, keepdims=True)], axis=-1)

    base_esv = esv_of(start_px * pixel_area_ha)
    projected = {s.name: project(tm, s, steps, start_px) * pixel_area_ha for s in scenarios}
    esv = {name: esv_of(a) for name, a in projected.items()}
    projected = {name: landuse.with_region(a, axis=1) for name, a in projected.items()}
    bau = esv.get(BUSINESS_AS_USUAL)
    n_y, n_z, n = len(targets), observed.shape[0], index.n
    n_i = len(items)
    areas, values = [], []
    for s in scenarios:
        a, e = projected[s.name], esv[s.name]
        areas.append(pd.DataFrame({
            "zone_id": tile_text(repeat_text(ids, n), n_y),
            "zone_name": tile_text(repeat_text(names, n), n_y),
            "scenario": s.name, "base_from": base[0], "base_to": base[1],
            "year": np.repeat(np.asarray(targets, dtype=np.int64), n_z * n),
            "class_code": np.tile(index.codes, n_y * n_z),
            "class_name": tile_text(text(index.names), n_y * n_z),
            "area_ha": a.reshape(-1), "change_ha": (a - observed[None]).reshape(-1),
        }))
        cols = {
            "zone_id": tile_text(repeat_text(ids, n_i), n_y),
            "zone_name": tile_text(repeat_text(names, n_i), n_y),
            "scenario": s.name, "year": np.repeat(np.asarray(targets, dtype=np.int64), n_z * n_i),
            "item": tile_text(text(np.array(items, dtype=object)), n_y * n_z),
            "esv_cny": e.reshape(-1), "change_cny": (e - base_esv[None]).reshape(-1),
        }
        if bau is not None:
            cols["vs_business_as_usual_cny"] = (e - bau).reshape(-1)
        values.append(pd.DataFrame(cols))
    return {"scenario_area": pd.concat(areas, ignore_index=True),
            "scenario_esv": pd.concat(values, ignore_index=True),
            "scenario_rules": restriction_rows(scenarios, index)}

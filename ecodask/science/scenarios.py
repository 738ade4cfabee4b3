"""Land-use scenarios: the first-order Markov projection under restricted transitions, and its ESV.

A scenario is the observed transition probabilities of the last pair of years (per zone: ``P[i, j] =
T[i, j] / sum_j T[i, j]``, as :func:`ecodask.science.landuse.markov_projection`) with restrictions: a
restriction scales the probability of leaving each class of ``out_of`` for each class of ``into``
(default: every other class) by ``factor`` in [0, 1], and the probability taken away stays in the
class (``P'[i, i] += (1 - factor) P[i, j]``), so every row still sums to 1. Business as usual has no
restriction. Areas ``A_(s+1) = A_s P'`` from the last year's, ``steps`` intervals of the last pair's
length to each target year; their ESV at the last year's coefficients, ``ESV_f = sum_k A_k VC[f, k]``
(CNY/yr; a spatial adjustment is not projected, as in the ``projection`` table).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

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


def project(tm: np.ndarray, scenario: Scenario, steps: Sequence[int]) -> np.ndarray:
    """Areas (len(steps), zones, n) after each number of ``steps`` (ascending, >= 1) under
    ``scenario``, from the later year's areas of ``tm`` (zones, n, n; in the unit of ``tm``)."""
    p = restricted(transition_probabilities(tm), scenario.restrictions)
    area = np.asarray(tm, dtype=np.float64).sum(axis=1)
    out = np.empty((len(steps), *area.shape))
    done = 0
    for k, s in enumerate(steps):
        for _ in range(s - done):
            area = np.einsum("zi,zij->zj", area, p)
        done = s
        out[k] = area
    return out


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
) -> dict[str, pd.DataFrame]:
    """``scenario_area`` and ``scenario_esv`` per zone (and the region), scenario and target year.

    ``tm``: the last pair's transfer matrices (zones + region, n, n) in pixels; ``base``: that pair's
    years; ``targets``: years after it, each its end plus a multiple of its length; ``vc``: (services,
    n) the last year's coefficients, CNY/ha/yr. Areas in ha with their change from the base pair's end;
    ESV in CNY/yr with its change from the base year's (at the same coefficients) and, where a
    ``business_as_usual`` scenario is run, the difference from it in the same year.
    """
    step = base[1] - base[0]
    targets = sorted(int(y) for y in targets)
    steps = [(y - base[1]) // step for y in targets]
    if any(s < 1 or base[1] + s * step != y for s, y in zip(steps, targets, strict=True)):
        raise ValueError(f"target years {targets} must be {base[1]} plus multiples of {step}")
    ids, names = zone_labels(zones)
    observed = np.asarray(tm, dtype=np.float64).sum(axis=1) * pixel_area_ha  # (z, n) ha
    items = [*services, TOTAL]

    def esv_of(area: np.ndarray) -> np.ndarray:  # (..., z, n) ha -> (..., z, F + 1) CNY/yr
        by_service = area @ vc.T
        return np.concatenate([by_service, by_service.sum(axis=-1, keepdims=True)], axis=-1)

    base_esv = esv_of(observed)
    projected = {s.name: project(tm, s, steps) * pixel_area_ha for s in scenarios}
    esv = {name: esv_of(a) for name, a in projected.items()}
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
        values.append(pd.DataFrame({
            "zone_id": tile_text(repeat_text(ids, n_i), n_y),
            "zone_name": tile_text(repeat_text(names, n_i), n_y),
            "scenario": s.name, "year": np.repeat(np.asarray(targets, dtype=np.int64), n_z * n_i),
            "item": tile_text(text(np.array(items, dtype=object)), n_y * n_z),
            "esv_cny": e.reshape(-1), "change_cny": (e - base_esv[None]).reshape(-1),
            "vs_business_as_usual_cny": (e - bau).reshape(-1) if bau is not None else np.nan,
        }))
    return {"scenario_area": pd.concat(areas, ignore_index=True),
            "scenario_esv": pd.concat(values, ignore_index=True)}

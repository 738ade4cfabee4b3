"""The intensity-analysis tables of a run (:mod:`ecodask.science.intensity`), per zone and the whole
region, over each interval between consecutive years of the run:

- ``intensity_interval``: the interval level: change (px, % of the extent), ``S`` and ``U`` (%/yr),
  ``pace`` fast / slow;
- ``intensity_category``: per class, annual gross gain and loss (ha/yr), gain and loss intensity
  against ``S`` (%/yr), active / dormant, and whether that holds in every interval (stationary;
  missing where no interval has a state: a class absent from every map);
  and the uniform transition intensities of its gain (``W``) and of its loss (``V``);
- ``intensity_transition``: per transition (class_from -> class_to, only those where one of the two
  changed): the intensity of class_to's gain taking class_from (``R``, against class_to's ``W``),
  targeted / avoided, and of class_from's loss going to class_to (``Q``, against class_from's
  ``V``), each with its stationarity (its area: the ``transitions`` table);
- ``intensity_components``: per class and for all classes (class_code 0, ``all``): difference,
  quantity, exchange and shift (ha).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ecodask.science import intensity as ia
from ecodask.science.landuse import ClassIndex, take_text, text, tile_text, zone_labels

#: Class code of the rows of ``intensity_components`` that sum every class.
ALL_CLASSES = 0
_KEYS = ["zone_id", "zone_name", "year_from", "year_to"]
CATEGORY_COLUMNS = [*_KEYS, "class_code", "class_name", "gross_gain_ha_per_yr", "gross_loss_ha_per_yr",
                    "gain_intensity_pct_per_yr", "loss_intensity_pct_per_yr", "S_pct_per_yr",
                    "gain_behaviour", "loss_behaviour", "gain_stationary", "loss_stationary",
                    "gain_uniform_transition_pct_per_yr", "loss_uniform_transition_pct_per_yr"]
TRANSITION_COLUMNS = [*_KEYS, "class_from", "class_from_name", "class_to", "class_to_name",
                      "gain_intensity_pct_per_yr", "gain_behaviour", "gain_stationary",
                      "loss_intensity_pct_per_yr", "loss_behaviour", "loss_stationary"]


class _Held:
    """Whether a state holds in every interval, fed an interval at a time: the first interval's states
    (codes of :func:`ecodask.science.intensity.compare`), whether every later one matched them, and
    whether no interval had a state at all (no area to measure against: a class absent from every
    map). The same as :func:`ecodask.science.intensity.stationary` over every interval's states,
    without holding them."""

    def __init__(self) -> None:
        self.first: np.ndarray | None = None
        self.same: np.ndarray | None = None
        self.none: np.ndarray | None = None
        self.intervals = 0

    def add(self, states: np.ndarray) -> None:
        """The states (zones, ...) of the next interval."""
        if self.first is None:
            self.first, self.same, self.none = states, np.ones(states.shape, bool), states == ia.NONE
        else:
            self.same &= states == self.first
            self.none &= states == ia.NONE
        self.intervals += 1

    def column(self, rows: np.ndarray) -> pd.arrays.BooleanArray:
        """Stationary (nullable) at the flat rows ``rows`` of an interval's (zones, ...) states: the
        same state, above or below, in every interval (never with one interval); missing where no
        interval had one."""
        first = self.first.reshape(-1)[rows]
        value = self.same.reshape(-1)[rows] & ~np.isin(first, (ia.EQUAL, ia.NONE))
        if self.intervals < 2:
            value = np.zeros(rows.size, bool)
        return pd.arrays.BooleanArray(value, self.none.reshape(-1)[rows])


@dataclass(frozen=True)
class _Levels:
    """One interval's levels (:mod:`ecodask.science.intensity`) over its (zones, n, n) matrix."""

    iv: ia.Interval
    cat: ia.Category
    tr: ia.Transition

    @classmethod
    def of(cls, c: np.ndarray, years: float) -> _Levels:
        return cls(ia.interval_level(c, years), ia.category_level(c, years), ia.transition_level(c, years))

    def gain_loss(self) -> tuple[np.ndarray, np.ndarray]:
        """Category states of the gain and loss intensities against ``S`` (zones, n)."""
        s = self.iv.S[..., None]
        return ia.compare(self.cat.G, s), ia.compare(self.cat.L, s)

    def targets(self) -> tuple[np.ndarray, np.ndarray]:
        """Transition states of ``R`` against class_to's ``W`` and of ``Q`` against class_from's
        ``V`` (zones, n, n)."""
        return ia.compare(self.tr.R, self.tr.W[..., None, :]), ia.compare(self.tr.Q, self.tr.V[..., :, None])

    def moved(self) -> np.ndarray:
        """Transitions where class_to gained or class_from lost (the others say nothing), (zones, n, n)."""
        gain, loss = self.cat.gain, self.cat.loss
        return ((gain[..., None, :] > 0) | (loss[..., :, None] > 0)) & ~np.eye(gain.shape[-1], dtype=bool)


def intensity_tables(tm: np.ndarray, pairs: Sequence[tuple[int, int]], years: Sequence[int],
                     zones: pd.DataFrame, index: ClassIndex, pixel_area_ha: float,
                     parts: bool = False) -> dict[str, pd.DataFrame | Iterator[pd.DataFrame]]:
    """The four tables from ``tm``: pixels (pairs, zones + region, n, n) of the consecutive
    ``pairs`` (indices into ``years``, in order); empty dict without an interval.

    Everything is computed an interval at a time: a first pass over the intervals keeps what spans
    them (``U``, and each state's stationarity: (zones, n, n) codes, not one per interval), then each
    table's rows are made an interval at a time. With ``parts`` every table comes as its rows in
    order, a frame per interval made as it is taken (:func:`ecodask.io.tables.write_table` writes
    them one after the other; ``intensity_transition``, the largest, has 27 M rows at 10,000 zones and
    39 years); without, as whole tables."""
    if not len(pairs):
        return {}
    t_n, z_n, n, _ = tm.shape
    dur = np.array([years[b] - years[a] for a, b in pairs], float)  # (t,)
    ids, names = zone_labels(zones)
    y_from = np.array([years[a] for a, _ in pairs])
    y_to = np.array([years[b] for _, b in pairs])
    codes, cnames = np.asarray(index.codes), text(np.asarray(index.names))

    def levels(t: int) -> _Levels:
        return _Levels.of(np.asarray(tm[t], float), dur[t])

    change, extent, s_pct = np.empty((t_n, z_n)), np.empty((t_n, z_n)), np.empty((t_n, z_n))
    gain_held, loss_held, tgain_held, tloss_held = _Held(), _Held(), _Held(), _Held()
    for t in range(t_n):  # what spans the intervals
        lv = levels(t)
        change[t], extent[t], s_pct[t] = lv.iv.change, lv.iv.extent, lv.iv.S
        gain_b, loss_b = lv.gain_loss()
        gain_held.add(gain_b)
        loss_held.add(loss_b)
        tgain, tloss = lv.targets()
        tgain_held.add(tgain)
        tloss_held.add(tloss)
    u = ia.uniform_intensity(change, extent, dur[:, None])  # (z,)

    def frame(t: int, reps: int, rows: np.ndarray | None = None, states: dict | None = None,
              **cols: object) -> pd.DataFrame:
        """Interval ``t``'s rows in (zone, reps) order, zone labels and years laid out, from columns of
        ``reps`` values per zone; only the rows ``rows`` (flat indices, in order) when given.
        ``states``: name -> (codes of :func:`ecodask.science.intensity.compare`, above, below),
        written as words; a :class:`_Held` column is its stationarity at the rows."""
        rows = np.arange(z_n * reps) if rows is None else rows
        zone = rows // reps

        def pick(v: object) -> object:
            if isinstance(v, _Held):
                return v.column(rows)
            return v.take(rows) if isinstance(v, pd.api.extensions.ExtensionArray) else \
                np.asarray(v).reshape(-1)[rows]

        out = {"zone_id": take_text(ids, zone), "zone_name": take_text(names, zone),
               "year_from": np.full(rows.size, y_from[t]), "year_to": np.full(rows.size, y_to[t])}
        out |= {k: pick(v) for k, v in cols.items()}
        out |= {k: pd.Categorical.from_codes(np.asarray(c).reshape(-1)[rows] + 2,
                                             ["", below, "uniform", above])
                for k, (c, above, below) in (states or {}).items()}
        return pd.DataFrame(out)

    def interval_rows() -> Iterator[pd.DataFrame]:
        for t in range(t_n):
            yield frame(t, 1, years=np.full(z_n, dur[t]), extent_px=extent[t].astype(np.int64),
                        change_px=change[t].astype(np.int64),
                        change_pct=100 * change[t] / np.where(extent[t] > 0, extent[t], np.nan),
                        S_pct_per_yr=s_pct[t], U_pct_per_yr=u,
                        states={"pace": (ia.compare(s_pct[t], u), "fast", "slow")})

    def category_rows() -> Iterator[pd.DataFrame]:
        class_code, class_name = np.tile(codes, z_n), tile_text(cnames, z_n)
        for t in range(t_n):
            lv = levels(t)
            gain_b, loss_b = lv.gain_loss()
            yield frame(t, n, class_code=class_code, class_name=class_name,
                        gross_gain_ha_per_yr=lv.cat.gain * pixel_area_ha,
                        gross_loss_ha_per_yr=lv.cat.loss * pixel_area_ha,
                        gain_intensity_pct_per_yr=lv.cat.G, loss_intensity_pct_per_yr=lv.cat.L,
                        S_pct_per_yr=np.repeat(lv.iv.S, n), gain_stationary=gain_held,
                        loss_stationary=loss_held, gain_uniform_transition_pct_per_yr=lv.tr.W,
                        loss_uniform_transition_pct_per_yr=lv.tr.V,
                        states={"gain_behaviour": (gain_b, "active", "dormant"),
                                "loss_behaviour": (loss_b, "active", "dormant")})[CATEGORY_COLUMNS]

    frm, to = np.repeat(np.arange(n), n), np.tile(np.arange(n), n)

    def transition_rows() -> Iterator[pd.DataFrame]:
        class_from, class_to = np.tile(codes[frm], z_n), np.tile(codes[to], z_n)
        from_name, to_name = tile_text(cnames.take(frm), z_n), tile_text(cnames.take(to), z_n)
        for t in range(t_n):
            lv = levels(t)
            tgain, tloss = lv.targets()
            yield frame(t, n * n, np.flatnonzero(lv.moved().reshape(-1)), class_from=class_from,
                        class_from_name=from_name, class_to=class_to, class_to_name=to_name,
                        gain_intensity_pct_per_yr=lv.tr.R, gain_stationary=tgain_held,
                        loss_intensity_pct_per_yr=lv.tr.Q, loss_stationary=tloss_held,
                        states={"gain_behaviour": (tgain, "targeted", "avoided"),
                                "loss_behaviour": (tloss, "targeted", "avoided")})[TRANSITION_COLUMNS]

    all_codes = np.append(codes, ALL_CLASSES)
    all_names = text(np.append(np.asarray(index.names, dtype=object), "all"))

    def components_rows() -> Iterator[pd.DataFrame]:
        class_code, class_name = np.tile(all_codes, z_n), tile_text(all_names, z_n)

        def per_class_and_all(per: np.ndarray, total: np.ndarray) -> np.ndarray:
            return np.concatenate([per, total[..., None]], axis=-1).reshape(-1) * pixel_area_ha

        for t in range(t_n):
            c = np.asarray(tm[t], float)
            cat, co = ia.category_level(c, dur[t]), ia.components(c)
            yield frame(t, n + 1, class_code=class_code, class_name=class_name,
                        difference_ha=per_class_and_all((cat.gain + cat.loss) * dur[t], co.difference),
                        quantity_ha=per_class_and_all(co.quantity, co.Q),
                        exchange_ha=per_class_and_all(co.exchange, co.E),
                        shift_ha=per_class_and_all(co.shift, co.S))

    tables = {"intensity_interval": interval_rows(), "intensity_category": category_rows(),
              "intensity_transition": transition_rows(), "intensity_components": components_rows()}
    if parts:
        return tables
    return {name: pd.concat(list(rows), ignore_index=True) for name, rows in tables.items()}

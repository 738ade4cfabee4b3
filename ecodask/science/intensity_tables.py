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


@dataclass(frozen=True)
class _PerZone:
    """A nullable boolean column holding the same value in every interval: ``value`` and ``missing``
    per zone (and class, or transition), in the rows' order within an interval."""

    value: np.ndarray
    missing: np.ndarray

    def take(self, rows: np.ndarray) -> pd.arrays.BooleanArray:
        """The column at the flat rows ``rows`` (interval, zone, ...) of the whole table."""
        at = rows % self.value.size
        return pd.arrays.BooleanArray(self.value.reshape(-1)[at], self.missing.reshape(-1)[at])


def intensity_tables(tm: np.ndarray, pairs: Sequence[tuple[int, int]], years: Sequence[int],
                     zones: pd.DataFrame, index: ClassIndex, pixel_area_ha: float,
                     parts: bool = False) -> dict[str, pd.DataFrame | Iterator[pd.DataFrame]]:
    """The four tables from ``tm``: pixels (pairs, zones + region, n, n) of the consecutive
    ``pairs`` (indices into ``years``, in order); empty dict without an interval. With ``parts``,
    ``intensity_transition`` (the largest: 27 M rows at 10,000 zones and 39 years) comes as its rows
    in order, a frame per interval made as it is taken (:func:`ecodask.io.tables.write_table` writes
    them one after the other)."""
    if not len(pairs):
        return {}
    c = np.asarray(tm, float)
    t_n, z_n, n, _ = c.shape
    dur = np.array([years[b] - years[a] for a, b in pairs], float)[:, None]  # (t, 1)
    ids, names = zone_labels(zones)
    y_from = np.array([years[a] for a, _ in pairs])
    y_to = np.array([years[b] for _, b in pairs])
    codes, cnames = np.asarray(index.codes), text(np.asarray(index.names))
    iv, cat, tr, co = ia.interval_level(c, dur), ia.category_level(c, dur), ia.transition_level(c, dur), \
        ia.components(c)
    u = ia.uniform_intensity(iv.change, iv.extent, dur)  # (z,)

    def frame(reps: int, keep: np.ndarray | None = None, states: dict | None = None,
              **cols: object) -> pd.DataFrame:
        """Rows in (interval, zone, reps) order, zone labels and years laid out, from full-size
        columns (``reps`` values per interval and zone); only the rows ``keep`` (flat indices, in
        order) when given. ``states``: name -> (codes of :func:`ecodask.science.intensity.compare`,
        above, below), written as words."""
        return rows_frame(np.arange(t_n * z_n * reps) if keep is None else keep, reps, states, cols)

    def frames(reps: int, keep: np.ndarray | None = None, states: dict | None = None,
               **cols: object) -> Iterator[pd.DataFrame]:
        """:func:`frame`'s rows, a frame per interval."""
        rows = np.arange(t_n * z_n * reps) if keep is None else keep
        bounds = np.searchsorted(rows, np.arange(t_n + 1) * (z_n * reps))
        for t in range(t_n):
            yield rows_frame(rows[bounds[t]:bounds[t + 1]], reps, states, cols)

    def rows_frame(rows: np.ndarray, reps: int, states: dict | None, cols: dict) -> pd.DataFrame:
        zone = (rows // reps) % z_n

        def pick(v: object) -> object:
            return v.take(rows) if isinstance(v, pd.api.extensions.ExtensionArray | _PerZone) else \
                np.asarray(v).reshape(-1)[rows]

        out = {"zone_id": take_text(ids, zone), "zone_name": take_text(names, zone),
               "year_from": y_from[rows // (z_n * reps)], "year_to": y_to[rows // (z_n * reps)]}
        out |= {k: pick(v) for k, v in cols.items()}
        out |= {k: pd.Categorical.from_codes(np.asarray(c).reshape(-1)[rows] + 2,
                                             ["", below, "uniform", above])
                for k, (c, above, below) in (states or {}).items()}
        return pd.DataFrame(out)

    def held(states: np.ndarray) -> _PerZone:
        """The same state in every interval (not with one interval); missing where no interval has a
        state to hold (no area to measure against: a class absent from every map)."""
        return _PerZone(ia.stationary(states) if t_n > 1 else np.zeros(states.shape[1:], bool),
                        np.all(states == ia.NONE, axis=0))

    interval = frame(1, years=np.repeat(dur[:, 0], z_n), extent_px=iv.extent.astype(np.int64),
                     change_px=iv.change.astype(np.int64),
                     change_pct=100 * iv.change / np.where(iv.extent > 0, iv.extent, np.nan),
                     S_pct_per_yr=iv.S, U_pct_per_yr=np.tile(u, t_n),
                     states={"pace": (ia.compare(iv.S, u[None, :]), "fast", "slow")})

    gain_b, loss_b = ia.compare(cat.G, iv.S[..., None]), ia.compare(cat.L, iv.S[..., None])
    category = frame(n, class_code=np.tile(codes, t_n * z_n), class_name=tile_text(cnames, t_n * z_n),
                     gross_gain_ha_per_yr=cat.gain * pixel_area_ha,
                     gross_loss_ha_per_yr=cat.loss * pixel_area_ha,
                     gain_intensity_pct_per_yr=cat.G, loss_intensity_pct_per_yr=cat.L,
                     S_pct_per_yr=np.repeat(iv.S.reshape(-1), n),
                     gain_stationary=held(gain_b), loss_stationary=held(loss_b),
                     gain_uniform_transition_pct_per_yr=tr.W, loss_uniform_transition_pct_per_yr=tr.V,
                     states={"gain_behaviour": (gain_b, "active", "dormant"),
                             "loss_behaviour": (loss_b, "active", "dormant")})
    category = category[CATEGORY_COLUMNS]

    # Transitions where class_to gained or class_from lost: the others say nothing.
    moved = ((cat.gain[..., None, :] > 0) | (cat.loss[..., :, None] > 0)) & ~np.eye(n, dtype=bool)
    w, v = tr.W[..., None, :], tr.V[..., :, None]  # (t, z, 1, n) for class_to; (t, z, n, 1) for class_from
    tgain, tloss = ia.compare(tr.R, w), ia.compare(tr.Q, v)
    frm, to = np.repeat(np.arange(n), n), np.tile(np.arange(n), n)
    transition = (frames if parts else frame)(n * n, np.flatnonzero(moved.reshape(-1)),
                       class_from=np.tile(codes[frm], t_n * z_n),
                       class_from_name=tile_text(cnames.take(frm), t_n * z_n),
                       class_to=np.tile(codes[to], t_n * z_n),
                       class_to_name=tile_text(cnames.take(to), t_n * z_n),
                       gain_intensity_pct_per_yr=tr.R, gain_stationary=held(tgain),
                       loss_intensity_pct_per_yr=tr.Q, loss_stationary=held(tloss),
                       states={"gain_behaviour": (tgain, "targeted", "avoided"),
                               "loss_behaviour": (tloss, "targeted", "avoided")})
    transition = (f[TRANSITION_COLUMNS] for f in transition) if parts else transition[TRANSITION_COLUMNS]

    def per_class_and_all(per: np.ndarray, total: np.ndarray) -> np.ndarray:
        return np.concatenate([per, total[..., None]], axis=-1).reshape(-1) * pixel_area_ha

    all_codes = np.append(codes, ALL_CLASSES)
    all_names = text(np.append(np.asarray(index.names, dtype=object), "all"))
    components = frame(n + 1, class_code=np.tile(all_codes, t_n * z_n),
                       class_name=tile_text(all_names, t_n * z_n),
                       difference_ha=per_class_and_all(cat.gain * dur[..., None] + cat.loss * dur[..., None],
                                                       co.difference),
                       quantity_ha=per_class_and_all(co.quantity, co.Q),
                       exchange_ha=per_class_and_all(co.exchange, co.E),
                       shift_ha=per_class_and_all(co.shift, co.S))
    return {"intensity_interval": interval, "intensity_category": category,
            "intensity_transition": transition, "intensity_components": components}

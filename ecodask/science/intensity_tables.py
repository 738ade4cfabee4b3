"""The intensity-analysis tables of a run (:mod:`ecodask.science.intensity`), per zone and the whole
region, over each interval between consecutive years of the run:

- ``intensity_interval``: the interval level: change (px, % of the extent), ``S`` and ``U`` (%/yr),
  ``pace`` fast / slow;
- ``intensity_category``: per class, annual gross gain and loss (ha/yr), gain and loss intensity
  against ``S`` (%/yr), active / dormant, and whether that holds in every interval (stationary);
- ``intensity_transition``: per transition (class_from -> class_to, only those where one of the two
  changed): the intensity of class_to's gain taking class_from (``R``) against its uniform level
  (``W``), targeted / avoided, and of class_from's loss going to class_to (``Q`` against ``V``),
  each with its stationarity;
- ``intensity_components``: per class and for all classes (class_code 0, ``all``): difference,
  quantity, exchange and shift (ha).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ecodask.science import intensity as ia
from ecodask.science.landuse import ClassIndex, repeat_text, text, tile_text, zone_labels

#: Class code of the rows of ``intensity_components`` that sum every class.
ALL_CLASSES = 0


def intensity_tables(tm: np.ndarray, pairs: Sequence[tuple[int, int]], years: Sequence[int],
                     zones: pd.DataFrame, index: ClassIndex, pixel_area_ha: float) -> dict[str, pd.DataFrame]:
    """The four tables from ``tm``: pixels (pairs, zones + region, n, n) of the consecutive
    ``pairs`` (indices into ``years``, in order); empty dict without an interval."""
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

    def frame(reps: int, **cols: object) -> pd.DataFrame:
        """Rows in (interval, zone, reps) order, zone labels and years laid out."""
        base = {"zone_id": tile_text(repeat_text(ids, reps), t_n),
                "zone_name": tile_text(repeat_text(names, reps), t_n),
                "year_from": np.repeat(y_from, z_n * reps), "year_to": np.repeat(y_to, z_n * reps)}
        return pd.DataFrame(base | cols)

    pace = ia.behaviour(iv.S, u[None, :], "fast", "slow")
    interval = frame(1, years=np.repeat(dur[:, 0], z_n), extent_px=iv.extent.reshape(-1).astype(np.int64),
                     change_px=iv.change.reshape(-1).astype(np.int64),
                     change_pct=(100 * iv.change / np.where(iv.extent > 0, iv.extent, np.nan)).reshape(-1),
                     S_pct_per_yr=iv.S.reshape(-1), U_pct_per_yr=np.tile(u, t_n), pace=pace.reshape(-1))

    s = iv.S[..., None]
    gain_b, loss_b = ia.behaviour(cat.G, s, "active", "dormant"), ia.behaviour(cat.L, s, "active", "dormant")
    several = t_n > 1  # stationarity needs two intervals or more

    def held(states: np.ndarray) -> np.ndarray:  # the same state in every interval, as the states' shape
        return np.broadcast_to(ia.stationary(states) if several else np.zeros(states.shape[1:], bool),
                               states.shape)

    gain_st, loss_st = held(gain_b), held(loss_b)
    category = frame(n, class_code=np.tile(codes, t_n * z_n), class_name=tile_text(cnames, t_n * z_n),
                     gross_gain_ha_per_yr=(cat.gain * pixel_area_ha).reshape(-1),
                     gross_loss_ha_per_yr=(cat.loss * pixel_area_ha).reshape(-1),
                     gain_intensity_pct_per_yr=cat.G.reshape(-1), loss_intensity_pct_per_yr=cat.L.reshape(-1),
                     S_pct_per_yr=np.repeat(iv.S.reshape(-1), n), gain_behaviour=gain_b.reshape(-1),
                     loss_behaviour=loss_b.reshape(-1), gain_stationary=gain_st.reshape(-1),
                     loss_stationary=loss_st.reshape(-1))

    w, v = tr.W[..., None, :], tr.V[..., :, None]  # (t, z, 1, n) for class_to; (t, z, n, 1) for class_from
    tgain = ia.behaviour(tr.R, w, "targeted", "avoided")
    tloss = ia.behaviour(tr.Q, v, "targeted", "avoided")
    frm, to = np.repeat(np.arange(n), n), np.tile(np.arange(n), n)
    transition = frame(n * n, class_from=np.tile(codes[frm], t_n * z_n),
                       class_from_name=tile_text(text(np.asarray(index.names)[frm]), t_n * z_n),
                       class_to=np.tile(codes[to], t_n * z_n),
                       class_to_name=tile_text(text(np.asarray(index.names)[to]), t_n * z_n),
                       area_ha_per_yr=(c / dur[..., None, None] * pixel_area_ha).reshape(-1),
                       gain_intensity_pct_per_yr=tr.R.reshape(-1),
                       gain_uniform_pct_per_yr=np.broadcast_to(w, tr.R.shape).reshape(-1),
                       gain_behaviour=tgain.reshape(-1),
                       gain_stationary=held(tgain).reshape(-1),
                       loss_intensity_pct_per_yr=tr.Q.reshape(-1),
                       loss_uniform_pct_per_yr=np.broadcast_to(v, tr.Q.shape).reshape(-1),
                       loss_behaviour=tloss.reshape(-1),
                       loss_stationary=held(tloss).reshape(-1))
    # Only transitions where class_to gained or class_from lost: the rest say nothing.
    moved = ((cat.gain[..., None, :] > 0) | (cat.loss[..., :, None] > 0)) & ~np.eye(n, dtype=bool)
    transition = transition[moved.reshape(-1)].reset_index(drop=True)

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

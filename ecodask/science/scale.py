"""The scale effect of the Geographical Detector's q: which analysis cell size to read the drivers at.

Per year and cell size, from the factor detector's rows (``q``, ``p``) at every size:

- ``q90``: the 90 % quantile (numpy's default, as R's type 7) of the significant q (p < alpha) of
  the drivers, and ``q_mean`` their mean;
- ``best_q90``: the size whose ``q90`` is highest, the criterion of the GD package's size effects of
  spatial units (``sesu``; Song, Wang, Ge & Xu 2020);
- ``levels_off``: the first size at which ``q_mean`` grows by at most ``rate`` (5 %) over the next
  smaller size after having grown by more (gdverse's ``loess_optscale`` rule, read here on the q
  themselves rather than on a LOESS curve through them: with a handful of sizes there is nothing to
  smooth; ours); where no size qualifies, the size of the highest ``q_mean``, as gdverse does. No
  lower rate is tried first: gdverse up to 1.0 did (its own ``loess_optdiscnum`` retried with
  ``rate * 0.1`` when no growth reached ``rate``), but since 1.1 ``loess_optscale`` calls
  sdsfun's ``loess_optnum``, which since sdsfun 0.4.0 has no such retry (a growth that is not
  defined, the first size's, counts 0 there and here).

Per year and driver (:func:`driver_levels_off`, the ``levels_off`` column of the scale table): the
same rule on that driver's significant q alone (ours: gdverse reads the mean over drivers only).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: The relative growth of q below which it has levelled off (gdverse's default).
LEVEL_RATE = 0.05
SUMMARY_COLUMNS = ["year", "size_m", "drivers", "significant", "q90", "q_mean", "best_q90", "levels_off"]


def levels_off(sizes: np.ndarray, q: np.ndarray, rate: float = LEVEL_RATE) -> float:
    """The size at which ``q`` (ascending ``sizes``) levels off; NaN when no q is finite."""
    ok = np.isfinite(q)
    sizes, q = np.asarray(sizes, dtype=np.float64)[ok], np.asarray(q, dtype=np.float64)[ok]
    if not q.size:
        return np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.concatenate([[0.0], np.diff(q) / q[:-1]])
    growth = np.where(np.isfinite(growth), growth, 0.0)
    for i in range(1, len(q)):
        if growth[i] <= rate and growth[i - 1] > rate:
            return float(sizes[i])
    return float(sizes[np.argmax(q)])


def driver_levels_off(rows: pd.DataFrame, alpha: float = 0.05, rate: float = LEVEL_RATE) -> pd.Series:
    """Per row of ``rows`` (year, size_m in m, factor, q, p), whether ``size_m`` is the size at which
    that year's q of that driver levels off (:func:`levels_off` on its q with p < ``alpha``, the
    others left out); all False for a driver with no significant q."""
    sig = rows["q"].where(rows["p"] < alpha)
    out = pd.Series(False, index=rows.index)
    for _, g in rows.assign(_q=sig).groupby(["year", "factor"], sort=False):
        g = g.sort_values("size_m")
        flat = levels_off(g["size_m"].to_numpy(), g["_q"].to_numpy(), rate)
        out[g.index] = g["size_m"].to_numpy(np.float64) == flat
    return out


def scale_summary(rows: pd.DataFrame, alpha: float = 0.05, rate: float = LEVEL_RATE) -> pd.DataFrame:
    """Per year and size (``rows``: year, size_m, factor, q, p), the summary above."""
    out = []
    for year, by_year in rows.groupby("year", sort=True):
        parts = []
        for size, g in by_year.groupby("size_m", sort=True):
            sig = g["q"][(g["p"] < alpha) & np.isfinite(g["q"])].to_numpy(np.float64)
            parts.append({"year": year, "size_m": size, "drivers": int(g["factor"].nunique()),
                          "significant": int(sig.size),
                          "q90": float(np.quantile(sig, 0.9)) if sig.size else np.nan,
                          "q_mean": float(sig.mean()) if sig.size else np.nan})
        t = pd.DataFrame(parts)
        q90 = t["q90"].to_numpy(np.float64)
        best = float(t["size_m"].iloc[int(np.nanargmax(q90))]) if np.isfinite(q90).any() else np.nan
        flat = levels_off(t["size_m"].to_numpy(), t["q_mean"].to_numpy(), rate)
        out.append(t.assign(best_q90=t["size_m"] == best, levels_off=t["size_m"] == flat))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=SUMMARY_COLUMNS)

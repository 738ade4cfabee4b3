"""Trade-offs and synergies between ecosystem services across the zones of a run, per year.

For each pair of services ``a``, ``b`` and each year: Spearman's rank correlation ``rho`` of the
zones' ESV densities (CNY/ha/yr: each zone's ESV of the service over its area with land cover),
ties at their mean rank, with its two-sided p-value (``scipy.stats.spearmanr``: Student's t with
``n - 2`` degrees of freedom) over the ``n`` zones with data. A pair is a **synergy** when
``rho > 0`` and ``p < alpha``, a **trade-off** when ``rho < 0`` and ``p < alpha``, else ``none``
(the usual reading in ESV studies, e.g. Raudsepp-Hearne et al. 2010). Densities rather than totals:
with totals, a zone's size alone makes every pair a synergy (ours). Fewer than 3 zones, or a
service equal in every zone: no correlation (NaN, ``none``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

COLUMNS = ["year", "service_a", "service_b", "rho", "p_value", "zones", "relation"]


def spearman(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spearman's rho and its two-sided p-value between the columns of ``x`` (rows: zones),
    ``(k, k)`` each; NaN for a constant column or fewer than 3 rows."""
    from scipy import stats

    n, k = x.shape
    rho = np.full((k, k), np.nan)
    p = np.full((k, k), np.nan)
    varied = np.flatnonzero(np.ptp(x, axis=0) > 0) if n else np.array([], int)
    if n < 3 or len(varied) < 2:
        return rho, p
    res = stats.spearmanr(x[:, varied])
    r, pv = np.atleast_2d(res.statistic), np.atleast_2d(res.pvalue)
    if r.shape == (1, 1):  # two columns: scipy returns scalars
        r = np.array([[1.0, r[0, 0]], [r[0, 0], 1.0]])
        pv = np.array([[0.0, pv[0, 0]], [pv[0, 0], 0.0]])
    rho[np.ix_(varied, varied)], p[np.ix_(varied, varied)] = r, pv
    return rho, p


def service_tradeoffs(density: np.ndarray, years: Sequence[int], services: Sequence[str],
                      alpha: float = 0.05) -> pd.DataFrame:
    """One row per year and pair of services (each pair once, in the services' order) from
    ``density``: (years, zones, services) CNY/ha/yr, NaN for a zone without data that year."""
    rows = []
    k = len(services)
    a, b = np.triu_indices(k, 1)
    for t, year in enumerate(years):
        x = np.asarray(density[t], float)
        x = x[np.isfinite(x).all(axis=1)]
        rho, p = spearman(x)
        r, pv = rho[a, b], p[a, b]
        relation = np.where(np.isfinite(pv) & (pv < alpha) & (r > 0), "synergy",
                            np.where(np.isfinite(pv) & (pv < alpha) & (r < 0), "trade-off", "none"))
        rows.append(pd.DataFrame({"year": int(year), "service_a": np.asarray(services, object)[a],
                                  "service_b": np.asarray(services, object)[b], "rho": r, "p_value": pv,
                                  "zones": len(x), "relation": relation}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=COLUMNS)

"""Trade-offs and synergies between ecosystem services across the zones of a run, per year.

For each pair of services ``a``, ``b`` and each year: Spearman's rank correlation ``rho`` of the
zones' ESV densities (CNY/ha/yr: each zone's ESV of the service over its area with land cover),
ties at their mean rank, with its two-sided p-value (``scipy.stats.spearmanr``: Student's t with
``n - 2`` degrees of freedom) over the ``n`` zones with data. A pair is a **synergy** when
``rho > 0`` and ``p < alpha``, a **trade-off** when ``rho < 0`` and ``p < alpha``, else ``none``
(the usual reading in ESV studies, e.g. Raudsepp-Hearne et al. 2010). Densities rather than totals:
with totals, a zone's size alone makes every pair a synergy (ours). Fewer than 3 zones, or a
service equal in every zone: no correlation (NaN, ``none``).

Across analysis cells (``esv.cell_tradeoffs``) the same rho and p are taken over the cells with land
cover, each cell's density of a service from its class composition (:func:`cell_densities`), with a
rank correlation whose memory stays a float32 per cell and service (:func:`spearman_ranked`): a
year of the national grid's 10.5 million cells and 11 services took 0.49 GB above the composition,
``scipy.stats.spearmanr`` 2.09 GB (BENCHMARKS.md). Cells are not independent (neighbours share their land
cover), so their p-values overstate significance; the zones' test is the one to read for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

COLUMNS = ["year", "service_a", "service_b", "rho", "p_value", "zones", "relation"]
#: The table across analysis cells: ``cells`` (the cells with land cover) in place of ``zones``.
CELL_COLUMNS = [c if c != "zones" else "cells" for c in COLUMNS]
#: Rows of standardized ranks multiplied at a time in float64 by :func:`spearman_ranked`.
BLOCK = 1 << 20


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


def standard_ranks(x: np.ndarray) -> np.ndarray | None:
    """The ranks of ``x`` (1-D, ties at their mean rank) centred and scaled to unit length, float32,
    so that Spearman's rho of two columns is the dot product of theirs; None for a constant column or
    fewer than 3 values."""
    from scipy import stats

    x = np.asarray(x, float)
    if len(x) < 3 or not np.ptp(x) > 0:
        return None
    r = stats.rankdata(x)
    r -= (len(x) + 1) / 2.0
    r /= np.sqrt(np.dot(r, r))
    return r.astype(np.float32)


def spearman_ranked(z: Sequence[np.ndarray | None], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Spearman's rho and its two-sided p-value (Student's t, ``n - 2`` degrees of freedom, as
    ``scipy.stats.spearmanr``) between columns given as :func:`standard_ranks` of ``n`` values each
    (None: a constant column, NaN). Products are summed in float64, :data:`BLOCK` rows at a time."""
    from scipy import stats

    k = len(z)
    rho = np.full((k, k), np.nan)
    for a in range(k):
        if z[a] is None:
            continue
        rho[a, a] = 1.0
        for b in range(a + 1, k):
            if z[b] is None:
                continue
            s = sum(float(np.dot(z[a][i : i + BLOCK].astype(np.float64),
                                 z[b][i : i + BLOCK].astype(np.float64))) for i in range(0, n, BLOCK))
            rho[a, b] = rho[b, a] = min(1.0, max(-1.0, s))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = rho * np.sqrt((n - 2) / ((1.0 + rho) * (1.0 - rho)))
    p = np.where(np.isfinite(rho), 2 * stats.t.sf(np.abs(t), n - 2), np.nan)
    return rho, p


def cell_densities(counts: np.ndarray, vc: np.ndarray, g_of: np.ndarray,
                   multiplier: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Each service's ESV density (CNY/ha/yr) per analysis cell with land cover, from its class
    composition: ``Σ_k n_k VC[s, k] m[g(s)] / Σ_k n_k``.

    ``counts``: (classes, cells) pixels of each class per cell; ``vc``: (services, classes) CNY/ha/yr
    (NaN: no value, counted as 0); ``g_of``: each service's group index; ``multiplier``: (groups,
    cells) the spatial adjustment per cell, or None. Yields one float64 array per service, over the
    cells whose pixels sum above 0 in their order, built when asked for (one service's worth of
    memory beside the counts)."""
    counts = np.asarray(counts)
    n = counts.sum(axis=0, dtype=np.int64)
    valued = n > 0
    n = n[valued].astype(np.float64)
    coef = np.where(np.isfinite(vc), vc, 0.0)
    for s in range(coef.shape[0]):
        d = np.zeros(len(n))
        for k in np.flatnonzero(coef[s]):
            d += coef[s, k] * counts[k][valued]
        d /= n
        if multiplier is not None:
            d *= np.asarray(multiplier)[g_of[s]][valued]
        yield d


def _rows(year: int, services: Sequence[str], rho: np.ndarray, p: np.ndarray, n: int, count: str,
          alpha: float) -> pd.DataFrame:
    a, b = np.triu_indices(len(services), 1)
    r, pv = rho[a, b], p[a, b]
    relation = np.where(np.isfinite(pv) & (pv < alpha) & (r > 0), "synergy",
                        np.where(np.isfinite(pv) & (pv < alpha) & (r < 0), "trade-off", "none"))
    names = np.asarray(services, object)
    return pd.DataFrame({"year": int(year), "service_a": names[a], "service_b": names[b], "rho": r,
                         "p_value": pv, count: n, "relation": relation})


def cell_tradeoffs(year: int, densities: Iterable[np.ndarray], services: Sequence[str],
                   alpha: float = 0.05) -> pd.DataFrame:
    """One year's rows across analysis cells (:data:`CELL_COLUMNS`) from each service's densities
    over the same cells (:func:`cell_densities`), ranked one service at a time."""
    z, n = [], 0
    for d in densities:
        n = len(d)
        z.append(standard_ranks(d))
    rho, p = spearman_ranked(z, n)
    return _rows(year, services, rho, p, n, "cells", alpha)


def service_tradeoffs(density: np.ndarray, years: Sequence[int], services: Sequence[str],
                      alpha: float = 0.05) -> pd.DataFrame:
    """One row per year and pair of services (each pair once, in the services' order) from
    ``density``: (years, zones, services) CNY/ha/yr, NaN for a zone without data that year."""
    rows = []
    for t, year in enumerate(years):
        x = np.asarray(density[t], float)
        x = x[np.isfinite(x).all(axis=1)]
        rho, p = spearman(x)
        rows.append(_rows(year, services, rho, p, len(x), "zones", alpha))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=COLUMNS)

"""Trade-offs and synergies between ecosystem services across the zones of a run, per year.

For each pair of services ``a``, ``b`` and each year: Spearman's rank correlation ``rho`` of the
zones' ESV densities (CNY/ha/yr: each zone's ESV of the service over its area with land cover),
ties at their mean rank, with its two-sided p-value over the ``n`` zones with data: exact up to
:data:`EXACT_MAX` zones (every pairing of the ranks enumerated, :func:`exact_p`; R's ``cor.test`` is
exact up to the same 9), beyond from Student's t with ``n - 2`` degrees of freedom
(``scipy.stats.spearmanr``); the column ``p_method`` says which (``exact``, ``t``). A pair is a
**synergy** when ``rho > 0`` and ``p < alpha``, a **trade-off** when ``rho < 0`` and ``p < alpha``,
else ``none`` (the usual reading in ESV studies, e.g. Raudsepp-Hearne et al. 2010). Densities rather
than totals: with totals, a zone's size alone makes every pair a synergy (ours). Fewer than 3 zones,
or a service equal in every zone: no correlation (NaN, ``none``).

Across analysis cells (``esv.cell_tradeoffs``) the same rho is taken over the cells with land
cover, each cell's density of a service from its class composition (:func:`cell_densities`), with a
rank correlation whose memory stays a float32 per cell and service (:func:`spearman_ranked`): a
year of the national grid's 10.5 million cells and 11 services took 0.49 GB above the composition,
``scipy.stats.spearmanr`` 2.09 GB (BENCHMARKS.md). Cells are not independent (neighbours share their
land cover), and over millions of them every p is ~0, so there the relation is read from rho alone:
a synergy at ``rho >= RHO_MIN`` (:data:`RHO_MIN`), a trade-off at ``rho <= -RHO_MIN`` (ours); the p
(Student's t) stays in the table for reference only.

Every service's density is a linear mix of the same land-cover shares (``Σ_k share_k VC[s, k]``), so
part of any correlation comes from the coefficient table itself: two services whose coefficient
columns are proportional correlate perfectly whatever the land.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from functools import cache

import numpy as np
import pandas as pd

COLUMNS = ["year", "service_a", "service_b", "rho", "p_value", "p_method", "zones", "relation"]
#: The table across analysis cells: ``cells`` (the cells with land cover) in place of ``zones``.
CELL_COLUMNS = [c if c != "zones" else "cells" for c in COLUMNS]
#: Rows of standardized ranks multiplied at a time in float64 by :func:`spearman_ranked`.
BLOCK = 1 << 20
#: Up to this many values the p of rho is exact (all ``n!`` pairings; 362,880 at 9, ~13 ms a pair on
#: one core), beyond it Student's t. R's ``cor.test`` (AS 89, ``prho.c``) is exact up to the same 9.
EXACT_MAX = 9
#: Across analysis cells, ``|rho|`` from which a pair is a synergy or a trade-off (Cohen's "medium"
#: correlation), p not used: over millions of autocorrelated cells every p is ~0.
RHO_MIN = 0.3


@cache
def _pairings(n: int) -> np.ndarray:
    """Every permutation of ``range(n)``, (n!, n) int8 (3.3 MB at n = 9)."""
    return np.array(list(itertools.permutations(range(n))), dtype=np.int8).reshape(-1, n)


def _doubled_ranks(x: np.ndarray) -> np.ndarray:
    """Twice the ranks of ``x`` (ties at their mean rank), as exact integers (int64)."""
    from scipy import stats

    return np.rint(2.0 * stats.rankdata(x)).astype(np.int64)


def _exact_from_ranks(ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
    """Exact two-sided p of rho between the doubled ranks ``ra`` (n,) and each column of ``rb`` (n, m):
    ``min(1, 2 min(P(D >= d), P(D <= d)))`` over the ``n!`` pairings, ``D = Σ ra[perm] rb`` (rho is
    increasing in it, the ranks' sums and sums of squares being the same in every pairing)."""
    perms = _pairings(len(ra))
    d = ra[perms] @ rb  # (n!, m) integers: compared exactly
    d0 = ra @ rb
    tail = np.minimum((d >= d0).sum(axis=0), (d <= d0).sum(axis=0))
    return np.minimum(1.0, 2.0 * tail / len(perms))


def exact_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided p of Spearman's rho between ``x`` and ``y`` (1-D, the same ``n``, 2 to
    :data:`EXACT_MAX`) from its exact permutation distribution: every pairing of the values equally
    likely under independence, ties kept at their mean ranks (the distribution given the ties)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if not 2 <= len(x) <= EXACT_MAX or len(y) != len(x):
        raise ValueError(f"exact p needs 2 to {EXACT_MAX} pairs of values, got {len(x)} and {len(y)}")
    return float(_exact_from_ranks(_doubled_ranks(x), _doubled_ranks(y)[:, None])[0])


def p_method(n: int, exact_max: int = EXACT_MAX) -> str:
    """Which p :func:`spearman` gives over ``n`` rows: ``exact`` or ``t``."""
    return "exact" if n <= exact_max else "t"


def spearman(x: np.ndarray, exact_max: int = EXACT_MAX) -> tuple[np.ndarray, np.ndarray]:
    """Spearman's rho and its two-sided p-value between the columns of ``x`` (rows: zones),
    ``(k, k)`` each; NaN for a constant column or fewer than 3 rows. p is exact up to ``exact_max``
    rows (:func:`exact_p`), else from Student's t with ``n - 2`` degrees of freedom."""
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
    if n <= exact_max:
        ranks = np.stack([_doubled_ranks(x[:, j]) for j in varied], axis=1)
        for i, a in enumerate(varied[:-1]):
            pa = _exact_from_ranks(ranks[:, i], ranks[:, i + 1:])
            p[a, varied[i + 1:]] = p[varied[i + 1:], a] = pa
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
          method: str, related: np.ndarray) -> pd.DataFrame:
    """The table's rows of each pair once; ``related``: (k, k) whether a pair's rho counts."""
    a, b = np.triu_indices(len(services), 1)
    r, pv, keep = rho[a, b], p[a, b], related[a, b] & np.isfinite(rho[a, b])
    relation = np.where(keep & (r > 0), "synergy", np.where(keep & (r < 0), "trade-off", "none"))
    names = np.asarray(services, object)
    return pd.DataFrame({"year": int(year), "service_a": names[a], "service_b": names[b], "rho": r,
                         "p_value": pv, "p_method": method, count: n, "relation": relation})


def cell_tradeoffs(year: int, densities: Iterable[np.ndarray], services: Sequence[str],
                   rho_min: float = RHO_MIN) -> pd.DataFrame:
    """One year's rows across analysis cells (:data:`CELL_COLUMNS`) from each service's densities
    over the same cells (:func:`cell_densities`), ranked one service at a time; a pair's relation
    from ``|rho| >= rho_min`` alone (p: Student's t, for reference)."""
    z, n = [], 0
    for d in densities:
        n = len(d)
        z.append(standard_ranks(d))
    rho, p = spearman_ranked(z, n)
    with np.errstate(invalid="ignore"):
        related = np.abs(rho) >= rho_min
    return _rows(year, services, rho, p, n, "cells", "t", related)


def service_tradeoffs(density: np.ndarray, years: Sequence[int], services: Sequence[str],
                      alpha: float = 0.05) -> pd.DataFrame:
    """One row per year and pair of services (each pair once, in the services' order) from
    ``density``: (years, zones, services) CNY/ha/yr, NaN for a zone without data that year. p exact
    up to :data:`EXACT_MAX` zones, else Student's t (``p_method``); related at ``p < alpha``."""
    rows = []
    for t, year in enumerate(years):
        x = np.asarray(density[t], float)
        x = x[np.isfinite(x).all(axis=1)]
        rho, p = spearman(x)
        with np.errstate(invalid="ignore"):
            related = p < alpha
        rows.append(_rows(year, services, rho, p, len(x), "zones", p_method(len(x)), related))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=COLUMNS)

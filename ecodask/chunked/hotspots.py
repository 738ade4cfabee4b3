"""ESV hot spots on a (Dask) analysis grid: global Moran's I, Getis-Ord Gi* and the per-zone
summary, each a neighbour pass (``dask.array.map_overlap(depth=1)`` over
:mod:`ecodask.kernels.neighbours`) or a block sum; the conventions and the classes are
:mod:`ecodask.science.hotspots`."""

from __future__ import annotations

from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pandas as pd
from scipy import stats

from ecodask.chunked.blockwise import map_sum_blocks
from ecodask.errors import InputError, problem
from ecodask.kernels.neighbours import MORAN_CROSS, MORAN_S1, MORAN_S2, gi_star_z, moran_terms, queen_count
from ecodask.science.hotspots import (
    CLASS_COLUMNS,
    SUMMARY_COLUMNS,
    classify_z,
    zone_class_sums,
)
from ecodask.science.landuse import zone_labels

_DEFAULT_SOURCE = "ESV analysis grid"


def _grid(y: object, source: str | Path, key: str) -> da.Array:
    a = getattr(y, "data", y) if not isinstance(y, np.ndarray | da.Array) else y
    a = a if isinstance(a, da.Array) else da.from_array(np.asarray(a))
    if a.ndim != 2:
        raise InputError([problem(source, key, a.shape, "expected a 2-D analysis grid (y, x)")])
    if not np.issubdtype(a.dtype, np.number):
        raise InputError([problem(source, key, str(a.dtype), "expected a numeric grid")])
    return a.astype(np.float64)


def _moments(a: da.Array, source: str | Path, key: str) -> tuple[int, float]:
    """Number of finite cells and their mean, after checking the input can carry the statistics."""
    finite = da.isfinite(a)
    n, total, lo, hi = dask.compute(finite.sum(), da.where(finite, a, 0.0).sum(),
                                    da.where(finite, a, np.inf).min(), da.where(finite, a, -np.inf).max())
    n = int(n)
    if n == 0:
        raise InputError([problem(source, key, "all NaN", "the grid has no finite cell")])
    if n < 3:
        raise InputError([problem(source, key, f"{n} finite cells", "at least 3 finite cells are needed")])
    if lo == hi:
        raise InputError([problem(source, key, f"constant {lo!r}",
                                  "all finite cells hold the same value: variance 0, statistic undefined")])
    return n, float(total) / n


def _neighbour_counts(a: da.Array) -> da.Array:
    return da.map_overlap(queen_count, a, depth=1, boundary=np.nan, trim=False, chunks=a.chunks,
                          dtype=np.float64)


def morans_i(y: np.ndarray | da.Array, *, source: str | Path = _DEFAULT_SOURCE) -> dict[str, float | int]:
    """Global Moran's I of ``y`` with row-standardised queen weights (esda ``Moran``, transformation "r").

    ``y``: 2-D grid (CNY/ha/yr or any unit; I is dimensionless), NaN = no data. Returns a dict:

    * ``I``: Moran's I; ``EI``: its expectation ``-1 / (n - 1)``;
    * ``VI_norm``, ``seI_norm``: variance and standard error under the normality assumption;
    * ``z_norm``: ``(I - EI) / seI_norm``; ``p_norm``: TWO-sided p-value ``2 * sf(|z_norm|)``
      (esda's ``p_norm`` with ``two_tailed=True``), ``p_tails`` = 2;
    * ``n``: finite cells (observations); ``islands``: finite cells with no finite neighbour (kept
      in ``n``, mean and variance, with empty weights rows as in esda);
    * ``s0``, ``s1``, ``s2``: the weights' sums (S0 = non-island cells for row-standardised W).

    Two passes over ``y``: moments, then neighbour counts and the per-cell terms (two chained
    ``map_overlap`` with depth 1) reduced with dask. Raises :class:`InputError` for fewer than 3
    finite cells, constant values or a grid where every finite cell is an island.
    """
    a = _grid(y, source, "y")
    n, mean = _moments(a, source, "y")
    z = a - mean  # NaN stays NaN; infinities are no data
    z = da.where(da.isfinite(z), z, np.nan)
    k = _neighbour_counts(z)
    terms = da.map_overlap(moran_terms, z, k, depth=1, boundary=np.nan, trim=False,
                           chunks=(*z.chunks, (3,)), new_axis=2, dtype=np.float64)
    sums, z2ss, islands = dask.compute(terms.sum(axis=(0, 1)), da.nansum(z * z), (k == 0).sum())
    cross, s1, s2 = (float(sums[i]) for i in (MORAN_CROSS, MORAN_S1, MORAN_S2))
    islands = int(islands)
    s0 = float(n - islands)
    if s0 == 0:
        raise InputError([problem(source, "y", f"{n} isolated cells",
                                  "no finite cell has a finite queen neighbour: Moran's I undefined")])
    z2ss = float(z2ss)
    i_stat = n / s0 * cross / z2ss
    ei = -1.0 / (n - 1)
    vi = (n * n * s1 - n * s2 + 3.0 * s0 * s0) / ((n - 1) * (n + 1) * s0 * s0) - (1.0 / (n - 1)) ** 2
    se = vi ** 0.5
    z_norm = (i_stat - ei) / se
    return {"I": i_stat, "EI": ei, "VI_norm": vi, "seI_norm": se, "z_norm": z_norm,
            "p_norm": float(2.0 * stats.norm.sf(abs(z_norm))), "p_tails": 2, "n": n, "islands": islands,
            "s0": s0, "s1": s1, "s2": s2}


def getis_ord_gi_star(y: np.ndarray | da.Array, *, source: str | Path = _DEFAULT_SOURCE) -> da.Array:
    """Getis-Ord Gi* z-scores of ``y`` (dimensionless), lazy, same shape and chunks as ``y``.

    Binary queen weights including the cell itself (self weight 1), as esda
    ``G_Local(y, w, transform="B", star=True).Zs``:
    ``z_i = (L_i - c_i * mean) / (sd * sqrt(c_i (n - c_i) / (n - 1)))`` with ``L_i`` the sum of
    ``y`` (CNY/ha/yr) over the cell and its finite neighbours, ``c_i`` their number, ``n`` the
    finite cells, ``mean`` and ``sd`` (population) over all finite cells. Equal to esda's ``Zs``
    when the mean is positive (esda's ratio form flips the sign for a negative mean).

    NaN where ``y`` is no data and where ``c_i = n`` (the neighbourhood is the whole sample).
    The moments are computed now (and :class:`InputError` raised for fewer than 3 finite cells or
    constant values); the z-scores stay lazy.
    """
    a = _grid(y, source, "y")
    n, mean = _moments(a, source, "y")
    d = a - mean
    (ss,) = dask.compute(da.where(da.isfinite(d), d * d, 0.0).sum())
    sd = float(np.sqrt(float(ss) / n))
    return da.map_overlap(gi_star_z, a, depth=1, boundary=np.nan, trim=False, chunks=a.chunks,
                          dtype=np.float64, n=n, mean=mean, sd=sd)


def hotspot_classes(z: np.ndarray | da.Array) -> np.ndarray | da.Array:
    """Hot/cold spot class per cell from Gi* z-scores (int8; lazy for a dask input).

    +3/+2/+1: hot spot at 99/95/90 % confidence (``z >= 2.5758 / 1.9600 / 1.6449``, two-sided
    standard-normal critical values :data:`CRITICAL_Z`, thresholds inclusive); -3/-2/-1: cold spot
    (``z <=`` minus those); 0: not significant; :data:`CLASS_NODATA` (-128) where ``z`` is NaN.
    """
    if isinstance(z, da.Array):
        return z.map_blocks(classify_z, dtype=np.int8)
    return classify_z(z)


def hotspot_summary(
    z_or_classes: np.ndarray | da.Array,
    zone_grid: np.ndarray | da.Array,
    zones: pd.DataFrame,
    *,
    source: str | Path = _DEFAULT_SOURCE,
) -> pd.DataFrame:
    """Cells per hot/cold spot class and mean Gi* z per zone, then the whole region (``ALL``).

    ``z_or_classes``: Gi* z-scores (float) or classes from :func:`hotspot_classes` (integer);
    ``zone_grid``: integer zone index per analysis cell (0 = outside every zone), aligned with it;
    ``zones``: columns ``zone`` (index), ``zone_id``, ``zone_name``. Columns of the result:
    :data:`SUMMARY_COLUMNS`: ``cells`` (cells with a class, i.e. finite z; the class columns add
    up to it), one count per class, and ``mean_gi_z`` (mean z over those cells, dimensionless;
    NaN when classes were given or the zone has no cell). The region row sums the zones.
    Raises :class:`InputError` when a classified cell carries a zone index not in ``zones``.
    """
    a = z_or_classes if isinstance(z_or_classes, da.Array) else da.from_array(np.asarray(z_or_classes))
    if np.issubdtype(a.dtype, np.integer):
        cls, z = a.astype(np.int8), None
    else:
        z = a.astype(np.float64)
        cls = hotspot_classes(z)
    zg = zone_grid if isinstance(zone_grid, da.Array) else da.from_array(np.asarray(zone_grid))
    if zg.shape != a.shape:
        raise InputError([problem(source, "zone_grid", zg.shape,
                                  f"does not match the grid shape {a.shape}")])
    zg = zg.rechunk(a.chunks)
    listed = np.sort(zones["zone"].to_numpy().astype(np.int64))
    n_zones = int(listed.max()) if len(listed) else 0
    arrays = [cls, zg] if z is None else [cls, zg, z]
    (sums,) = dask.compute(map_sum_blocks(zone_class_sums, arrays, n_zones=n_zones))
    unknown = np.ones(n_zones + 2, dtype=bool)
    unknown[0] = False
    unknown[listed] = False
    stray = sums[unknown, :7].sum()
    if stray:
        bad = sorted(int(i) for i in np.flatnonzero(unknown & (sums[:, :7].sum(axis=1) > 0)))
        raise InputError([problem(source, "zone_grid", bad[:10],
                                  f"{int(stray)} classified cells carry zone indices missing from the"
                                  " zones table (the last index stands for out-of-range values)")])
    per = np.concatenate([sums[listed], sums[listed].sum(axis=0, keepdims=True)], axis=0)
    ids, names = zone_labels(zones)
    cells = per[:, :7].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_z = np.where(cells > 0, per[:, 7] / np.maximum(cells, 1), np.nan) if z is not None else np.nan
    out = pd.DataFrame({"zone_id": ids, "zone_name": names, "cells": cells.astype(np.int64)})
    for c, col in enumerate(CLASS_COLUMNS):
        out[col] = per[:, c].astype(np.int64)
    out["mean_gi_z"] = mean_z
    return out[SUMMARY_COLUMNS]


def hotspots(
    y: np.ndarray | da.Array,
    zone_grid: np.ndarray | da.Array,
    zones: pd.DataFrame,
    *,
    source: str | Path = _DEFAULT_SOURCE,
) -> tuple[dict[str, float | int], np.ndarray, np.ndarray, pd.DataFrame]:
    """The hot-spot analysis of ``y`` as the driver stage writes it: Moran's I, the Gi* z-scores
    (computed once, float64), their classes (int8) and the per-zone summary from those z-scores."""
    moran = morans_i(y, source=source)
    gi_z = np.asarray(getis_ord_gi_star(y, source=source).compute())
    return moran, gi_z, hotspot_classes(gi_z), hotspot_summary(gi_z, zone_grid, zones, source=source)

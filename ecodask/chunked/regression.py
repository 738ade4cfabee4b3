"""The regression's sufficient statistics over chunked arrays: per-block partial moments (NaN rows
dropped) merged in one ``dask.compute`` for every year, then the fits of
:mod:`ecodask.science.regression` on them (methods.md section 6)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import dask
import dask.array as da
import numpy as np
import pandas as pd

from ecodask.errors import InputError, problem
from ecodask.science.regression import (
    SLAB_ROWS,
    Array,
    Moments,
    Partial,
    RegressionResult,
    block_partial,
    check_inputs,
    check_options,
    merge_all,
    packed_size,
    partial,
    stepwise,
    unpack,
)


def _lazy_partials(y: Array, X: Mapping[str, Array]) -> tuple[tuple[str, ...], object]:
    """The names and either a Dask array of packed per-block partials (not computed) or the list of
    partials of a NumPy input (computed slab by slab)."""
    names = check_inputs(y, X)
    arrays = [X[k] for k in names] + [y]
    q = len(arrays)
    ref = next((a for a in arrays if isinstance(a, da.Array)), None)
    if ref is None:
        flat = [np.asarray(a).ravel() for a in arrays]
        size = flat[0].size
        parts = [partial([f[i:i + SLAB_ROWS] for f in flat]) for i in range(0, max(size, 1), SLAB_ROWS)]
        return tuple(names), parts
    chunks = ref.chunks
    arrays = [a.rechunk(chunks) if isinstance(a, da.Array) else da.from_array(np.asarray(a), chunks=chunks)
              for a in arrays]
    out_chunks = tuple((1,) * len(c) for c in chunks) + ((packed_size(q),),)
    packed = da.map_blocks(block_partial, *arrays, new_axis=ref.ndim, chunks=out_chunks, dtype=np.float64,
                           meta=np.empty((0,) * (ref.ndim + 1), dtype=np.float64))
    return tuple(names), packed


def _finish(names: tuple[str, ...], parts: list[Partial]) -> Moments:
    n, dropped, hi, lo, css = merge_all(parts)
    css = (css + css.T) / 2
    return Moments(names, int(round(n)), np.asarray(hi + lo, dtype=np.float64), css, int(round(dropped)))


def _compute_all(lazies: list[tuple[tuple[str, ...], object]]) -> list[Moments]:
    """Finish several lazy moment computations with one ``dask.compute``."""
    dask_idx = [i for i, (_, p) in enumerate(lazies) if isinstance(p, da.Array)]
    computed = dask.compute(*[lazies[i][1] for i in dask_idx]) if dask_idx else ()
    results = dict(zip(dask_idx, computed, strict=True))
    out = []
    for i, (names, parts) in enumerate(lazies):
        if i in results:
            q = len(names) + 1
            packed = np.asarray(results[i]).reshape(-1, packed_size(q))
            parts = [unpack(v, q) for v in packed]
        out.append(_finish(names, parts))
    return out


def moments(y: Array, X: Mapping[str, Array]) -> Moments:
    """Sufficient statistics of the regression of ``y`` on the ``X`` variables.

    ``y`` (e.g. ESV, yuan per cell or per ha) and each ``X[name]`` (a driver, in its own units) are
    NumPy or Dask arrays of the same shape (1-D or 2-D, any numeric dtype; computed in float64).
    Rows (cells) where y or any x is NaN are dropped and counted in ``n_dropped``. Dask inputs are
    reduced block by block (all rechunked to the chunks of the first Dask array among the x's,
    then y) with a single
    ``compute``; NumPy inputs slab by slab. The result is exact up to float64 rounding of centred
    sums, independent of the chunking to ~1e-13 relative.
    """
    return _compute_all([_lazy_partials(y, X)])[0]


def regression_results(y_by_year: Mapping[int, Array],
                       X: Mapping[str, Array] | Mapping[int, Mapping[str, Array]],
                       **options) -> dict[int, RegressionResult]:
    """The selection and fit of every year (:class:`RegressionResult` by year, increasing).

    ``y_by_year``: ESV (or any dependent variable) per year; ``X``: the drivers, either one mapping
    name → array shared by all years, or a mapping year → (name → array) with every year of
    ``y_by_year``. ``options`` go to :func:`stepwise`. The moments of all years are computed with a
    single ``dask.compute``; all years are checked before anything is returned, and the problems
    of every year are raised together (the key names the year).
    """
    years = sorted(y_by_year)
    per_year = bool(X) and all(isinstance(k, int | np.integer) and isinstance(v, Mapping)
                               for k, v in X.items())
    if per_year:
        missing = [y for y in years if y not in X]
        if missing:
            raise InputError([problem("X", "years", missing, "no drivers for these years of y")])
    check_options(options.get("method", "stepwise"), options.get("criterion", "p"),
                   options.get("p_enter", 0.05), options.get("p_remove", 0.10),
                   options.get("tolerance", 1e-4), options.get("max_steps"))
    lazies, problems = [], []
    for year in years:
        try:
            lazies.append(_lazy_partials(y_by_year[year], X[year] if per_year else X))
        except InputError as e:
            problems += [problem(p.file, f"{year}: {p.key}", p.value, p.message) for p in e.problems]
    if problems:
        raise InputError(problems)
    results = {}
    for year, m in zip(years, _compute_all(lazies), strict=True):
        try:
            results[year] = stepwise(m, **options)
        except InputError as e:
            problems += [problem(p.file, f"{year}: {p.key}", p.value, p.message) for p in e.problems]
    if problems:
        raise InputError(problems)
    return results


def results_table(results: Mapping[int, RegressionResult],
                  layout: Literal["selected", "enter"] = "selected") -> pd.DataFrame:
    """One table of every year's result with a ``year`` column first: the selected model's terms
    (:meth:`RegressionResult.table`) or every variable in seed 002's layout
    (:meth:`RegressionResult.enter_table`). Raises :class:`InputError` (the key names the year)
    when the enter layout cannot fit all variables of a year together."""
    tables, problems = [], []
    for year in sorted(results):
        try:
            t = results[year].enter_table() if layout == "enter" else results[year].table()
        except InputError as e:
            problems += [problem(p.file, f"{year}: {p.key}", p.value, p.message) for p in e.problems]
            continue
        tables.append(t.assign(year=year))
    if problems:
        raise InputError(problems)
    out = pd.concat(tables, ignore_index=True)
    return out[["year", *[c for c in out.columns if c != "year"]]]


def regression_table(y_by_year: Mapping[int, Array],
                     X: Mapping[str, Array] | Mapping[int, Mapping[str, Array]],
                     layout: Literal["selected", "enter"] = "selected", **options) -> pd.DataFrame:
    """Regression table of every year: :func:`regression_results` written by :func:`results_table`
    in ``layout`` (``"selected"``: the terms of the selected model; ``"enter"``: every variable, as
    seed 002 prints them)."""
    return results_table(regression_results(y_by_year, X, **options), layout)

"""The Geographical Detector over chunked arrays (methods.md section 6): the strata sums of every
factor and pair of factors gathered over the chunks (:mod:`ecodask.chunked.strata`), then the
detectors of :mod:`ecodask.science.geodetector` on those sums. :func:`detect_arrays` serves a run's
analysis grid, :func:`detect_table` a table in memory and the ``ecodask geodetector`` command.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import dask.array as da
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from ecodask.chunked.blockwise import row_chunks
from ecodask.chunked.strata import FUSED_CELLS, Binning, binning, fine_bin_sums, overlay_sums, scan
from ecodask.errors import InputError, Problem, problem
from ecodask.science.discretize import METHODS
from ecodask.science.geodetector import Discretize, StratumSums, detectors, q_value, sum_squares

#: Tables up to this many rows bin a continuous factor one bin per distinct value (exact breaks).
EXACT_ROWS = 1_000_000


#: Most strata of a factor used as given (codes or distinct values).
MAX_STRATA = 10_000


@dataclass(frozen=True)
class Factor:
    """A factor's strata: ``stratum`` maps each fine bin to a stratum 0..K-1 and ``labels`` names
    the strata (codes or values of a factor used as given, class numbers 1..k of a discretized
    one); ``candidates`` lists the discretizations tried (empty when used as given)."""

    name: str
    bins: Binning
    stratum: np.ndarray
    labels: np.ndarray
    candidates: pd.DataFrame


def _strata_sums(fine: np.ndarray, stratum: np.ndarray, k: int, labels: np.ndarray,
                 shift: float) -> StratumSums:
    n = np.bincount(stratum, weights=fine[:, 0], minlength=k)
    s1 = np.bincount(stratum, weights=fine[:, 1], minlength=k)
    s2 = np.bincount(stratum, weights=fine[:, 2], minlength=k)
    keep = n > 0
    return StratumSums(np.asarray(labels)[keep], n[keep], s1[keep], s2[keep], shift)


def _format_breaks(edges: list[float]) -> str:
    return ", ".join(repr(float(e)) for e in edges)  # round-trips exactly


def _edges(b: Binning, inner: np.ndarray) -> list[float]:
    """The breaks as the data sees them: the method's values for exact bins, else the bin edge
    at or below each (a bin goes to the class its centre falls in)."""
    if b.exact:
        return [float(t) for t in inner]
    return [b.lo + int(np.searchsorted(b.values, t, side="right")) / b.scale for t in inner]


def _as_given(name: str, b: Binning, fine: np.ndarray, labels: np.ndarray | None) -> Factor:
    """Each non-empty fine bin (a code or a distinct value) is a stratum."""
    used = np.flatnonzero(fine[: b.nbins, 0] > 0)
    if len(used) > MAX_STRATA:
        raise InputError([problem(name, "strata", len(used), f"more than {MAX_STRATA} distinct values to use "
                                  "as strata: discretize it")])
    stratum = np.zeros(b.nbins, dtype=np.int64)
    stratum[used] = np.arange(len(used))
    lab = b.values[used] if labels is None else np.asarray(labels)[b.values[used].astype(np.int64)]
    if lab.dtype.kind == "f" and np.all(lab == np.round(lab)):
        lab = lab.astype(np.int64)
    return Factor(name, b, stratum, lab, pd.DataFrame())


def _discretized(name: str, b: Binning, fine: np.ndarray, shift: float, methods: Sequence[str],
                 ks: Sequence[int], quantile_rule: str = "type7") -> Factor:
    """Every (method, k) scored by q from the fine-bin sums; the highest q wins (optimal-parameters
    GD, Song et al. 2020; ties go to the first in method order, then the smaller k)."""
    from ecodask.science.discretize import QUANTILE_RULE_NAMES, breaks, classify, natural_breaks_all

    fine = fine[: b.nbins]
    used = np.flatnonzero(fine[:, 0] > 0)
    v, w = b.values[used], fine[used, 0]
    span = None if b.exact else (b.lo, b.lo + b.nbins / b.scale)  # the data's range
    rows, maps = [], []
    natural = natural_breaks_all(v, w, list(ks)) if "natural" in methods else {}
    for method in methods:
        for k in ks:
            row = {"factor": name, "method": method, "k": k, "q": np.nan, "strata": 0, "breaks": "",
                   "note": ""}
            try:
                if method == "natural":
                    if k not in natural:
                        breaks(v, k, "natural", w, name=name)  # raises the reason
                    inner = natural[k]
                else:
                    inner = breaks(v, k, method, w, name=name, span=span,  # type: ignore[arg-type]
                                   quantile_rule=quantile_rule)  # type: ignore[arg-type]
            except InputError as exc:
                row["note"] = exc.problems[0].message
                rows.append(row)
                maps.append(None)
                continue
            cls = np.zeros(b.nbins, dtype=np.int64)
            cls[used] = classify(v, inner)
            s = _strata_sums(fine, cls, k, np.arange(1, k + 1), shift)
            row.update(strata=len(s.n), breaks=_format_breaks(_edges(b, inner)))
            if len(s.n) > 1 and float(sum_squares(*map(np.array, s.total)).sum()) > 0:
                row["q"] = q_value(s)
            notes = [f"quantiles by {QUANTILE_RULE_NAMES[quantile_rule]}"] if method == "quantile" else []
            if len(s.n) < k:
                notes.append(f"{k - len(s.n)} empty classes")
            row["note"] = "; ".join(notes)
            rows.append(row)
            maps.append(cls)
    table = pd.DataFrame(rows)
    table["optimal"] = False
    if not table["q"].notna().any():
        raise InputError([problem(name, "discretization", "all", "no (method, k) gives two strata: "
                                  + "; ".join(sorted(set(table["note"]))))])
    best = int(table["q"].idxmax())
    table.loc[best, "optimal"] = True
    cls = maps[best]
    k = int(table.loc[best, "k"])
    present = np.unique(cls[used])
    compact = np.zeros(k, dtype=np.int64)
    compact[present] = np.arange(len(present))
    resolution = "exact values" if b.exact else f"bins {b.width:.6g} wide"
    table["bin_resolution"] = resolution
    return Factor(name, b, compact[cls], present + 1, table)


def _check_arrays(y: da.Array, xs: list[da.Array], names: list[str], source: str) -> None:
    bad = [problem(source, n, x.shape, f"shape differs from y's {y.shape}")
           for n, x in zip(names, xs, strict=True) if x.shape != y.shape]
    if bad:
        raise InputError(bad)


def _not_finite(source: str, name: str, values: da.Array, count: int) -> Problem:
    """The problem of a column with ``count`` values that are not finite: missing (NaN) or
    infinite, told apart (one more pass over that column, on the error path only)."""
    inf = int(da.isinf(values).sum().compute()) if np.issubdtype(values.dtype, np.floating) else 0
    parts = [f"{count - inf} missing values (NaN)"] if count > inf else []
    parts += [f"{inf} infinite values"] if inf else []
    return problem(source, name, "inf" if inf and count == inf else "NaN",
                   f"{' and '.join(parts)} (leave those rows out: --dropna, or dropna=True)")


def detect_arrays(
    y: ArrayLike,
    factors: dict[str, ArrayLike],
    *,
    discretize: Discretize | dict[str, Discretize] = None,
    k: int | None = None,
    methods: Sequence[str] = METHODS,
    ks: Sequence[int] = range(3, 11),
    variance: Literal["population", "sample"] = "population",
    drop_singletons: bool = True,
    alpha: float = 0.05,
    dropna: bool = False,
    labels: dict[str, np.ndarray] | None = None,
    distinct: dict[str, np.ndarray] | None = None,
    source: str = "table",
    y_name: str = "y",
    quantile_rule: str = "type7",
) -> dict[str, pd.DataFrame]:
    """All four detectors on aligned (numpy or dask) arrays: y and the factors, exact on every row.

    ``discretize`` per factor (or one for all): None uses the factor as given (its integer codes
    or distinct values are its strata); a method name with ``k`` cuts it into k classes;
    ``"optimal"`` tries every method in ``methods`` and k in ``ks`` and keeps the highest q; quantile
    breaks follow ``quantile_rule`` (R's type 7 by default, as GD and gdverse; or type 1).
    Rows where y or a factor is not finite are an error naming the columns, or, with ``dropna``,
    left out and counted (``rows_dropped``: those without y, ``rows_without_y``, e.g. cells outside
    the region, and those with y but without a factor, ``rows_without_a_factor``). ``labels[name]``
    names the codes 0..n-1 of a factor; ``distinct[name]`` (sorted) lets a factor be binned one bin
    per value.

    Returns DataFrames ``factor`` (q, F, p, λ), ``interaction``, ``risk``, ``ecological`` and
    ``discretization`` (every candidate tried, with its q and breaks); every table carries the
    conventions (variance, drop_singletons, alpha) it was computed with.
    """
    names = list(factors)
    if not names:
        raise InputError([problem(source, "factors", [], "name at least one factor")])
    yd = da.asarray(y)
    xs = [da.asarray(factors[n]) for n in names]
    _check_arrays(yd, xs, names, source)
    xs = [x.rechunk(yd.chunks) for x in xs]
    disc = discretize if isinstance(discretize, dict) else dict.fromkeys(names, discretize)
    sc = scan(yd, xs)
    problems = []
    if not dropna:
        problems += [_not_finite(source, n, a, c)
                     for n, a, c in zip([y_name, *names], [yd, *xs], [sc.nonfinite_y, *sc.nonfinite],
                                        strict=True) if c]
    if not problems and sc.n_valid < 2:
        problems.append(problem(source, y_name, sc.n_valid, "fewer than 2 rows with every value present"))
    bins = []
    for f, n in enumerate(names):
        if problems:
            break
        b = binning(sc.lo[f], sc.hi[f], sc.nonint[f] == 0, (distinct or {}).get(n))
        if disc.get(n) is None and not b.exact:
            problems.append(problem(source, n, f"{sc.lo[f]:.6g}..{sc.hi[f]:.6g}",
                                    "continuous values with too many distinct values to use as strata: "
                                    "discretize it"))
        bins.append(b)
    if problems:
        raise InputError(problems)
    shift = sc.mean_y
    pairs = list(combinations(range(len(names)), 2))
    overlays = None
    if pairs and all(disc.get(n) is None for n in names) and \
            sum(bins[a].nbins * bins[b].nbins for a, b in pairs) <= FUSED_CELLS:
        # Every factor used as given: its fine bins are its strata, so one loop does both passes.
        overlays, fine = overlay_sums(yd, xs, bins, shift, [np.arange(b.nbins) for b in bins], pairs)
    else:
        fine = fine_bin_sums(yd, xs, bins, shift)
    strata: list[Factor] = []
    for f, n in enumerate(names):
        d = disc.get(n)
        if d is None:
            strata.append(_as_given(n, bins[f], fine[f], (labels or {}).get(n)))
        else:
            m, kk = (methods, ks) if d == "optimal" else ([d], [k or 5])
            strata.append(_discretized(n, bins[f], fine[f], shift, m, kk, quantile_rule))
    sums = {fa.name: _strata_sums(fine[f, : fa.bins.nbins], fa.stratum, int(fa.stratum.max()) + 1,
                                  fa.labels, shift) for f, fa in enumerate(strata)}
    sst = float(sum_squares(*map(np.array, next(iter(sums.values())).total)))
    if sst == 0:
        raise InputError([problem(source, y_name, "constant", "y has no variance: q is undefined")])
    if overlays is None:
        overlays = overlay_sums(yd, xs, bins, shift, [fa.stratum for fa in strata], pairs)[0] if pairs else []
    dropped = int(yd.size - sc.n_valid)
    conv = {"variance": variance, "drop_singletons": drop_singletons, "alpha": alpha,
            "rows_dropped": dropped,  # = rows_without_y + rows_without_a_factor
            "rows_without_y": int(sc.nonfinite_y), "rows_without_a_factor": dropped - int(sc.nonfinite_y)}
    out = detectors(sums, pairs, overlays, names, conv)
    out["discretization"] = pd.concat([fa.candidates for fa in strata if len(fa.candidates)],
                                      ignore_index=True) if any(len(fa.candidates) for fa in strata) \
        else pd.DataFrame(columns=["factor", "method", "k", "q", "strata", "breaks", "note", "optimal"])
    for df in out.values():
        for key, v in conv.items():
            df[key] = v
    return out


def detect(y: np.ndarray, factors: dict[str, np.ndarray], *, chunk_rows: int = 1 << 20,
           **options) -> dict[str, pd.DataFrame]:
    """:func:`detect_arrays` on in-memory columns cut into chunks of ``chunk_rows`` rows."""
    yd = row_chunks(np.asarray(y, dtype=np.float64), chunk_rows)
    return detect_arrays(yd, {k: row_chunks(v, chunk_rows) for k, v in factors.items()}, **options)


def detect_table(
    table: pd.DataFrame,
    y: str,
    factors: Sequence[str],
    *,
    discretize: Discretize = None,
    categorical: Sequence[str] = (),
    source: str = "table",
    **options,
) -> dict[str, pd.DataFrame]:
    """All four detectors on a table, as researchers run GD today: column ``y`` against the
    ``factors`` columns. Text, boolean and categorical columns, and the columns named in
    ``categorical``, are used as given (each value a stratum); the other factors are cut by
    ``discretize`` (None: used as given too). Tables up to :data:`EXACT_ROWS` rows bin a
    continuous factor one bin per distinct value, so its breaks are exact data values; larger
    ones use equal-width fine bins (the ``bin_resolution`` column says which). ``options`` go to
    :func:`detect_arrays`.
    """
    missing = [c for c in [y, *factors] if c not in table.columns]
    if missing:
        have = ", ".join(map(str, table.columns))
        raise InputError([problem(source, c, None, f"no such column (columns: {have})") for c in missing])
    if len(set(factors)) != len(factors) or y in factors:
        raise InputError([problem(source, "factors", list(factors), "name each factor once, and not y")])
    unknown = sorted(set(categorical) - set(factors))
    if unknown:
        raise InputError([problem(source, "categorical", unknown, "not among the factors")])
    yv = pd.to_numeric(table[y], errors="coerce")
    if yv.isna().sum() > table[y].isna().sum():
        raise InputError([problem(source, y, str(table[y][yv.isna() & table[y].notna()].iloc[0]),
                                  "y must be numeric")])
    arrays, labels, distinct, disc = {}, {}, {}, {}
    for name in factors:
        col = table[name]
        if not (pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)):
            codes, uniques = pd.factorize(col, sort=True)
            arrays[name] = np.where(codes < 0, np.nan, codes.astype(np.float64))
            labels[name] = np.asarray(uniques, dtype=object)
            disc[name] = None
            continue
        x = col.to_numpy(dtype=np.float64, na_value=np.nan)
        arrays[name] = x
        disc[name] = None if name in categorical else discretize
        if len(x) <= EXACT_ROWS:
            finite = x[np.isfinite(x)]
            if finite.size and not np.all(finite == np.round(finite)):
                distinct[name] = np.unique(finite)
    return detect(yv.to_numpy(dtype=np.float64), arrays, discretize=disc, labels=labels, distinct=distinct,
                  source=source, y_name=y, **options)


def optimal_discretization(
    y: np.ndarray,
    x: np.ndarray,
    methods: Sequence[str] = METHODS,
    ks: Sequence[int] = range(3, 11),
    name: str = "factor",
) -> pd.DataFrame:
    """q of every candidate (method, k) discretization of a continuous factor ``x`` (optimal-
    parameters GD, Song et al. 2020); the row with the highest q is flagged ``optimal``. A method
    that cannot apply to the data (e.g. geometric with values <= 0, or k above the number of
    distinct values) is listed with q NaN and the reason."""
    x = np.asarray(x, dtype=np.float64)
    out = detect(y, {name: x}, discretize="optimal", methods=methods, ks=ks,
                 distinct={name: np.unique(x)} if x.size <= EXACT_ROWS else None)
    return out["discretization"]

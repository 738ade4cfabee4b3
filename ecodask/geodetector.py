"""Geographical Detector (Wang et al. 2010; Wang, Zhang & Fu 2016): methods.md section 6.

Every statistic is computed from per-stratum sums (count n_h, Σy, Σy²), so the same functions
serve a table in memory and sums map-reduced over the chunks of a national grid: the result is
exact on all cells. Conventions (defaults as the R packages GD and gdverse):

- ``variance``: ``"population"`` (default) or ``"sample"`` (CRAN geodetector) variance of y in
  the non-centrality parameter λ of the factor detector's F test;
- ``drop_singletons``: strata with one observation are dropped from an overlay of two factors in
  the interaction detector (default True; False keeps them, as CRAN geodetector);
- ``alpha``: level of the risk (Welch t, two-sided) and ecological (F, one-sided) detectors.
Every result table carries the conventions it was computed with.

This module holds the first part of the driver analysis (issue 4): the four detectors on
per-stratum sums and their checks against the published Heshun example. Discretization, the
chunked map-reduce and the command line follow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from ecodask.errors import InputError, problem

#: Relative tolerance for "equal" in the interaction classes (q12 = q1 + q2, q12 = min or max).
INTERACTION_RTOL = 1e-9


@dataclass(frozen=True)
class StratumSums:
    """Per-stratum sufficient statistics of y: ``labels`` (stratum codes), ``n``, ``s1`` = Σy and
    ``s2`` = Σy², all 1-D of the same length; strata with n = 0 are absent."""

    labels: np.ndarray
    n: np.ndarray
    s1: np.ndarray
    s2: np.ndarray

    @property
    def total(self) -> tuple[float, float, float]:
        return float(self.n.sum()), float(self.s1.sum()), float(self.s2.sum())

    def without_singletons(self) -> StratumSums:
        keep = self.n > 1
        return StratumSums(self.labels[keep], self.n[keep], self.s1[keep], self.s2[keep])


def stratum_sums(y: np.ndarray, strata: np.ndarray) -> StratumSums:
    """Per-stratum sums of ``y`` (float) over integer-coded ``strata`` (any integers)."""
    labels, inv = np.unique(np.asarray(strata), return_inverse=True)
    y = np.asarray(y, dtype=np.float64)
    n = np.bincount(inv, minlength=len(labels)).astype(np.float64)
    s1 = np.bincount(inv, weights=y, minlength=len(labels))
    s2 = np.bincount(inv, weights=y * y, minlength=len(labels))
    return StratumSums(labels, n, s1, s2)


def _ss(n: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """Sum of squared deviations from the mean, per element, clipped at 0 (rounding)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.maximum(s2 - np.where(n > 0, s1 * s1 / np.where(n > 0, n, 1.0), 0.0), 0.0)


def q_value(s: StratumSums) -> float:
    """``q = 1 - SSW / SST`` (equivalently ``1 - Σ N_h σ_h² / (N σ²)`` with population variances)."""
    n, s1, s2 = s.total
    sst = float(_ss(np.array(n), np.array(s1), np.array(s2)))
    if sst == 0:
        raise InputError([problem("y", "variance", 0, "y is constant: q is undefined")])
    ssw = float(_ss(s.n, s.s1, s.s2).sum())
    return 1.0 - ssw / sst


def factor_test(s: StratumSums, variance: Literal["population", "sample"] = "population") -> dict:
    """q, F = (N-L)/(L-1) q/(1-q) and its p under the non-central F(L-1, N-L; λ), with
    ``λ = [Σ Ybar_h² - (1/N) (Σ sqrt(N_h) Ybar_h)²] / σ²`` (σ² population or sample variance)."""
    n, s1, s2 = s.total
    levels = len(s.n)
    if levels < 2:
        raise InputError([problem("factor", "strata", levels, "a factor needs at least 2 strata")])
    q = q_value(s)
    sst = float(_ss(np.array(n), np.array(s1), np.array(s2)))
    var = sst / n if variance == "population" else sst / (n - 1)
    mean_h = s.s1 / s.n
    lam = (np.sum(mean_h**2) - (np.sum(np.sqrt(s.n) * mean_h) ** 2) / n) / var
    dfn, dfd = levels - 1, n - levels
    if dfd <= 0:
        f, p = np.nan, np.nan
    elif q >= 1.0:
        f, p = np.inf, 0.0
    else:
        f = dfd / dfn * q / (1.0 - q)
        p = float(stats.ncf.sf(f, dfn, dfd, lam))
    return {"q": q, "F": f, "p": p, "lambda": float(lam), "strata": levels, "n": int(n),
            "variance": variance}


def _overlay_codes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    return ia.astype(np.int64) * (ib.max() + 1) + ib


def interaction_class(q1: float, q2: float, q12: float, rtol: float = INTERACTION_RTOL) -> str:
    """The five interaction types of the Geographical Detector (equality within ``rtol``)."""
    lo, hi, both = min(q1, q2), max(q1, q2), q1 + q2
    if np.isclose(q12, both, rtol=rtol, atol=0):
        return "independent"
    if q12 < lo and not np.isclose(q12, lo, rtol=rtol, atol=0):
        return "nonlinear weakening"
    if q12 <= hi or np.isclose(q12, hi, rtol=rtol, atol=0):
        return "univariate nonlinear weakening"
    if q12 < both:
        return "bivariate enhancement"
    return "nonlinear enhancement"


def detect(
    y: np.ndarray,
    factors: dict[str, np.ndarray],
    *,
    variance: Literal["population", "sample"] = "population",
    drop_singletons: bool = True,
    alpha: float = 0.05,
) -> dict[str, pd.DataFrame]:
    """All four detectors on a table: y and integer-coded (already discretized) factors.

    Returns DataFrames ``factor`` (q, F, p, λ per factor), ``interaction`` (q of each pair's overlay
    and its class), ``risk`` (Welch t between every pair of strata of each factor, with means and
    counts) and ``ecological`` (F between each pair of factors, one-sided at ``alpha``). NaNs are an
    input error.
    """
    y = np.asarray(y, dtype=np.float64)
    problems = []
    if not np.isfinite(y).all():
        problems.append(problem("y", "value", "NaN", f"{int((~np.isfinite(y)).sum())} missing values"))
    for name, f in factors.items():
        f = np.asarray(f)
        if f.shape != y.shape:
            problems.append(problem(name, "length", len(f), f"y has {len(y)}"))
        elif f.dtype.kind == "f" and not np.isfinite(f).all():
            problems.append(problem(name, "value", "NaN", f"{int((~np.isfinite(f)).sum())} missing values"))
    if problems:
        raise InputError(problems)
    sums = {k: stratum_sums(y, v) for k, v in factors.items()}
    conv = {"variance": variance, "drop_singletons": drop_singletons, "alpha": alpha}
    frows = [{"factor": k, **factor_test(s, variance)} for k, s in sums.items()]
    factor = pd.DataFrame(frows)
    qs = dict(zip(factor["factor"], factor["q"], strict=True))
    irows = []
    for a, b in combinations(factors, 2):
        codes = _overlay_codes(np.asarray(factors[a]), np.asarray(factors[b]))
        s = stratum_sums(y, codes)
        if drop_singletons and (s.n == 1).any():
            keep = np.isin(codes, s.labels[s.n > 1])
            s = stratum_sums(y[keep], codes[keep])
        n, s1, s2 = s.total
        if n < 2 or float(_ss(np.array(n), np.array(s1), np.array(s2))) == 0:
            # Documented result, not an error: nothing (or a constant y) is left of the overlay.
            q12, kind = np.nan, "undefined: no variance left after dropping one-observation strata"
        else:
            q12 = q_value(s)
            kind = interaction_class(qs[a], qs[b], q12)
        irows.append({"factor_a": a, "factor_b": b, "q_a": qs[a], "q_b": qs[b], "q_ab": q12,
                      "interaction": kind})
    interaction = pd.DataFrame(irows)
    risk = pd.concat([risk_table(k, s, alpha) for k, s in sums.items()], ignore_index=True)
    erows = []
    for a, b in combinations(factors, 2):
        erows.append({"factor_a": a, "factor_b": b, **ecological_test(sums[a], sums[b], alpha)})
    ecological = pd.DataFrame(erows)
    out = {"factor": factor, "interaction": interaction, "risk": risk, "ecological": ecological}
    for df in out.values():
        for k, v in conv.items():
            df[k] = v
    return out


def risk_table(name: str, s: StratumSums, alpha: float = 0.05) -> pd.DataFrame:
    """Welch's t test between the means of every pair of strata of a factor (two-sided)."""
    mean = s.s1 / s.n
    with np.errstate(invalid="ignore", divide="ignore"):
        var = _ss(s.n, s.s1, s.s2) / (s.n - 1)  # sample variance per stratum
    rows = []
    for i, j in combinations(range(len(s.n)), 2):
        se2 = var[i] / s.n[i] + var[j] / s.n[j]
        if s.n[i] < 2 or s.n[j] < 2 or not se2 > 0:
            t, df, p = np.nan, np.nan, np.nan
        else:
            t = (mean[i] - mean[j]) / np.sqrt(se2)
            df = se2**2 / ((var[i] / s.n[i]) ** 2 / (s.n[i] - 1) + (var[j] / s.n[j]) ** 2 / (s.n[j] - 1))
            p = float(2 * stats.t.sf(abs(t), df))
        rows.append({"factor": name, "stratum_a": s.labels[i].item(), "stratum_b": s.labels[j].item(),
                     "mean_a": mean[i], "mean_b": mean[j], "n_a": int(s.n[i]), "n_b": int(s.n[j]),
                     "t": t, "df": df, "p": p, "significant": bool(p < alpha) if p == p else False})
    return pd.DataFrame(rows)


def ecological_test(a: StratumSums, b: StratumSums, alpha: float = 0.05) -> dict:
    """``F = [N_a (N_b - 1) SSW_a] / [N_b (N_a - 1) SSW_b]`` with one-sided p at F(N_a-1, N_b-1)."""
    na, nb = a.total[0], b.total[0]
    ssw_a, ssw_b = float(_ss(a.n, a.s1, a.s2).sum()), float(_ss(b.n, b.s1, b.s2).sum())
    f = (na * (nb - 1) * ssw_a) / (nb * (na - 1) * ssw_b) if ssw_b > 0 else np.inf
    p = float(stats.f.sf(f, na - 1, nb - 1))
    return {"F": f, "p": p, "significant": p < alpha}


def optimal_discretization(
    y: np.ndarray,
    x: np.ndarray,
    methods: Sequence[str] = ("equal", "quantile", "natural", "geometric", "sd"),
    ks: Sequence[int] = range(3, 11),
    name: str = "factor",
) -> pd.DataFrame:
    """q of every candidate (method, k) discretization of a continuous factor ``x`` (optimal-
    parameters GD, Song et al. 2020); the row with the highest q is flagged ``optimal``. A method
    that cannot apply to the data (e.g. geometric with values <= 0, or k above the number of
    distinct values) is listed with q NaN and the reason."""
    from ecodask.discretize import breaks, classify

    rows = []
    for method in methods:
        for k in ks:
            try:
                b = breaks(x, k, method, name=name)  # type: ignore[arg-type]
            except InputError as exc:
                rows.append({"method": method, "k": k, "q": np.nan, "note": exc.problems[0].message})
                continue
            s = stratum_sums(y, classify(x, b))
            q = q_value(s) if len(s.n) > 1 else np.nan
            rows.append({"method": method, "k": k, "q": q, "note": "" if len(s.n) == k else
                         f"{len(s.n)} non-empty classes"})
    out = pd.DataFrame(rows)
    out["optimal"] = False
    if out["q"].notna().any():
        out.loc[out["q"].idxmax(), "optimal"] = True
    return out

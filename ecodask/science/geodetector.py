"""Geographical Detector (Wang et al. 2010; Wang, Zhang & Fu 2016): methods.md section 6.

Every statistic is computed from per-stratum sums (count n_h, Σy, Σy²), so the same functions
serve a table in memory and sums map-reduced over the chunks of a national grid: the result is
exact on all cells. Conventions (defaults as the R packages GD and gdverse):

- ``variance``: ``"population"`` (default) or ``"sample"`` (CRAN geodetector) variance of y in
  the non-centrality parameter λ of the factor detector's F test;
- ``drop_singletons``: strata with one observation are dropped from an overlay of two factors in
  the interaction detector (default True; False keeps them, as CRAN geodetector);
- ``alpha``: level of the risk (Welch t, two-sided) and ecological (F, one-sided) detectors and of
  ``interaction_significant`` (the nested F test of an overlay, :func:`interaction_test`).
Every result table carries the conventions it was computed with.

The statistics here work on per-stratum sums; :mod:`ecodask.chunked.strata` gathers those sums over the
chunks of any array (:func:`detect_arrays`), :func:`detect_table` serves a table and the
``ecodask geodetector`` command.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from ecodask.errors import InputError, problem

#: The result tables of the detectors, in order.
GEODETECTOR_TABLES = ("factor", "interaction", "risk", "ecological", "discretization")

#: The columns of the interaction table: the pair and its q, the GD type, the overlay's own factor test
#: (``F_overlay``, ``p_overlay``: is q_ab different from 0?) and the nested test of the overlay against the
#: stronger factor (``*_interaction``: does the overlay explain more than that factor alone?).
INTERACTION_COLUMNS = ["factor_a", "factor_b", "q_a", "q_b", "q_ab", "interaction", "strata_ab", "F_overlay",
                       "p_overlay", "stronger", "F_interaction", "df1_interaction", "df2_interaction",
                       "p_interaction", "interaction_significant"]

#: Relative tolerance for "equal" in the interaction classes (q12 = q1 + q2, q12 = min or max).
INTERACTION_RTOL = 1e-9


@dataclass(frozen=True)
class StratumSums:
    """Per-stratum sufficient statistics of y: ``labels`` (stratum codes), ``n``, ``s1`` = Σd and
    ``s2`` = Σd² of ``d = y - shift``, all 1-D of the same length; strata with n = 0 are absent.
    The shift (about the mean of y) keeps Σd² precise; variances do not depend on it."""

    labels: np.ndarray
    n: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    shift: float = 0.0

    @property
    def mean(self) -> np.ndarray:
        """Mean of y per stratum (units of y)."""
        return self.s1 / self.n + self.shift

    @property
    def total(self) -> tuple[float, float, float]:
        return float(self.n.sum()), float(self.s1.sum()), float(self.s2.sum())


def stratum_sums(y: np.ndarray, strata: np.ndarray) -> StratumSums:
    """Per-stratum sums of ``y`` (float) over integer-coded ``strata`` (any integers)."""
    labels, inv = np.unique(np.asarray(strata), return_inverse=True)
    y = np.asarray(y, dtype=np.float64)
    n = np.bincount(inv, minlength=len(labels)).astype(np.float64)
    s1 = np.bincount(inv, weights=y, minlength=len(labels))
    s2 = np.bincount(inv, weights=y * y, minlength=len(labels))
    return StratumSums(labels, n, s1, s2)


def sum_squares(n: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """Sum of squared deviations from the mean, per element, clipped at 0 (rounding)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.maximum(s2 - np.where(n > 0, s1 * s1 / np.where(n > 0, n, 1.0), 0.0), 0.0)


def q_value(s: StratumSums) -> float:
    """``q = 1 - SSW / SST`` (equivalently ``1 - Σ N_h σ_h² / (N σ²)`` with population variances)."""
    n, s1, s2 = s.total
    sst = float(sum_squares(np.array(n), np.array(s1), np.array(s2)))
    if sst == 0:
        raise InputError([problem("y", "variance", 0, "y is constant: q is undefined")])
    ssw = float(sum_squares(s.n, s.s1, s.s2).sum())
    return 1.0 - ssw / sst


#: The level of the interval of q in the factor table (two-sided).
Q_INTERVAL = 0.95


def _noncentrality(f: float, dfn: float, dfd: float, prob: float) -> float:
    """The λ at which ``f`` is the ``prob`` quantile of the non-central F(dfn, dfd; λ); 0 where it is
    above that quantile already at λ = 0 (the CDF falls as λ grows)."""
    from scipy.optimize import brentq

    def excess(lam: float) -> float:
        return float(stats.ncf.cdf(f, dfn, dfd, lam)) - prob

    if excess(0.0) <= 0:
        return 0.0
    hi = max(1.0, f * dfn)
    while excess(hi) > 0:
        hi *= 2.0
    return float(brentq(excess, 0.0, hi, xtol=1e-10, rtol=1e-12))


def q_interval(f: float, dfn: float, dfd: float, level: float = Q_INTERVAL) -> tuple[float, float]:
    """The ``level`` confidence interval of q from its F statistic: the non-centralities λ_L, λ_U at
    which the observed F is the upper and lower ``(1 - level) / 2`` quantile of F(dfn, dfd; λ), as
    q = η² = λ / (λ + N) with N = dfn + dfd + 1 (the interval of η² of a one-way analysis of
    variance, Steiger 2004; q is that η²)."""
    tail = (1.0 - level) / 2.0
    n = dfn + dfd + 1
    lo = _noncentrality(f, dfn, dfd, 1.0 - tail)
    hi = _noncentrality(f, dfn, dfd, tail)
    return lo / (lo + n), hi / (hi + n)


def factor_test(s: StratumSums, variance: Literal["population", "sample"] = "population",
                interval: bool = True) -> dict:
    """q, F = (N-L)/(L-1) q/(1-q) and its p under the non-central F(L-1, N-L; λ), with
    ``λ = [Σ Ybar_h² - (1/N) (Σ sqrt(N_h) Ybar_h)²] / σ²`` (σ² population or sample variance), and the
    95 % confidence interval of q (:func:`q_interval`)."""
    n, s1, s2 = s.total
    levels = len(s.n)
    if levels < 2:
        raise InputError([problem("factor", "strata", levels, "a factor needs at least 2 strata")])
    q = q_value(s)
    sst = float(sum_squares(np.array(n), np.array(s1), np.array(s2)))
    var = sst / n if variance == "population" else sst / (n - 1)
    mean_h = s.mean
    lam = (np.sum(mean_h**2) - (np.sum(np.sqrt(s.n) * mean_h) ** 2) / n) / var
    dfn, dfd = levels - 1, n - levels
    lo = hi = np.nan
    if dfd <= 0:
        f, p = np.nan, np.nan
    elif q >= 1.0:
        f, p = np.inf, 0.0
    else:
        f = dfd / dfn * q / (1.0 - q)
        p = float(stats.ncf.sf(f, dfn, dfd, lam))
        if interval:
            lo, hi = q_interval(f, dfn, dfd)
    return {"q": q, "F": f, "p": p, "lambda": float(lam), "strata": levels, "n": int(n),
            "variance": variance, "q_low": lo, "q_high": hi}


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


def interaction_test(ssw_strong: float, strata_strong: int, ssw_ab: float, strata_ab: int,
                     n: float) -> dict:
    """The nested F test of an overlay a∩b against the stronger factor s alone (one-way analysis of
    variance, full model the overlay's strata, reduced model s's strata, which the overlay refines):
    ``F = ((SSW_s - SSW_ab) / (L_ab - L_s)) / (SSW_ab / (N - L_ab))`` on (L_ab - L_s, N - L_ab) degrees
    of freedom, L the numbers of non-empty strata and SSW the within sums of squares (units of y²).
    It asks whether the overlay explains significantly more of y than s alone, i.e. whether
    ``q_ab > max(q_a, q_b)`` is more than the extra strata fitting noise; not whether the two
    factors' effects add up (``q_ab`` against ``q_a + q_b``).

    ``L_ab == L_s`` (the overlay is s's strata: nothing more to explain): F NaN, p 1. ``N == L_ab``
    (no degrees of freedom left within the overlay's strata): F and p NaN. ``SSW_ab == 0`` with
    ``SSW_s > 0``: F inf, p 0."""
    df1, df2 = int(strata_ab - strata_strong), int(round(n - strata_ab))
    extra = max(float(ssw_strong) - float(ssw_ab), 0.0)  # >= 0 for a refinement; clips rounding
    if df1 <= 0:
        f, p = np.nan, 1.0
    elif df2 <= 0:
        f, p = np.nan, np.nan
    elif ssw_ab <= 0:
        f, p = (np.inf, 0.0) if extra > 0 else (np.nan, np.nan)
    else:
        f = (extra / df1) / (float(ssw_ab) / df2)
        p = float(stats.f.sf(f, df1, df2))
    return {"F": f, "df1": df1, "df2": df2, "p": p}


Discretize = Literal["equal", "quantile", "natural", "geometric", "sd", "optimal"] | None


def detectors(sums: dict[str, StratumSums], pairs: list[tuple[int, int]], overlays: list[np.ndarray],
               names: list[str], conv: dict) -> dict[str, pd.DataFrame]:
    variance, drop, alpha = conv["variance"], conv["drop_singletons"], conv["alpha"]
    problems = [problem(n, "strata", 1, "a factor needs at least 2 strata") for n, s in sums.items()
                if len(s.n) < 2]
    if problems:
        raise InputError(problems)
    factor = pd.DataFrame([{"factor": n, **factor_test(s, variance)} for n, s in sums.items()])
    qs = dict(zip(factor["factor"], factor["q"], strict=True))
    shift = next(iter(sums.values())).shift if sums else 0.0  # the overlays' sums are of y - shift too
    irows = []
    for (a, b), ov in zip(pairs, overlays, strict=True):
        flat = ov.reshape(-1, 3)
        keep = flat[:, 0] > (1 if drop else 0)
        s = StratumSums(np.flatnonzero(keep), flat[keep, 0], flat[keep, 1], flat[keep, 2], shift)
        na, nb = names[a], names[b]
        n, s1, s2 = s.total
        f12 = p12 = np.nan
        if n < 2 or float(sum_squares(np.array(n), np.array(s1), np.array(s2))) == 0:
            # Documented result, not an error: nothing (or a constant y) is left of the overlay.
            q12, kind = np.nan, "undefined: no variance left after dropping one-observation strata"
        else:
            q12 = q_value(s)
            kind = interaction_class(qs[na], qs[nb], q12)
            if len(s.n) >= 2:  # the overlay's own factor test: is q_ab different from 0?
                t12 = factor_test(s, variance, interval=False)
                f12, p12 = t12["F"], t12["p"]
        # The nested test against the stronger factor, on every observation of the overlay (its
        # one-observation strata included whatever drop_singletons says: each costs a degree of freedom).
        strong, axis = (na, 1) if qs[na] >= qs[nb] else (nb, 0)
        whole = flat[flat[:, 0] > 0]
        alone = ov.sum(axis=axis)
        alone = alone[alone[:, 0] > 0]
        nested = interaction_test(float(sum_squares(*alone.T).sum()), len(alone),
                                  float(sum_squares(*whole.T).sum()), len(whole), float(whole[:, 0].sum()))
        irows.append({"factor_a": na, "factor_b": nb, "q_a": qs[na], "q_b": qs[nb], "q_ab": q12,
                      "interaction": kind, "strata_ab": len(s.n), "F_overlay": f12, "p_overlay": p12,
                      "stronger": strong, "F_interaction": nested["F"], "df1_interaction": nested["df1"],
                      "df2_interaction": nested["df2"], "p_interaction": nested["p"],
                      "interaction_significant": bool(nested["p"] < alpha)})
    interaction = pd.DataFrame(irows, columns=INTERACTION_COLUMNS)
    risk = pd.concat([risk_table(k, s, alpha) for k, s in sums.items()], ignore_index=True)
    for col in ("stratum_a", "stratum_b"):  # text labels of one factor: every label as text
        if risk[col].map(type).nunique() > 1:
            risk[col] = risk[col].astype(str)
    erows = [{"factor_a": names[a], "factor_b": names[b],
              **ecological_test(sums[names[a]], sums[names[b]], alpha)} for a, b in pairs]
    ecological = pd.DataFrame(erows, columns=["factor_a", "factor_b", "F", "p", "significant"])
    return {"factor": factor, "interaction": interaction, "risk": risk, "ecological": ecological}


def _scalar(v: object) -> object:
    return v.item() if isinstance(v, np.generic) else v


def risk_table(name: str, s: StratumSums, alpha: float = 0.05) -> pd.DataFrame:
    """Welch's t test between the means of every pair of strata of a factor (two-sided)."""
    mean = s.mean
    with np.errstate(invalid="ignore", divide="ignore"):
        var = sum_squares(s.n, s.s1, s.s2) / (s.n - 1)  # sample variance per stratum
    rows = []
    for i, j in combinations(range(len(s.n)), 2):
        se2 = var[i] / s.n[i] + var[j] / s.n[j]
        if s.n[i] < 2 or s.n[j] < 2 or not se2 > 0:
            t, df, p = np.nan, np.nan, np.nan
        else:
            t = (s.s1[i] / s.n[i] - s.s1[j] / s.n[j]) / np.sqrt(se2)  # the shift cancels exactly
            df = se2**2 / ((var[i] / s.n[i]) ** 2 / (s.n[i] - 1) + (var[j] / s.n[j]) ** 2 / (s.n[j] - 1))
            p = float(2 * stats.t.sf(abs(t), df))
        rows.append({"factor": name, "stratum_a": _scalar(s.labels[i]), "stratum_b": _scalar(s.labels[j]),
                     "mean_a": mean[i], "mean_b": mean[j], "n_a": int(s.n[i]), "n_b": int(s.n[j]),
                     "t": t, "df": df, "p": p, "significant": bool(p < alpha) if p == p else False})
    return pd.DataFrame(rows)


def ecological_test(a: StratumSums, b: StratumSums, alpha: float = 0.05) -> dict:
    """``F = [N_a (N_b - 1) SSW_a] / [N_b (N_a - 1) SSW_b]`` with one-sided p at F(N_a-1, N_b-1)."""
    na, nb = a.total[0], b.total[0]
    ssw_a, ssw_b = float(sum_squares(a.n, a.s1, a.s2).sum()), float(sum_squares(b.n, b.s1, b.s2).sum())
    f = (na * (nb - 1) * ssw_a) / (nb * (na - 1) * ssw_b) if ssw_b > 0 else np.inf
    p = float(stats.f.sf(f, na - 1, nb - 1))
    return {"F": f, "p": p, "significant": p < alpha}



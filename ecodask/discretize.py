"""Discretization of continuous factors for the Geographical Detector (methods.md section 6).

Methods: equal interval, quantile, natural breaks (Fisher-Jenks), geometric interval, standard
deviation; k classes. A method returns the k-1 inner break values: class c (0..k-1) holds the
values ``breaks[c-1] < x <= breaks[c]`` (:func:`classify`). Natural breaks are exact on a
weighted set of values (distinct values or fine-bin centres with their counts), so on millions
of cells they run on a fine histogram of the factor: the whole data at bin resolution.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ecodask.errors import InputError, problem

Method = Literal["equal", "quantile", "natural", "geometric", "sd"]
METHODS: tuple[Method, ...] = ("equal", "quantile", "natural", "geometric", "sd")


def _weighted(values: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(values, dtype=np.float64)
    w = np.ones_like(v) if weights is None else np.asarray(weights, dtype=np.float64)
    keep = w > 0
    v, w = v[keep], w[keep]
    order = np.argsort(v, kind="stable")
    v, w = v[order], w[order]
    uniq, inv = np.unique(v, return_inverse=True)
    return uniq, np.bincount(inv, weights=w)


def natural_breaks(values: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Fisher-Jenks: the k-class partition of the sorted values minimising the (weighted) sum of
    squared deviations from the class means, exactly (dynamic programming, O(k m²) in the m
    distinct values). Returns the k-1 inner breaks (each class's largest value)."""
    v, w = _weighted(values, weights)
    m = len(v)
    cw = np.concatenate([[0.0], np.cumsum(w)])
    cwv = np.concatenate([[0.0], np.cumsum(w * v)])
    cwv2 = np.concatenate([[0.0], np.cumsum(w * v * v)])

    def ssd(i: np.ndarray, j: int) -> np.ndarray:  # classes v[i..j] inclusive, for every i
        n = cw[j + 1] - cw[i]
        s = cwv[j + 1] - cwv[i]
        return np.maximum(cwv2[j + 1] - cwv2[i] - s * s / n, 0.0)

    cost = np.full((k, m), np.inf)
    arg = np.zeros((k, m), dtype=np.int64)
    ends = np.arange(m)
    cost[0] = np.maximum(cwv2[ends + 1] - cwv[ends + 1] ** 2 / cw[ends + 1], 0.0)  # one class v[0..j]
    for c in range(1, k):
        for j in range(c, m):
            i = np.arange(c, j + 1)  # the class c starts at v[i]
            total = cost[c - 1, i - 1] + ssd(i, j)
            best = int(np.argmin(total))
            cost[c, j], arg[c, j] = total[best], i[best]
    starts = []
    j = m - 1
    for c in range(k - 1, 0, -1):
        i = arg[c, j]
        starts.append(i)
        j = i - 1
    starts = starts[::-1]
    return np.array([v[s - 1] for s in starts])


def breaks(values: np.ndarray, k: int, method: Method, weights: np.ndarray | None = None,
           name: str = "factor") -> np.ndarray:
    """The k-1 inner breaks of ``values`` by ``method``; raises :class:`InputError` when k is
    larger than the number of distinct values (or a method cannot apply)."""
    v, w = _weighted(values, weights)
    if len(v) == 0 or not np.isfinite(v).all():
        raise InputError([problem(name, "values", "NaN", "a factor to discretize needs finite values")])
    if k < 2:
        raise InputError([problem(name, "k", k, "needs at least 2 classes")])
    if k > len(v):
        raise InputError([problem(name, "k", k, f"larger than the number of distinct values ({len(v)})")])
    lo, hi = v[0], v[-1]
    if method == "equal":
        return lo + (hi - lo) * np.arange(1, k) / k
    if method == "quantile":
        cum = np.cumsum(w) / w.sum()
        return np.array([v[np.searchsorted(cum, q)] for q in np.arange(1, k) / k])
    if method == "natural":
        return natural_breaks(v, k, w)
    if method == "geometric":
        if lo <= 0:
            raise InputError([problem(name, "min", lo, "geometric intervals need positive values")])
        return lo * (hi / lo) ** (np.arange(1, k) / k)
    if method == "sd":
        mean = np.average(v, weights=w)
        sd = np.sqrt(np.average((v - mean) ** 2, weights=w))
        return mean + sd * (np.arange(1, k) - k / 2)  # k classes one standard deviation wide
    raise ValueError(f"unknown method {method!r}")


def classify(values: np.ndarray, inner_breaks: np.ndarray) -> np.ndarray:
    """Class 0..k-1 of each value: class c holds ``breaks[c-1] < x <= breaks[c]``."""
    return np.searchsorted(np.asarray(inner_breaks), np.asarray(values), side="left")

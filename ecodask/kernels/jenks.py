"""Exact weighted Fisher-Jenks (1-D k-means) by dynamic programming with divide and conquer.

``cost[c, j]`` is the least weighted sum of squared deviations of ``v[0..j]`` cut into ``c + 1``
classes; ``start[c, j]`` is where the last of those classes starts. The optimal start is
monotone in ``j`` (the squared-error cost satisfies the quadrangle inequality: Wang & Song 2011,
Ckmeans.1d.dp; Grønlund et al. 2017), so each layer is filled by divide and conquer in
O(m log m) instead of O(m²): O(k m log m) in all, exact. One call serves every k up to ``kmax``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _ssd(cw: np.ndarray, cwv: np.ndarray, cwv2: np.ndarray, i: int, j: int) -> float:
    n = cw[j + 1] - cw[i]
    s = cwv[j + 1] - cwv[i]
    d = cwv2[j + 1] - cwv2[i] - s * s / n
    return d if d > 0.0 else 0.0


@njit(cache=True, nogil=True)
def jenks_table(v: np.ndarray, w: np.ndarray, kmax: int) -> tuple[np.ndarray, np.ndarray]:
    """``(cost, start)``, both (kmax, m), for sorted distinct values ``v`` with positive weights
    ``w`` (counts). Values are centred on their weighted mean first (rounding)."""
    m = v.shape[0]
    mean = (v * w).sum() / w.sum()
    cw = np.zeros(m + 1)
    cwv = np.zeros(m + 1)
    cwv2 = np.zeros(m + 1)
    for i in range(m):
        d = v[i] - mean
        cw[i + 1] = cw[i] + w[i]
        cwv[i + 1] = cwv[i] + w[i] * d
        cwv2[i + 1] = cwv2[i] + w[i] * d * d
    cost = np.full((kmax, m), np.inf)
    start = np.zeros((kmax, m), dtype=np.int64)
    for j in range(m):
        cost[0, j] = _ssd(cw, cwv, cwv2, 0, j)
    stack = np.empty((4 * m + 64, 4), dtype=np.int64)
    for c in range(1, kmax):
        if c >= m:
            break
        top = 0
        stack[0, 0], stack[0, 1], stack[0, 2], stack[0, 3] = c, m - 1, c, m - 1
        top = 1
        while top > 0:
            top -= 1
            jlo, jhi, ilo, ihi = stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3]
            if jlo > jhi:
                continue
            mid = (jlo + jhi) // 2
            best, arg = np.inf, ilo
            for i in range(ilo, min(mid, ihi) + 1):  # the last class is v[i..mid]
                t = cost[c - 1, i - 1] + _ssd(cw, cwv, cwv2, i, mid)
                if t < best:
                    best, arg = t, i
            cost[c, mid] = best
            start[c, mid] = arg
            stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3] = jlo, mid - 1, ilo, arg
            stack[top + 1, 0], stack[top + 1, 1] = mid + 1, jhi
            stack[top + 1, 2], stack[top + 1, 3] = arg, ihi
            top += 2
    return cost, start

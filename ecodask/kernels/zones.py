"""The zones present in a chunk, renumbered 1..m in one pass (numba), so a chunk's per-zone results
are (m, ...) arrays, not (all zones, ...): a chunk of a national grid holds a few of 40,000
townships, and its transfer histograms shrink from zones x K² x pairs to m x K² x pairs.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def _compact(zone: np.ndarray, n_zones: int) -> tuple[np.ndarray, np.ndarray, int]:
    rows, cols = zone.shape
    local = np.zeros(n_zones + 1, dtype=np.int64)  # global id -> 1..m, 0: not present
    for i in range(rows):
        for j in range(cols):
            z = zone[i, j]
            if z > n_zones:
                return zone, np.zeros(0, dtype=np.int64), 1
            if z:
                local[z] = 1
    m = 0
    for z in range(1, n_zones + 1):
        if local[z]:
            m += 1
            local[z] = m
    ids = np.empty(m, dtype=np.int64)
    for z in range(1, n_zones + 1):
        if local[z]:
            ids[local[z] - 1] = z
    out = np.empty_like(zone)
    for i in range(rows):
        for j in range(cols):
            out[i, j] = local[zone[i, j]]
    return out, ids, 0


def compact_zones(zone: np.ndarray, n_zones: int) -> tuple[np.ndarray, np.ndarray]:
    """The zones of a chunk renumbered in order of their ids.

    ``zone``: (rows, cols) unsigned ints, 0 outside every zone, 1..n_zones inside. Returns
    ``local`` (same shape and dtype; 0 stays 0, the i-th smallest id present becomes i) and ``ids``
    int64 (m,), the global id of local zone ``i`` at ``ids[i - 1]`` (sorted). A kernel's row
    ``i - 1`` for local zone ``i`` is then the row ``ids[i - 1] - 1`` of the whole grid's result.
    """
    zone = np.asarray(zone)
    if zone.ndim != 2 or zone.dtype.kind != "u":
        raise TypeError(f"zone must be a 2-D unsigned integer array, got {zone.dtype} {zone.shape}")
    local, ids, bad = _compact(zone, int(n_zones))
    if bad:
        raise ValueError(f"zone values larger than n_zones={n_zones}")
    return local, ids

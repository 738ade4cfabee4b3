"""Transfer-matrix histogram over (zone, class at t1, class at t2), one pass over the arrays (numba).

Class codes are turned into compact indices by a 256-entry lookup table, so the histogram of a
chunk is small (pairs x zones x K x K) whatever the codes are. No temporary index arrays are
made: every pixel is read once, and a run of equal pixels along a row (same zone, same code in
every year) is counted once with its length, which makes land cover's large patches cheap (3.2x
on the Hubei-30m benchmark's data, 20 % slower on white noise; see BENCHMARKS.md). Unknown codes
land in the last index; only when some are found does a second scan name their raw codes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ecodask.kernels.checks import zone_and_classes


@njit(nogil=True, cache=True, boundscheck=False)
def _count_runs(zone, classes, lut, pairs, n_zones, k, with_esv, grid_lut, sum_lut, valid_lut, factor,
                grid, coarse, npix, comp):  # pragma: no cover - numba
    """The one loop behind both public kernels. A run: pixels along a row with the same zone and
    the same code in every layer (with ``with_esv``, also within one analysis cell); its length is
    added to every pair's histogram and, with ``with_esv``, its value added to the cell's sum, and
    where ``comp`` (layers, cells_y, cells_x, K) is not empty, to the cell's pixels of its class
    index (inside a zone). Pixels outside the zones are one run to the next zone, whatever their
    codes. With ``with_esv`` each row of ``grid`` is first filled from ``grid_lut`` (NaN for a code
    without a value) in a loop of its own, free of the runs' branches, and its pixels outside the
    zones then set to NaN run by run: on real 30 m land cover, whose runs are short (~6 px), that
    takes a fifth less time than filling the grid run by run (BENCHMARKS.md)."""
    n_layers, rows, cols = classes.shape
    n_pairs = pairs.shape[0]
    kk = k * k
    zkk = n_zones * kk
    out = np.zeros(n_pairs * zkk, dtype=np.int64)
    first = pairs[:, 0].copy()
    second = pairs[:, 1].copy()
    cur = np.empty(n_layers, dtype=np.uint8)
    nan = np.float32(np.nan)
    with_comp = with_esv and comp.shape[0] > 0
    bad = 0
    for i in range(rows):
        zrow = zone[i]
        ci = i // factor
        if with_esv:
            for t in range(n_layers):
                g = grid[t, i]
                crow = classes[t, i]
                values = grid_lut[t]
                for jj in range(cols):
                    g[jj] = values[crow[jj]]
        j = 0
        while j < cols:
            j0 = j
            z = np.intp(zrow[j])
            if z == 0:  # outside the zones: not counted, NaN in the grid
                j += 1
                while j < cols and zrow[j] == 0:
                    j += 1
                if with_esv:
                    for t in range(n_layers):
                        g = grid[t, i]
                        for jj in range(j0, j):
                            g[jj] = nan
                continue
            for t in range(n_layers):
                cur[t] = classes[t, i, j]
            end = min((j // factor + 1) * factor, cols) if with_esv else cols
            j += 1
            while j < end and zrow[j] == z:
                same = True
                for t in range(n_layers):
                    if classes[t, i, j] != cur[t]:
                        same = False
                        break
                if not same:
                    break
                j += 1
            run = j - j0
            if with_esv:
                cb = j0 // factor
                for t in range(n_layers):
                    c = cur[t]
                    if valid_lut[t, c] != 0:
                        coarse[t, ci, cb] += sum_lut[t, c] * run
                        npix[t, ci, cb] += run
                    if with_comp:
                        comp[t, ci, cb, lut[c]] += run
            if z > n_zones:
                bad += run
                continue
            base = (z - 1) * kk
            for p in range(n_pairs):
                a = np.intp(lut[cur[first[p]]])
                b = np.intp(lut[cur[second[p]]])
                out[p * zkk + base + a * k + b] += run
    return out.reshape((n_pairs, n_zones, k, k)), bad


@njit(nogil=True, cache=True, boundscheck=False)
def _unknown_codes(zone, classes, lut, unknown_index):  # pragma: no cover - numba
    n_layers, rows, cols = classes.shape
    out = np.zeros((n_layers, 256), dtype=np.int64)
    for t in range(n_layers):
        for i in range(rows):
            for j in range(cols):
                c = classes[t, i, j]
                if zone[i, j] != 0 and lut[c] == unknown_index:
                    out[t, c] += 1
    return out


def transition_counts(
    zone: np.ndarray,
    classes: np.ndarray,
    lut: np.ndarray,
    pairs: np.ndarray,
    n_zones: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel counts per (pair of layers, zone, class index at the pair's first layer, at its second).

    ``zone``: (rows, cols) unsigned ints, 0 outside every zone, 1..n_zones inside.
    ``classes``: (layers, rows, cols) uint8 class codes.
    ``lut``: uint8[256], code -> compact index 0..K-1; its largest value K-1 is the *unknown*
    index (codes no scheme knows), counted as such and also reported by raw code.
    ``pairs``: (P, 2) layer indices; a pair (t, t) gives the plain class histogram of layer t.

    Returns ``counts`` int64 (P, n_zones, K, K), row ``z-1`` for zone ``z`` (pixels outside zones
    are not counted), and ``unknown`` int64 (layers, 256): pixels inside zones per raw code that
    maps to the unknown index.
    """
    classes = zone_and_classes(zone, classes)
    lut = np.asarray(lut, dtype=np.uint8)
    if lut.shape != (256,):
        raise ValueError("lut must have 256 entries")
    pairs = np.asarray(pairs, dtype=np.intp).reshape(-1, 2)
    if pairs.size and (pairs.min() < 0 or pairs.max() >= classes.shape[0]):
        raise ValueError(f"pairs {pairs.tolist()} index layers outside 0..{classes.shape[0] - 1}")
    no_f4, no_f8, no_i4 = np.zeros((1, 1, 1), np.float32), np.zeros((1, 1, 1)), np.zeros((1, 1, 1), np.int32)
    counts, bad = _count_runs(zone, classes, lut, pairs, int(n_zones), int(lut.max()) + 1, False,
                              no_f4[0], no_f8[0], no_i4[0], 1, no_f4, no_f8, no_i4,
                              np.zeros((0, 1, 1, 1), np.int32))
    return counts, unknown_codes(counts, bad, zone, classes, lut, pairs, n_zones)


def unknown_codes(counts: np.ndarray, bad: int, zone: np.ndarray, classes: np.ndarray, lut: np.ndarray,
                  pairs: np.ndarray, n_zones: int) -> np.ndarray:
    """After a counting kernel: raise for zone values above ``n_zones`` (``bad`` pixels), and return
    the (layers, 256) pixel counts inside zones of the codes that map to the unknown index."""
    if bad:
        raise ValueError(f"{bad} zone values larger than n_zones={n_zones}")
    k = int(lut.max()) + 1
    covered = {int(t) for t in np.asarray(pairs).reshape(-1)}
    if counts[..., k - 1, :].any() or counts[..., k - 1].any() or len(covered) < classes.shape[0]:
        # Rare path: name the raw codes behind the unknown index (and check layers no pair covers).
        return _unknown_codes(zone, classes, lut, k - 1)
    return np.zeros((classes.shape[0], 256), dtype=np.int64)

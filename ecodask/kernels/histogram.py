"""Histograms of class codes per zone, in one pass over the arrays (numba)."""

from __future__ import annotations

import numpy as np
from numba import njit

from ecodask.kernels.checks import zone_and_classes


@njit(nogil=True, cache=True)
def _zone_class_counts(zone: np.ndarray, classes: np.ndarray, n_zones: int) -> np.ndarray:
    n_layers, rows, cols = classes.shape
    out = np.zeros((n_layers, n_zones + 1, 256), dtype=np.int64)
    for i in range(rows):
        for j in range(cols):
            z = zone[i, j]
            if z > n_zones:
                raise ValueError("zone value larger than n_zones")
            for t in range(n_layers):
                out[t, z, classes[t, i, j]] += 1
    return out


def zone_class_counts(zone: np.ndarray, classes: np.ndarray, n_zones: int) -> np.ndarray:
    """Pixel counts per (layer, zone, class code).

    ``zone``: (rows, cols) unsigned ints in 0..n_zones (0 = outside every zone).
    ``classes``: (layers, rows, cols) uint8 class codes (a 2-D array is one layer).
    Returns int64 counts of shape (layers, n_zones + 1, 256); row 0 counts pixels outside zones.
    """
    classes = zone_and_classes(zone, classes)
    return _zone_class_counts(zone, classes, int(n_zones))


def zone_pixel_counts(zone: np.ndarray, n_zones: int) -> np.ndarray:
    """Pixels per zone index: int64 of shape (n_zones + 1,), index 0 counting the pixels outside
    every zone. ``zone``: unsigned ints in 0..n_zones."""
    if zone.dtype.kind != "u":
        raise TypeError(f"zone must be an unsigned integer array, got {zone.dtype}")
    counts = np.bincount(zone.ravel(), minlength=int(n_zones) + 1)
    if counts.size > int(n_zones) + 1:
        raise ValueError("zone value larger than n_zones")
    return counts.astype(np.int64)


def zone_known_counts(zone: np.ndarray, classes: np.ndarray, known: np.ndarray, n_zones: int) -> np.ndarray:
    """Pixels of a known class per (layer, zone index): int64 of shape (layers, n_zones + 1),
    index 0 counting those outside every zone. ``classes``: (layers, rows, cols) uint8 codes (a 2-D
    array is one layer); ``known``: bool (256,), True for the codes of the class scheme."""
    classes = zone_and_classes(zone, classes)
    known = np.asarray(known, dtype=bool)
    if known.shape != (256,):
        raise ValueError(f"known must have 256 entries, not {known.shape}")
    out = np.zeros((classes.shape[0], int(n_zones) + 1), dtype=np.int64)
    for t in range(classes.shape[0]):
        z = zone[known[classes[t]]]
        counts = np.bincount(z.ravel(), minlength=int(n_zones) + 1)
        if counts.size > int(n_zones) + 1:
            raise ValueError("zone value larger than n_zones")
        out[t] = counts
    return out

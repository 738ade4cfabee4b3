"""Argument checks shared by the kernels (plain Python, run once per chunk)."""

from __future__ import annotations

import numpy as np


def zone_and_classes(zone: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Check a (rows, cols) unsigned zone raster against (layers, rows, cols) uint8 class codes;
    return the codes as 3-D (a 2-D array is one layer)."""
    if classes.ndim == 2:
        classes = classes[np.newaxis]
    if classes.dtype != np.uint8:
        raise TypeError(f"classes must be uint8, got {classes.dtype}")
    if zone.shape != classes.shape[1:]:
        raise ValueError(f"zone shape {zone.shape} != class shape {classes.shape[1:]}")
    if zone.dtype.kind != "u":
        raise TypeError(f"zone must be an unsigned integer array, got {zone.dtype}")
    return classes

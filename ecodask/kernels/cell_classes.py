"""Pixels of each land-use class per analysis cell (numba): the class composition of every cell of a
chunk, from which each service's ESV per cell follows without a 30 m grid per service.

A cell's ESV of service ``s`` is ``Σ_k n_k · VC[s, k] · a`` (``a`` the pixel area, ha), and with a
spatial adjustment the multiplier is one number per cell and service group, so the composition holds
everything a per-service analysis grid would, in ``classes`` small integers per cell.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ecodask.kernels.checks import zone_and_classes


@njit(nogil=True, cache=True, boundscheck=False)
def _count(zone, classes, lut, n_classes, factor, out):  # pragma: no cover - compiled
    n_layers, rows, cols = classes.shape
    for t in range(n_layers):
        for i in range(rows):
            ci = i // factor
            zrow = zone[i]
            crow = classes[t, i]
            for j in range(cols):
                if zrow[j] == 0:
                    continue
                k = lut[crow[j]]
                if k < n_classes:
                    out[t, k, ci, j // factor] += 1


def count_dtype(factor: int) -> np.dtype:
    """The smallest unsigned integer type that holds ``factor``² pixels: uint16 up to 255² pixels per
    cell, else uint32."""
    return np.dtype(np.uint16) if factor * factor <= np.iinfo(np.uint16).max else np.dtype(np.uint32)


def cell_class_counts(zone: np.ndarray, classes: np.ndarray, lut: np.ndarray, n_classes: int,
                      factor: int) -> np.ndarray:
    """Pixels of each class per ``factor`` x ``factor`` cell, counted from the chunk's top-left corner
    (a partial cell at the right or bottom edge counts the pixels it has).

    ``zone``: (rows, cols) zone index, 0 outside every zone (not counted); ``classes``: uint8 (layers,
    rows, cols) class codes; ``lut``: uint8 (256,) class index of each code, where ``n_classes`` and
    above (no data, unknown codes) are not counted. Returns (layers, n_classes, ceil(rows / factor),
    ceil(cols / factor)) of :func:`count_dtype` (``factor``), in pixels.
    """
    classes = zone_and_classes(zone, classes)
    lut = np.ascontiguousarray(lut, dtype=np.uint8)
    if lut.shape != (256,):
        raise ValueError(f"lut must have 256 entries, not {lut.shape}")
    if not 0 < n_classes < 256:
        raise ValueError(f"n_classes must be within 1..255, not {n_classes}")
    if factor < 1:
        raise ValueError(f"factor must be >= 1, not {factor}")
    n_layers, rows, cols = classes.shape
    out = np.zeros((n_layers, n_classes, -(-rows // factor), -(-cols // factor)), count_dtype(factor))
    _count(zone, classes, lut, np.uint8(n_classes), int(factor), out)
    return out

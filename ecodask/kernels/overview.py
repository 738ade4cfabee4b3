"""Majority (modal) class of each ``factor`` x ``factor`` block of a class-code chunk (numba): the
overview a land-use map is drawn from, one value per analysis cell, so a map never loads the 30 m
grid. GDAL's ``MODE`` overview resampling gives the same classes; this one runs per Dask chunk.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def _block_mode(codes, factor, nodata, out):  # pragma: no cover - compiled
    rows, cols = codes.shape
    counts = np.zeros(256, np.int64)
    for bi in range(out.shape[0]):
        for bj in range(out.shape[1]):
            counts[:] = 0
            for i in range(bi * factor, min((bi + 1) * factor, rows)):
                for j in range(bj * factor, min((bj + 1) * factor, cols)):
                    counts[codes[i, j]] += 1
            counts[nodata] = 0
            best = nodata
            n = 0
            for c in range(256):
                if counts[c] > n:
                    n = counts[c]
                    best = c
            out[bi, bj] = best


def block_mode(codes: np.ndarray, factor: int, nodata: int = 0) -> np.ndarray:
    """The most frequent code of each ``factor`` x ``factor`` block of ``codes`` (uint8, 2-D), blocks
    counted from the top-left corner (a partial block at the right or bottom edge uses the pixels it
    has); ``nodata`` never wins (a block of only ``nodata`` is ``nodata``); a tie goes to the
    smaller code. Returns uint8 of shape ``ceil(rows / factor), ceil(cols / factor)``."""
    codes = np.ascontiguousarray(codes)
    if codes.ndim != 2 or codes.dtype != np.uint8:
        raise ValueError(f"codes must be a 2-D uint8 array, not {codes.ndim}-D {codes.dtype}")
    if factor < 1:
        raise ValueError(f"factor must be >= 1, not {factor}")
    out = np.empty((-(-codes.shape[0] // factor), -(-codes.shape[1] // factor)), np.uint8)
    _block_mode(codes, int(factor), int(nodata), out)
    return out

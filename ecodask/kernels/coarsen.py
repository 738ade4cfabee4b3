"""Analysis-grid arrays at a coarser cell: ``s`` x ``s`` blocks of cells (numpy).

A grid whose sides are not multiples of ``s`` gets partial blocks at its right and bottom edges (the
cells there count as they are). Used for the scale effect of the Geographical Detector: the ESV of a
coarse cell is the sum of its cells', its density that sum over the valued area, a continuous driver
the mean of its cells' values and a categorical one their most frequent value, each cell counted
with a weight (its valued pixels: a cell at a zone's edge with 3 valued pixels weighs 3, not as
much as a full one).
"""

from __future__ import annotations

import numpy as np


def _blocks(a: np.ndarray, s: int, fill: float) -> np.ndarray:
    """``a`` (rows, cols) padded with ``fill`` to multiples of ``s`` and viewed as (R, C, s * s)."""
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D grid, not {a.shape}")
    if int(s) < 1:
        raise ValueError(f"the block side must be >= 1, not {s}")
    s = int(s)
    rows, cols = a.shape
    pr, pc = -rows % s, -cols % s
    if pr or pc:
        a = np.pad(a, ((0, pr), (0, pc)), constant_values=fill)
    r, c = a.shape[0] // s, a.shape[1] // s
    return a.reshape(r, s, c, s).transpose(0, 2, 1, 3).reshape(r, c, s * s)


def block_sum(a: np.ndarray, s: int) -> np.ndarray:
    """Sum of each block, NaN cells left out (a block of NaN only sums to 0)."""
    return np.nansum(_blocks(np.asarray(a, dtype=np.float64), s, np.nan), axis=2)


def _weights(a: np.ndarray, weights: np.ndarray | None, s: int) -> np.ndarray:
    """``weights`` (1 per cell where None; a negative or NaN weight counts 0) in ``a``'s blocks."""
    if weights is None:
        w = np.ones(np.shape(a))
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != np.shape(a):
            raise ValueError(f"weights of shape {w.shape} for a grid of shape {np.shape(a)}")
        w = np.where(w > 0, w, 0.0)  # NaN > 0 is False
    return _blocks(w, s, 0.0)


def block_mean(a: np.ndarray, s: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted mean of each block's finite cells, ``Σ w a / Σ w`` (``weights`` w per cell, e.g.
    its valued pixels; every cell 1 where None); NaN where the block's finite cells weigh 0."""
    b = _blocks(np.asarray(a, dtype=np.float64), s, np.nan)
    ok = np.isfinite(b)
    w = np.where(ok, _weights(a, weights, s), 0.0)
    n = w.sum(axis=2)
    total = (w * np.where(ok, b, 0.0)).sum(axis=2)
    return np.divide(total, n, out=np.full(n.shape, np.nan), where=n > 0)


def block_mode(a: np.ndarray, s: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Value of each block whose finite cells weigh most (``weights`` per cell, e.g. its valued
    pixels: a cell's value votes with its weight; every cell 1 where None, the most frequent
    value); the smallest of a tie; NaN where the block's finite cells weigh 0."""
    b = _blocks(np.asarray(a, dtype=np.float64), s, np.nan)
    w = _weights(a, weights, s)
    values = np.unique(b[np.isfinite(b)])  # a categorical driver's few codes, ascending
    out = np.full(b.shape[:2], np.nan)
    best = np.zeros(b.shape[:2])
    for v in values:  # one pass per code; a strictly larger weight wins, so ties keep the smaller code
        count = np.where(b == v, w, 0.0).sum(axis=2)
        more = count > best
        out[more] = v
        best[more] = count[more]
    return out


def block_density(esv: np.ndarray, pixels: np.ndarray, s: int, pixel_area_ha: float) -> np.ndarray:
    """ESV density of each block, CNY/ha/yr: its cells' ESV (CNY/yr) over their valued pixels' area
    (``pixels`` x ``pixel_area_ha``); NaN where no pixel is valued."""
    e = block_sum(esv, s)
    n = block_sum(np.where(np.asarray(pixels) > 0, pixels, 0), s)
    return np.divide(e, n * float(pixel_area_ha), out=np.full(e.shape, np.nan), where=n > 0)

"""Slope and aspect of a DEM by Horn's (1981) 3x3 method, per chunk (numba).

Neighbours of the cell ``e``, as the window lies in the array (row 0 at the top)::

    a b c
    d e f
    g h i

``dz/dx = ((c + 2f + i) - (a + 2d + g)) / (8 rx)`` and ``dz/dy = ((g + 2h + i) - (a + 2b + c)) /
(8 ry)``, with ``rx``, ``ry`` the signed steps of one column and one row in metres (a raster's
``transform.a`` and ``transform.e``; ``ry`` is negative for the usual north-up raster, so that
``dz/dy`` is the rise towards the north). Slope ``atan(hypot(dz/dx, dz/dy))`` in degrees; aspect,
the direction the slope faces (steepest descent), in degrees clockwise from north (0 north, 90
east, 180 south, 270 west: gdaldem's and ArcGIS's convention) ``atan2(-dz/dx, -dz/dy)`` mapped into
[0, 360). A cell whose 3x3 window holds a NaN, and the array's outer ring, are NaN (gdaldem without
``-compute_edges``). A flat cell (both gradients exactly 0) has slope 0 and aspect NaN: it faces
no direction (gdaldem writes its nodata, -9999, there; xarray-spatial -1). Its eastness
``sin(aspect) = -dz/dx / |grad|`` and northness ``cos(aspect) = -dz/dy / |grad|`` are 0.

A chunk read with a one-cell halo on every side gives, on its interior, exactly what the whole
array gives there (each cell depends on its 3x3 window only).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: What :func:`horn` computes.
QUANTITIES = ("slope", "aspect", "eastness", "northness")

_DEG = 180.0 / math.pi


@njit(nogil=True, cache=True, inline="always")
def _gradient(z: np.ndarray, i: int, j: int, rx8: float, ry8: float) -> tuple[float, float]:
    """Horn's dz/dx, dz/dy at (i, j); NaN when a cell of the window is NaN (a neighbour's NaN
    reaches a gradient through the sums; the centre, which Horn's sums leave out, is set here)."""
    a, b, c = z[i - 1, j - 1], z[i - 1, j], z[i - 1, j + 1]
    d, f = z[i, j - 1], z[i, j + 1]
    g, h, k = z[i + 1, j - 1], z[i + 1, j], z[i + 1, j + 1]
    dzdx = ((c + 2.0 * f + k) - (a + 2.0 * d + g)) / rx8
    dzdy = ((g + 2.0 * h + k) - (a + 2.0 * b + c)) / ry8
    if math.isnan(z[i, j]):
        dzdx = math.nan
    return dzdx, dzdy


# One loop per quantity, without a branch on it inside: the slope and eastness/northness loops
# vectorize (3x and 9x faster than one loop for all, BENCHMARKS.md).
@njit(nogil=True, cache=True)
def _slope(z: np.ndarray, rx: float, ry: float, out: np.ndarray) -> None:
    for i in range(1, z.shape[0] - 1):
        for j in range(1, z.shape[1] - 1):
            p, q = _gradient(z, i, j, 8.0 * rx, 8.0 * ry)
            out[i, j] = math.atan(math.sqrt(p * p + q * q)) * _DEG


@njit(nogil=True, cache=True)
def _aspect(z: np.ndarray, rx: float, ry: float, out: np.ndarray) -> None:
    for i in range(1, z.shape[0] - 1):
        for j in range(1, z.shape[1] - 1):
            p, q = _gradient(z, i, j, 8.0 * rx, 8.0 * ry)
            deg = math.atan2(-p, -q) * _DEG
            deg = deg + 360.0 if deg < 0.0 else deg
            out[i, j] = math.nan if (p == 0.0 and q == 0.0) else (0.0 if deg >= 360.0 else deg)


@njit(nogil=True, cache=True)
def _component(z: np.ndarray, rx: float, ry: float, north: bool, out: np.ndarray) -> None:
    for i in range(1, z.shape[0] - 1):
        for j in range(1, z.shape[1] - 1):
            p, q = _gradient(z, i, j, 8.0 * rx, 8.0 * ry)
            r = math.sqrt(p * p + q * q)
            out[i, j] = 0.0 if r == 0.0 else -(q if north else p) / r


def horn(z: np.ndarray, res_x: float, res_y: float, what: str) -> np.ndarray:
    """``what`` (``slope`` in degrees, ``aspect`` in degrees clockwise from north, ``eastness`` =
    sin(aspect), ``northness`` = cos(aspect)) of the elevations ``z`` by Horn's method (see the
    module's docstring for the formulas, NaN and flat cells).

    ``z``: (rows, cols) elevations in metres, a float array (NaN = no data; integers are cast to
    float64; convert a nodata value to NaN first). ``res_x``, ``res_y``: the signed size of one
    column and one row in metres, as in the raster's transform (``a`` and ``e``; ``res_y < 0`` for
    a north-up raster). Returns float32 of ``z``'s shape; its outer ring is NaN (pass a window with
    a one-cell halo to get values there).
    """
    if what not in QUANTITIES:
        raise ValueError(f"what must be one of {', '.join(QUANTITIES)}, not {what!r}")
    z = np.asarray(z)
    if z.ndim != 2:
        raise ValueError(f"z must be a 2-D array, got {z.ndim} dimensions")
    if z.dtype.kind not in "fiu":
        raise TypeError(f"z must hold numbers, got {z.dtype}")
    if z.dtype.kind != "f":
        z = z.astype(np.float64)
    rx, ry = float(res_x), float(res_y)
    if not (math.isfinite(rx) and math.isfinite(ry) and rx != 0.0 and ry != 0.0):
        raise ValueError(f"res_x and res_y must be finite and non-zero, got {res_x!r}, {res_y!r}")
    out = np.full(z.shape, np.nan, dtype=np.float32)
    z = np.ascontiguousarray(z)
    if what == "slope":
        _slope(z, rx, ry, out)
    elif what == "aspect":
        _aspect(z, rx, ry, out)
    else:
        _component(z, rx, ry, what == "northness", out)
    return out


def circular_mean_deg(east: np.ndarray, north: np.ndarray, min_length: float = 1e-6) -> np.ndarray:
    """The mean direction, degrees clockwise from north in [0, 360), of directions given by their
    mean eastness (sin) and northness (cos) components: ``atan2(east, north)`` (Fisher 1993, ch. 2;
    Mardia & Jupp 2000, §2.2.1). NaN where either is NaN, or where the mean resultant
    ``hypot(east, north)`` is below ``min_length`` (all flat, or directions that cancel: no mean
    direction). Returns float32."""
    e = np.asarray(east, dtype=np.float64)
    n = np.asarray(north, dtype=np.float64)
    deg = np.degrees(np.arctan2(e, n)) % 360.0
    deg = np.where(deg >= 360.0, 0.0, deg)  # -tiny % 360 rounds to 360
    return np.where(np.hypot(e, n) >= min_length, deg, np.nan).astype(np.float32)

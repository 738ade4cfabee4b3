"""One pass over a store's pixels for every pair of years: transfer histograms and ESV grids.

Each Dask task takes one (y, x) chunk of the zone raster and of all land-cover years, runs the
transition kernel and the ESV lookup kernel on it, writes its ESV block straight into the Zarr
array prepared for it (chunk-aligned, so tasks never touch the same Zarr chunk) and returns only
small results: the per-zone histograms of the zones the chunk holds (renumbered by
:func:`ecodask.kernels.zones.compact_zones`, so a chunk of a grid of 40,000 townships returns a
few zones' rows, not 40,000) and the chunk's analysis cells. Those are summed in a
tree (histograms) or placed (cells). The 30 m float grid is written once and never read back.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import dask
import dask.array as da
import numpy as np

from ecodask.kernels.esv_grid import esv_grid, esv_grid_adjusted
from ecodask.kernels.transitions import transition_counts
from ecodask.kernels.transitions_esv import transitions_esv
from ecodask.kernels.zones import compact_zones

#: A chunk computes every year's total ESV grid in the fused loop when they take at most this many
#: bytes together (float32: 4 years of a 4096² chunk), else one year at a time.
FUSED_GRID_BYTES = 256 * 2**20
#: A chunk returns the histograms of the zones it holds only (renumbered) when every zone's would
#: take more than this many bytes (pairs x zones x K² x 8): 40,000 zones x 3 pairs is 96 MB a chunk,
#: and zeroing it costs more than renumbering (BENCHMARKS.md, "Zones by the ten thousand").
COMPACT_ABOVE_BYTES = 8 * 2**20


@dataclass(frozen=True)
class PassResult:
    """Results of :func:`land_pass`.

    counts: int64 (pairs, zones, K, K) pixels per zone and class index of the pair's two years.
    unknown: int64 (years, 256) pixels inside zones per code the scheme does not know.
    zone_sums: float64 (years, zones, K, groups) multiplier summed per zone and class, or None.
    coarse: float64 (years, layers, cells_y, cells_x) ESV per analysis cell, CNY/yr (layer 0 the
        total, then the groups when requested).
    npix: int32 (years, cells_y, cells_x) valued pixels per analysis cell.
    """

    counts: np.ndarray
    unknown: np.ndarray
    zone_sums: np.ndarray | None
    coarse: np.ndarray
    npix: np.ndarray


def _chunk(zone, lc, mult, y0, x0, *, lut, pairs, n_zones, values, factor, groups_out, targets,
           compact_above, fused_up_to):
    # Per-zone results as rows ``ids``: of the zones present only (compact_zones) where every zone's
    # rows would be large; renumbering costs a pass over the zones (~40 ms per 4096² chunk).
    if len(pairs) * n_zones * (int(lut.max()) + 1) ** 2 * 8 > compact_above:
        zone, ids = compact_zones(zone, n_zones)
        n_zones = len(ids)
    else:
        ids = np.arange(1, n_zones + 1)
    write = _grid_writer(targets, y0, x0, zone.shape, groups_out)
    n_years = lc.shape[0]
    if mult is None and not groups_out and n_years * zone.size * 4 <= fused_up_to:
        # the common case: one fused loop, every year's total grid at once
        counts, unknown, grid, coarse, npix = transitions_esv(zone, lc, lut, pairs, n_zones,
                                                              values.sum(axis=1), factor)
        write(slice(None), grid[:, None])
        del grid
        return ids, counts, unknown, None, [(y0 // factor, x0 // factor, coarse[:, None], npix)]
    # Histograms, then the grids one year at a time: a task holds one year's float32 grid, not
    # the archive's (39 x 67 MB for a 4096² chunk).
    counts, unknown = transition_counts(zone, lc, lut, pairs, n_zones)
    if mult is None:
        layers = (np.concatenate([values.sum(axis=1, keepdims=True), values], axis=1) if groups_out
                  else values.sum(axis=1, keepdims=True))
    coarse, npix, zs = [], [], []
    for t in range(n_years):
        if mult is None:
            g, c, n = esv_grid(zone, lc[t : t + 1], layers[t : t + 1], factor)
        else:
            g, c, n, z = esv_grid_adjusted(zone, lc[t : t + 1], values[t : t + 1], mult, lut, n_zones, factor,
                                           groups_out)
            zs.append(z)
        write(slice(t, t + 1), g)
        del g
        coarse.append(c)
        npix.append(n)
    cells = (y0 // factor, x0 // factor, np.concatenate(coarse), np.concatenate(npix))
    return ids, counts, unknown, np.concatenate(zs) if zs else None, [cells]


def _grid_writer(targets, y0: int, x0: int, shape: tuple[int, int], groups_out: bool):  # noqa: ANN202
    """``write(years, grid)``: a chunk's ESV grid (years, layers, rows, cols), total first, into the
    Zarr targets at the chunk's window (a no-op without targets)."""
    if not targets:
        return lambda years, grid: None
    import zarr

    every = {"write_empty_chunks": True}  # skip zarr's all-fill check: a chunk is rarely all NaN
    win = (slice(y0, y0 + shape[0]), slice(x0, x0 + shape[1]))
    total = zarr.open_array(targets["esv"], mode="r+", config=every)
    groups = (zarr.open_array(targets["esv_group"], mode="r+", config=every)
              if groups_out and "esv_group" in targets else None)

    def write(years: slice, grid: np.ndarray) -> None:
        total[(years, *win)] = grid[:, 0]
        if groups is not None:
            groups[(years, slice(None), *win)] = grid[:, 1:]

    return write


def _combine(*parts):
    """Sum chunks' results: per-zone rows on the union of their zones (ids sorted), the rest as is."""
    ids = functools.reduce(np.union1d, [p[0] for p in parts])
    first = parts[0]
    counts = np.zeros((first[1].shape[0], len(ids), *first[1].shape[2:]), first[1].dtype)
    zs = None if first[3] is None else np.zeros((first[3].shape[0], len(ids), *first[3].shape[2:]))
    unknown = first[2].copy()
    cells = []
    for i, (part_ids, c, u, z, cl) in enumerate(parts):
        rows = np.searchsorted(ids, part_ids)
        counts[:, rows] += c
        if zs is not None:
            zs[:, rows] += z
        if i:
            unknown += u
        cells += cl
    return ids, counts, unknown, zs, cells


def land_pass(
    zone: da.Array,
    landcover: da.Array,
    *,
    lut: np.ndarray,
    pairs: list[tuple[int, int]],
    n_zones: int,
    values: np.ndarray,
    factor: int,
    multiplier: np.ndarray | None = None,
    groups_out: bool = False,
    targets: dict[str, str | Path] | None = None,
    split_every: int = 8,
    compact_above: int = COMPACT_ABOVE_BYTES,
    fused_up_to: int = FUSED_GRID_BYTES,
) -> PassResult:
    """Run the transitions + ESV pass over ``zone`` (y, x) and ``landcover`` (year, y, x).

    ``values``: (years, groups, 256) CNY/yr per pixel per service group (see
    ``ecodask.science.esv.pixel_values``); ``multiplier``: (groups, cells_y, cells_x) spatial adjustment on
    the analysis grid or None; ``targets``: Zarr array paths ``esv`` (year, y, x) and optionally
    ``esv_group`` (year, group, y, x) to write the grids into (same chunks as ``zone``), or None to
    skip writing. Chunks must hold whole analysis cells (chunk size a multiple of ``factor``).
    ``compact_above``: a chunk whose per-zone histograms of every zone would take more bytes returns
    those of the zones it holds only (:data:`COMPACT_ABOVE_BYTES`; 0: always). ``fused_up_to``: the
    bytes of a chunk's total ESV grids of every year up to which one fused loop computes them with
    the histograms (:data:`FUSED_GRID_BYTES`; above, and with groups or an adjustment, the grids are
    computed and written one year at a time). Uses the current Dask scheduler.
    """
    lc = landcover.rechunk((-1, *zone.chunks))
    for dim, ch in zip("yx", zone.chunks, strict=True):
        if any(c % factor for c in ch[:-1]):
            raise ValueError(f"{dim} chunks {ch} must be multiples of the analysis factor {factor}")
    offsets = [np.concatenate([[0], np.cumsum(c)[:-1]]) for c in zone.chunks]
    zb, lb = zone.to_delayed(), lc.to_delayed()
    kw = dict(lut=np.asarray(lut, np.uint8), pairs=np.asarray(pairs, np.intp).reshape(-1, 2),
              n_zones=int(n_zones), values=np.asarray(values, np.float64), factor=int(factor),
              groups_out=bool(groups_out), targets={k: str(v) for k, v in (targets or {}).items()},
              compact_above=int(compact_above), fused_up_to=int(fused_up_to))
    fn = dask.delayed(_chunk, pure=True)
    parts = []
    for i, y0 in enumerate(offsets[0]):
        for j, x0 in enumerate(offsets[1]):
            mult = None
            if multiplier is not None:
                cy0, cx0 = y0 // factor, x0 // factor
                ny, nx = -(-zone.chunks[0][i] // factor), -(-zone.chunks[1][j] // factor)
                mult = multiplier[:, cy0 : cy0 + ny, cx0 : cx0 + nx]
            parts.append(fn(zb[i, j], lb[0, i, j], mult, int(y0), int(x0), **kw))
    add = dask.delayed(_combine, pure=True)
    while len(parts) > 1:
        parts = [add(*parts[k : k + split_every]) for k in range(0, len(parts), split_every)]
    (ids, part_counts, unknown, part_zs, cells), = dask.compute(parts[0])
    counts = np.zeros((part_counts.shape[0], int(n_zones), *part_counts.shape[2:]), part_counts.dtype)
    counts[:, ids - 1] = part_counts
    zs = None
    if part_zs is not None:
        zs = np.zeros((part_zs.shape[0], int(n_zones), *part_zs.shape[2:]))
        zs[:, ids - 1] = part_zs
    n_years = landcover.shape[0]
    cy, cx = (-(-n // factor) for n in zone.shape)
    n_layers = cells[0][2].shape[1]
    coarse = np.zeros((n_years, n_layers, cy, cx))
    npix = np.zeros((n_years, cy, cx), np.int32)
    for y, x, c, n in cells:
        coarse[:, :, y : y + c.shape[2], x : x + c.shape[3]] = c
        npix[:, y : y + n.shape[1], x : x + n.shape[2]] = n
    return PassResult(counts, unknown, zs, coarse, npix)

"""One pass over a store's pixels for every pair of years: transfer histograms and ESV grids.

Each Dask task takes one (y, x) chunk of the zone raster and of every land-cover year (one task
per chunk, not per chunk and year; with a ``source`` it reads the years itself, a block at a time,
so what it holds does not grow with the archive), runs the transition kernel and the ESV lookup
kernel on it, writes its ESV block straight into the Zarr array prepared for it (chunk-aligned, so
tasks never touch the same Zarr chunk), and its analysis cells into theirs when given, and returns
only small results: the per-zone histograms of the zones the chunk holds (renumbered by
:func:`ecodask.kernels.zones.compact_zones`, so a chunk of a grid of 40,000 townships returns a
few zones' rows, not 40,000), summed in a tree. The 30 m float grid is written once and never read
back.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import dask
import dask.array as da
import numpy as np

from ecodask.chunked.blockwise import tree_sum
from ecodask.kernels.cell_classes import cell_class_counts
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
#: A task reads at most this many bytes of its chunk's land cover (uint8) at once: 4 years of a
#: 4096² chunk (plus the earlier years later pairs need, 2 for consecutive pairs and first-to-last);
#: more years are read and counted a block at a time. With one year's float32 grid, a task of 39
#: years then holds about what one of 2 years does (BENCHMARKS.md, "The archive's 39 years").
HELD_LANDCOVER_BYTES = 64 * 2**20


@dataclass(frozen=True)
class PassResult:
    """Results of :func:`land_pass`.

    counts: int64 (pairs, zones, K, K) pixels per zone and class index of the pair's two years.
    unknown: int64 (years, 256) pixels inside zones per code the scheme does not know.
    zone_sums: float64 (years, zones, K, groups) multiplier summed per zone and class, or None.
    coarse: float64 (years, layers, cells_y, cells_x) ESV per analysis cell, CNY/yr (layer 0 the
        total, then the groups when requested); None when the tasks wrote the cells themselves.
    npix: int32 (years, cells_y, cells_x) valued pixels per analysis cell, or None likewise.
    """

    counts: np.ndarray
    unknown: np.ndarray
    zone_sums: np.ndarray | None
    coarse: np.ndarray | None
    npix: np.ndarray | None


def _chunk(zone, blocks, mult, y0, x0, *, source, n_years, lut, pairs, n_zones, values, factor, groups_out,
           targets, cells, compact_above, fused_up_to, held_up_to):
    # Per-zone results as rows ``ids``: of the zones present only (compact_zones) where every zone's
    # rows would be large; renumbering costs a pass over the zones (~40 ms per 4096² chunk).
    if len(pairs) * n_zones * (int(lut.max()) + 1) ** 2 * 8 > compact_above:
        zone, ids = compact_zones(zone, n_zones)
        n_zones = len(ids)
    else:
        ids = np.arange(1, n_zones + 1)
    read = _year_reader(source, blocks, y0, x0, zone.shape)
    write = _grid_writer(targets, y0, x0, zone.shape, groups_out)
    put = _cell_writer(cells, y0 // factor, x0 // factor)
    n_classes, compose = _class_writer(cells, y0 // factor, x0 // factor)
    per_block = max(1, held_up_to // zone.size)  # land-cover years a task holds at once (uint8)
    if (mult is None and not groups_out and n_years * zone.size * 4 <= fused_up_to
            and n_years <= per_block):
        # the common case: one fused loop, every year's total grid at once
        lc = read(range(n_years), np.empty((n_years, *zone.shape), np.uint8))
        cy, cx = -(-zone.shape[0] // factor), -(-zone.shape[1] // factor)
        comp = None if compose is None else np.zeros((n_years, cy, cx, int(lut.max()) + 1), np.int32)
        counts, unknown, grid, coarse, npix = transitions_esv(zone, lc, lut, pairs, n_zones,
                                                              values.sum(axis=1), factor, comp)
        if compose is not None:  # counted run by run in the fused loop
            compose(slice(None), np.moveaxis(comp[..., :n_classes], 3, 1))
        write(slice(None), grid[:, None])
        del grid
        return ids, counts, unknown, None, put(slice(None), coarse[:, None], npix)
    # The years in blocks of ``per_block``, each year read once: the histograms of the pairs whose
    # later year is in the block (an earlier year of a later pair is kept, not read again), then the
    # grids one year at a time; a task holds a block of land cover and one year's float32 grid, not
    # the archive's (39 x 16.8 MB of uint8 and 39 x 67 MB of float32 for a 4096² chunk).
    k = int(lut.max()) + 1
    counts = np.zeros((len(pairs), n_zones, k, k), np.int64)
    unknown = np.zeros((n_years, 256), np.int64)
    later, earlier = pairs.max(axis=1), pairs.min(axis=1)
    if mult is None:
        layers = (np.concatenate([values.sum(axis=1, keepdims=True), values], axis=1) if groups_out
                  else values.sum(axis=1, keepdims=True))
    kept: dict[int, np.ndarray] = {}
    out, zs = [], []
    for first in range(0, n_years, per_block):
        new = list(range(first, min(first + per_block, n_years)))
        order = [*sorted(kept), *new]  # kept years are earlier ones
        at = {t: i for i, t in enumerate(order)}
        held = np.empty((len(order), *zone.shape), np.uint8)  # the kept years, then the block read into it
        for t, a in kept.items():
            held[at[t]] = a
        read(new, held[len(kept) :])
        mine = np.flatnonzero((later >= new[0]) & (later <= new[-1]))
        c, u = transition_counts(zone, held, lut,
                                 np.array([[at[a], at[b]] for a, b in pairs[mine]], np.intp).reshape(-1, 2),
                                 n_zones)
        counts[mine] = c
        unknown[new] = u[[at[t] for t in new]]
        for t in new:
            lc = held[at[t] : at[t] + 1]
            if compose is not None:
                compose(slice(t, t + 1), cell_class_counts(zone, lc, lut, n_classes, factor))
            if mult is None:
                g, coarse, npix = esv_grid(zone, lc, layers[t : t + 1], factor)
            else:
                g, coarse, npix, z = esv_grid_adjusted(zone, lc, values[t : t + 1], mult, lut, n_zones,
                                                       factor, groups_out)
                zs.append(z)
            write(slice(t, t + 1), g)
            del g
            out += put(slice(t, t + 1), coarse, npix)
        kept = {t: held[at[t]].copy() for t in order if (later[earlier == t] > new[-1]).any()}
        del held
    return ids, counts, unknown, np.concatenate(zs) if zs else None, _join_cells(out)


def _year_reader(source: str | None, blocks: list | None, y0: int, x0: int,  # noqa: ANN202
                 shape: tuple[int, int]):
    """``read(years, out) -> out``: a chunk's land cover of those year indices into ``out`` (len(years),
    rows, cols) uint8, from the Zarr array at ``source`` (read by the task itself, year by year) or
    from ``blocks`` (the chunk's per-year arrays Dask gave the task)."""
    if source is None:
        def from_blocks(years, out: np.ndarray) -> np.ndarray:  # noqa: ANN001
            for i, t in enumerate(years):
                out[i] = blocks[t][0]  # each (1, rows, cols)
            return out

        return from_blocks
    import zarr

    arr = zarr.open_array(source, mode="r")
    win = (slice(y0, y0 + shape[0]), slice(x0, x0 + shape[1]))

    def from_store(years, out: np.ndarray) -> np.ndarray:  # noqa: ANN001
        for i, t in enumerate(years):
            out[i] = arr[(t, *win)]
        return out

    return from_store


def _cell_writer(cells: dict[str, object] | None, cy0: int, cx0: int):  # noqa: ANN202
    """``put(years, coarse, npix)``: a chunk's analysis cells (years, layers, cells_y, cells_x) CNY/yr
    and valued pixels (years, cells_y, cells_x). With ``cells`` (Zarr array paths ``esv``,
    ``esv_pixels``, ``esv_density`` [, ``esv_group``] and ``pixel_area_ha``) they are written there,
    the window clipped to the arrays' extent, and nothing is returned; without, they are returned as
    ``[(cy0, cx0, coarse, npix)]`` for the caller to place."""
    if not cells:
        return lambda years, coarse, npix: [(cy0, cx0, coarse, npix)]
    import zarr

    from ecodask.science.esv import cell_density

    arrays = {k: zarr.open_array(v, mode="r+") for k, v in cells.items()
              if k not in ("pixel_area_ha", "class_pixels")}
    area = float(cells["pixel_area_ha"])
    ny, nx = arrays["esv"].shape[1:]

    def put(years: slice, coarse: np.ndarray, npix: np.ndarray) -> list:
        h, w = min(coarse.shape[2], ny - cy0), min(coarse.shape[3], nx - cx0)
        if h <= 0 or w <= 0:
            return []
        c, n = coarse[:, :, :h, :w], npix[:, :h, :w]
        win = (slice(cy0, cy0 + h), slice(cx0, cx0 + w))
        valued = n > 0
        arrays["esv"][(years, *win)] = np.where(valued, c[:, 0], np.nan)
        arrays["esv_pixels"][(years, *win)] = n
        arrays["esv_density"][(years, *win)] = cell_density(c[:, 0], n, area)
        if "esv_group" in arrays:
            arrays["esv_group"][(years, slice(None), *win)] = np.where(valued[:, None], c[:, 1:], np.nan)
        return []

    return put


def _class_writer(cells: dict[str, object] | None, cy0: int, cx0: int):  # noqa: ANN202
    """``(n_classes, compose)``: ``compose(years, counts)`` writes a chunk's class composition per
    analysis cell (years, n_classes, cells_y, cells_x) into the Zarr array ``class_pixels`` of
    ``cells`` (year, class, y, x), the window clipped to its extent; ``(0, None)`` where ``cells`` has
    no such array."""
    if not cells or "class_pixels" not in cells:
        return 0, None
    import zarr

    arr = zarr.open_array(cells["class_pixels"], mode="r+")
    n_classes, ny, nx = arr.shape[1:]

    def compose(years: slice, counts: np.ndarray) -> None:
        h, w = min(counts.shape[2], ny - cy0), min(counts.shape[3], nx - cx0)
        if h > 0 and w > 0:
            arr[(years, slice(None), slice(cy0, cy0 + h), slice(cx0, cx0 + w))] = (
                counts[:, :, :h, :w].astype(arr.dtype))

    return n_classes, compose


def _join_cells(parts: list) -> list:
    """One chunk's cells of several years as one ``(cy0, cx0, coarse, npix)`` (or none: written)."""
    if not parts:
        return []
    cy0, cx0 = parts[0][:2]
    return [(cy0, cx0, np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts]))]


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
    cells: dict[str, str | Path | float] | None = None,
    source: str | Path | None = None,
    split_every: int = 8,
    compact_above: int = COMPACT_ABOVE_BYTES,
    fused_up_to: int = FUSED_GRID_BYTES,
    held_up_to: int = HELD_LANDCOVER_BYTES,
) -> PassResult:
    """Run the transitions + ESV pass over ``zone`` (y, x) and ``landcover`` (year, y, x).

    ``values``: (years, groups, 256) CNY/yr per pixel per service group (see
    ``ecodask.science.esv.pixel_values``); ``multiplier``: (groups, cells_y, cells_x) spatial adjustment on
    the analysis grid or None; ``targets``: Zarr array paths ``esv`` (year, y, x) and optionally
    ``esv_group`` (year, group, y, x) to write the grids into (same chunks as ``zone``), or None to
    skip writing. ``cells``: Zarr array paths ``esv``, ``esv_pixels``, ``esv_density`` (year, cells_y,
    cells_x), optionally ``esv_group`` (year, group, cells_y, cells_x) and ``class_pixels`` (year,
    class, cells_y, cells_x: pixels of each class index below the array's class count, see
    :func:`ecodask.kernels.cell_classes.cell_class_counts`), chunked ``chunk / factor`` cells, plus
    ``pixel_area_ha``: each task writes its analysis cells there, and
    :attr:`PassResult.coarse` and ``npix`` are None (nothing per year reaches the caller); without,
    they are gathered. ``source``: the Zarr array ``landcover`` comes from; each task then reads its
    chunk's years itself, a block at a time, and Dask holds no land cover for it. Chunks must hold
    whole analysis cells (chunk size a multiple of ``factor``).
    ``compact_above``: a chunk whose per-zone histograms of every zone would take more bytes returns
    those of the zones it holds only (:data:`COMPACT_ABOVE_BYTES`; 0: always). ``fused_up_to``: the
    bytes of a chunk's total ESV grids of every year up to which one fused loop computes them with
    the histograms (:data:`FUSED_GRID_BYTES`; above, and with groups or an adjustment, the grids are
    computed and written one year at a time). ``held_up_to``: the bytes of land cover a task holds
    at once (:data:`HELD_LANDCOVER_BYTES`; the years are taken in blocks that fit, at least one).
    Uses the current Dask scheduler.
    """
    for dim, ch in zip("yx", zone.chunks, strict=True):
        if any(c % factor for c in ch[:-1]):
            raise ValueError(f"{dim} chunks {ch} must be multiples of the analysis factor {factor}")
    n_years = landcover.shape[0]
    if landcover.shape[1:] != zone.shape:
        raise ValueError(f"land cover {landcover.shape} and zones {zone.shape} differ in shape")
    offsets = [np.concatenate([[0], np.cumsum(c)[:-1]]) for c in zone.chunks]
    zb = zone.to_delayed()
    lb = None if source is not None else landcover.rechunk((1, *zone.chunks)).to_delayed()
    kw = dict(lut=np.asarray(lut, np.uint8), pairs=np.asarray(pairs, np.intp).reshape(-1, 2),
              n_zones=int(n_zones), values=np.asarray(values, np.float64), factor=int(factor),
              groups_out=bool(groups_out), targets={k: str(v) for k, v in (targets or {}).items()},
              cells={k: (v if k == "pixel_area_ha" else str(v)) for k, v in (cells or {}).items()},
              source=None if source is None else str(source), n_years=int(n_years),
              compact_above=int(compact_above), fused_up_to=int(fused_up_to), held_up_to=int(held_up_to))
    fn = dask.delayed(_chunk, pure=True)
    parts = []
    for i, y0 in enumerate(offsets[0]):
        for j, x0 in enumerate(offsets[1]):
            mult = None
            if multiplier is not None:
                cy0, cx0 = y0 // factor, x0 // factor
                ny, nx = -(-zone.chunks[0][i] // factor), -(-zone.chunks[1][j] // factor)
                mult = multiplier[:, cy0 : cy0 + ny, cx0 : cx0 + nx]
            blocks = None if lb is None else [lb[t, i, j] for t in range(n_years)]
            parts.append(fn(zb[i, j], blocks, mult, int(y0), int(x0), **kw))
    (ids, part_counts, unknown, part_zs, cell_parts), = dask.compute(tree_sum(parts, split_every, _combine))
    counts = np.zeros((part_counts.shape[0], int(n_zones), *part_counts.shape[2:]), part_counts.dtype)
    counts[:, ids - 1] = part_counts
    zs = None
    if part_zs is not None:
        zs = np.zeros((part_zs.shape[0], int(n_zones), *part_zs.shape[2:]))
        zs[:, ids - 1] = part_zs
    if cells:
        return PassResult(counts, unknown, zs, None, None)
    cy, cx = (-(-n // factor) for n in zone.shape)
    n_layers = cell_parts[0][2].shape[1]
    coarse = np.zeros((n_years, n_layers, cy, cx))
    npix = np.zeros((n_years, cy, cx), np.int32)
    for y, x, c, n in cell_parts:
        coarse[:, :, y : y + c.shape[2], x : x + c.shape[3]] = c
        npix[:, y : y + n.shape[1], x : x + n.shape[2]] = n
    return PassResult(counts, unknown, zs, coarse, npix)

"""The transitions + ESV pass (ecodask.chunked.landpass.land_pass) == plain numpy on random rasters.

Random small rasters, random chunkings (chunk sides multiples of the analysis factor, raster
sides not), random zone rasters (zone 0 = outside, chunks cut through zones), CLCD codes with the
no-data code 0 and sometimes codes no scheme knows. Everything the pass returns or writes is
recomputed here pixel by pixel with numpy: the transfer histograms, the unknown-code counts, the
ESV grids written into Zarr, the analysis-cell sums and pixel counts, the spatially adjusted grids
and their per-zone multiplier sums; and the per-county tables built from them
(ecodask.science.esv.EsvModel.tables) against areas and ESV computed straight from the raw rasters.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from ecodask.chunked.landpass import land_pass
from ecodask.io.catalogs import load_class_scheme, load_esv_table
from ecodask.science import esv as esvmod
from ecodask.science.esv import EsvModel
from ecodask.science.landuse import REGION_ID, ClassIndex, year_pairs

SCHEME = load_class_scheme("clcd")
INDEX = ClassIndex(SCHEME)
KNOWN = INDEX.codes  # 1..9
UNKNOWN_CODES = [13, 200, 255]
PIXEL_HA = 0.09
DASK_THREADS = 3  # conftest's dask_threads

pytestmark = pytest.mark.usefixtures("dask_threads")


# ------------------------------------------------------------------------------------------
# random inputs


def _raster_case(rng, rows, cols, n_years, n_zones, unknown):
    """zone (rows, cols) uint8/uint16 with zeros; land cover (years, rows, cols) uint8."""
    ztype = np.uint8 if rng.random() < 0.5 else np.uint16
    zone = rng.integers(1, n_zones + 1, (rows, cols))
    if rng.random() < 0.5:  # zones in blocks of 3 x 3 px: a chunk holds some of them, or none
        r, c = np.indices((rows, cols))
        zone = 1 + ((r // 3) * 5 + c // 3 + int(rng.integers(0, n_zones))) % n_zones
    zone[rng.random((rows, cols)) < 0.25] = 0  # outside every zone
    pool = [0, *KNOWN] + (UNKNOWN_CODES if unknown else [])
    lc = rng.choice(pool, size=(n_years, rows, cols)).astype(np.uint8)
    if rng.random() < 0.5:  # persistence: some pixels keep their first-year class
        keep = rng.random((rows, cols)) < 0.5
        lc[:, keep] = lc[0, keep]
    return zone.astype(ztype), lc


def _random_values(rng, n_years, n_groups):
    """(years, groups, 256) CNY/yr per pixel: random for the known codes (zeros included),
    NaN for no data and every unknown code, as ecodask.science.esv.pixel_values makes them."""
    values = np.full((n_years, n_groups, 256), np.nan)
    v = rng.uniform(0, 1000, (n_years, n_groups, len(KNOWN)))
    v[rng.random(v.shape) < 0.1] = 0.0
    values[:, :, KNOWN] = v
    return values


def _blow_up(a, factor, rows, cols):
    """Analysis-cell array (..., cy, cx) -> pixel array (..., rows, cols)."""
    return np.repeat(np.repeat(a, factor, axis=-2), factor, axis=-1)[..., :rows, :cols]


def _cell_sums(a, factor):
    """Sum a pixel array (..., rows, cols) over factor x factor cells (partial edge cells too)."""
    rows, cols = a.shape[-2:]
    cy, cx = -(-rows // factor), -(-cols // factor)
    pad = np.zeros((*a.shape[:-2], cy * factor, cx * factor), dtype=a.dtype)
    pad[..., :rows, :cols] = a
    return pad.reshape(*a.shape[:-2], cy, factor, cx, factor).sum(axis=(-3, -1))


def _numpy_counts(zone, lc, pairs, n_zones):
    z = zone.astype(np.int64)
    inside = z > 0
    out = np.zeros((len(pairs), n_zones, INDEX.k, INDEX.k), np.int64)
    for p, (a, b) in enumerate(pairs):
        np.add.at(out[p], (z[inside] - 1, INDEX.lut[lc[a]][inside], INDEX.lut[lc[b]][inside]), 1)
    return out


def _numpy_unknown(zone, lc):
    inside = zone > 0
    known = set(KNOWN) | {SCHEME.nodata}
    out = np.zeros((lc.shape[0], 256), np.int64)
    for t in range(lc.shape[0]):
        for code in np.unique(lc[t][inside]):
            if int(code) not in known:
                out[t, code] = int(np.sum(inside & (lc[t] == code)))
    return out


def _zarr_target(folder: Path, name: str, shape, chunks) -> Path:
    """An empty float32 Zarr array; fill -1 (not NaN) so unwritten pixels are caught."""
    path = folder / name
    zarr.create_array(store=str(path), shape=shape, chunks=chunks, dtype="float32", fill_value=-1.0)
    return path


AREA_HA = 0.09  # a 30 m pixel


def _run_pass(tmp: Path, zd, ld, lc, *, factor, cy, cx, groups_out, n_groups, from_store, cells_out,
              per_block, **kw):
    """land_pass as the tests call it, drawing how it gets its land cover (Dask's blocks, or read by
    each task from a Zarr store), how many years a task holds at once, and whether the tasks write
    the analysis cells into Zarr arrays (read back into the result's ``coarse`` and ``npix``, after
    checking the density and NaN conventions the arrays carry, and the cells' class composition
    against numpy)."""
    source = None
    if from_store:
        source = tmp / "landcover"
        arr = zarr.create_array(store=str(source), shape=lc.shape, chunks=(1, 5, 7), dtype="uint8",
                                fill_value=0)
        arr[:] = lc
    n_years, rows, cols = lc.shape
    ncy, ncx = -(-rows // factor), -(-cols // factor)
    cells = None
    if cells_out:  # chunked one analysis chunk per pixel chunk, as the store's analysis grid is
        cells = {"pixel_area_ha": AREA_HA}
        arrays = [("esv", "float64", (n_years, ncy, ncx)), ("esv_pixels", "int32", (n_years, ncy, ncx)),
                  ("esv_density", "float64", (n_years, ncy, ncx))]
        arrays += [("esv_group", "float64", (n_years, n_groups, ncy, ncx))] * groups_out
        arrays += [("class_pixels", "uint16", (n_years, INDEX.n, ncy, ncx))]
        for name, dtype, shape in arrays:
            cells[name] = tmp / f"cells_{name}"
            chunks = (1,) * (len(shape) - 2) + (cy // factor, cx // factor)
            if name == "class_pixels":  # a task writes a cell chunk's whole composition
                chunks = (1, INDEX.n, cy // factor, cx // factor)
            zarr.create_array(store=str(cells[name]), shape=shape, chunks=chunks, dtype=dtype,
                              fill_value=7 if dtype == "uint16" else -7)
    res = land_pass(zd, ld, factor=factor, groups_out=groups_out, source=source, cells=cells,
                    held_up_to=per_block * cy * cx, **kw)
    if not cells_out:
        return res
    assert res.coarse is None and res.npix is None  # nothing per year came back
    got = {k: zarr.open_array(str(v), mode="r")[:] for k, v in cells.items() if k != "pixel_area_ha"}
    zone = zd.compute()
    classes = INDEX.lut[lc]  # (years, rows, cols) class index
    expect = np.stack([_cell_sums(((zone > 0) & (classes == k)).astype(np.int64), factor)
                       for k in range(INDEX.n)], axis=1)
    np.testing.assert_array_equal(got.pop("class_pixels"), expect)
    npix = got["esv_pixels"]
    valued = npix > 0
    esv = got["esv"]
    np.testing.assert_array_equal(np.isnan(esv), ~valued)
    expect_density = np.where(valued, np.where(valued, esv, 0) / (np.maximum(npix, 1) * AREA_HA), np.nan)
    np.testing.assert_allclose(got["esv_density"], expect_density, rtol=1e-12)
    coarse = np.where(valued, esv, 0.0)[:, None]
    if groups_out:
        assert np.isnan(got["esv_group"]).all(axis=1)[~valued].all()
        coarse = np.concatenate([coarse, np.where(valued[:, None], got["esv_group"], 0.0)], axis=1)
    return type(res)(res.counts, res.unknown, res.zone_sums, coarse, npix)


def _assert_grid(got, expect):
    assert got.shape == expect.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expect))
    np.testing.assert_allclose(got, expect, rtol=2e-7, atol=0)  # float32 pixels


def _chunk(factor, k):
    """A chunk side: a multiple of the analysis factor, at least 4 pixels (fewer tasks)."""
    return factor * (k + -(-4 // factor))


def _da(zone, lc, chunk_yx, lc_chunk_yx):
    return (da.from_array(zone, chunks=chunk_yx),
            da.from_array(lc, chunks=(1, *lc_chunk_yx)))  # land_pass rechunks land cover to the zones'


case = dict(
    rows=st.integers(1, 24),
    cols=st.integers(1, 24),
    n_years=st.integers(1, 4),
    n_zones=st.integers(1, 12),
    factor=st.sampled_from([1, 2, 4]),
    ky=st.integers(0, 3),  # chunk side = factor * (k + the least k giving >= 4 pixels)
    kx=st.integers(0, 3),
    n_groups=st.integers(1, 4),
    unknown=st.booleans(),
    split_every=st.integers(2, 8),
    compact=st.booleans(),  # chunks return the zones they hold only (always), or every zone's rows
    fused=st.booleans(),  # the fused loop for the total grid where it applies, or one year at a time
    from_store=st.booleans(),  # each task reads its years from a Zarr array, or Dask hands them over
    cells_out=st.booleans(),  # each task writes its analysis cells into Zarr arrays, or returns them
    per_block=st.integers(1, 4),  # land-cover years a task holds at once (chunks of the full size)
    seed=st.integers(0, 2**32 - 1),
)


# ------------------------------------------------------------------------------------------
# the pass without spatial adjustment


@settings(max_examples=25, deadline=None)
@given(groups_out=st.booleans(), **case)
def test_pass_equals_numpy(rows, cols, n_years, n_zones, factor, ky, kx, n_groups, unknown,
                           split_every, compact, fused, from_store, cells_out, per_block, seed,
                           groups_out) -> None:
    rng = np.random.default_rng(seed)
    zone, lc = _raster_case(rng, rows, cols, n_years, n_zones, unknown)
    values = _random_values(rng, n_years, n_groups)
    pairs = year_pairs(list(range(2000, 2000 + n_years)))
    cy, cx = _chunk(factor, ky), _chunk(factor, kx)
    zd, ld = _da(zone, lc, (cy, cx), (int(rng.integers(3, 12)), int(rng.integers(3, 12))))
    with tempfile.TemporaryDirectory() as tmp:
        targets = {"esv": _zarr_target(Path(tmp), "esv", (n_years, rows, cols), (1, cy, cx))}
        if groups_out:
            targets["esv_group"] = _zarr_target(Path(tmp), "esv_group", (n_years, n_groups, rows, cols),
                                                (1, 1, cy, cx))
        res = _run_pass(Path(tmp), zd, ld, lc, factor=factor, cy=cy, cx=cx, groups_out=groups_out,
                        n_groups=n_groups, from_store=from_store, cells_out=cells_out, per_block=per_block,
                        lut=INDEX.lut, pairs=pairs, n_zones=n_zones, values=values, targets=targets,
                        split_every=split_every, compact_above=0 if compact else 2**62,
                        fused_up_to=2**62 if fused else 0)
        grid = zarr.open_array(str(targets["esv"]), mode="r")[:]
        ggrid = zarr.open_array(str(targets["esv_group"]), mode="r")[:] if groups_out else None

    np.testing.assert_array_equal(res.counts, _numpy_counts(zone, lc, pairs, n_zones))
    np.testing.assert_array_equal(res.unknown, _numpy_unknown(zone, lc))
    if unknown and np.isin(lc[:, zone > 0], UNKNOWN_CODES).any():
        assert res.unknown.sum() > 0  # the case exercised what it meant to
    assert res.zone_sums is None

    inside = zone > 0
    t_idx = np.arange(n_years)[:, None, None]
    per_group = values[t_idx, :, lc]  # (years, rows, cols, groups)
    per_group = np.moveaxis(per_group, -1, 1)  # (years, groups, rows, cols)
    total = values.sum(axis=1)[t_idx, lc]  # (years, rows, cols)
    valid = inside[None] & np.isfinite(total)
    expect = np.where(valid, total, np.nan).astype(np.float32)
    _assert_grid(grid, expect)
    if groups_out:
        _assert_grid(ggrid, np.where(valid[:, None], per_group, np.nan).astype(np.float32))

    n_layers = 1 + (n_groups if groups_out else 0)
    assert res.coarse.shape == (n_years, n_layers, -(-rows // factor), -(-cols // factor))
    np.testing.assert_array_equal(res.npix, _cell_sums(valid.astype(np.int64), factor))
    np.testing.assert_allclose(res.coarse[:, 0], _cell_sums(np.where(valid, total, 0.0), factor),
                               rtol=1e-12, atol=1e-9)
    if groups_out:
        np.testing.assert_allclose(res.coarse[:, 1:],
                                   _cell_sums(np.where(valid[:, None], per_group, 0.0), factor),
                                   rtol=1e-12, atol=1e-9)
    # the whole ESV is the same whether summed from pixels or from cells
    np.testing.assert_allclose(res.coarse[:, 0].sum(axis=(1, 2)),
                               np.where(valid, total, 0.0).sum(axis=(1, 2)), rtol=1e-12)


# ------------------------------------------------------------------------------------------
# the pass with a spatial adjustment (a multiplier per service group on the analysis grid)


@settings(max_examples=25, deadline=None)
@given(groups_out=st.booleans(), **case)
def test_adjusted_pass_equals_numpy(rows, cols, n_years, n_zones, factor, ky, kx, n_groups, unknown,
                                    split_every, compact, fused, from_store, cells_out, per_block, seed,
                           groups_out) -> None:
    rng = np.random.default_rng(seed)
    zone, lc = _raster_case(rng, rows, cols, n_years, n_zones, unknown)
    values = _random_values(rng, n_years, n_groups)
    ncy, ncx = -(-rows // factor), -(-cols // factor)
    mult = rng.uniform(0.05, 3.0, (n_groups, ncy, ncx))
    pairs = year_pairs(list(range(2000, 2000 + n_years)))
    cy, cx = _chunk(factor, ky), _chunk(factor, kx)
    zd, ld = _da(zone, lc, (cy, cx), (cy, cx))
    with tempfile.TemporaryDirectory() as tmp:
        targets = {"esv": _zarr_target(Path(tmp), "esv", (n_years, rows, cols), (1, cy, cx))}
        if groups_out:
            targets["esv_group"] = _zarr_target(Path(tmp), "esv_group", (n_years, n_groups, rows, cols),
                                                (1, 1, cy, cx))
        res = _run_pass(Path(tmp), zd, ld, lc, factor=factor, cy=cy, cx=cx, groups_out=groups_out,
                        n_groups=n_groups, from_store=from_store, cells_out=cells_out, per_block=per_block,
                        lut=INDEX.lut, pairs=pairs, n_zones=n_zones, values=values, multiplier=mult,
                        targets=targets, split_every=split_every, compact_above=0 if compact else 2**62,
                        fused_up_to=2**62 if fused else 0)
        grid = zarr.open_array(str(targets["esv"]), mode="r")[:]
        ggrid = zarr.open_array(str(targets["esv_group"]), mode="r")[:] if groups_out else None

    np.testing.assert_array_equal(res.counts, _numpy_counts(zone, lc, pairs, n_zones))
    np.testing.assert_array_equal(res.unknown, _numpy_unknown(zone, lc))

    inside = zone > 0
    m = _blow_up(mult, factor, rows, cols)  # (groups, rows, cols)
    t_idx = np.arange(n_years)[:, None, None]
    per_group = np.moveaxis(values[t_idx, :, lc], -1, 1) * m[None]  # (years, groups, rows, cols)
    total = per_group.sum(axis=1)
    valid = inside[None] & np.isfinite(total)
    _assert_grid(grid, np.where(valid, total, np.nan).astype(np.float32))
    if groups_out:
        _assert_grid(ggrid, np.where(valid[:, None], per_group, np.nan).astype(np.float32))

    np.testing.assert_array_equal(res.npix, _cell_sums(valid.astype(np.int64), factor))
    np.testing.assert_allclose(res.coarse[:, 0], _cell_sums(np.where(valid, total, 0.0), factor),
                               rtol=1e-12, atol=1e-9)
    if groups_out:
        np.testing.assert_allclose(res.coarse[:, 1:],
                                   _cell_sums(np.where(valid[:, None], per_group, 0.0), factor),
                                   rtol=1e-12, atol=1e-9)

    # zone_sums[t, z-1, class index, g] = the multiplier summed over the zone's valued pixels of
    # that class: times the class's per-pixel value it gives the zone's adjusted ESV exactly.
    expect_zs = np.zeros((n_years, n_zones, INDEX.k, n_groups))
    z = zone.astype(np.int64)
    for t in range(n_years):
        v = valid[t]
        for g in range(n_groups):
            np.add.at(expect_zs[t, :, :, g], (z[v] - 1, INDEX.lut[lc[t]][v]), m[g][v])
    assert res.zone_sums.shape == expect_zs.shape
    np.testing.assert_allclose(res.zone_sums, expect_zs, rtol=1e-12, atol=1e-12)
    zone_esv = np.einsum("tzkg,tgk->tz", res.zone_sums[:, :, :INDEX.n], values[:, :, KNOWN])
    expect_esv = np.array([[total[t][valid[t] & (zone == zz)].sum() for zz in range(1, n_zones + 1)]
                           for t in range(n_years)])
    np.testing.assert_allclose(zone_esv, expect_esv, rtol=1e-10, atol=1e-9)


def test_multiplier_of_one_is_the_plain_pass() -> None:
    rng = np.random.default_rng(7)
    zone, lc = _raster_case(rng, 23, 17, 3, 3, True)
    values = _random_values(rng, 3, 2)
    zd, ld = _da(zone, lc, (8, 4), (5, 5))
    kw = dict(lut=INDEX.lut, pairs=year_pairs([2000, 2010, 2020]), n_zones=3, values=values, factor=4,
              groups_out=True)
    plain = land_pass(zd, ld, **kw)
    adj = land_pass(zd, ld, multiplier=np.ones((2, 6, 5)), **kw)
    np.testing.assert_array_equal(adj.counts, plain.counts)
    np.testing.assert_array_equal(adj.npix, plain.npix)
    np.testing.assert_allclose(adj.coarse, plain.coarse, rtol=1e-12, atol=1e-9)
    # with multiplier 1 the zone sums are pixel counts: the year's class histogram per zone
    hist = np.zeros((3, 3, INDEX.k), np.int64)
    for t in range(3):
        ok = (zone > 0) & np.isin(lc[t], KNOWN)
        np.add.at(hist[t], (zone[ok].astype(np.int64) - 1, INDEX.lut[lc[t]][ok]), 1)
    np.testing.assert_array_equal(adj.zone_sums[..., 0], hist)
    np.testing.assert_array_equal(adj.zone_sums[..., 1], hist)


def test_chunks_must_hold_whole_analysis_cells() -> None:
    zone = np.ones((12, 12), np.uint8)
    lc = np.ones((1, 12, 12), np.uint8)
    with pytest.raises(ValueError, match="multiples of the analysis factor 4"):
        land_pass(da.from_array(zone, chunks=6), da.from_array(lc, chunks=(1, 6, 6)), lut=INDEX.lut,
                  pairs=[(0, 0)], n_zones=1, values=_random_values(np.random.default_rng(0), 1, 1),
                  factor=4)


# ------------------------------------------------------------------------------------------
# per-county tables from the pass == areas and ESV computed from the raw rasters


def _zones_table(n_zones):
    return pd.DataFrame({"zone": np.arange(1, n_zones + 1), "zone_id": 420100 + np.arange(1, n_zones + 1),
                         "zone_name": [f"county {i}" for i in range(1, n_zones + 1)],
                         "area_ha": np.full(n_zones, 1.0)})


@settings(max_examples=20, deadline=None)
@given(adjusted=st.booleans(), **{k: v for k, v in case.items()
                                  if k not in ("unknown", "n_groups", "from_store", "cells_out")})
def test_county_tables_equal_numpy_from_raw_rasters(rows, cols, n_years, n_zones, factor, ky, kx,
                                                    split_every, compact, fused, per_block, seed,
                                                    adjusted) -> None:
    rng = np.random.default_rng(seed)
    zone, lc = _raster_case(rng, rows, cols, n_years, n_zones, unknown=False)
    years = [2000 + 7 * t for t in range(n_years)]
    pairs = year_pairs(years)
    table = load_esv_table("xinzhou_2023")
    vc1 = esvmod.coefficient_matrix(table, SCHEME, INDEX, None)  # (services, 9) CNY/ha/yr
    vc = np.stack([vc1] * n_years)
    model = EsvModel(SCHEME, table, tuple(years), vc, PIXEL_HA)
    assert model.pairs == pairs
    groups, g_of, market = esvmod.service_groups(table)
    ncy, ncx = -(-rows // factor), -(-cols // factor)
    mult = rng.uniform(0.2, 2.5, (len(groups), ncy, ncx)) if adjusted else None
    ch = (_chunk(factor, ky), _chunk(factor, kx))
    zd, ld = _da(zone, lc, ch, ch)
    res = land_pass(zd, ld, lut=INDEX.lut, pairs=pairs, n_zones=n_zones, values=model.pixel_values(),
                    factor=factor, multiplier=mult, split_every=split_every,
                    compact_above=0 if compact else 2**62, fused_up_to=2**62 if fused else 0,
                    held_up_to=per_block * ch[0] * ch[1])
    zones = _zones_table(n_zones)
    tables = model.tables(res.counts, res.zone_sums, zones)

    ids = [str(i) for i in zones["zone_id"]] + [REGION_ID]
    m = _blow_up(mult, factor, rows, cols) if adjusted else np.ones((len(groups), rows, cols))
    # VC per pixel straight from the catalog table and the CLCD -> seed002_six mapping
    mapping = SCHEME.mapping_to(table.class_set)
    ca = tables["class_area"]
    esv_t = tables["esv_by_service"]
    for t, year in enumerate(years):
        for zi, zid in enumerate(ids):
            sel = (zone > 0) if zid == REGION_ID else (zone == zi + 1)
            rows_ = ca[(ca.zone_id == zid) & (ca.year == year)].set_index("class_code")
            assert rows_.index.tolist() == KNOWN
            pix = np.array([np.sum(sel & (lc[t] == c)) for c in KNOWN])
            np.testing.assert_array_equal(rows_["pixels"].to_numpy(), pix)
            np.testing.assert_array_equal(rows_["area_ha"].to_numpy(), pix * PIXEL_HA)

            e = esv_t[(esv_t.zone_id == zid) & (esv_t.year == year)]
            codes = lc[t][sel]
            mm = m[:, sel]  # (groups, pixels)
            by_service = {}
            for f, svc in enumerate(table.service_names):
                coef = np.array([table.values[svc][mapping[int(c)]] if c in mapping else 0.0 for c in codes])
                by_service[svc] = float(np.sum(PIXEL_HA * coef * mm[g_of[f]]))
            got = e[e.level == "service"].set_index("item")["esv_cny"]
            assert got.index.tolist() == table.service_names
            np.testing.assert_allclose(got.to_numpy(), [by_service[s] for s in table.service_names],
                                       rtol=1e-10, atol=1e-6)
            total = sum(by_service.values())
            assert e[e.level == "total"]["esv_cny"].item() == pytest.approx(total, rel=1e-10, abs=1e-6)
            assert e[e.level == "total"]["esv_1e8cny"].item() == pytest.approx(total * 1e-8, rel=1e-10,
                                                                              abs=1e-14)
            mk = e[e.level == "market"].set_index("item")["esv_cny"]
            market_v = sum(v for s, v in by_service.items() if s in table.market_services)
            assert mk["market"] == pytest.approx(market_v, rel=1e-10, abs=1e-6)
            assert mk["non_market"] == pytest.approx(total - market_v, rel=1e-9, abs=1e-6)
            grp = e[e.level == "group"].set_index("item")["esv_cny"]
            for g, name in enumerate(groups):
                gv = sum(by_service[s] for f, s in enumerate(table.service_names) if g_of[f] == g)
                assert grp[name] == pytest.approx(gv, rel=1e-10, abs=1e-6)

    # transfer matrices: pixels of each (class at t1, class at t2) per zone, no data left out
    tr = tables["transitions"]
    for a, b in (p for p in pairs if p[0] != p[1]):
        part = tr[(tr.year_from == years[a]) & (tr.year_to == years[b])]
        for zi, zid in enumerate(ids):
            sel = (zone > 0) if zid == REGION_ID else (zone == zi + 1)
            z = part[part.zone_id == zid]
            expect = np.array([np.sum(sel & (lc[a] == i) & (lc[b] == j)) for i in KNOWN for j in KNOWN])
            np.testing.assert_array_equal(z["pixels"].to_numpy(), expect)
            np.testing.assert_array_equal(z["area_ha"].to_numpy(), expect * PIXEL_HA)


def test_one_year_tables() -> None:
    rng = np.random.default_rng(3)
    zone, lc = _raster_case(rng, 9, 11, 1, 2, unknown=False)
    table = load_esv_table("xinzhou_2023")
    vc = esvmod.coefficient_matrix(table, SCHEME, INDEX, None)[None]
    model = EsvModel(SCHEME, table, (2020,), vc, PIXEL_HA)
    res = land_pass(da.from_array(zone, chunks=4), da.from_array(lc, chunks=(1, 4, 4)), lut=INDEX.lut,
                    pairs=model.pairs, n_zones=2, values=model.pixel_values(), factor=1)
    tables = model.tables(res.counts, res.zone_sums, _zones_table(2))
    # one year still has class areas and ESV; the transition tables are empty
    ca = tables["class_area"]
    assert ca[ca.zone_id == REGION_ID]["pixels"].sum() == np.isin(lc[0][zone > 0], KNOWN).sum()
    assert len(tables["transitions"]) == 0 and len(tables["esv_change"]) == 0


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 40), cols=st.integers(1, 70), years=st.integers(1, 3),
       factor=st.sampled_from([1, 3, 8]), patch=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_fused_kernel_equals_the_two_kernels(rows, cols, years, factor, patch, seed) -> None:
    """The run-length fused kernel gives exactly what the histogram and ESV kernels give in turn,
    on patchy rasters whose runs cross analysis-cell edges."""
    from ecodask.kernels.esv_grid import esv_grid
    from ecodask.kernels.transitions import transition_counts
    from ecodask.kernels.transitions_esv import transitions_esv

    rng = np.random.default_rng(seed)

    def patchy(n: int, dtype) -> np.ndarray:
        small = rng.integers(0, n, (-(-rows // patch), -(-cols // patch)))
        return np.kron(small, np.ones((patch, patch), int))[:rows, :cols].astype(dtype)

    zone = patchy(4, np.uint8)
    lc = np.stack([patchy(11, np.uint8) for _ in range(years)])  # codes 0..10: 0 no data, 10 unknown
    index = ClassIndex(load_class_scheme("clcd"))
    pairs = np.asarray(year_pairs(list(range(years))))
    values = np.full((years, 256), np.nan)
    values[:, 1:10] = rng.random((years, 9)) * 1000
    counts, unknown, grid, coarse, npix = transitions_esv(zone, lc, index.lut, pairs, 3, values, factor)
    ref_counts, ref_unknown = transition_counts(zone, lc, index.lut, pairs, 3)
    ref_grid, ref_coarse, ref_npix = esv_grid(zone, lc, values[:, None], factor)
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_array_equal(unknown, ref_unknown)
    np.testing.assert_array_equal(grid, ref_grid[:, 0])
    np.testing.assert_allclose(coarse, ref_coarse[:, 0], rtol=1e-12)
    np.testing.assert_array_equal(npix, ref_npix)


def test_compact_zones_by_hand() -> None:
    from ecodask.kernels.zones import compact_zones

    zone = np.array([[0, 7, 7], [3, 0, 9]], np.uint16)
    local, ids = compact_zones(zone, 9)
    np.testing.assert_array_equal(local, [[0, 2, 2], [1, 0, 3]])
    np.testing.assert_array_equal(ids, [3, 7, 9])
    assert local.dtype == zone.dtype
    local, ids = compact_zones(np.zeros((2, 2), np.uint8), 4)  # a chunk outside every zone
    assert not local.any() and ids.size == 0
    with pytest.raises(ValueError, match="larger than n_zones=8"):
        compact_zones(zone, 8)
    with pytest.raises(TypeError):
        compact_zones(zone.astype(np.int32), 9)

"""Hot spots: Moran's I and Gi* against esda/libpysal, by hand, chunk-independence, classes, summary."""

from __future__ import annotations

import functools
import warnings

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from ecodask.chunked.hotspots import (
    getis_ord_gi_star,
    hotspot_classes,
    hotspot_summary,
    hotspots,
    morans_i,
)
from ecodask.errors import InputError
from ecodask.kernels.neighbours import queen_count
from ecodask.science.hotspots import CLASS_NODATA, CRITICAL_Z, SUMMARY_COLUMNS
from ecodask.science.landuse import REGION_ID

NY, NX = 12, 15


def _grid() -> np.ndarray:
    """12 x 15 ESV density (CNY/ha/yr) with a ragged NaN edge, NaN holes and one island at (9, 2)."""
    rng = np.random.default_rng(42)
    y = rng.gamma(2.0, 500.0, (NY, NX))
    y += np.linspace(0, 800, NX)[None, :]  # some autocorrelation
    y[0, :4] = np.nan
    y[:3, 0] = np.nan
    y[-1, 7:] = np.nan
    y[-2, 11:] = np.nan
    y[:5, -1] = np.nan
    y[5:7, 5:8] = np.nan
    y[3, 10] = np.nan
    y[8:11, 1:4] = np.nan
    y[9, 2] = 250.0  # island: all 8 neighbours are NaN
    return y


@functools.cache
def _esda_reference():
    import esda
    import libpysal

    y = _grid()
    ids = np.flatnonzero(np.isfinite(y.ravel()))

    def w():  # a fresh W each time: esda transforms it in place
        full = libpysal.weights.lat2W(NY, NX, rook=False)
        return libpysal.weights.w_subset(full, ids, silence_warnings=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        moran = esda.Moran(y.ravel()[ids], w(), permutations=0)
        gi = esda.G_Local(y.ravel()[ids], w(), transform="B", star=True, permutations=0)
    return ids, moran, gi.Zs


def _cuts(n: int) -> st.SearchStrategy[tuple[int, ...]]:
    def sizes(cuts: set[int]) -> tuple[int, ...]:
        edges = [0, *sorted(cuts), n]
        return tuple(b - a for a, b in zip(edges[:-1], edges[1:], strict=True))

    return st.sets(st.integers(1, n - 1), max_size=5).map(sizes)


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


@settings(max_examples=8, deadline=None)
@given(cy=_cuts(NY), cx=_cuts(NX))
def test_moran_matches_esda_for_any_chunking(cy, cx):
    _, ref, _ = _esda_reference()
    res = morans_i(da.from_array(_grid(), chunks=(cy, cx)))
    assert res["n"] == ref.n
    assert res["islands"] == 1
    for key in ("I", "EI", "VI_norm", "seI_norm", "z_norm", "p_norm"):
        assert _rel(res[key], float(getattr(ref, key))) < 1e-10, key
    assert res["p_tails"] == 2
    assert res["s0"] == ref.w.s0
    assert _rel(res["s1"], ref.w.s1) < 1e-12
    assert _rel(res["s2"], ref.w.s2) < 1e-12


@settings(max_examples=8, deadline=None)
@given(cy=_cuts(NY), cx=_cuts(NX))
def test_gi_star_matches_esda_for_any_chunking(cy, cx):
    ids, _, zs = _esda_reference()
    z = getis_ord_gi_star(da.from_array(_grid(), chunks=(cy, cx)))
    assert isinstance(z, da.Array) and z.chunks == (cy, cx)
    z = z.compute()
    np.testing.assert_allclose(z.ravel()[ids], zs, rtol=1e-10, atol=1e-10)
    assert np.isnan(z).sum() == NY * NX - len(ids)


def test_numpy_input_matches_dask():
    y = _grid()
    assert morans_i(y)["I"] == pytest.approx(morans_i(da.from_array(y, chunks=5))["I"], rel=1e-12)
    np.testing.assert_allclose(getis_ord_gi_star(y).compute(),
                               getis_ord_gi_star(da.from_array(y, chunks=4)).compute(), rtol=1e-12)


def test_kernels_match_convolution():
    y = _grid()
    fin = np.isfinite(y).astype(float)
    ring = np.ones((3, 3))
    ring[1, 1] = 0
    pad = np.pad(y, 1, constant_values=np.nan)
    k = queen_count(pad)
    expect = ndimage.convolve(fin, ring, mode="constant")
    np.testing.assert_array_equal(k[np.isfinite(y)], expect[np.isfinite(y)])
    assert np.isnan(k[~np.isfinite(y)]).all()
    assert k[9, 2] == 0.0  # the island


def test_moran_by_hand_3x3():
    # y = 1..9, mean 5, z = -4..4 (row-major). Queen neighbour counts: corners 3, edges 5, centre 8.
    # Row-standardised lag and z * lag per cell:
    #   (0,0) z=-4: (-3 -1 +0)/3 = -4/3 -> 16/3     (0,1) z=-3: (-4 -2 -1 +0 +1)/5 = -6/5 -> 18/5
    #   (0,2) z=-2: (-3 +0 +1)/3 = -2/3 -> 4/3      (1,0) z=-1: (-4 -3 +0 +2 +3)/5 = -2/5 -> 2/5
    #   (1,1) z=0 -> 0; the lower half mirrors the upper half: sum = 2 * (16/3 + 18/5 + 4/3 + 2/5) = 64/3
    # z2ss = 2 * (16 + 9 + 4 + 1) = 60, S0 = 9 rows each summing to 1, n = 9:
    #   I = n / S0 * (64/3) / 60 = 16/45; EI = -1/8.
    y = np.arange(1.0, 10.0).reshape(3, 3)
    res = morans_i(da.from_array(y, chunks=(2, 1)))
    assert res["I"] == pytest.approx(16 / 45, rel=1e-14)
    assert res["EI"] == -1 / 8
    assert res["n"] == 9 and res["islands"] == 0 and res["s0"] == 9


def test_gi_star_by_hand_3x3():
    # mean 5, population sd = sqrt(60 / 9). Corner (0,0): L = 1 + 2 + 4 + 5 = 12, c = 4:
    #   z = (12 - 4 * 5) / (sd * sqrt(4 * 5 / 8)) = -8 / sqrt(60/9 * 2.5) = -8 / sqrt(50/3) = -1.9596
    # (just short of -1.96: a 90 % cold spot). Centre: c = n = 9 -> undefined (NaN).
    y = np.arange(1.0, 10.0).reshape(3, 3)
    z = getis_ord_gi_star(y).compute()
    assert z[0, 0] == pytest.approx(-8 / np.sqrt(50 / 3), rel=1e-14)
    assert z[2, 2] == pytest.approx(8 / np.sqrt(50 / 3), rel=1e-14)
    assert np.isnan(z[1, 1])
    cls = hotspot_classes(z)
    assert cls[0, 0] == -1 and cls[2, 2] == 1 and cls[1, 1] == CLASS_NODATA


def test_classes_at_critical_values():
    c99, c95, c90 = CRITICAL_Z[99], CRITICAL_Z[95], CRITICAL_Z[90]
    assert (round(c99, 4), round(c95, 4), round(c90, 4)) == (2.5758, 1.96, 1.6449)

    def below(v: float) -> float:  # the next float towards 0
        return float(np.nextafter(v, 0.0))

    z = np.array([c99, below(c99), c95, below(c95), c90, below(c90), 0.0,
                  -c99, -below(c99), -c95, -below(c95), -c90, -below(c90), np.nan, 40.0, -40.0])
    expect = [3, 2, 2, 1, 1, 0, 0, -3, -2, -2, -1, -1, 0, CLASS_NODATA, 3, -3]
    got = hotspot_classes(z)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, expect)
    lazy = hotspot_classes(da.from_array(z, chunks=5))
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(lazy.compute(), expect)


@pytest.mark.parametrize("fn", [morans_i, getis_ord_gi_star])
def test_degenerate_inputs(fn):
    y = np.full((5, 6), np.nan)
    with pytest.raises(InputError, match="no finite cell"):
        fn(y)
    y[2, 2:4] = [1.0, 2.0]
    with pytest.raises(InputError, match="at least 3"):
        fn(y)
    c = np.full((5, 6), 123.4)
    c[0, 0] = np.nan
    with pytest.raises(InputError, match="variance 0"):
        fn(da.from_array(c, chunks=2))
    with pytest.raises(InputError, match="2-D"):
        fn(np.ones(5))


def test_all_islands():
    y = np.full((7, 7), np.nan)
    y[::2, ::2] = np.arange(16.0).reshape(4, 4)
    with pytest.raises(InputError, match="no finite cell has a finite queen neighbour"):
        morans_i(y)
    z = getis_ord_gi_star(y).compute()  # every cell is its own standardised value
    v = y[::2, ::2]
    np.testing.assert_allclose(z[::2, ::2], (v - v.mean()) / v.std(), rtol=1e-12)


def _zones() -> tuple[np.ndarray, pd.DataFrame]:
    zg = np.zeros((NY, NX), dtype=np.int32)
    zg[:6, :8] = 1
    zg[:6, 8:] = 2
    zg[6:, :12] = 3  # the last three columns of the lower half are outside every zone
    zones = pd.DataFrame({"zone": [3, 1, 2], "zone_id": ["140903", "140902", "140921"],
                          "zone_name": ["C", "A", "B"]})
    return zg, zones


def test_summary_counts():
    y = _grid()
    zg, zones = _zones()
    z = getis_ord_gi_star(da.from_array(y, chunks=(5, 6)))
    out = hotspot_summary(z, da.from_array(zg, chunks=(4, 4)), zones)
    assert list(out.columns) == SUMMARY_COLUMNS
    assert list(out["zone_id"]) == ["140902", "140921", "140903", REGION_ID]
    classes = [c for c in SUMMARY_COLUMNS if c.startswith(("hot", "cold", "not"))]
    zn, cn = z.compute(), hotspot_classes(z).compute()
    for row, k in zip(out.itertuples(), [1, 2, 3], strict=False):
        inside = (zg == k) & np.isfinite(y)
        assert row.cells == inside.sum()
        assert row.mean_gi_z == pytest.approx(zn[inside].mean(), rel=1e-12)
        for c, v in zip(classes, [3, 2, 1, 0, -1, -2, -3], strict=True):
            assert getattr(row, c) == ((cn == v) & inside).sum()
    np.testing.assert_array_equal(out[classes].sum(axis=1), out["cells"])
    region = out.iloc[-1]
    assert region["cells"] == (np.isfinite(y) & (zg > 0)).sum()
    np.testing.assert_array_equal(region[classes].to_numpy(), out.iloc[:-1][classes].sum().to_numpy())

    by_class = hotspot_summary(cn, zg, zones)  # classes in: same counts, no mean z
    pd.testing.assert_frame_equal(by_class.drop(columns="mean_gi_z"), out.drop(columns="mean_gi_z"))
    assert by_class["mean_gi_z"].isna().all()


def test_summary_unknown_zone_index():
    y = _grid()
    zg, zones = _zones()
    zg[1, 5] = 7
    with pytest.raises(InputError, match="zone indices missing"):
        hotspot_summary(getis_ord_gi_star(y), zg, zones)


def test_hotspots_bundle():
    y = _grid()
    zg, zones = _zones()
    moran, gi_z, classes, summary = hotspots(da.from_array(y, chunks=6), zg, zones)
    assert moran["I"] == pytest.approx(float(_esda_reference()[1].I), rel=1e-10)
    assert classes.dtype == np.int8 and classes.shape == y.shape
    assert summary["cells"].iloc[-1] == (np.isfinite(y) & (zg > 0)).sum()

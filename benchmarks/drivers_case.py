"""One case of the driver-analysis benchmark in its own process; prints one JSON line.

    python -m benchmarks.drivers_case CASE SIZE [--repeats 3] [--seed 0]

SIZE is rows for the table cases, the side of a square grid for the hot-spot cases. Cases:

- ``gd_optimal``: ecodask ``detect`` on y and 8 continuous drivers with ``discretize="optimal"``
  (every method x k 3..10 per driver, then all 28 interactions, risk and ecological detectors).
- ``gd_pair``: ecodask ``detect`` on y and 3 integer factors (5, 7, 10 levels) used as given: the
  four detectors, timed as a whole.
- ``gd_pypi``: the PyPI ``geodetector`` on the same rows: ``FactorDetector`` per factor, then
  ``InteractionDetector`` on the three (``seconds`` = both; ``factor_seconds`` and
  ``interaction_seconds`` apart).
- ``stepwise``: ecodask ``stepwise(moments(y, X))`` on 8 drivers (SPSS stepwise, p 0.05/0.10).
- ``stepwise_sm``: the same SPSS search with ``statsmodels.api.OLS`` refitted on the raw rows for
  every candidate model (:func:`sm_stepwise`).
- ``hotspots``: ecodask ``morans_i`` + ``getis_ord_gi_star(...).compute()`` on a float32 grid
  with a NaN margin (a region outline), as a dask array chunked 1024².
- ``hotspots_esda``: esda ``Moran`` + ``G_Local(transform="B", star=True, permutations=0)`` on the
  finite cells of the same grid, with libpysal ``lat2W(rows, cols, rook=False)`` restricted to
  them (``w_subset``); ``seconds`` include building W, ``stats_seconds`` are the two statistics.
  ecodask's I and z on the same grid are computed after the clock, for the comparison.

The data are synthetic and deterministic (seeded numpy), generated in the process before the
clock. Each case first runs once on a small slice (numba cache load, imports: warm-up), then
``--repeats`` times on the whole data; ``seconds`` lists them. Dask runs on its threaded scheduler
with 2 workers. ``peak_rss_mb`` is the process's peak resident memory (VmHWM) over the timed
repeats, the input data included (the high-water mark is reset after generation and warm-up through
``/proc/self/clear_refs``; where that fails it is the whole process's, ``peak_reset`` false);
``process_peak_mb`` is the whole process's (generation included); ``data_mb`` the input arrays.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings

import dask
import numpy as np

from benchmarks.env import hwm_mb, reset_peak

CASES = ("gd_optimal", "gd_pair", "gd_pypi", "stepwise", "stepwise_sm", "hotspots", "hotspots_esda")
DRIVERS = ("elevation", "slope", "precipitation", "temperature", "ndvi", "population", "gdp",
           "road_distance")
PAIR_LEVELS = {"landform": 5, "soil": 7, "landuse": 10}
CHUNK = 1024  # hot-spot grid chunks (cells per side)


# --------------------------------------------------------------------------------------------------
# synthetic data


def driver_table(rows: int, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """ESV density y (CNY/ha/yr) and 8 continuous drivers, float64, with correlated drivers, skewed
    and bounded distributions, negative values (temperature: geometric breaks do not apply) and
    non-linear effects on y."""
    rng = np.random.default_rng(seed)
    terrain, climate, veg, human = rng.standard_normal((4, rows))
    x = {}
    x["elevation"] = 50.0 + 400.0 * np.exp(0.6 * terrain)  # m
    x["slope"] = rng.gamma(2.0, 3.0, rows) * np.exp(0.3 * terrain)  # degrees
    x["precipitation"] = 1200.0 + 250.0 * climate - 100.0 * terrain + 50.0 * rng.standard_normal(rows)  # mm
    x["temperature"] = 16.0 - 0.0065 * x["elevation"] + 3.0 * climate + rng.standard_normal(rows)  # deg C
    x["ndvi"] = 1.0 / (1.0 + np.exp(-(0.8 * veg + 0.3 * climate - 0.3 * human)))
    x["population"] = np.exp(4.0 + human - 0.5 * terrain)  # people / km²
    x["gdp"] = x["population"] * np.exp(0.5 + 0.3 * rng.standard_normal(rows))  # 10^4 CNY / km²
    x["road_distance"] = rng.exponential(2000.0, rows) * np.exp(-0.5 * human)  # m
    y = (3000.0 + 4000.0 * x["ndvi"] + 0.8 * x["precipitation"] + 600.0 * np.tanh(terrain)
         - 250.0 * np.log(x["population"]) + 150.0 * np.sin(x["temperature"] / 4.0)
         + 0.05 * np.sqrt(x["road_distance"]) + 800.0 * rng.standard_normal(rows))
    return y, x


def pair_table(rows: int, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """y and 3 integer factors (codes 1..L, int64, unequal level frequencies) with main effects
    and a landform x land-use interaction."""
    rng = np.random.default_rng(seed + 1)
    f = {}
    for name, levels in PAIR_LEVELS.items():
        p = rng.uniform(0.5, 2.0, levels)
        f[name] = rng.choice(np.arange(1, levels + 1, dtype=np.int64), size=rows, p=p / p.sum())
    sd = dict(zip(PAIR_LEVELS, (1.0, 0.5, 0.8), strict=True))
    eff = {name: rng.normal(0.0, sd[name], levels + 1) for name, levels in PAIR_LEVELS.items()}
    inter = rng.normal(0.0, 0.4, (PAIR_LEVELS["landform"] + 1, PAIR_LEVELS["landuse"] + 1))
    y = (eff["landform"][f["landform"]] + eff["soil"][f["soil"]] + eff["landuse"][f["landuse"]]
         + inter[f["landform"], f["landuse"]] + rng.standard_normal(rows))
    return y, f


def regression_table(rows: int, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """y and 8 correlated drivers for the stepwise search: 4 with effects (one small), 3 without,
    and ``gdp``, a proxy of the two strongest (elevation + slope + noise) with no effect of its own:
    it enters first and leaves once both are in."""
    rng = np.random.default_rng(seed + 2)
    k = 7
    cov = 0.3 ** np.abs(np.subtract.outer(np.arange(k), np.arange(k)))
    z = rng.standard_normal((rows, k)) @ np.linalg.cholesky(cov).T
    names = [n for n in DRIVERS if n != "gdp"]
    x = {n: np.ascontiguousarray(z[:, i]) for i, n in enumerate(names)}
    del z
    x["gdp"] = x["elevation"] + x["slope"] + 0.5 * rng.standard_normal(rows)
    beta = dict(zip(names, (1.0, 0.6, 0.3, 0.03, 0.0, 0.0, 0.0), strict=True))
    y = sum(b * x[n] for n, b in beta.items()) + 2.0 * rng.standard_normal(rows)
    return y, {n: x[n] for n in DRIVERS}


def hotspot_grid(size: int, seed: int = 0) -> np.ndarray:
    """A size x size float32 ESV density grid (CNY/ha/yr): a smooth field plus gamma noise inside a
    wavy region outline, NaN outside (about 44 % of the cells)."""
    rng = np.random.default_rng(seed + 3)
    yy, xx = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size
    g = 2000.0 + 800.0 * np.sin(6.0 * xx) * np.cos(5.0 * yy) + rng.gamma(2.0, 300.0, (size, size))
    g = g.astype(np.float32)
    theta, r = np.arctan2(yy - 0.5, xx - 0.5), np.hypot(yy - 0.5, xx - 0.5)
    g[r > 0.42 + 0.05 * np.sin(7.0 * theta)] = np.nan
    return g


# --------------------------------------------------------------------------------------------------
# baselines


def sm_stepwise(y: np.ndarray, X: dict[str, np.ndarray], p_enter: float = 0.05,
                p_remove: float = 0.10) -> dict:
    """SPSS stepwise (as ``ecodask.science.regression.stepwise``: removal of the smallest |t| if its
    p > p_remove, else entry of the largest |t| if its p < p_enter; one move per step, at most
    2 x the variables) with ``statsmodels.api.OLS(...).fit()`` on the raw rows for every model."""
    import statsmodels.api as sm

    names = list(X)

    def fit(cols: list[str]):
        return sm.OLS(y, sm.add_constant(np.column_stack([X[c] for c in cols]))).fit()

    model: list[str] = []
    history, fits = [], 0
    for _ in range(2 * len(names)):
        if model:
            r = fit(model)
            fits += 1
            w = int(np.argmin(np.abs(r.tvalues[1:])))
            if r.pvalues[w + 1] > p_remove:
                history.append(("removed", model[w]))
                model.pop(w)
                continue
        best = None
        for c in names:
            if c in model:
                continue
            r = fit([*model, c])
            fits += 1
            t = abs(float(r.tvalues[-1]))
            if best is None or t > best[0]:
                best = (t, c, float(r.pvalues[-1]))
        if best is not None and best[2] < p_enter:
            history.append(("entered", best[1]))
            model.append(best[1])
            continue
        break
    final = fit(model) if model else None
    return {"selected": model, "history": history, "fits": fits + (1 if model else 0),
            "params": final.params.tolist() if final is not None else [float(np.mean(y))],
            "r2": float(final.rsquared) if final is not None else 0.0}


# --------------------------------------------------------------------------------------------------
# cases: each returns (setup, run, results): run() is timed, results(last) adds the comparison data


def _timed(run, repeats: int) -> tuple[list[float], object]:
    seconds, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = run()
        seconds.append(time.perf_counter() - t0)
    return seconds, out


def _gd_profile(y, x) -> dict:
    """One more (untimed) ecodask call with its three passes, the discretization and the detectors
    timed apart (diagnostic: the names as :mod:`ecodask.chunked.geodetector` imported or defined
    them, some private; skipped when they change)."""
    import ecodask.chunked.geodetector as g

    names = ("scan", "fine_bin_sums", "overlay_sums", "_discretized", "detectors")
    if not all(hasattr(g, n) for n in names):
        return {}
    spent = dict.fromkeys(names, 0.0)
    orig = {n: getattr(g, n) for n in names}

    def wrap(n):
        def f(*a, **k):
            t0 = time.perf_counter()
            try:
                return orig[n](*a, **k)
            finally:
                spent[n] += time.perf_counter() - t0
        return f

    try:
        for n in names:
            setattr(g, n, wrap(n))
        t0 = time.perf_counter()
        g.detect(y, x, discretize="optimal")
        total = time.perf_counter() - t0
    finally:
        for n in names:
            setattr(g, n, orig[n])
    out = {k.lstrip("_"): v for k, v in spent.items()}
    out["total"] = total
    out["other"] = total - sum(spent.values())
    return out


def case_gd(case: str, rows: int, repeats: int, seed: int) -> dict:
    from ecodask.chunked.geodetector import detect

    optimal = case == "gd_optimal"
    y, x = driver_table(rows, seed) if optimal else pair_table(rows, seed)
    opts = {"discretize": "optimal"} if optimal else {}
    small = min(rows, 100_000)
    detect(y[:small], {k: v[:small] for k, v in x.items()}, **opts)  # warm-up
    data_mb = (y.nbytes + sum(v.nbytes for v in x.values())) / 2**20
    proc_peak, reset = hwm_mb(), reset_peak()
    seconds, out = _timed(lambda: detect(y, x, **opts), repeats)
    res = {"peak_rss_mb": hwm_mb(), "process_peak_mb": max(proc_peak, hwm_mb()), "peak_reset": reset,
           "data_mb": data_mb, "rows": rows, "factors": len(x), "seconds": seconds,
           "q": dict(zip(out["factor"]["factor"], out["factor"]["q"], strict=True)),
           "strata": dict(zip(out["factor"]["factor"], out["factor"]["strata"].astype(int), strict=True)),
           "q_ab": {f"{a}|{b}": v for a, b, v in out["interaction"][["factor_a", "factor_b", "q_ab"]]
                    .itertuples(index=False)},
           "interaction": {f"{a}|{b}": v for a, b, v in out["interaction"][["factor_a", "factor_b",
                                                                              "interaction"]]
                           .itertuples(index=False)},
           "tables": {k: len(v) for k, v in out.items()}}
    if optimal:
        d = out["discretization"]
        res["candidates"] = len(d)
        res["candidates_scored"] = int(d["q"].notna().sum())
        res["optimal"] = {r.factor: f"{r.method} k={r.k}" for r in d[d["optimal"]].itertuples()}
        with dask.config.set(scheduler="threads", num_workers=2):
            res["profile"] = _gd_profile(y, x)
    return res


PYPI_TYPES = {0: "nonlinear weakening", 1: "univariate nonlinear weakening", 2: "bivariate enhancement",
              3: "independent", 4: "nonlinear enhancement"}


def case_gd_pypi(rows: int, repeats: int, seed: int) -> dict:
    import geodetector
    import pandas as pd

    y, x = pair_table(rows, seed)
    names = list(x)
    df = pd.DataFrame({"y": y, **x})
    data_mb = (y.nbytes + sum(v.nbytes for v in x.values())) / 2**20
    del y, x

    def run(d):
        t0 = time.perf_counter()
        q = {f: float(geodetector.FactorDetector().fit(d[[f]], d["y"]).q_value_) for f in names}
        t1 = time.perf_counter()
        inter = geodetector.InteractionDetector().fit(d[names], d["y"])
        return q, inter, t1 - t0, time.perf_counter() - t1

    run(df.iloc[:10_000])  # warm-up
    proc_peak, reset = hwm_mb(), reset_peak()
    factor_s, inter_s = [], []

    def timed():
        out = run(df)
        factor_s.append(out[2])
        inter_s.append(out[3])
        return out

    seconds, (q, inter, _, _) = _timed(timed, repeats)
    iq, it = inter.interaction_q_, inter.interaction_type_
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    return {"peak_rss_mb": hwm_mb(), "process_peak_mb": max(proc_peak, hwm_mb()), "peak_reset": reset,
            "data_mb": data_mb, "rows": rows, "factors": len(names), "seconds": seconds,
            "factor_seconds": factor_s, "interaction_seconds": inter_s, "q": q,
            "q_ab": {f"{a}|{b}": float(iq.loc[a, b]) for a, b in pairs},
            "interaction": {f"{a}|{b}": PYPI_TYPES.get(int(it.loc[a, b]), str(it.loc[a, b]))
                            for a, b in pairs}}


def case_stepwise(case: str, rows: int, repeats: int, seed: int) -> dict:
    from ecodask.chunked.regression import moments
    from ecodask.science.regression import stepwise

    y, x = regression_table(rows, seed)
    small = min(rows, 10_000)
    data_mb = (y.nbytes + sum(v.nbytes for v in x.values())) / 2**20
    if case == "stepwise":
        def run(yy, xx):
            r = stepwise(moments(yy, xx))
            return {"selected": list(r.selected),
                    "history": [(s.action, s.variable) for s in r.history],
                    "params": r.fit.params.tolist(), "r2": float(r.fit.r2), "notes": list(r.notes)}
    else:
        run = sm_stepwise
    run(y[:small], {k: v[:small] for k, v in x.items()})  # warm-up
    proc_peak, reset = hwm_mb(), reset_peak()
    seconds, out = _timed(lambda: run(y, x), repeats)
    return {"peak_rss_mb": hwm_mb(), "process_peak_mb": max(proc_peak, hwm_mb()), "peak_reset": reset,
            "data_mb": data_mb, "rows": rows, "drivers": len(x), "seconds": seconds, **out}


def _ecodask_hotspots(g: np.ndarray) -> tuple[dict, np.ndarray]:
    import dask.array as da

    from ecodask.chunked.hotspots import getis_ord_gi_star, morans_i

    a = da.from_array(g, chunks=CHUNK)
    m = morans_i(a)
    z = getis_ord_gi_star(a).compute()
    return m, z


def case_hotspots(size: int, repeats: int, seed: int) -> dict:
    from ecodask.chunked.hotspots import hotspot_classes

    g = hotspot_grid(size, seed)
    c = size // 2
    _ecodask_hotspots(g[c - 32:c + 32, c - 32:c + 32].copy())  # warm-up
    proc_peak, reset = hwm_mb(), reset_peak()
    seconds, (m, z) = _timed(lambda: _ecodask_hotspots(g), repeats)
    peak = hwm_mb()
    cls = hotspot_classes(z)
    values, counts = np.unique(cls, return_counts=True)
    return {"peak_rss_mb": peak, "process_peak_mb": max(proc_peak, peak), "peak_reset": reset,
            "data_mb": g.nbytes / 2**20, "cells": size * size, "finite_cells": int(np.isfinite(g).sum()),
            "size": size, "chunk": CHUNK, "seconds": seconds, "I": m["I"], "z_norm": m["z_norm"],
            "islands": m["islands"], "classes": {int(v): int(n) for v, n in zip(values, counts, strict=True)}}


def case_hotspots_esda(size: int, repeats: int, seed: int) -> dict:
    import esda
    import libpysal

    g = hotspot_grid(size, seed)

    def run(grid):
        rows, cols = grid.shape
        ids = np.flatnonzero(np.isfinite(grid.ravel()))
        yv = grid.ravel()[ids].astype(np.float64)
        t0 = time.perf_counter()
        w = libpysal.weights.w_subset(libpysal.weights.lat2W(rows, cols, rook=False), ids,
                                      silence_warnings=True)
        t1 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            moran = esda.Moran(yv, w, permutations=0)  # row-standardises w in place
            gi = esda.G_Local(yv, w, transform="B", star=True, permutations=0)
        return ids, moran, gi.Zs, t1 - t0, time.perf_counter() - t1

    c = size // 2
    run(g[c - 16:c + 16, c - 16:c + 16].copy())  # warm-up
    proc_peak, reset = hwm_mb(), reset_peak()
    stats_s, w_s = [], []

    def timed():
        out = run(g)
        w_s.append(out[3])
        stats_s.append(out[4])
        return out

    seconds, (ids, moran, zs, _, _) = _timed(timed, repeats)
    peak = hwm_mb()
    with dask.config.set(scheduler="threads", num_workers=2):
        m, z = _ecodask_hotspots(g)
    return {"peak_rss_mb": peak, "process_peak_mb": max(proc_peak, peak), "peak_reset": reset,
            "data_mb": g.nbytes / 2**20, "cells": size * size, "finite_cells": len(ids), "size": size,
            "seconds": seconds, "w_seconds": w_s, "stats_seconds": stats_s, "I": float(moran.I),
            "z_norm": float(moran.z_norm), "ecodask_I": m["I"], "abs_dI": abs(float(moran.I) - m["I"]),
            "max_abs_dz": float(np.nanmax(np.abs(np.asarray(zs) - z.ravel()[ids])))}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", choices=CASES)
    ap.add_argument("size", type=int, help="rows (table cases) or grid side (hot-spot cases)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    with dask.config.set(scheduler="threads", num_workers=2):
        if a.case in ("gd_optimal", "gd_pair"):
            res = case_gd(a.case, a.size, a.repeats, a.seed)
        elif a.case == "gd_pypi":
            res = case_gd_pypi(a.size, a.repeats, a.seed)
        elif a.case in ("stepwise", "stepwise_sm"):
            res = case_stepwise(a.case, a.size, a.repeats, a.seed)
        elif a.case == "hotspots":
            res = case_hotspots(a.size, a.repeats, a.seed)
        else:
            res = case_hotspots_esda(a.size, a.repeats, a.seed)
    res = {"case": a.case, **res, "median": statistics.median(res["seconds"])}
    print(json.dumps(res, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


if __name__ == "__main__":
    main(sys.argv[1:])

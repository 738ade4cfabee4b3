"""Stepwise regression from moments (ecodask.science.regression, over chunked arrays
ecodask.chunked.regression) against statsmodels OLS refits on raw data."""

from __future__ import annotations

from fractions import Fraction

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from statsmodels.stats.outliers_influence import variance_inflation_factor

from ecodask.chunked import regression
from ecodask.chunked.regression import moments, regression_table
from ecodask.errors import ConfigError, InputError
from ecodask.science.regression import CONSTANT, ols, stepwise

RTOL = 1e-9
FEW = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sm_fit(y: np.ndarray, X: dict[str, np.ndarray], names: list[str]):
    exog = np.ones((len(y), 1)) if not names else sm.add_constant(np.column_stack([X[v] for v in names]),
                                                                   has_constant="add")
    return sm.OLS(y, exog).fit()


def as_dask(X: dict[str, np.ndarray], chunks) -> dict[str, da.Array]:
    return {k: da.from_array(v, chunks=chunks) for k, v in X.items()}


def random_data(seed: int, n: int, p: int, offset: float = 0.0):
    """Correlated drivers with different scales and means, y linear in some of them plus noise."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(p, p)) * 0.6 + np.eye(p)
    z = rng.normal(size=(n, p)) @ mix
    z /= z.std(axis=0)
    scale = 10.0 ** rng.uniform(0, 3, p)  # sd/|mean| >= ~1e-4: statsmodels' own pinv fit stays within 1e-9
    means = offset + rng.normal(0, 100, p)
    X = {f"x{j + 1}": means[j] + scale[j] * z[:, j] for j in range(p)}
    coef = rng.normal(0, 1, p) * (rng.random(p) < 0.7) / scale
    y = 50.0 + z @ (coef * scale) + rng.normal(0, 1.5, n)
    return y, X


def random_chunks(draw, size: int) -> tuple[int, ...]:
    cuts = sorted(draw(st.sets(st.integers(1, size - 1), max_size=4))) if size > 1 else []
    edges = [0, *cuts, size]
    return tuple(b - a for a, b in zip(edges[:-1], edges[1:], strict=True))


@st.composite
def datasets(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rows, cols = draw(st.integers(4, 20)), draw(st.integers(3, 15))
    p = draw(st.integers(1, 5))
    y, X = random_data(seed, rows * cols, p, offset=draw(st.sampled_from([0.0, 1e3])))
    nan_at = draw(st.lists(st.integers(0, rows * cols - 1), max_size=5))
    where = draw(st.lists(st.integers(0, p), min_size=len(nan_at), max_size=len(nan_at)))
    for i, w in zip(nan_at, where, strict=True):
        (y if w == p else X[f"x{w + 1}"])[i] = np.nan
    kind = draw(st.sampled_from(["numpy", "dask", "mixed"]))
    shape = (rows, cols)
    y2, X2 = y.reshape(shape), {k: v.reshape(shape) for k, v in X.items()}
    if kind != "numpy":
        chunks = [(random_chunks(draw, rows), random_chunks(draw, cols)) for _ in range(p + 1)]
        y2 = da.from_array(y2, chunks=chunks[-1])
        X2 = {k: v if kind == "mixed" and j % 2 else da.from_array(v, chunks=chunks[j])
              for j, (k, v) in enumerate(X2.items())}
    return y, X, y2, X2


@FEW
@given(datasets())
def test_fit_from_moments_equals_statsmodels(data):
    y, X, y_in, X_in = data
    ok = ~np.isnan(np.column_stack([y, *X.values()])).any(axis=1)
    yk, Xk = y[ok], {k: v[ok] for k, v in X.items()}
    names = list(X)
    m = moments(y_in, X_in)
    assert m.n == ok.sum() and m.n_dropped == (~ok).sum()
    f = ols(m, names)
    r = sm_fit(yk, Xk, names)
    # Both fits are exact to about eps x cond(design)²: drivers whose sd is a few % of their mean
    # (cond ~1e4-1e5) leave a few 1e-9 between them (4.9e-9 seen), not a fault of either.
    design = sm.add_constant(np.column_stack([Xk[v] for v in names]), has_constant="add")
    rtol = max(RTOL, 2.2e-16 * np.linalg.cond(design) ** 2)  # eps x cond²
    # A coefficient tiny beside the others (3.9e-5 beside an intercept of 1239, drivers with means of
    # 1e3) is exact only to the whole vector's precision in either fit: 1e-14 of the largest.
    np.testing.assert_allclose(f.params, r.params, rtol=rtol, atol=1e-14 * np.abs(r.params).max())
    for ours, ref in [(f.bse, r.bse), (f.pvalues, r.pvalues),
                      (f.f_p, r.f_pvalue), (f.aic, r.aic), (f.bic, r.bic), (f.rss, r.ssr),
                      (f.df_resid, r.df_resid)]:
        np.testing.assert_allclose(ours, ref, rtol=rtol, atol=0)
    # t = B / SE inherits the coefficients' absolute precision: a t near 0 (-1.6e-4 seen) is exact
    # to that slack over its SE, not relatively
    np.testing.assert_allclose(f.tvalues, r.tvalues, rtol=RTOL,
                               atol=1e-14 * np.abs(r.params).max() / np.min(r.bse))
    # statsmodels takes R² as 1 - RSS/TSS: exact to ~1e-16 absolute only, so a tiny R² (and F) is
    # compared with that absolute slack (ours is Σ r_j·Beta_j, relative-accurate)
    for ours, ref, slack in [(f.r2, r.rsquared, 1e-14), (f.adj_r2, r.rsquared_adj, 1e-14),
                             (f.f, r.fvalue, 1e-14 * r.df_resid)]:
        np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=slack)
    # Beta: the coefficients of the fit on z-scored data
    zs = {k: (v - v.mean()) / v.std(ddof=1) for k, v in Xk.items()}
    rz = sm_fit((yk - yk.mean()) / yk.std(ddof=1), zs, names)
    np.testing.assert_allclose(f.beta[1:], rz.params[1:], rtol=RTOL)
    assert np.isnan(f.beta[0]) and np.isnan(f.r[0]) and np.isnan(f.vif[0])
    # zero-order r and VIF
    np.testing.assert_allclose(f.r[1:], [np.corrcoef(Xk[k], yk)[0, 1] for k in names], rtol=RTOL)
    exog = sm.add_constant(np.column_stack([Xk[k] for k in names]), has_constant="add")
    vif = [variance_inflation_factor(exog, j) for j in range(1, len(names) + 1)]
    np.testing.assert_allclose(f.vif[1:], vif, rtol=RTOL)
    # every subset fits exactly too (the constant-only model included), to the same precision as the
    # whole fit: its own design's eps x cond², a tiny coefficient to 1e-14 of the largest (a subset's
    # 3.2e-6 beside an intercept of -16.3 differed by 4.3e-15, relatively 1.3e-9)
    for sub in ([], names[-1:], names[::2]):
        want = sm_fit(yk, Xk, sub)
        design = np.ones((len(yk), 1)) if not sub else \
            sm.add_constant(np.column_stack([Xk[v] for v in sub]), has_constant="add")
        tol = max(RTOL, 2.2e-16 * np.linalg.cond(design) ** 2)
        np.testing.assert_allclose(ols(m, sub).params, want.params, rtol=tol,
                                   atol=1e-14 * np.abs(want.params).max())
        np.testing.assert_allclose(ols(m, sub).aic, want.aic, rtol=RTOL)
        np.testing.assert_allclose(ols(m, sub).bic, want.bic, rtol=RTOL)


def test_moments_independent_of_chunking_with_large_offset():
    # cells of ~1e6 (e.g. yuan) varying by ~1-100: a naive sum of squares would lose ~1e-4 of the
    # centred moments; the per-chunk centring and Chan merge keep them to float64 rounding
    rng = np.random.default_rng(7)
    n = 60_000
    X = {f"x{j}": 1e6 * (j + 1) + 10.0**j * rng.normal(size=n) for j in range(3)}
    y = 5e6 + X["x1"] - X["x0"] + rng.normal(size=n)
    z = np.column_stack([*X.values(), y])
    zc = z - z.mean(axis=0)
    exact = zc.T @ zc
    scale = np.sqrt(np.outer(np.diag(exact), np.diag(exact)))
    for m in (moments(y, X), moments(da.from_array(y, chunks=977), as_dask(X, 4096))):
        assert np.max(np.abs(m.css - exact) / scale) < 1e-11
        np.testing.assert_allclose(m.mean, z.mean(axis=0), rtol=1e-13)


def exact_ols(y: np.ndarray, X: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and standard errors in rational arithmetic (the exact least-squares answer)."""
    rows = [[Fraction(1), *map(Fraction, r)] for r in np.column_stack(list(X.values()))]
    ys = [Fraction(v) for v in y]
    k = len(rows[0])
    aug = [[sum(r[i] * r[j] for r in rows) for j in range(k)] + [Fraction(int(i == j)) for j in range(k)]
           for i in range(k)]
    for c in range(k):  # Gauss-Jordan inverse of X'X
        aug[c] = [v / aug[c][c] for v in aug[c]]
        for r in range(k):
            if r != c:
                aug[r] = [a - aug[r][c] * b for a, b in zip(aug[r], aug[c], strict=True)]
    inv = [row[k:] for row in aug]
    xty = [sum(r[i] * v for r, v in zip(rows, ys, strict=True)) for i in range(k)]
    b = [sum(inv[i][j] * xty[j] for j in range(k)) for i in range(k)]
    fitted = [sum(ri * bi for ri, bi in zip(r, b, strict=True)) for r in rows]
    rss = sum((v - f) ** 2 for v, f in zip(ys, fitted, strict=True))
    s2 = rss / (len(ys) - k)
    return np.array([float(v) for v in b]), np.sqrt([float(s2 * inv[i][i]) for i in range(k)])


def test_ill_conditioned_fit_is_exact():
    # drivers varying by ~1 around 1e4 (and one by 1e-3): statsmodels' fit on the raw design loses
    # ~1e-9..1e-8 here; the centred moments give the exact (rational arithmetic) least-squares
    # answer to ~1e-11, with any chunking
    y, X = random_data(4, 40, 3, offset=1e4)
    X["x3"] = 1e4 + 1e-3 * np.random.default_rng(4).normal(size=40)
    y = y + 500.0 * (X["x3"] - 1e4)
    b, se = exact_ols(y, X)
    for m in (moments(y, X), moments(da.from_array(y, chunks=7), as_dask(X, 3))):
        f = ols(m, list(X))
        np.testing.assert_allclose(f.params, b, rtol=1e-10)
        np.testing.assert_allclose(f.bse, se, rtol=1e-10)


# --- stepwise selection ---------------------------------------------------------------------------------


def spss_bruteforce(y, X, method="stepwise", p_enter=0.05, p_remove=0.10):
    """Independent SPSS rule with statsmodels refits on the raw data: removal of the largest p > p_remove
    first, else entry of the smallest p < p_enter, one variable per step."""
    names = list(X)
    model = list(names) if method == "backward" else []
    history = []
    for _ in range(2 * len(names)):
        if method in ("stepwise", "backward") and model:
            pv = dict(zip(model, sm_fit(y, X, model).pvalues[1:], strict=True))
            worst = max(model, key=pv.__getitem__)
            if pv[worst] > p_remove:
                model.remove(worst)
                history.append(("removed", worst))
                continue
        if method in ("stepwise", "forward"):
            pv = {c: sm_fit(y, X, [*model, c]).pvalues[-1] for c in names if c not in model}
            if pv:
                best = min(pv, key=pv.__getitem__)
                if pv[best] < p_enter:
                    model.append(best)
                    history.append(("entered", best))
                    continue
        break
    return model, history


def aic_bruteforce(y, X, method="stepwise", criterion="aic"):
    """Independent search with statsmodels refits: the single move lowering ``aic`` or ``bic`` (the
    attribute of statsmodels' OLS results) most, until none lowers it."""
    names = list(X)
    model = list(names) if method == "backward" else []
    history = []

    def ic(vs):
        return getattr(sm_fit(y, X, vs), criterion)

    current = ic(model)
    while True:
        moves = []
        if method in ("stepwise", "forward"):
            moves += [(ic([*model, c]), "entered", c) for c in names if c not in model]
        if method in ("stepwise", "backward"):
            moves += [(ic([v for v in model if v != c]), "removed", c) for c in model]
        if not moves:
            break
        best = min(moves, key=lambda mv: mv[0])
        if not best[0] < current:
            break
        current, action, var = best
        model = [*model, var] if action == "entered" else [v for v in model if v != var]
        history.append((action, var))
    return model, history


def moves(result):
    return [(s.action, s.variable) for s in result.history if s.step > 0]


def known_case(n=400, seed=3):
    rng = np.random.default_rng(seed)
    x1, x2, x3 = rng.normal(size=(3, n))
    x4 = x1 + 0.05 * rng.normal(size=n)          # a noisy copy of x1
    y = 2.0 * x1 + 1.0 * x2 + rng.normal(size=n)  # x3 pure noise
    return y, {"x1": x1, "x2": x2, "x3": x3, "x4": x4}


def test_stepwise_known_answer():
    y, X = known_case()
    res = stepwise(moments(y, X))
    assert res.selected == ("x1", "x2")
    assert moves(res) == [("entered", "x1"), ("entered", "x2")]
    assert [s.step for s in res.history] == [1, 2]
    assert not res.notes  # x4 (tolerance ~0.003 with x1) is left out by its p, not by the tolerance
    assert spss_bruteforce(y, X) == (["x1", "x2"], moves(res))
    # the recorded p, AIC and BIC are those of the model the variable entered
    for s, model in zip(res.history, (["x1"], ["x1", "x2"]), strict=True):
        r = sm_fit(y, X, model)
        np.testing.assert_allclose([s.p, s.aic, s.bic], [r.pvalues[-1], r.aic, r.bic], rtol=RTOL)
    t = res.table()
    assert list(t.columns) == ["term", "B", "SE", "Beta", "t", "p", "r", "VIF", "n", "n_dropped", "R2",
                               "adj_R2", "F", "F_p", "AIC", "BIC", "method", "criterion", "p_enter",
                               "p_remove", "tolerance"]
    assert list(t.term) == [CONSTANT, "x1", "x2"]
    assert t[["Beta", "r", "VIF"]].iloc[0].isna().all()
    r = sm_fit(y, X, ["x1", "x2"])
    np.testing.assert_allclose(t.B, r.params, rtol=RTOL)
    np.testing.assert_allclose(t.R2, r.rsquared, rtol=RTOL)
    assert (t.method == "stepwise").all() and (t.p_enter == 0.05).all() and (t.p_remove == 0.10).all()


def test_stepwise_removes_variable_made_redundant():
    # x5 ~ x1 + x2 correlates best with y and enters first; once x1 and x2 are in, it is removed
    rng = np.random.default_rng(11)
    n = 300
    x1, x2, x3 = rng.normal(size=(3, n))
    x5 = x1 + x2 + 0.3 * rng.normal(size=n)
    y = x1 + x2 + 0.5 * rng.normal(size=n)
    X = {"x1": x1, "x2": x2, "x3": x3, "x5": x5}
    res = stepwise(moments(y, X))
    assert moves(res)[0] == ("entered", "x5")
    assert ("removed", "x5") in moves(res)
    assert {"x1", "x2"} <= set(res.selected) and "x5" not in res.selected
    model, hist = spss_bruteforce(y, X)
    assert (list(res.selected), moves(res)) == (model, hist)
    removal = next(s for s in res.history if s.action == "removed")
    before = [s.variable for s in res.history if s.step < removal.step and s.action == "entered"]
    np.testing.assert_allclose(removal.p, sm_fit(y, X, before).pvalues[1 + before.index("x5")], rtol=RTOL)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), method=st.sampled_from(["stepwise", "forward", "backward"]))
@example(seed=3, method="stepwise")   # seeds whose path removes a variable, then enters another
@example(seed=68, method="stepwise")
def test_p_rule_matches_bruteforce(seed, method):
    rng = np.random.default_rng(seed)
    n, p = 120, 6
    z = rng.normal(size=(n, p)) + rng.normal(size=(n, 2)) @ rng.normal(size=(2, p))  # two common factors
    X = {f"v{j}": z[:, j] for j in range(p)}
    y = z @ (rng.normal(0, 0.25, p) * (rng.random(p) < 0.6)) + rng.normal(size=n)
    res = stepwise(moments(y, X), method=method)
    model, hist = spss_bruteforce(y, X, method=method)
    assert list(res.selected) == model
    assert moves(res) == hist


@pytest.mark.parametrize("criterion", ["aic", "bic"])
@pytest.mark.parametrize("method", ["stepwise", "forward", "backward"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aic_and_bic_match_bruteforce(method, seed, criterion):
    rng = np.random.default_rng(seed)
    n, p = 80, 5
    z = rng.normal(size=(n, p)) + rng.normal(size=(n, 2)) @ rng.normal(size=(2, p))
    X = {f"v{j}": z[:, j] for j in range(p)}
    y = z @ rng.normal(0, 0.3, p) + rng.normal(size=n)
    res = stepwise(moments(y, X), method=method, criterion=criterion)
    model, hist = aic_bruteforce(y, X, method, criterion)
    assert list(res.selected) == model and moves(res) == hist
    np.testing.assert_allclose(getattr(res.fit, criterion), getattr(sm_fit(y, X, model), criterion),
                               rtol=RTOL)
    start = getattr(sm_fit(y, X, list(X) if method == "backward" else []), criterion)
    ics = [start, *[getattr(s, criterion) for s in res.history if s.step > 0]]
    assert all(b < a for a, b in zip(ics[:-1], ics[1:], strict=True))
    t = res.table()
    assert (t.criterion == criterion).all() and t.p_enter.isna().all() and t.p_remove.isna().all()


def aic_bic_case():
    """y on a strong x1 and a weak x2 whose entry lowers AIC (penalty 2 per parameter) but not BIC
    (penalty ln 400 = 6.0): n ln(RSS_1 / RSS_2) = 4.6 lies between; x3 is noise."""
    rng = np.random.default_rng(35)
    n = 400
    X = {"x1": rng.normal(size=n), "x2": rng.normal(size=n), "x3": rng.normal(size=n)}
    y = 1.0 * X["x1"] + 0.1 * X["x2"] + rng.normal(size=n)
    return y, X


@pytest.mark.parametrize("method", ["forward", "stepwise", "backward"])
def test_bic_and_aic_choose_differently(method):
    y, X = aic_bic_case()
    by_aic, by_bic = aic_bruteforce(y, X, method, "aic")[0], aic_bruteforce(y, X, method, "bic")[0]
    assert (by_aic, by_bic) == (["x1", "x2"], ["x1"])  # the case tells them apart (statsmodels alone)
    m = moments(da.from_array(y, chunks=97), as_dask(X, 97))
    for criterion, expected in (("aic", by_aic), ("bic", by_bic)):
        assert list(stepwise(m, method=method, criterion=criterion).selected) == expected
    # the entry of x2 changes the criteria by n ln(RSS_1/RSS_2) - penalty: AIC's 2, BIC's ln n
    one, two = sm_fit(y, X, ["x1"]), sm_fit(y, X, ["x1", "x2"])
    gain = len(y) * np.log(one.ssr / two.ssr)
    np.testing.assert_allclose([one.aic - two.aic, one.bic - two.bic], [gain - 2, gain - np.log(len(y))],
                               rtol=1e-9)
    assert 2 < gain < np.log(len(y))


def test_enter_table_is_seed_002s_layout():
    y, X = aic_bic_case()
    res = stepwise(moments(y, X), method="forward")
    assert res.selected == ("x1", "x2")
    t = res.enter_table()
    assert list(t.term) == [CONSTANT, "x1", "x2", "x3"]  # every variable, in the order given
    assert list(t.selected) == [True, True, True, False]
    assert list(t.entered_at.iloc[1:3]) == [1, 2] and t.entered_at.iloc[[0, 3]].isna().all()
    full = sm_fit(y, X, list(X))  # the model of all variables, as SPSS's enter
    np.testing.assert_allclose(t.B, full.params, rtol=RTOL)
    np.testing.assert_allclose(t.SE, full.bse, rtol=RTOL)
    np.testing.assert_allclose(t.p, full.pvalues, rtol=RTOL)
    np.testing.assert_allclose(t.R2, full.rsquared, rtol=RTOL)
    np.testing.assert_allclose(t.BIC, full.bic, rtol=RTOL)
    assert list(t.sig) == ["**" if p < 0.01 else "*" if p < 0.05 else "" for p in full.pvalues]
    assert t.sig.iloc[1] == "**" and "" in set(t.sig)
    assert (t.layout == "enter").all() and (t.method == "forward").all() and (t.p_enter == 0.05).all()
    # the selected model's own table is unchanged
    np.testing.assert_allclose(res.table().B, sm_fit(y, X, ["x1", "x2"]).params, rtol=RTOL)
    # a variable that cannot be fitted with the others: the enter layout says so
    Xc = dict(X, x4=X["x1"] - X["x2"])
    with pytest.raises(InputError) as e:
        stepwise(moments(y, Xc), method="forward").enter_table()
    assert e.value.problems[0].file == "x4" and "enter layout" in str(e.value)


def test_max_steps_stops_with_a_note():
    y, X = known_case()
    res = stepwise(moments(y, X), max_steps=1)
    assert res.selected == ("x1",) and any("max_steps = 1" in note for note in res.notes)
    assert not stepwise(moments(y, X), max_steps=2).notes  # converged exactly at the limit
    frame = res.history_frame()
    assert list(frame.columns) == ["step", "action", "variable", "p", "AIC", "BIC"] and len(frame) == 1


def test_enter_fits_all_variables_in_order():
    y, X = known_case()
    res = stepwise(moments(y, X), method="enter")
    assert res.selected == tuple(X)
    assert [(s.step, s.action, s.variable) for s in res.history] == [(0, "entered", v) for v in X]
    np.testing.assert_allclose(res.table().p, sm_fit(y, X, list(X)).pvalues, rtol=RTOL)


def test_regression_table_per_year_one_compute(monkeypatch):
    y, X = known_case()
    y2 = y + 0.5 * X["x3"]
    calls = []
    compute = dask.compute
    monkeypatch.setattr(regression.dask, "compute", lambda *a, **k: calls.append(1) or compute(*a, **k))
    dy = {2000: da.from_array(y, chunks=64), 2010: da.from_array(y2, chunks=100)}
    dX = as_dask(X, 50)
    table = regression_table(dy, dX, p_enter=0.01)
    assert len(calls) == 1
    assert table.columns[0] == "year" and list(table.year.unique()) == [2000, 2010]
    for year, yy in ((2000, y), (2010, y2)):
        expected = stepwise(moments(yy, X), p_enter=0.01).table()
        got = table[table.year == year].drop(columns="year").reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected, rtol=1e-12)
    assert set(table[table.year == 2010].term) == {CONSTANT, "x1", "x2", "x3"}
    # drivers per year
    per_year = regression_table({2000: y}, {2000: X})
    assert list(per_year.term) == [CONSTANT, "x1", "x2"]
    enter = regression_table({2000: y}, {2000: X}, layout="enter", method="forward")
    pd.testing.assert_frame_equal(enter.drop(columns="year"),
                                  stepwise(moments(y, X), method="forward").enter_table())


# --- degenerate inputs ------------------------------------------------------------------------------------


def test_constant_y_and_constant_x_are_input_errors():
    y, X = known_case()
    with pytest.raises(InputError) as e:
        stepwise(moments(np.full_like(y, 3.7), X))
    assert [p.file for p in e.value.problems] == ["y"]
    Xc = dict(X, x3=np.full_like(y, 1e6 + 0.1))
    with pytest.raises(InputError) as e:
        stepwise(moments(da.from_array(y, chunks=33), as_dask(Xc, 33)))
    assert [p.file for p in e.value.problems] == ["x3"] and "constant" in str(e.value)


def test_too_few_rows_nan_rows_and_inf():
    y, X = known_case(n=6)
    y[:2] = np.nan
    X["x2"][2] = np.nan
    m = moments(y, X)
    assert (m.n, m.n_dropped) == (3, 3)
    with pytest.raises(InputError, match="fewer usable rows"):
        stepwise(m)
    y, X = known_case(n=50)
    X["x2"][5] = np.inf
    with pytest.raises(InputError) as e:
        stepwise(moments(y, X))
    assert e.value.problems[0].file == "x2"
    with pytest.raises(InputError, match="shape"):
        moments(y, dict(X, x2=X["x2"][:-1]))


def test_perfectly_collinear_candidate_never_enters():
    y, X = known_case()
    X["x5"] = X["x1"] - 2.0 * X["x2"]   # exact linear combination; stronger on its own than x2
    y = y + 3.0 * X["x5"]
    res = stepwise(moments(y, X))
    # x5 and x2 enter; x1 = x5 + 2·x2 would make the cross-product matrix singular: never enters
    assert res.selected == ("x5", "x2") and moves(res) == [("entered", "x5"), ("entered", "x2")]
    (note,) = res.notes
    assert note.startswith("x1: not eligible") and "linear combination" in note
    res_aic = stepwise(moments(y, X), criterion="aic")
    assert res_aic.selected == ("x5", "x2") and res_aic.notes == res.notes
    for method in ("enter", "backward"):
        with pytest.raises(InputError) as e:
            stepwise(moments(y, X), method=method)
        assert e.value.problems[0].file == "x5" and "linear combination" in str(e.value)


def test_nothing_enters_gives_constant_only():
    rng = np.random.default_rng(5)
    X = {"a": rng.normal(size=200), "b": rng.normal(size=200)}
    y = 4.0 + rng.normal(size=200)
    res = stepwise(moments(y, X), p_enter=1e-6, p_remove=1e-5)
    assert res.selected == () and res.history == ()
    t = res.table()
    assert list(t.term) == [CONSTANT] and t.R2.iloc[0] == 0.0 and t.adj_R2.iloc[0] == 0.0
    assert np.isnan(t.F.iloc[0]) and np.isnan(t.F_p.iloc[0])
    r = sm.OLS(y, np.ones_like(y)).fit()
    np.testing.assert_allclose([t.B.iloc[0], t.SE.iloc[0], t.AIC.iloc[0]], [r.params[0], r.bse[0], r.aic],
                               rtol=RTOL)


def test_invalid_options_are_config_errors():
    y, X = known_case(n=50)
    m = moments(y, X)
    with pytest.raises(ConfigError, match="p_enter"):
        stepwise(m, p_enter=0.2, p_remove=0.1)
    with pytest.raises(ConfigError, match="method"):
        stepwise(m, method="lasso")
    with pytest.raises(ConfigError, match="criterion"):
        stepwise(m, criterion="cp")

"""Stepwise linear regression of ESV on its drivers, exact on every cell of the analysis grid.

Every fit is computed from the sufficient statistics of the data (:class:`Moments`): the number of
rows n, the means and the centred cross-product matrix of ``[x1 .. xp, y]``. They are computed in
one pass: each chunk (a Dask block, or a slab of a NumPy array) gives its own count, means and
centred cross-products, and the partials are merged pairwise with the update of Chan, Golub &
LeVeque (1979), all in float64; the chunk means are carried as double-doubles (hi + lo), so the
merge is as accurate as a two-pass computation on the whole data, even for values that are large
against their spread (cells of 1e6 varying by 1). From them every ordinary least-squares fit with
an intercept on any subset of the variables is exact (no sampling, no refit on the raw cells), so a
stepwise search on 10^7 cells costs one pass over the data plus microseconds per candidate model.

Statistics of a fit (:func:`ols`), as SPSS's coefficient table and statsmodels' ``OLS``:
B (unstandardized coefficient, units of y per unit of x; the constant in units of y), its standard
error SE (same units), the standardized coefficient Beta = B·sd_x/sd_y (dimensionless), t = B/SE,
the two-sided p of t with n - k - 1 degrees of freedom, the zero-order (Pearson) correlation r of
each variable with y, the variance inflation factor VIF = 1/(1 - R²_j) of each variable on the
other variables of the model (tolerance = 1/VIF), R² and adjusted R², the overall F test and its p,
AIC and BIC as statsmodels defines them for OLS (Akaike 1974; Schwarz 1978), from the Gaussian
log-likelihood ln L = -n/2·(log(RSS/n) + 1 + log 2π) with k + 1 parameters (the k variables and the
constant; the error variance is not counted, as statsmodels):
AIC = n·log(RSS/n) + n·(1 + log 2π) + 2·(k + 1), BIC = n·log(RSS/n) + n·(1 + log 2π) + (k + 1)·log n.
The constant n·(1 + log 2π) is the same for every model on the same rows, so it changes no selection;
it is kept so that the values equal statsmodels' ``aic`` and ``bic``.

Selection (:func:`stepwise`), as SPSS REGRESSION:

- ``method="stepwise"``, ``criterion="p"``: start with no variables; at each step first remove
  the variable of the model with the largest p if that p > ``p_remove`` (0.10); otherwise enter
  the variable not in the model with the smallest p (the t test of its coefficient if it were
  added) if that p < ``p_enter`` (0.05); stop when nothing leaves or enters. One variable moves per
  step. Ranking is by |t| (all candidates of a step share the degrees of freedom, so the largest |t|
  is the smallest p, and ties of p underflowed to 0 on 10^7 rows are still ordered); remaining
  ties go to the variable given first. ``p_enter`` must not exceed ``p_remove`` (as SPSS), so a
  variable just removed cannot re-enter at the next step; ``max_steps`` (default 2 × the number
  of variables, as SPSS's MAXSTEPS) stops any longer cycle, with a note in
  :attr:`RegressionResult.notes`.
- History (:attr:`RegressionResult.history`): one :class:`Step` per move, numbered from 1, with
  the p of the variable moved and the AIC of the model after the move; ``"enter"`` and
  ``"backward"`` first list their starting model as step 0.
- ``"forward"``: entries only; ``"backward"``: start with all variables, removals only;
  ``"enter"``: all variables, no selection.
- ``criterion="aic"`` or ``"bic"``: at each step try every single entry (stepwise, forward) and
  every single removal (stepwise, backward) and take the move that lowers the criterion most; stop
  when none lowers it (ties: entries before removals, then the order of the variables). BIC's
  penalty log n per parameter exceeds AIC's 2 once n >= 8, so BIC keeps fewer variables on a grid.
- Tolerance (SPSS's TOL criterion, default ``tolerance=1e-4``): a variable is not eligible to
  enter if, with it in the model, the tolerance of any variable of the model (1 - R² of that
  variable on the others) would be below ``tolerance``. A perfectly collinear candidate (a singular
  cross-product matrix) therefore never enters; each variable so excluded gets one note in
  :attr:`RegressionResult.notes`. With ``"enter"`` and ``"backward"`` every variable enters at
  the start, so a variable whose tolerance on the others is below ``tolerance`` is an input error.

Degenerate inputs raise :class:`ecodask.errors.InputError` before any output, every problem named
by variable (``"y"`` for the dependent variable): y constant; an x constant (an error, not a silent
exclusion: a constant driver on a whole grid means a broken input layer); fewer usable rows than
the number of variables + 2; infinite values; collinear variables with ``"enter"``/``"backward"``.
Rows where y or any x is NaN are dropped and counted (``n_dropped``). When no variable enters, the
result is the constant-only model: the table has the constant row only (B = mean of y), R² = 0,
adjusted R² = 0, F and its p NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy import linalg, stats

from ecodask.errors import ConfigError, InputError, problem

if TYPE_CHECKING:
    import dask.array as da

#: A NumPy array or a Dask array (the chunked moments, :mod:`ecodask.chunked.regression`).
type Array = np.ndarray | da.Array
Method = Literal["stepwise", "forward", "backward", "enter"]
Criterion = Literal["p", "aic", "bic"]

#: Name of the intercept row in :meth:`RegressionResult.table`.
CONSTANT = "(constant)"
#: A variable is constant when its standard deviation is at most this fraction of |its mean|
#: (rounding can leave a spread of a few ulps on a truly constant layer).
CONSTANT_RTOL = 1e-10
#: Rows per slab when a NumPy array is reduced (bounds the temporary copy to ~ 9 × 8 MiB per slab).
SLAB_ROWS = 1 << 20

_METHODS = ("stepwise", "forward", "backward", "enter")
_CRITERIA = ("p", "aic", "bic")


# --------------------------------------------------------------------------------------------------
# Sufficient statistics
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moments:
    """Sufficient statistics of ``[x1 .. xp, y]`` over the rows where none is NaN.

    ``names``: the x variables, in the order given; ``n``: rows used; ``n_dropped``: rows dropped
    for a NaN; ``mean``: (p + 1,) means, x's then y, in the units of each variable; ``css``:
    (p + 1, p + 1) centred sums of cross-products Σ(a - ā)(b - b̄), in the product of the units,
    last row and column y.
    """

    names: tuple[str, ...]
    n: int
    mean: np.ndarray
    css: np.ndarray
    n_dropped: int = 0

    @property
    def p(self) -> int:
        """Number of x variables."""
        return len(self.names)

    @property
    def sd(self) -> np.ndarray:
        """Sample standard deviations (n - 1), x's then y, in the units of each variable."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(np.maximum(np.diag(self.css), 0.0) / (self.n - 1))

    @property
    def corr(self) -> np.ndarray:
        """Pearson correlation matrix of ``[x1 .. xp, y]`` (dimensionless)."""
        d = np.sqrt(np.maximum(np.diag(self.css), 0.0))
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.css / np.outer(d, d)


# A partial: n, n_dropped, mean as an unevaluated sum hi + lo (double-double), css about that mean.
Partial = tuple[float, float, np.ndarray, np.ndarray, np.ndarray]


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``s, e`` with ``s = fl(a + b)`` and ``a + b = s + e`` exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def partial(columns: Sequence[np.ndarray]) -> Partial:
    """Count, means and centred cross-products of one chunk; ``columns`` are equal-size arrays,
    x's then y (any numeric dtype, any shape; computed in float64)."""
    z = np.stack([np.asarray(c, dtype=np.float64).ravel() for c in columns])
    ok = ~np.isnan(z).any(axis=0)
    n = int(ok.sum())
    q = z.shape[0]
    if n == 0:
        return 0.0, float(z.shape[1]), np.zeros(q), np.zeros(q), np.zeros((q, q))
    if n < z.shape[1]:
        z = z[:, ok]
    with np.errstate(invalid="ignore", over="ignore"):  # infinite values: reported by the caller
        hi = z.mean(axis=1)
        z -= hi[:, None]
        lo = z.mean(axis=1)                 # the rounding of hi, to ~1 ulp of the spread
        css = z @ z.T - n * np.outer(lo, lo)
        hi, lo = _two_sum(hi, lo)
    return float(n), float(ok.size - n), hi, lo, css


def pack(part: Partial) -> np.ndarray:
    n, dropped, hi, lo, css = part
    return np.concatenate([[n, dropped], hi, lo, css.ravel()])


def packed_size(q: int) -> int:
    return 2 + 2 * q + q * q


def unpack(v: np.ndarray, q: int) -> Partial:
    return float(v[0]), float(v[1]), v[2:2 + q], v[2 + q:2 + 2 * q], v[2 + 2 * q:].reshape(q, q)


def block_partial(*blocks: np.ndarray) -> np.ndarray:
    """Per-block function of the Dask reduction: the packed partial of one block, shaped
    ``(1,) * ndim + (2 + 2q + q²,)`` so that the partials form a small Dask array."""
    return pack(partial(blocks)).reshape((1,) * blocks[0].ndim + (-1,))


def merge(a: Partial, b: Partial) -> Partial:
    """Chan et al. pairwise update of two partials. The means are carried as double-doubles, so the
    difference of two chunk means is exact to ~1 ulp of itself even when the means are large
    against the spread (e.g. cells of 1e6 varying by 1): the merge then loses nothing either."""
    na, da_, ha, la, sa = a
    nb, db, hb, lb, sb = b
    if na == 0 or nb == 0:
        keep = b if na == 0 else a
        return keep[0], da_ + db, keep[2], keep[3], keep[4]
    n = na + nb
    d, e = _two_sum(hb, -ha)
    delta = d + (e + (lb - la))
    hi, e = _two_sum(ha, delta * (nb / n))
    hi, lo = _two_sum(hi, la + e)
    return n, da_ + db, hi, lo, sa + sb + np.outer(delta, delta) * (na * nb / n)


def merge_all(parts: list[Partial]) -> Partial:
    """Merge partials as a balanced binary tree (rounding grows with log of the number of chunks)."""
    while len(parts) > 1:
        parts = [merge(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return parts[0]


def check_inputs(y: Array, X: Mapping[str, Array]) -> list[str]:
    if not X:
        raise InputError([problem("X", "", {}, "no x variables given")])
    names = list(X)
    problems = []
    for name in names:
        if not isinstance(name, str) or not name or name == CONSTANT:
            problems.append(problem(str(name), "name", name, f"x names must be non-empty strings, not "
                                                             f"{CONSTANT!r}"))
    if np.ndim(y) == 0:
        problems.append(problem("y", "shape", np.shape(y), "y must be an array of at least one dimension"))
    for name in names:
        if np.shape(X[name]) != np.shape(y):
            problems.append(problem(name, "shape", np.shape(X[name]),
                                    f"differs from y's shape {np.shape(y)}"))
    if problems:
        raise InputError(problems)
    return names


# --------------------------------------------------------------------------------------------------
# One OLS fit from the moments
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fit:
    """One OLS fit with an intercept. Arrays are per term, the constant first, then ``variables``.

    ``params`` (B) and ``bse`` (SE) in units of y (per unit of x); ``beta`` standardized
    (dimensionless; NaN for the constant); ``tvalues``, two-sided ``pvalues``; ``r`` zero-order
    correlation with y and ``vif`` (NaN for the constant); ``rss`` residual sum of squares (units
    of y squared); ``df_resid`` = n - k - 1; ``r2``, ``adj_r2``; ``f``, ``f_p`` (NaN when k = 0);
    ``aic`` and ``bic`` as statsmodels' ``OLSResults.aic`` and ``.bic`` (dimensionless).
    """

    variables: tuple[str, ...]
    n: int
    params: np.ndarray
    bse: np.ndarray
    tvalues: np.ndarray
    pvalues: np.ndarray
    beta: np.ndarray
    r: np.ndarray
    vif: np.ndarray
    rss: float
    df_resid: int
    r2: float
    adj_r2: float
    f: float
    f_p: float
    aic: float
    bic: float

    @property
    def k(self) -> int:
        return len(self.variables)

    @property
    def min_tolerance(self) -> float:
        """Smallest tolerance (1/VIF) of the variables of the model; 1 when k <= 1."""
        return float(1.0 / np.max(self.vif[1:])) if self.k else 1.0


def _criterion(n: int, rss: float, k: int, per_parameter: float) -> float:
    """-2 ln L + ``per_parameter`` x (k + 1) of an OLS fit with k variables and a constant, ln L the
    Gaussian log-likelihood at the ML variance RSS/n: AIC with 2 per parameter (Akaike 1974), BIC
    with ln n (Schwarz 1978), as statsmodels' ``OLSResults.aic`` and ``.bic``."""
    with np.errstate(divide="ignore"):
        return float(n * np.log(rss / n) + n * (1.0 + np.log(2.0 * np.pi)) + per_parameter * (k + 1))


def _ols(m: Moments, idx: Sequence[int]) -> Fit:
    """Fit on the variables at positions ``idx`` of ``m.names``; raises ``np.linalg.LinAlgError`` when
    their correlation matrix is not positive definite (collinear variables)."""
    n, k, p = m.n, len(idx), m.p
    idx = list(idx)
    dfr = n - k - 1
    syy = float(m.css[p, p])
    ybar = float(m.mean[p])
    nan = np.full(1, np.nan)
    if k == 0:
        rss, r2 = syy, 0.0
        b0 = ybar
        se0 = np.sqrt(rss / dfr / n)
        params, bse, beta, r, vif = np.array([b0]), np.array([se0]), nan, nan, nan
    else:
        dx = np.sqrt(np.diag(m.css)[idx])
        rxx = m.css[np.ix_(idx, idx)] / np.outer(dx, dx)
        rxy = m.css[idx, p] / (dx * np.sqrt(syy))
        cho = linalg.cho_factor(rxx, lower=True, check_finite=True)
        bstar = linalg.cho_solve(cho, rxy)                 # standardized coefficients (Beta)
        rinv = linalg.cho_solve(cho, np.eye(k))
        rinv = (rinv + rinv.T) / 2
        r2 = min(max(float(rxy @ bstar), 0.0), 1.0)      # a sum, relative-accurate when R² is tiny
        rss = syy * (1.0 - r2)
        sigma2 = rss / dfr
        b = bstar * np.sqrt(syy) / dx
        xbar = m.mean[idx]
        xs = xbar / dx
        b0 = ybar - float(b @ xbar)
        se = np.sqrt(sigma2 * np.diag(rinv)) / dx
        se0 = np.sqrt(sigma2 * (1.0 / n + float(xs @ rinv @ xs)))
        params = np.concatenate([[b0], b])
        bse = np.concatenate([[se0], se])
        beta = np.concatenate([nan, bstar])
        r = np.concatenate([nan, m.corr[idx, p]])
        vif = np.concatenate([nan, np.diag(rinv)])
    with np.errstate(divide="ignore", invalid="ignore"):
        t = params / bse
        pv = 2.0 * stats.t.sf(np.abs(t), dfr)
        adj = 1.0 - (1.0 - r2) * (n - 1) / dfr
        if k:
            f = (r2 / k) / ((1.0 - r2) / dfr)
            f_p = float(stats.f.sf(f, k, dfr))
        else:
            f, f_p = np.nan, np.nan
    names = tuple(m.names[i] for i in idx)
    return Fit(names, n, params, bse, t, pv, beta, r, vif, float(rss), dfr, float(r2), float(adj),
               float(f), f_p, _criterion(n, rss, k, 2.0), _criterion(n, rss, k, float(np.log(n))))


def _input_problems(m: Moments) -> list:
    """Degenerate inputs of a regression on ``m``; empty when it can be fitted."""
    problems = []
    allnames = [*m.names, "y"]
    finite = np.isfinite(m.mean) & np.isfinite(np.diag(m.css))
    for j, name in enumerate(allnames):
        if not finite[j]:
            problems.append(problem(name, "values", "inf", "holds infinite values"))
    if m.n < m.p + 2:
        problems.append(problem("y", "rows", m.n, f"fewer usable rows (no NaN in y or any x; {m.n_dropped} "
                                                  f"dropped) than the {m.p} variables + 2"))
    if problems:
        return problems
    sd = m.sd
    for j, name in enumerate(allnames):
        if not sd[j] > CONSTANT_RTOL * abs(m.mean[j]):
            what = "y is constant: nothing to explain" if name == "y" else \
                "x is constant over the usable rows: drop it from the drivers"
            problems.append(problem(name, "sd", float(sd[j]), f"{what} (mean {m.mean[j]!r})"))
    return problems


def ols(m: Moments, variables: Sequence[str]) -> Fit:
    """OLS fit of y on an intercept and ``variables`` (names of ``m.names``), exact from the moments.

    Raises :class:`InputError` for degenerate inputs (see the module docstring) and when the
    variables are perfectly collinear.
    """
    problems = _input_problems(m)
    unknown = [v for v in variables if v not in m.names]
    problems += [problem(v, "name", v, f"not one of the x variables {list(m.names)}") for v in unknown]
    if problems:
        raise InputError(problems)
    idx = [m.names.index(v) for v in variables]
    try:
        return _ols(m, idx)
    except np.linalg.LinAlgError:
        raise InputError([problem(variables[-1], "tolerance", 0.0,
                                  f"the variables {list(variables)} are perfectly collinear")]) from None


# --------------------------------------------------------------------------------------------------
# Stepwise selection
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One move of the selection: ``step`` (0 = the starting model of ``"enter"``/``"backward"``,
    then 1, 2, ...), ``action`` (``"entered"`` or ``"removed"``), ``variable``, ``p`` (two-sided p
    of its t: in the model it enters, or in the model it leaves), ``aic`` and ``bic`` (of the model
    after the move)."""

    step: int
    action: Literal["entered", "removed"]
    variable: str
    p: float
    aic: float
    bic: float


@dataclass(frozen=True)
class RegressionResult:
    """Outcome of :func:`stepwise`: the final ``fit``, the selection ``history`` and ``notes``
    (variables excluded by the tolerance criterion, a stop at ``max_steps``)."""

    moments: Moments
    fit: Fit
    history: tuple[Step, ...]
    method: Method
    criterion: Criterion
    p_enter: float
    p_remove: float
    tolerance: float
    notes: tuple[str, ...] = field(default=())

    @property
    def selected(self) -> tuple[str, ...]:
        """The variables of the final model, in order of (last) entry."""
        return self.fit.variables

    def history_frame(self) -> pd.DataFrame:
        """The history as a table: step, action, variable, p, AIC, BIC."""
        return pd.DataFrame([(s.step, s.action, s.variable, s.p, s.aic, s.bic) for s in self.history],
                            columns=["step", "action", "variable", "p", "AIC", "BIC"])

    def table(self) -> pd.DataFrame:
        """One row per term, the constant first, then the variables in order of entry.

        Columns: term, B, SE (units of y per unit of x; the constant in units of y), Beta, t, p, r,
        VIF (Beta, r, VIF NaN for the constant), then the model and its conventions repeated on
        every row: n, n_dropped, R2, adj_R2, F, F_p (NaN with no variable), AIC, BIC, method, criterion
        (``"none"`` with ``"enter"``), p_enter and p_remove (NaN where the method and criterion do
        not use them), tolerance.
        """
        f = self.fit
        return pd.DataFrame({
            "term": [CONSTANT, *f.variables],
            "B": f.params, "SE": f.bse, "Beta": f.beta, "t": f.tvalues, "p": f.pvalues,
            "r": f.r, "VIF": f.vif,
            "n": f.n, "n_dropped": self.moments.n_dropped, "R2": f.r2, "adj_R2": f.adj_r2,
            "F": f.f, "F_p": f.f_p, "AIC": f.aic, "BIC": f.bic,
            **self._conventions(),
        })

    def _conventions(self) -> dict[str, object]:
        uses_p = self.criterion == "p"
        return {"method": self.method, "criterion": self.criterion if self.method != "enter" else "none",
                "p_enter": self.p_enter if uses_p and self.method in ("stepwise", "forward") else np.nan,
                "p_remove": self.p_remove if uses_p and self.method in ("stepwise", "backward") else np.nan,
                "tolerance": self.tolerance}

    def enter_table(self) -> pd.DataFrame:
        """The selection in the layout of seed 002's regression table (the ``enter`` layout): every
        variable of the moments, in the order given, with its coefficients in the model of *all*
        variables (SPSS's ``enter``: what the seed prints for X1..X8 each year), marked by whether the
        selection kept it.

        Columns: term (the constant first), selected (True for the constant and the variables of the
        selected model), entered_at (the step of the selection at which the variable last entered;
        NaN for the constant and the variables left out), B, SE, Beta, t, p, sig (``"**"`` for
        p < 0.01, ``"*"`` for p < 0.05, as the seed marks p), r, VIF, then the model of all variables
        repeated on every row (n, n_dropped, R2, adj_R2, F, F_p, AIC, BIC), layout ``"enter"``, and
        the selection's conventions (method, criterion, p_enter, p_remove, tolerance). The selected
        model's own coefficients are :meth:`table`.

        Raises :class:`InputError` when the variables cannot all be in one model (a tolerance below
        the criterion), as ``method="enter"`` does.
        """
        m = self.moments
        s = _Search(m, self.tolerance)
        problems = _full_model_problems(s)
        if problems:
            raise InputError([problem(p.file, p.key, p.value, p.message.replace(
                ": drop it, or use method='stepwise' or 'forward'",
                ": the enter layout fits all variables at once; drop it, or use the selected layout"))
                for p in problems])
        f = s.fit(list(range(m.p)))
        assert f is not None
        entered: dict[str, int] = {}
        for mv in self.history:
            if mv.action == "entered":
                entered[mv.variable] = mv.step
            else:
                entered.pop(mv.variable, None)
        chosen = set(self.selected)
        return pd.DataFrame({
            "term": [CONSTANT, *f.variables],
            "selected": [True, *[v in chosen for v in f.variables]],
            "entered_at": [np.nan, *[float(entered[v]) if v in chosen else np.nan for v in f.variables]],
            "B": f.params, "SE": f.bse, "Beta": f.beta, "t": f.tvalues, "p": f.pvalues,
            "sig": [significance_stars(p) for p in f.pvalues],
            "r": f.r, "VIF": f.vif,
            "n": f.n, "n_dropped": m.n_dropped, "R2": f.r2, "adj_R2": f.adj_r2,
            "F": f.f, "F_p": f.f_p, "AIC": f.aic, "BIC": f.bic, "layout": "enter",
            **self._conventions(),
        })


def significance_stars(p: float) -> str:
    """Seed 002's marks of a two-sided p: ``"**"`` below 0.01, ``"*"`` below 0.05, else ``""``."""
    return "**" if p < 0.01 else "*" if p < 0.05 else ""


def check_options(method: str, criterion: str, p_enter: float, p_remove: float, tolerance: float,
                   max_steps: int | None) -> None:
    src = "regression options"
    problems = []
    if method not in _METHODS:
        problems.append(problem(src, "method", method, f"must be one of {_METHODS}"))
    if criterion not in _CRITERIA:
        problems.append(problem(src, "criterion", criterion, f"must be one of {_CRITERIA}"))
    if not 0 < p_enter < 1:
        problems.append(problem(src, "p_enter", p_enter, "must be in (0, 1)"))
    if not 0 < p_remove < 1:
        problems.append(problem(src, "p_remove", p_remove, "must be in (0, 1)"))
    elif p_enter > p_remove and method == "stepwise" and criterion == "p":
        problems.append(problem(src, "p_enter", p_enter, f"must not exceed p_remove = {p_remove} (a removed "
                                                         f"variable could re-enter at once)"))
    if not 0 < tolerance < 1:
        problems.append(problem(src, "tolerance", tolerance, "must be in (0, 1)"))
    if max_steps is not None and max_steps < 0:
        problems.append(problem(src, "max_steps", max_steps, "must be >= 0"))
    if problems:
        raise ConfigError(problems)


class _Search:
    """Fits of the subsets met during one selection, cached by subset (order kept for the table)."""

    def __init__(self, m: Moments, tolerance: float):
        self.m, self.tolerance = m, tolerance
        self.cache: dict[tuple[int, ...], Fit | None] = {}
        self.notes: list[str] = []
        self.noted: set[int] = set()

    def fit(self, idx: Sequence[int]) -> Fit | None:
        """The fit, or None when a variable's tolerance would fall below the criterion."""
        key = tuple(idx)
        if key not in self.cache:
            try:
                f = _ols(self.m, idx)
                ok = np.all(np.isfinite(f.vif[1:])) and f.min_tolerance >= self.tolerance
                self.cache[key] = f if ok else None
            except np.linalg.LinAlgError:
                self.cache[key] = None
        return self.cache[key]

    def exclude_note(self, j: int, step: int, model: Sequence[int]) -> None:
        if j not in self.noted:
            self.noted.add(j)
            why = _collinearity(self.m, model, j, self.tolerance)
            self.notes.append(f"{self.m.names[j]}: not eligible to enter at step {step}: {why}")

    def candidates(self, model: list[int], step: int) -> list[tuple[int, Fit]]:
        out = []
        for j in range(self.m.p):
            if j in model:
                continue
            f = self.fit([*model, j])
            if f is None:
                self.exclude_note(j, step, model)
            else:
                out.append((j, f))
        return out


def _tolerances(m: Moments, idx: Sequence[int]) -> np.ndarray:
    """Tolerance (1 - R² on the others) of each variable of ``idx``; by least squares, so exact
    collinearity gives ~0 instead of failing."""
    idx = list(idx)
    r = m.corr[np.ix_(idx, idx)]
    out = np.ones(len(idx))
    for a in range(len(idx)):
        o = [b for b in range(len(idx)) if b != a]
        if o:
            sol = np.linalg.lstsq(r[np.ix_(o, o)], r[o, a], rcond=None)[0]
            out[a] = max(1.0 - float(r[o, a] @ sol), 0.0)
    return out


def _collinearity(m: Moments, accepted: Sequence[int], j: int, tolerance: float) -> str:
    """Why variable ``j`` cannot join ``accepted`` (for notes and error messages)."""
    tol = _tolerances(m, [*accepted, j])
    names = [m.names[i] for i in accepted]
    if tol[-1] < tolerance:
        return f"(nearly) a linear combination of {names}: tolerance {tol[-1]:.3g} < {tolerance}"
    w = int(np.argmin(tol))
    return f"with {names} it lowers the tolerance of {m.names[accepted[w]]} to {tol[w]:.3g} < {tolerance}"


def _full_model_problems(s: _Search) -> list:
    """Variables that cannot all be in the model at once (``"enter"``/``"backward"``): each variable,
    in the order given, joins the ones before it unless a tolerance would fall below the criterion;
    when none is refused, all variables together pass the criterion."""
    m, accepted, problems = s.m, [], []
    for j in range(m.p):
        if s.fit([*accepted, j]) is None:
            problems.append(problem(m.names[j], "tolerance", float(_tolerances(m, [*accepted, j])[-1]),
                                    _collinearity(m, accepted, j, s.tolerance) +
                                    ": drop it, or use method='stepwise' or 'forward'"))
        else:
            accepted.append(j)
    return problems


def stepwise(m: Moments, method: Method = "stepwise", criterion: Criterion = "p", p_enter: float = 0.05,
             p_remove: float = 0.10, tolerance: float = 1e-4,
             max_steps: int | None = None) -> RegressionResult:
    """Select and fit the regression of y on the variables of ``m`` (see the module docstring).

    ``method``: ``"stepwise"`` (SPSS), ``"forward"``, ``"backward"`` or ``"enter"``; ``criterion``:
    ``"p"`` (enter when p < ``p_enter``, remove when p > ``p_remove``), ``"aic"`` or ``"bic"`` (the
    move lowering that criterion most); ``tolerance``: the smallest tolerance (1 - R² on the other
    variables of the model) a variable may have in the model; ``max_steps``: moves before stopping
    (default 2 × the number of variables with the p rule, as SPSS; no limit with AIC or BIC, which
    falls at every move);
    stopping there leaves a note. Raises :class:`InputError` for degenerate inputs and
    :class:`~ecodask.errors.ConfigError` for invalid options.
    """
    check_options(method, criterion, p_enter, p_remove, tolerance, max_steps)
    problems = _input_problems(m)
    if problems:
        raise InputError(problems)
    s = _Search(m, tolerance)
    # SPSS's MAXSTEPS for the p rule; AIC or BIC falls at every move, so it cannot cycle
    limit = max_steps if max_steps is not None else 2 * m.p if criterion == "p" else None
    history: list[Step] = []
    model: list[int] = []
    if method in ("enter", "backward"):
        problems = _full_model_problems(s)
        if problems:
            raise InputError(problems)
        model = list(range(m.p))
        f = s.fit(model)
        history += [Step(0, "entered", m.names[j], float(f.pvalues[i + 1]), f.aic, f.bic)
                    for i, j in enumerate(model)]
    if method != "enter":
        grow, shrink = method in ("stepwise", "forward"), method in ("stepwise", "backward")
        step = 0
        while True:
            move = _ic_move(s, model, grow, shrink, step + 1, criterion) if criterion != "p" else \
                _p_move(s, model, grow, shrink, p_enter, p_remove, step + 1)
            if move is None:
                break
            if limit is not None and step >= limit:
                s.notes.append(f"stopped at max_steps = {limit} moves: the selection had not converged")
                break
            step += 1
            action, j, pval, after = move
            model = [i for i in model if i != j] if action == "removed" else [*model, j]
            history.append(Step(step, action, m.names[j], pval, after.aic, after.bic))
    final = s.fit(model)
    assert final is not None
    return RegressionResult(m, final, tuple(history), method, criterion, p_enter, p_remove, tolerance,
                            tuple(s.notes))


def _p_move(s: _Search, model: list[int], grow: bool, shrink: bool, p_enter: float, p_remove: float,
            step: int) -> tuple[str, int, float, Fit] | None:
    """SPSS: removal first (largest p > p_remove), else entry (smallest p < p_enter)."""
    if shrink and model:
        f = s.fit(model)
        t = np.abs(f.tvalues[1:])
        w = int(np.argmin(t))
        if f.pvalues[w + 1] > p_remove:
            j = model[w]
            return "removed", j, float(f.pvalues[w + 1]), s.fit([i for i in model if i != j])
    if grow:
        cands = s.candidates(model, step)
        if cands:
            tabs = [abs(f.tvalues[-1]) for _, f in cands]
            j, f = cands[int(np.argmax(tabs))]
            if f.pvalues[-1] < p_enter:
                return "entered", j, float(f.pvalues[-1]), f
    return None


def _ic_move(s: _Search, model: list[int], grow: bool, shrink: bool, step: int,
             criterion: Literal["aic", "bic"]) -> tuple[str, int, float, Fit] | None:
    """The single entry or removal lowering the criterion (``Fit.aic`` or ``Fit.bic``) most, if any
    lowers it (ties: entries first, then in the order of the variables)."""
    current = s.fit(model)
    best: tuple[str, int, float, Fit] | None = None
    best_ic = getattr(current, criterion)
    if grow:
        for j, f in s.candidates(model, step):
            if getattr(f, criterion) < best_ic:
                best, best_ic = ("entered", j, float(f.pvalues[-1]), f), getattr(f, criterion)
    if shrink:
        for w, j in enumerate(model):
            f = s.fit([i for i in model if i != j])
            if getattr(f, criterion) < best_ic:
                best, best_ic = ("removed", j, float(current.pvalues[w + 1]), f), getattr(f, criterion)
    return best


# --------------------------------------------------------------------------------------------------
# Per-year table
# --------------------------------------------------------------------------------------------------



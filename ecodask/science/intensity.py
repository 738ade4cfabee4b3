"""Intensity analysis of land change (Aldwaik & Pontius 2012) and the quantity, exchange and shift
components of the difference between two maps (Pontius & Santacruz 2014), from transition matrices.

``C`` is an array of transition matrices ``(..., J, J)`` in pixels (or any area unit): ``C[..., i, j]``
is the area of category ``i`` at the start of the interval that is category ``j`` at its end. The
leading axes are free (intervals, zones). ``years`` is each interval's duration in years (broadcast
against the leading axes). Every intensity is in **percent of an area per year**; a ratio with no
area under it (a category absent from the map it is measured against) is NaN.

Interval level (Aldwaik & Pontius 2012, eq. 1-2):
    ``S_t = 100 · Σ_j (Σ_i C_tij − C_tjj) / Σ_j Σ_i C_tij / years_t``  (annual change in interval t)
    ``U = 100 · Σ_t change_t / Σ_t (extent_t · years_t)``  (the uniform intensity over all intervals;
    the paper's ``Σ_t change_t / (extent · (Y_T − Y_1))`` when the extent is the same in every
    interval, as it is there; a time-weighted extent where pixels with data differ: ours)
Category level (eq. 3-4): gain ``G_tj = 100 · (Σ_i C_tij − C_tjj) / years_t / Σ_i C_tij`` of the size of
    ``j`` at the end; loss ``L_ti = 100 · (Σ_j C_tij − C_tii) / years_t / Σ_j C_tij`` of the size of
    ``i`` at the start; active above ``S_t``, dormant below.
Transition level, gain of ``n`` (eq. 5-6): ``R_tin = 100 · C_tin / years_t / Σ_j C_tij`` (of the
    size of ``i`` at the start), against ``W_tn = 100 · (Σ_i C_tin − C_tnn) / years_t / Σ_{j≠n} Σ_i C_tji``
    (n's gain spread uniformly over the other categories' start area): ``i`` is targeted by n's
    gain above ``W_tn``, avoided below.
Transition level, loss of ``m`` (eq. 7-8): ``Q_tmj = 100 · C_tmj / years_t / Σ_i C_tij`` (of the size
    of ``j`` at the end), against ``V_tm = 100 · (Σ_j C_tmj − C_tmm) / years_t / Σ_{i≠m} Σ_j C_tij``:
    ``j`` is targeted by m's loss above ``V_tm``.
Stationarity (ibid.): a pattern is stationary when it holds in every interval (active, or dormant,
    in all; targeted, or avoided, in all). A gain, loss or transition of zero in an interval is
    dormant / avoided there (its intensity, 0, lies below the uniform one), so one that is zero in
    every interval, or zero in some and dormant / avoided in the others, is stationary: ours, as
    eq. 3-8 read. OpenLand counts only the intervals where it is not zero and prints no row, or
    ``N``, for these (its São Lourenço vignette: SG's loss to Iu and to R).
Components (Pontius & Santacruz 2014): per category, gross gain ``g_j`` and loss ``l_j``; quantity
    ``q_j = |g_j − l_j|``, exchange ``e_j = 2 Σ_{k≠j} min(C_kj, C_jk)``, shift
    ``s_j = g_j + l_j − q_j − e_j``; the map's difference ``D = Σ_j (g_j + l_j) / 2`` splits into
    ``Q = Σ q_j / 2``, ``E = Σ e_j / 2``, ``S = Σ s_j / 2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, NaN where ``den`` is 0."""
    num, den = np.broadcast_arrays(np.asarray(num, float), np.asarray(den, float))
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _margins(c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Start sizes (row sums), end sizes (column sums), persistence (diagonal), extent."""
    c = np.asarray(c, float)
    return c.sum(axis=-1), c.sum(axis=-2), np.diagonal(c, axis1=-2, axis2=-1), c.sum(axis=(-2, -1))


@dataclass(frozen=True)
class Interval:
    """Interval level: ``change`` and ``extent`` (area units), ``S`` (%/yr), per interval."""

    change: np.ndarray
    extent: np.ndarray
    S: np.ndarray


def interval_level(c: np.ndarray, years: np.ndarray) -> Interval:
    """``S_t`` of each matrix (see the module's text)."""
    start, _, stay, extent = _margins(c)
    change = extent - stay.sum(axis=-1)
    return Interval(change, extent, 100 * _ratio(change, extent * np.asarray(years, float)))


def uniform_intensity(change: np.ndarray, extent: np.ndarray, years: np.ndarray, axis: int = 0) -> np.ndarray:
    """``U`` over the intervals on ``axis`` (%/yr)."""
    w = np.asarray(extent, float) * np.asarray(years, float)
    return 100 * _ratio(np.sum(change, axis=axis), np.sum(w, axis=axis))


@dataclass(frozen=True)
class Category:
    """Category level, ``(..., J)``: annual gross gain and loss (area units/yr), ``G`` and ``L``
    (%/yr)."""

    gain: np.ndarray
    loss: np.ndarray
    G: np.ndarray
    L: np.ndarray


def category_level(c: np.ndarray, years: np.ndarray) -> Category:
    start, end, stay, _ = _margins(c)
    yrs = np.asarray(years, float)[..., None]
    gain, loss = (end - stay) / yrs, (start - stay) / yrs
    return Category(gain, loss, 100 * _ratio(gain, end), 100 * _ratio(loss, start))


@dataclass(frozen=True)
class Transition:
    """Transition level, ``R``/``Q`` ``(..., J, J)`` and ``W``/``V`` ``(..., J)`` in %/yr (diagonals
    NaN: not a transition)."""

    R: np.ndarray
    W: np.ndarray
    Q: np.ndarray
    V: np.ndarray


def transition_level(c: np.ndarray, years: np.ndarray) -> Transition:
    c = np.asarray(c, float)
    start, end, stay, extent = _margins(c)
    yrs = np.asarray(years, float)
    off = ~np.eye(c.shape[-1], dtype=bool)
    r = 100 * _ratio(c / yrs[..., None, None], start[..., :, None])
    q = 100 * _ratio(c / yrs[..., None, None], end[..., None, :])
    w = 100 * _ratio((end - stay) / yrs[..., None], extent[..., None] - start)
    v = 100 * _ratio((start - stay) / yrs[..., None], extent[..., None] - end)
    return Transition(np.where(off, r, np.nan), w, np.where(off, q, np.nan), v)


@dataclass(frozen=True)
class Components:
    """Per category ``(..., J)``: ``quantity``, ``exchange``, ``shift`` (area units); and the
    map's ``difference``, ``Q``, ``E``, ``S`` ``(...)``."""

    quantity: np.ndarray
    exchange: np.ndarray
    shift: np.ndarray
    difference: np.ndarray
    Q: np.ndarray
    E: np.ndarray
    S: np.ndarray


def components(c: np.ndarray) -> Components:
    c = np.asarray(c, float)
    start, end, stay, _ = _margins(c)
    gain, loss = end - stay, start - stay
    quantity = np.abs(gain - loss)
    pair = np.minimum(c, np.swapaxes(c, -1, -2))
    exchange = 2 * (pair.sum(axis=-1) - np.diagonal(pair, axis1=-2, axis2=-1))
    shift = gain + loss - quantity - exchange
    half = [x.sum(axis=-1) / 2 for x in (gain + loss, quantity, exchange, shift)]
    return Components(quantity, exchange, shift, *half)


#: Codes of :func:`compare`: below, equal, above, and no value to compare.
BELOW, EQUAL, ABOVE, NONE = -1, 0, 1, -2


def compare(value: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """int8 :data:`ABOVE` where ``value > uniform``, :data:`BELOW` where smaller, :data:`EQUAL` where
    equal (to 1e-12 relative), :data:`NONE` where either is NaN."""
    value, uniform = np.broadcast_arrays(np.asarray(value, float), np.asarray(uniform, float))
    out = np.full(value.shape, NONE, dtype=np.int8)
    ok = np.isfinite(value) & np.isfinite(uniform)
    tie = ok & np.isclose(value, uniform, rtol=1e-12, atol=0)
    out[ok & ~tie & (value > uniform)] = ABOVE
    out[ok & ~tie & (value < uniform)] = BELOW
    out[tie] = EQUAL
    return out


def behaviour(value: np.ndarray, uniform: np.ndarray, above: str, below: str) -> np.ndarray:
    """:func:`compare` in words: ``above``, ``below``, ``"uniform"`` or ``""``."""
    words = np.array(["", below, "uniform", above], dtype=object)  # NONE, BELOW, EQUAL, ABOVE
    return words[compare(value, uniform) + 2]


def stationary(states: np.ndarray, axis: int = 0) -> np.ndarray:
    """Whether every interval on ``axis`` shows the same state, above or below (codes of
    :func:`compare`, or words of :func:`behaviour`; not equal, not none).

    The states of zero gains, losses and transitions count as they compare: an interval where a
    category gained nothing is dormant for its gain, one where ``i`` went to no ``n`` is avoided by
    n's gain. So a gain, loss or transition that is zero in every interval is stationary (dormant /
    avoided), and so is one zero in some intervals and dormant / avoided in the others, where
    OpenLand's ``intensityAnalysis``, counting only intervals with a value, prints no row or ``N``."""
    states = np.asarray(states)
    first = np.take(states, 0, axis=axis)
    same = np.all(states == np.expand_dims(first, axis), axis=axis)
    none = (EQUAL, NONE) if states.dtype.kind in "iu" else ("uniform", "")
    return same & np.isin(first, none, invert=True)

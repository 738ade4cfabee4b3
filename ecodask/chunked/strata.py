"""Per-stratum sums of y over chunked arrays for the Geographical Detector, exact on all cells.

Three passes over aligned arrays (a table's columns or an analysis grid's layers), each a
per-chunk kernel (:mod:`ecodask.kernels.strata`) whose small results are summed in a tree:

1. :func:`scan`: rows where y and every factor are finite, Σy (its mean becomes the shift of
   the sums), each factor's range and whether it holds integers;
2. :func:`fine_bin_sums`: count, Σd, Σd² (d = y - shift) per fine bin of every factor: one bin per
   integer code or distinct value where the factor has few (``exact`` binning), else
   :data:`FINE_BINS` equal-width bins over its range. Every candidate discretization of a
   factor is scored from these sums, so one pass serves all (method, k);
3. :func:`overlay_sums`: the same sums per stratum of the overlay of every pair of factors, once
   each factor's strata (a stratum per fine bin) are fixed. When every factor is used as given
   (its fine bins are its strata), passes 2 and 3 are one loop.

Sums are float64; a stratum of a discretized factor is a set of whole fine bins, so its sums and
every statistic built from them are exact for that stratification on every row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dask.array as da
import numpy as np

from ecodask.chunked.blockwise import map_sum_blocks
from ecodask.kernels import strata as kern

#: Equal-width fine bins of a continuous factor: 2520 * 4, a multiple of every k from 3 to 10, so
#: the equal-interval breaks of every k fall on bin edges.
FINE_BINS = 10_080
#: Largest number of integer codes (max - min + 1) binned one bin per code.
MAX_CODE_BINS = 65_536


@dataclass(frozen=True)
class Scan:
    """What the first pass learns. Counts are rows; lo/hi per factor, in the factor's units."""

    n_valid: int
    mean_y: float
    nonfinite_y: int
    nonfinite: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    nonint: np.ndarray


@dataclass(frozen=True)
class Binning:
    """How a factor's values become fine bins (see :mod:`ecodask.kernels.strata`).

    ``values`` holds each bin's representative value (the integer code, the distinct value or
    the bin centre); ``exact`` says bins are single values (True) or equal-width bins
    ``1 / scale`` wide (False).
    """

    mode: int
    lo: float
    scale: float
    nbins: int
    values: np.ndarray
    exact: bool

    @property
    def width(self) -> float:
        """Bin width in the factor's units (0 for exact bins of distinct values)."""
        return 0.0 if self.exact else 1.0 / self.scale


def binning(lo: float, hi: float, integer: bool, distinct: np.ndarray | None = None) -> Binning:
    """The fine binning of a factor with range [lo, hi]: one bin per integer code when it holds
    integers spanning at most :data:`MAX_CODE_BINS` codes, one per value when its sorted
    ``distinct`` values are given, else :data:`FINE_BINS` equal-width bins."""
    if integer and hi - lo + 1 <= MAX_CODE_BINS:
        n = int(hi - lo) + 1
        return Binning(0, float(lo), 1.0, n, lo + np.arange(n, dtype=np.float64), True)
    if distinct is not None:
        d = np.asarray(distinct, dtype=np.float64)
        return Binning(1, float(d[0]), 1.0, len(d), d, True)
    if hi == lo:
        return Binning(0, float(lo), 1.0, 1, np.array([lo], dtype=np.float64), True)
    scale = FINE_BINS / (hi - lo)
    centres = lo + (np.arange(FINE_BINS) + 0.5) / scale
    return Binning(0, float(lo), float(scale), FINE_BINS, centres, False)


def _stack(y: np.ndarray, xs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    y1 = np.ascontiguousarray(y, dtype=np.float64).reshape(-1)
    out = np.empty((len(xs), y1.size), dtype=np.float64)
    for f, x in enumerate(xs):
        out[f] = np.asarray(x).reshape(-1)
    return y1, out


def _scan_chunk(y: np.ndarray, *xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return kern.scan(*_stack(y, xs))


def _scan_combine(*parts: tuple[np.ndarray, np.ndarray, np.ndarray]):
    counts = np.sum([p[0] for p in parts], axis=0)
    lo = np.min([p[1] for p in parts], axis=0)
    hi = np.max([p[2] for p in parts], axis=0)
    return counts, lo, hi


def scan(y: da.Array, xs: Sequence[da.Array]) -> Scan:
    """Pass 1 over ``y`` and the factors (arrays chunked alike)."""
    counts, lo, hi = map_sum_blocks(_scan_chunk, [y, *xs], combine=_scan_combine).compute()
    nf = len(xs)
    n = int(counts[nf + 1])
    return Scan(n_valid=n, mean_y=float(counts[nf + 2] / n) if n else np.nan,
                nonfinite_y=int(counts[0]), nonfinite=counts[1:nf + 1].astype(np.int64),
                lo=lo, hi=hi, nonint=counts[nf + 3:].astype(np.int64))


def _params(bins: Sequence[Binning]) -> dict[str, np.ndarray]:
    width = max(b.nbins if b.mode == 1 else 1 for b in bins)
    values = np.zeros((len(bins), width))
    for f, b in enumerate(bins):
        if b.mode == 1:
            values[f, : b.nbins] = b.values
    return {"mode": np.array([b.mode for b in bins], dtype=np.int64),
            "lo": np.array([b.lo for b in bins]), "scale": np.array([b.scale for b in bins]),
            "nbins": np.array([b.nbins for b in bins], dtype=np.int64), "values": values}


def fine_bin_sums(y: da.Array, xs: Sequence[da.Array], bins: Sequence[Binning], shift: float) -> np.ndarray:
    """Pass 2: (F, max nbins, 3) [count, Σd, Σd²] per factor and fine bin, d = y - shift."""
    return overlay_sums(y, xs, bins, shift, [np.zeros(b.nbins, dtype=np.int64) for b in bins], [])[1]


def _pair_chunk(y, *xs, shift, params, layout):
    pairs, fine = kern.pair_sums(*_stack(y, xs), shift, **params, **layout)
    return np.concatenate([pairs.ravel(), fine.ravel()])


#: Largest overlay table (Σ K_a K_b strata over all pairs) summed in the same pass as the fine
#: bins when every factor is used as given (one bin, one stratum).
FUSED_CELLS = 1 << 22


def overlay_sums(
    y: da.Array, xs: Sequence[da.Array], bins: Sequence[Binning], shift: float,
    stratum: Sequence[np.ndarray], pairs: Sequence[tuple[int, int]],
) -> tuple[list[np.ndarray], np.ndarray]:
    """Pass 3: for every pair (a, b) of factor indices, (K_a, K_b, 3) [count, Σd, Σd²] per stratum
    of the overlay; ``stratum[f]`` maps factor f's fine bins to its strata 0..K_f-1. Also returns
    the fine-bin sums of pass 2 (from the same loop), so factors whose strata are their fine bins
    need no separate pass 2."""
    k = np.array([int(s.max()) + 1 for s in stratum])
    table = np.zeros((len(bins), max(len(s) for s in stratum)), dtype=np.int64)
    for f, s in enumerate(stratum):
        table[f, : len(s)] = s
    pa = np.array([a for a, _ in pairs], dtype=np.int64)
    pb = np.array([b for _, b in pairs], dtype=np.int64)
    sizes = (k[pa] * k[pb]).astype(np.int64)
    offset = np.cumsum(sizes) - sizes
    layout = {"stratum": table, "pa": pa, "pb": pb, "offset": offset, "width": k[pb].astype(np.int64),
              "size": int(sizes.sum())}
    flat = map_sum_blocks(_pair_chunk, [y, *xs], shift=shift, params=_params(bins), layout=layout).compute()
    fine = flat[3 * layout["size"]:].reshape(len(bins), max(b.nbins for b in bins), 3)
    flat = flat[: 3 * layout["size"]].reshape(-1, 3)
    tables = [flat[o:o + n].reshape(k[a], k[b], 3) for o, n, a, b in zip(offset, sizes, pa, pb, strict=True)]
    return tables, fine

"""Map a per-chunk kernel over aligned dask arrays and sum the small per-chunk results in a tree."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

import dask
import dask.array as da
import numpy as np
from dask.delayed import Delayed


def _sum(*parts: np.ndarray) -> np.ndarray:
    out = parts[0].copy()
    for p in parts[1:]:
        out += p
    return out


def map_sum_blocks(
    kernel: Callable[..., np.ndarray],
    arrays: Sequence[da.Array],
    *,
    split_every: int = 8,
    combine: Callable[..., object] = _sum,
    **kwargs: object,
) -> Delayed:
    """``sum over chunks of kernel(*chunks, **kwargs)`` as one Delayed numpy array.

    The arrays are chunked alike on their last two (y, x) axes; leading axes are taken whole
    into every call (so a (year, y, x) array gives the kernel all years of a chunk at once).
    Per-chunk results are summed ``split_every`` at a time, so memory stays at a few results;
    ``combine`` replaces the sum for results that are not one array (it takes any number of them).
    """
    whole = []
    for a in arrays:
        lead = tuple(-1 for _ in range(a.ndim - 2))
        whole.append(a.rechunk(lead + a.chunks[-2:]) if a.ndim > 2 else a)
    yx = whole[0].chunks[-2:]
    for a in whole[1:]:
        if a.chunks[-2:] != yx:
            raise ValueError("arrays must share their (y, x) chunks")
    blocks = [a.to_delayed().reshape(-1) for a in whole]
    fn = dask.delayed(kernel, pure=True)
    return tree_sum([fn(*bs, **kwargs) for bs in zip(*blocks, strict=True)], split_every, combine)


def tree_sum(parts: Sequence[Delayed], split_every: int = 8,
             combine: Callable[..., object] = _sum) -> Delayed:
    """Per-chunk results summed ``split_every`` at a time (``combine`` takes any number of them)."""
    add = dask.delayed(combine, pure=True)
    parts = list(parts)
    while len(parts) > 1:
        parts = [add(*parts[i : i + split_every]) for i in range(0, len(parts), split_every)]
    return parts[0]


def row_chunks(x: np.ndarray, rows: int) -> da.Array:
    """A numpy array as a dask array chunked along its first axis whose chunks are views of it:
    no copy and no content hash (``dask.array.from_array`` does both, which on a table of 10^7
    rows costs more than a pass of the Geographical Detector). The array must not change while
    the result is in use."""
    x = np.asarray(x)
    name = f"rows-{uuid.uuid4().hex}"
    chunks = da.core.normalize_chunks((rows,) + x.shape[1:], x.shape)
    starts = np.concatenate([[0], np.cumsum(chunks[0])]).tolist()
    rest = (0,) * (x.ndim - 1)
    dsk = {(name, i, *rest): x[a:b] for i, (a, b) in enumerate(zip(starts[:-1], starts[1:], strict=True))}
    return da.Array(dsk, name, chunks, dtype=x.dtype)

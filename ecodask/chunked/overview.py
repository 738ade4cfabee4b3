"""Land-use overview for maps: the modal class of each analysis cell, chunk by chunk
(:func:`ecodask.kernels.overview.block_mode`)."""

from __future__ import annotations

import dask.array as da
import numpy as np

from ecodask.kernels.overview import block_mode


def landcover_overview(codes: da.Array, factor: int, nodata: int) -> da.Array:
    """The modal class of each ``factor`` x ``factor`` cell of a (y, x) uint8 class grid, chunk by
    chunk (chunks hold whole cells, as the store's do): the analysis grid's shape, uint8, ``nodata``
    where a cell has no class."""
    chunks = tuple(tuple(-(-c // factor) for c in axis) for axis in codes.chunks)
    return codes.map_blocks(block_mode, factor, nodata, chunks=chunks, dtype=np.uint8)

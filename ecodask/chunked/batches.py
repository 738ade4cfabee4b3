"""A function over a long list in batches, one Dask task a batch, on the current scheduler: the
run's cluster when one is active (work the flow would otherwise do alone, such as hashing every
file a stage wrote, spread over the workers), else Dask's threads."""

from __future__ import annotations

from collections.abc import Callable, Sequence


def map_batches[T, R](fn: Callable[[Sequence[T]], Sequence[R]], items: Sequence[T],
                      batch: int = 512) -> list[R]:
    """``fn`` over ``items`` in batches of at most ``batch`` (``fn`` takes a batch and returns one
    result per item, in order); the results in the items' order. A single batch runs here, with no
    task; more run as one Dask task each (``fn`` must then be picklable: a module's function, or a
    ``functools.partial`` of one)."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    items = list(items)
    parts = [items[i:i + batch] for i in range(0, len(items), batch)]
    if len(parts) <= 1:
        return list(fn(parts[0])) if parts else []
    import dask  # here: planning a run (resume, verify) imports no Dask

    done = dask.compute(*[dask.delayed(fn, pure=False)(part) for part in parts])
    out = [r for part in done for r in part]
    if len(out) != len(items):
        raise ValueError(f"{fn!r} gave {len(out)} results for {len(items)} items")
    return out

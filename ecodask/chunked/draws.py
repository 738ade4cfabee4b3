"""The Monte Carlo's summaries on the Dask cluster: the zones dealt out to tasks.

Each task summarizes a block of zones with :func:`ecodask.kernels.draws.summarize_draws` on its own
thread; the drawn coefficients are one key of the graph that every task shares (sent once to each
worker), the zones' areas are sliced per task. A zone's summaries do not depend on the other zones, so
the result equals the kernel's on all zones at once, bit for bit.
"""

from __future__ import annotations

import dask
import numpy as np

from ecodask.kernels.draws import check_draws, summarize_draws

#: A task's share of the work, in zones x draws: 500,000 is 50 zones at 10,000 draws, ~0.9 s of one
#: core at 39 years (BENCHMARKS.md, "ESV uncertainty"); 2,800 zones make 56 tasks.
ZONE_DRAWS_PER_TASK = 500_000


def monte_carlo_zones(eff: np.ndarray, g_of: np.ndarray, w: np.ndarray, scale: np.ndarray, pairs: np.ndarray,
                      quantiles: tuple[float, float]) -> dict[str, np.ndarray]:
    """One task: a block of zones summarized on this thread (the task's name on the dashboard)."""
    return summarize_draws(eff, g_of, w, scale, pairs, quantiles, threaded=False)


def summarize_draws_by_zones(
    eff: np.ndarray,
    g_of: np.ndarray,
    w: np.ndarray,
    scale: np.ndarray,
    pairs: np.ndarray,
    quantiles: tuple[float, float] = (0.05, 0.95),
    zone_draws_per_task: int = ZONE_DRAWS_PER_TASK,
) -> dict[str, np.ndarray]:
    """:func:`ecodask.kernels.draws.summarize_draws` (same arguments, units and result) computed by
    the active Dask scheduler, in tasks of about ``zone_draws_per_task`` zones x draws. The arguments
    are checked here, before any task is sent."""
    eff, g_of, w, scale, pairs = check_draws(eff, g_of, w, scale, pairs, quantiles)
    n_z, n_d = eff.shape[1], w.shape[2]
    per = max(1, zone_draws_per_task // n_d)
    w_key, scale_key = dask.delayed(w, pure=True), dask.delayed(scale, pure=True)
    block = dask.delayed(monte_carlo_zones, pure=True)
    tasks = [block(eff[:, a:a + per], g_of, w_key, scale_key, pairs, quantiles) for a in range(0, n_z, per)]
    parts = dask.compute(*tasks)
    return {name: np.concatenate([p[name] for p in parts], axis=1) for name in parts[0]}

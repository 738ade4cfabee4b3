"""The run's Dask client: a LocalCluster (default) or an existing scheduler, from the config."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import Iterator

from distributed import Client, LocalCluster

from ecodask.config import ClusterConfig


@contextlib.contextmanager
def dask_client(cfg: ClusterConfig) -> Iterator[Client]:
    """A Dask client for the run, set as the default scheduler while the context is open."""
    if cfg.kind == "address":
        with Client(cfg.address, set_as_default=True) as client:
            yield client
        return
    logging.getLogger("distributed").setLevel(logging.WARNING)
    dashboard = ":0" if importlib.util.find_spec("bokeh") else None
    with (
        LocalCluster(
            n_workers=cfg.n_workers,
            threads_per_worker=cfg.threads_per_worker,
            memory_limit=cfg.memory_limit,
            processes=cfg.processes,
            dashboard_address=dashboard,
            host="127.0.0.1",
            silence_logs=logging.WARNING,
        ) as cluster,
        Client(cluster, set_as_default=True) as client,
    ):
        yield client

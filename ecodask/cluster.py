"""The run's Dask client from the config: a LocalCluster (default), an existing scheduler, or
workers submitted as SLURM jobs (dask-jobqueue)."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import Iterator

from distributed import Client, LocalCluster

from ecodask.config import ClusterConfig, SlurmConfig


@contextlib.contextmanager
def dask_client(cfg: ClusterConfig) -> Iterator[Client]:
    """A Dask client for the run, set as the default scheduler while the context is open."""
    if cfg.kind == "address":
        with Client(cfg.address, set_as_default=True) as client:
            yield client
        return
    if cfg.kind == "slurm":
        with slurm_cluster(cfg.slurm) as cluster, Client(cluster, set_as_default=True) as client:
            cluster.scale(jobs=cfg.slurm.jobs)
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
            # Process workers listen on localhost only; thread workers talk in-process (no host).
            **({"host": "127.0.0.1"} if cfg.processes else {}),
            silence_logs=logging.WARNING,
        ) as cluster,
        Client(cluster, set_as_default=True) as client,
    ):
        yield client


def slurm_cluster(cfg: SlurmConfig):
    """A dask-jobqueue ``SLURMCluster`` for the config (no job submitted until it is scaled). The
    scheduler runs in the flow's process; the workers' memory limit is the job's memory split over
    its processes, and they spill to ``local_directory``."""
    from dask_jobqueue import SLURMCluster

    return SLURMCluster(
        queue=cfg.queue, account=cfg.account, cores=cfg.cores, processes=cfg.processes,
        memory=cfg.memory, walltime=cfg.walltime, interface=cfg.interface,
        local_directory=cfg.local_directory, job_extra_directives=list(cfg.job_extra_directives),
        silence_logs="warning",
    )

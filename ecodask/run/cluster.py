"""The run's Dask client from the config: a LocalCluster (default), an existing scheduler, workers
submitted as SLURM jobs (dask-jobqueue), or pods of a ``DaskCluster`` on Kubernetes (the Dask
operator). The workers a run starts get the config's memory management (spill, pause, terminate) and
Dask's profiler only with ``cluster.profile`` (:data:`PROFILE`); an existing scheduler's workers keep
their own Dask settings. Every run's workers, and the flow's process, hand freed memory back
(:func:`lean_allocators`)."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import re
from collections.abc import Iterator

import dask
from distributed import Client, LocalCluster, SpecCluster
from distributed.diagnostics.plugin import WorkerPlugin

from ecodask.io.tables import use_system_allocator
from ecodask.present import worker_logs
from ecodask.run.config import ClusterConfig, KubernetesConfig, MemoryConfig, SlurmConfig


def memory_settings(memory: MemoryConfig) -> dict[str, float]:
    """The Dask config keys of worker memory management (fractions of the worker's limit)."""
    return {f"distributed.worker.memory.{k}": getattr(memory, k) for k in ("target", "spill", "pause",
                                                                           "terminate")}


#: Whether a worker runs Dask's statistical profiler. It samples the worker's threads every 10 ms and
#: keeps each second's tree of stacks for the last 1,000 seconds (``distributed.admin.low-level-log-length``
#: of them), so a busy worker's memory grows with the run's time, not its data: BENCHMARKS.md, "The
#: archive's 39 years". Off unless the run's ``cluster.profile`` says so.
PROFILE = "distributed.worker.profile.enabled"


def worker_settings(memory: MemoryConfig, profile: bool = False) -> dict[str, object]:
    """The Dask config keys a run sets on the workers it starts: memory management
    (:func:`memory_settings`) and the profiler (:data:`PROFILE`)."""
    return {**memory_settings(memory), PROFILE: profile}


#: The flow process's own periodic work, done less often than Dask's defaults (a tick of each
#: server's event loop every 20 ms, a system monitor every 0.5 s, each nanny's look at its worker's
#: memory every 0.1 s). An idle local cluster of 2 process workers cost the flow 1.21 CPU s in 30 s
#: with the defaults (4 % of a core), 0.32 with these (``make bench BENCH_SUITES=flow_idle``,
#: BENCHMARKS.md, "The flow's own periodic work"). The workers keep the defaults
#: (:func:`worker_periods`); a nanny still ends a worker past its memory limit, half a second later
#: at most.
FLOW_PERIODS = {"distributed.admin.tick.interval": "200ms", "distributed.admin.system-monitor.interval": "2s",
                "distributed.worker.memory.monitor-interval": "500ms"}


def worker_periods() -> dict[str, object]:
    """The :data:`FLOW_PERIODS` keys as Dask's configuration has them here (outside the flow's
    own setting): what a nanny passes on to its worker process."""
    return {key: dask.config.get(key) for key in FLOW_PERIODS}


def worker_env(memory: MemoryConfig, profile: bool = False) -> dict[str, str]:
    """The same settings as environment variables, for workers started elsewhere (jobs, pods)."""
    return {"DASK_" + key.upper().replace(".", "__"): str(value)
            for key, value in worker_settings(memory, profile).items()}


def local_cluster_options(cfg: ClusterConfig, dashboard_served: bool | None = None) -> dict[str, object]:
    """The LocalCluster of a run: its workers, their memory and spill folder, and where it listens.
    Process workers and the scheduler's HTTP server listen on localhost only unless
    ``dashboard_address`` says otherwise (default ``127.0.0.1:0``, a free port: two runs never
    contend for 8787); thread workers talk in-process (no host). The server shows the dashboard
    when bokeh is installed (``dashboard_served``; default: looked up), its health and metrics
    routes in any case."""
    if dashboard_served is None:
        dashboard_served = importlib.util.find_spec("bokeh") is not None
    return {
        "n_workers": cfg.n_workers,
        "threads_per_worker": cfg.threads_per_worker,
        "memory_limit": cfg.memory_limit,
        "processes": cfg.processes,
        "dashboard_address": cfg.dashboard_address,  # None would be distributed's default, :8787
        **({"host": "127.0.0.1"} if cfg.processes else {}),
        "local_directory": cfg.local_directory,
        "silence_logs": logging.WARNING,
    }


#: glibc's ``mallopt`` parameter ``M_TRIM_THRESHOLD`` (``malloc.h``).
_M_TRIM_THRESHOLD = -1


def lean_allocators() -> None:
    """Make this process hand freed memory back: Arrow's buffers from ``malloc``
    (:func:`ecodask.io.tables.use_system_allocator`), and glibc's ``malloc`` trimming its heaps
    above the threshold Dask's nannies give their workers (``MALLOC_TRIM_THRESHOLD_`` of
    ``distributed.nanny.pre-spawn-environ``, 64 KiB), which also keeps large blocks mapped apart
    rather than in the heap. The trim is skipped where the C library is not glibc.

    Measured on the archive's 39 years against 2 (BENCHMARKS.md, "The archive's 39 years"): with
    Arrow's mimalloc and glibc's defaults the flow process's peak grew ~20 % and each worker kept
    ~45 MB of freed pages more at the end; with both set here the flow's peak grew 12 %."""
    import ctypes
    import ctypes.util

    use_system_allocator()
    environ = dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {}
    threshold = int(environ.get("MALLOC_TRIM_THRESHOLD_", 65536))
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except OSError:
        return
    if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim"):  # glibc
        libc.mallopt(_M_TRIM_THRESHOLD, threshold)


class LeanAllocators(WorkerPlugin):
    """A worker plugin doing :func:`lean_allocators` in each worker's process."""

    name = "ecodask-lean-allocators"

    def setup(self, worker) -> None:  # noqa: ANN001 - distributed's Worker
        lean_allocators()


@contextlib.contextmanager
def dask_client(cfg: ClusterConfig) -> Iterator[Client]:
    """A Dask client for the run, set as the default scheduler while the context is open; its
    workers log a user's error (bad input) only through the run, as one line. This process and the
    workers hand freed memory back (:func:`lean_allocators`; in this process for good)."""
    lean_allocators()
    with _cluster_client(cfg) as client:
        worker_logs.install()
        client.register_plugin(worker_logs.QuietUserErrors())
        client.register_plugin(LeanAllocators())
        yield client


@contextlib.contextmanager
def _cluster_client(cfg: ClusterConfig) -> Iterator[Client]:
    if cfg.kind == "address":
        with Client(cfg.address, set_as_default=True) as client:
            yield client
        return
    if cfg.kind == "slurm":
        with slurm_cluster(cfg.slurm, cfg.memory, cfg.profile) as cluster, \
                Client(cluster, set_as_default=True) as client:
            cluster.scale(jobs=cfg.slurm.jobs)
            yield client
        return
    if cfg.kind == "kubernetes":
        with kubernetes_cluster(cfg.kubernetes, cfg.memory, cfg.profile) as cluster, \
                Client(cluster, set_as_default=True) as client:
            yield client
        return
    logging.getLogger("distributed").setLevel(logging.WARNING)
    workers = worker_periods()
    with (
        dask.config.set(worker_settings(cfg.memory, cfg.profile)),  # the nannies pass it on to their workers
        dask.config.set(FLOW_PERIODS),  # ... and the workers' own periods in place of these
        local_cluster(cfg, workers) as cluster,
        Client(cluster, set_as_default=True) as client,
    ):
        yield client


def local_cluster(cfg: ClusterConfig, worker_config: dict[str, object] | None = None) -> SpecCluster:
    """The run's local cluster: with process workers and ``scheduler_process`` (the default), a
    ``SpecCluster`` of the same nannies and workers as :func:`local_cluster_options` gives a
    ``LocalCluster``, its scheduler in a process of its own
    (:class:`ecodask.run.scheduler_process.SchedulerProcess`); else a ``LocalCluster``. Process
    workers take ``worker_config`` over the Dask configuration their nannies pass on."""
    options = local_cluster_options(cfg)
    if cfg.processes and worker_config:
        options["config"] = dict(worker_config)  # a LocalCluster gives it to each Nanny
    if not (cfg.processes and cfg.scheduler_process):
        return LocalCluster(**options)
    from distributed import Nanny
    from distributed.worker_memory import parse_memory_limit

    from ecodask.run.scheduler_process import SchedulerProcess

    memory_limit = options["memory_limit"]
    if memory_limit == "auto":  # the machine's memory shared by the workers, as LocalCluster does
        memory_limit = parse_memory_limit("auto", 1, cfg.n_workers, logger=logging.getLogger("distributed"))
    address = options["dashboard_address"]
    scheduler = {"host": options["host"], "port": 0, "dashboard": address is not None,
                 "dashboard_address": address}
    worker = {"cls": Nanny, "options": {
        "host": options["host"], "nthreads": cfg.threads_per_worker,
        "memory_limit": memory_limit, "local_directory": cfg.local_directory,
        "dashboard": False, "dashboard_address": None, "silence_logs": logging.WARNING,
        **({"config": options["config"]} if "config" in options else {})}}
    return SpecCluster(scheduler={"cls": SchedulerProcess, "options": {"options": scheduler}},
                       workers=dict.fromkeys(range(cfg.n_workers), worker), worker=worker,
                       silence_logs=logging.WARNING, name="ecodask-local")


def slurm_cluster(cfg: SlurmConfig, memory: MemoryConfig | None = None, profile: bool = False):
    """A dask-jobqueue ``SLURMCluster`` for the config (no job submitted until it is scaled). The
    scheduler runs in the flow's process; the workers' memory limit is the job's memory split over
    its processes, they manage it as ``memory`` says, spill to ``local_directory`` and profile only
    with ``profile``."""
    from dask_jobqueue import SLURMCluster

    env = worker_env(memory or MemoryConfig(), profile)
    return SLURMCluster(
        queue=cfg.queue, account=cfg.account, cores=cfg.cores, processes=cfg.processes,
        memory=cfg.memory, walltime=cfg.walltime, interface=cfg.interface,
        local_directory=cfg.local_directory, job_extra_directives=list(cfg.job_extra_directives),
        job_script_prologue=[f"export {k}={v}" for k, v in env.items()],
        silence_logs="warning",
    )


def _quantity_bytes(q: str) -> int:
    """Bytes of a Kubernetes memory quantity with a binary suffix ('8Gi')."""
    num, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti)", q).groups()
    return int(float(num) * 1024 ** ("KMGT".index(unit[0]) + 1))


def kubernetes_spec(cfg: KubernetesConfig, memory: MemoryConfig | None = None, profile: bool = False) -> dict:
    """The ``DaskCluster`` resource (kubernetes.dask.org/v1) for the config: the scheduler behind a
    ClusterIP service (reachable inside the cluster only), ``n_workers`` workers with CPU and memory
    requests equal to their limits, a Dask memory limit of 90 % of the pod's (the rest for the
    interpreter and libraries), memory management as ``memory`` says, the profiler only with
    ``profile``, an emptyDir spill volume and the run's files from ``data_claim``; plain settings
    from ``env``, secrets only by reference (``env_from_secret``)."""
    from dask_kubernetes.operator import make_cluster_spec

    env = {**worker_env(memory or MemoryConfig(), profile), **cfg.env}
    spec = make_cluster_spec(name=cfg.name, image=cfg.image, n_workers=cfg.n_workers, env=env,
                             worker_command="dask worker", scheduler_service_type="ClusterIP")
    worker = spec["spec"]["worker"]["spec"]["containers"][0]
    worker["args"] += ["--nthreads", str(cfg.worker_threads),
                       "--memory-limit", str(int(_quantity_bytes(cfg.worker_memory) * 0.9)),
                       "--local-directory", "/spill"]
    worker["resources"] = {"requests": {"cpu": cfg.worker_cpu, "memory": cfg.worker_memory},
                           "limits": {"cpu": cfg.worker_cpu, "memory": cfg.worker_memory}}
    worker["volumeMounts"] = [{"name": "spill", "mountPath": "/spill"}]
    spec["spec"]["worker"]["spec"]["volumes"] = [{"name": "spill", "emptyDir": {"sizeLimit": cfg.spill_size}}]
    if cfg.data_claim:
        worker["volumeMounts"].append({"name": "data", "mountPath": cfg.data_mount})
        spec["spec"]["worker"]["spec"]["volumes"].append(
            {"name": "data", "persistentVolumeClaim": {"claimName": cfg.data_claim}})
    scheduler = spec["spec"]["scheduler"]["spec"]["containers"][0]
    # The image has the `dask` command (distributed no longer installs `dask-scheduler`).
    scheduler["args"] = ["dask", "scheduler", *scheduler["args"][1:]]
    scheduler["resources"] = {"requests": {"cpu": cfg.scheduler_cpu, "memory": cfg.scheduler_memory},
                              "limits": {"cpu": cfg.scheduler_cpu, "memory": cfg.scheduler_memory}}
    if cfg.env_from_secret:
        for container in (worker, scheduler):
            container["envFrom"] = [{"secretRef": {"name": cfg.env_from_secret}}]
    labels = {"app.kubernetes.io/name": "ecodask", "app.kubernetes.io/component": "dask"}
    spec["metadata"]["labels"] = dict(labels)
    for part in ("scheduler", "worker"):
        spec["spec"][part]["metadata"] = {"labels": dict(labels)}
    return spec


def kubernetes_cluster(cfg: KubernetesConfig, memory: MemoryConfig | None = None, profile: bool = False):
    """A dask-kubernetes ``KubeCluster``: created from :func:`kubernetes_spec` (and deleted when
    closed), or the existing ``DaskCluster`` named ``cfg.name`` when ``create`` is false."""
    from dask_kubernetes.operator import KubeCluster
    from dask_kubernetes.operator.kubecluster.kubecluster import CreateMode

    if not cfg.create:
        return KubeCluster(name=cfg.name, namespace=cfg.namespace, create_mode=CreateMode.CONNECT_ONLY,
                           shutdown_on_close=False)
    return KubeCluster(custom_cluster_spec=kubernetes_spec(cfg, memory, profile), namespace=cfg.namespace,
                       shutdown_on_close=True)

"""The compose deployment in infra/compose, checked as files (no container engine runs here):
it parses, has every service, binds every published port to localhost, holds no credentials, pins
its images and installs the locked environment."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "infra" / "compose"
SECRET = re.compile(r"PASSWORD|SECRET|TOKEN|KEY", re.IGNORECASE)


def _compose() -> dict:
    return yaml.safe_load((COMPOSE / "compose.yaml").read_text(encoding="utf-8"))


def test_services_and_networks() -> None:
    doc = _compose()
    services = doc["services"]
    assert set(services) == {"database", "prefect-server", "dask-scheduler", "dask-worker", "prefect-worker"}
    for name, svc in services.items():
        assert svc.get("networks") == ["internal"], name
        assert "image" in svc or "build" in svc, name
        for dep in svc.get("depends_on", []):
            assert dep in services, (name, dep)
    assert services["prefect-worker"]["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert "tcp://dask-scheduler:8786" in services["dask-worker"]["command"]


def test_ports_only_on_localhost() -> None:
    for name, svc in _compose()["services"].items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_no_credentials_in_files() -> None:
    for name, svc in _compose()["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if SECRET.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+(:\?[^}]*)?\}", str(value)), (name, key)
            if "://" in str(value) and "@" in str(value):  # a URL with credentials
                assert "${PREFECT_DB_PASSWORD" in str(value), (name, key)


def test_images_pinned_and_environment_locked() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    prefect = next(p["version"] for p in lock["package"] if p["name"] == "prefect")
    for name, svc in _compose()["services"].items():
        image = svc.get("image", "")
        assert ":" in image and not image.endswith(":latest"), (name, image)
    assert _compose()["services"]["prefect-server"]["image"].startswith(f"prefecthq/prefect:{prefect}-")
    docker = (COMPOSE / "Dockerfile").read_text(encoding="utf-8")
    assert "uv sync --frozen --no-dev" in docker and "USER ecodask" in docker
    uv = re.search(r"^UV_VERSION\s*:=\s*(\S+)", (ROOT / "Makefile").read_text(), re.MULTILINE).group(1)
    assert f'"uv=={uv}"' in docker


def test_slurm_example_builds_the_job_script() -> None:
    from ecodask.cluster import slurm_cluster
    from ecodask.config import ClusterConfig, RunConfig

    doc = yaml.safe_load((ROOT / "infra" / "slurm" / "region-slurm.yaml").read_text(encoding="utf-8"))
    assert set(doc) <= set(RunConfig.model_fields)
    cluster = ClusterConfig.model_validate(doc["cluster"])
    assert cluster.kind == "slurm" and cluster.slurm.jobs == 4
    with slurm_cluster(cluster.slurm) as c:  # a scheduler in this process; nothing is submitted
        script = c.job_script()
        assert len(c.workers) == 0
    for line in ("#SBATCH -p normal", "#SBATCH --cpus-per-task=32", "#SBATCH --mem=128G",
                 "#SBATCH -t 24:00:00", "#SBATCH --exclusive"):
        assert line in script, line
    assert "--nworkers 8" in script and "--nthreads 4" in script and "--memory-limit 16.00GiB" in script
    site = yaml.safe_load((ROOT / "infra" / "slurm" / "jobqueue.yaml").read_text(encoding="utf-8"))
    assert set(site["jobqueue"]["slurm"]) <= {"name", "cores", "memory", "processes", "walltime",
                                              "local-directory", "death-timeout", "job-extra-directives",
                                              "log-directory"}


def test_slurm_section_only_with_its_kind() -> None:
    import pytest
    from pydantic import ValidationError

    from ecodask.config import ClusterConfig

    with pytest.raises(ValidationError, match="needs a slurm section"):
        ClusterConfig(kind="slurm")
    with pytest.raises(ValidationError, match="only used with kind: slurm"):
        ClusterConfig(kind="local", slurm={"jobs": 2})
    with pytest.raises(ValidationError, match="walltime"):
        ClusterConfig(kind="slurm", slurm={"walltime": "forever"})

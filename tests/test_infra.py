"""The deployment files in infra/, checked as files (no container engine, SLURM or Kubernetes runs
here): the compose file parses, has every service, binds every published port to localhost, holds
no credentials, pins its images and installs the locked environment; the SLURM example builds its
job script; the Kubernetes manifests pass the Kubernetes API schemas (kubernetes-validate), the
DaskCluster the operator's own CRD schema, and the operator's Helm values the chart's keys."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from helpers import deadline

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
    from ecodask.run.cluster import slurm_cluster
    from ecodask.run.config import ClusterConfig, RunConfig

    doc = yaml.safe_load((ROOT / "infra" / "slurm" / "region-slurm.yaml").read_text(encoding="utf-8"))
    assert set(doc) <= set(RunConfig.model_fields)
    cluster = ClusterConfig.model_validate(doc["cluster"])
    assert cluster.kind == "slurm" and cluster.slurm.jobs == 4
    with slurm_cluster(cluster.slurm, cluster.memory) as c:  # a scheduler here; nothing is submitted
        script = c.job_script()
        assert len(c.workers) == 0
    for line in ("#SBATCH -p normal", "#SBATCH --cpus-per-task=32", "#SBATCH --mem=128G",
                 "#SBATCH -t 24:00:00", "#SBATCH --exclusive"):
        assert line in script, line
    assert "--nworkers 8" in script and "--nthreads 4" in script and "--memory-limit 16.00GiB" in script
    assert "export DASK_DISTRIBUTED__WORKER__MEMORY__SPILL=0.7" in script  # memory management
    assert "export DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False" in script  # no profiler's history
    site = yaml.safe_load((ROOT / "infra" / "slurm" / "jobqueue.yaml").read_text(encoding="utf-8"))
    assert set(site["jobqueue"]["slurm"]) <= {"name", "cores", "memory", "processes", "walltime",
                                              "local-directory", "death-timeout", "job-extra-directives",
                                              "log-directory"}


def test_slurm_section_only_with_its_kind() -> None:
    import pytest
    from pydantic import ValidationError

    from ecodask.run.config import ClusterConfig

    with pytest.raises(ValidationError, match="needs a slurm section"):
        ClusterConfig(kind="slurm")
    with pytest.raises(ValidationError, match="only used with kind: slurm"):
        ClusterConfig(kind="local", slurm={"jobs": 2})
    with pytest.raises(ValidationError, match="walltime"):
        ClusterConfig(kind="slurm", slurm={"walltime": "forever"})


K8S = ROOT / "infra" / "k8s"
K8S_VERSION = "1.33"


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def test_kubernetes_manifests_pass_the_api_schemas() -> None:
    import kubernetes_validate

    docs = _docs(K8S / "ecodask.yaml")
    assert {d["kind"] for d in docs} == {"Namespace", "PersistentVolumeClaim", "ServiceAccount", "Role",
                                         "RoleBinding", "ConfigMap", "Deployment", "NetworkPolicy"}
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # raises on any unknown or bad field
    with __import__("pytest").raises(kubernetes_validate.ValidationError):
        bad = next(d for d in docs if d["kind"] == "Deployment")
        kubernetes_validate.validate({**bad, "spec": {**bad["spec"], "replica": 1}}, K8S_VERSION, strict=True)


def _crd_validator():
    """A JSON-schema validator of the operator's DaskCluster CRD (its openAPIV3Schema, as shipped
    in the installed dask-kubernetes chart)."""
    from importlib.resources import files

    import jsonschema

    crd = yaml.safe_load((files("dask_kubernetes") / "operator" / "deployment" / "helm"
                          / "dask-kubernetes-operator" / "crds" / "daskcluster.yaml").read_text())
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return jsonschema.Draft7Validator(version["schema"]["openAPIV3Schema"])


def test_a_bucket_run_on_kubernetes_mounts_no_shared_volume() -> None:
    from ecodask.io.objstore import is_remote
    from ecodask.run.cluster import kubernetes_spec
    from ecodask.run.config import ClusterConfig, RunConfig

    doc = yaml.safe_load((K8S / "region-k8s-s3.yaml").read_text(encoding="utf-8"))
    assert set(doc) <= set(RunConfig.model_fields)
    assert is_remote(doc["output"]) and is_remote(doc["zones"]["path"])
    assert all(is_remote(p) for p in doc["landcover"]["years"].values())
    cluster = ClusterConfig.model_validate(doc["cluster"])
    spec = kubernetes_spec(cluster.kubernetes, cluster.memory)
    [manifest] = _docs(K8S / "daskcluster-s3.yaml")
    assert manifest == spec  # the example is what the configuration creates
    _crd_validator().validate(spec)
    pods = [spec["spec"]["worker"]["spec"], spec["spec"]["scheduler"]["spec"]]
    volumes = [v for pod in pods for v in pod.get("volumes", [])]
    assert volumes == [{"name": "spill", "emptyDir": {"sizeLimit": "100Gi"}}]  # the workers' own disk
    worker = pods[0]["containers"][0]
    assert [m["name"] for m in worker["volumeMounts"]] == ["spill"]
    assert worker["envFrom"] == [{"secretRef": {"name": "ecodask-s3"}}]


def test_daskcluster_matches_the_config_and_the_operator_schema() -> None:
    from ecodask.run.cluster import kubernetes_spec
    from ecodask.run.config import ClusterConfig, RunConfig

    doc = yaml.safe_load((K8S / "region-k8s.yaml").read_text(encoding="utf-8"))
    assert set(doc) <= set(RunConfig.model_fields)
    cluster = ClusterConfig.model_validate(doc["cluster"])
    spec = kubernetes_spec(cluster.kubernetes, cluster.memory)
    [manifest] = _docs(K8S / "daskcluster.yaml")
    assert manifest == spec  # the example is what the configuration creates
    validator = _crd_validator()
    validator.validate(spec)
    assert list(validator.iter_errors({**spec, "spec": {"worker": spec["spec"]["worker"]}}))  # no scheduler
    bad = {**spec["spec"]["worker"], "replicas": "16"}  # checked down to the pod spec's fields
    assert list(validator.iter_errors({**spec, "spec": {**spec["spec"], "worker": bad}}))
    worker = spec["spec"]["worker"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in worker["env"]}
    assert env["DASK_DISTRIBUTED__WORKER__MEMORY__SPILL"] == "0.7"
    assert env["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"] == "False"
    assert worker["args"][:2] == ["dask", "worker"] and "--memory-limit" in worker["args"]
    assert worker["resources"]["limits"] == {"cpu": "4", "memory": "16Gi"}
    assert spec["spec"]["scheduler"]["spec"]["containers"][0]["args"][:2] == ["dask", "scheduler"]
    assert spec["spec"]["scheduler"]["service"]["type"] == "ClusterIP"
    # The commands the pods run exist in the project's environment.
    import shutil
    import subprocess
    import sys

    dask = shutil.which("dask", path=str(Path(sys.executable).parent))
    for sub in ("worker", "scheduler"):
        assert subprocess.run([dask, sub, "--help"], capture_output=True,
                              timeout=deadline(120)).returncode == 0, sub


def test_kubernetes_files_expose_nothing_and_hold_no_credentials() -> None:
    docs = _docs(K8S / "ecodask.yaml") + _docs(K8S / "daskcluster.yaml") + _docs(K8S / "daskcluster-s3.yaml")
    text = yaml.safe_dump(docs)
    for doc in docs:
        if doc["kind"] == "Service":
            assert doc["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert "hostNetwork" not in text and "hostPort" not in text and "NodePort" not in text
    assert "LoadBalancer" not in text
    for path in K8S.glob("*.yaml"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.lstrip().startswith("#"):
                continue
            key, _, value = line.partition(":")
            value = value.split(" #")[0].strip()
            if key.strip() == "env_from_secret":  # a Secret's name, not its keys
                assert re.fullmatch(r"null|[a-z0-9-]+", value), line
            elif SECRET.search(key) and value not in ("", "null", "{}"):
                raise AssertionError(f"{path.name}: {line.strip()}")
    for doc in docs:
        for container in _containers(doc):
            image = container["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), image


def _containers(doc: dict) -> list[dict]:
    spec = doc.get("spec", {})
    pods = [spec.get("template", {}).get("spec", {})]
    pods += [spec.get(p, {}).get("spec", {}) for p in ("scheduler", "worker")]
    return [c for pod in pods for c in pod.get("containers", [])]


def test_operator_values_use_the_charts_keys() -> None:
    from importlib.resources import files

    chart = yaml.safe_load((files("dask_kubernetes") / "operator" / "deployment" / "helm"
                            / "dask-kubernetes-operator" / "values.yaml").read_text())
    ours = yaml.safe_load((K8S / "operator-values.yaml").read_text(encoding="utf-8"))

    def unknown(a: dict, b: dict, where: str = "") -> list[str]:
        out = []
        for k, v in a.items():
            if k not in b:
                out.append(where + k)
            elif isinstance(v, dict) and isinstance(b[k], dict) and b[k]:
                out += unknown(v, b[k], f"{where}{k}.")
        return out

    assert unknown(ours, chart) == []
    assert ours["rbac"]["cluster"] is False and ours["kopfArgs"] == ["--namespace=ecodask"]
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    operator = next(p["version"] for p in lock["package"] if p["name"] == "dask-kubernetes")
    assert ours["image"]["tag"] == operator


def test_kubernetes_and_memory_sections_are_checked() -> None:
    import pytest
    from pydantic import ValidationError

    from ecodask.run.config import ClusterConfig

    with pytest.raises(ValidationError, match="needs a kubernetes section"):
        ClusterConfig(kind="kubernetes")
    with pytest.raises(ValidationError, match="only used with kind: kubernetes"):
        ClusterConfig(kind="local", kubernetes={"image": "ecodask:0.1.0"})
    with pytest.raises(ValidationError, match="pinned"):
        ClusterConfig(kind="kubernetes", kubernetes={"image": "ghcr.io/ecodask/ecodask:latest"})
    with pytest.raises(ValidationError, match="pinned"):
        ClusterConfig(kind="kubernetes", kubernetes={"image": "ghcr.io/ecodask/ecodask"})
    with pytest.raises(ValidationError, match="must rise"):
        ClusterConfig(memory={"target": 0.9, "spill": 0.7})
    with pytest.raises(ValidationError, match="worker_memory"):
        ClusterConfig(kind="kubernetes", kubernetes={"image": "e:1", "worker_memory": "8GB"})

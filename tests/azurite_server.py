"""A local Azure Blob Storage server for the tests: Azurite (Microsoft's emulator, from npm, installed
by ``make azurite`` into ``.node/``) on a free localhost port, with ``AZURE_STORAGE_CONNECTION_STRING``
pointing at it. Missing Azurite is a skip on a developer's machine and a failure in CI."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import accepts, deadline, free_port, wait_until

#: Where ``make azurite`` installs the emulator (the repository's ``.node`` folder).
AZURITE = Path(__file__).resolve().parents[1] / ".node" / "node_modules" / ".bin" / "azurite-blob"
#: Azurite's well-known development account (public, in Azurite's documentation).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_binary() -> Path:
    if not AZURITE.exists():
        if os.environ.get("CI"):
            pytest.fail(f"Azurite is not installed at {AZURITE}: make azurite")
        pytest.skip("Azurite not installed (make azurite: npm install into .node/)")
    return AZURITE


@contextlib.contextmanager
def served_container(container: str) -> Iterator[str]:
    """Azurite's blob service on a free port with this process's (and its children's)
    ``AZURE_STORAGE_CONNECTION_STRING`` pointing at it, no other Azure account in the way, and
    ``container`` made; yields the connection string; stopped, and the variables restored, at the
    end."""
    import adlfs

    binary = azurite_binary()
    port = free_port()
    conn = (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};")
    with tempfile.TemporaryDirectory(prefix="azurite-") as data:
        proc = subprocess.Popen([str(binary), "--silent", "--location", data, "--blobHost", "127.0.0.1",
                                 "--blobPort", str(port), "--skipApiVersionCheck", "--loose"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        # Clients made for an earlier server (fsspec keeps them by their arguments; the account comes
        # from the environment): gone, here and at the end.
        adlfs.AzureBlobFileSystem.clear_instance_cache()
        try:
            wait_until(lambda: proc.poll() is not None or accepts(port), 30, "Azurite listening")
            if proc.poll() is not None:
                pytest.fail(f"Azurite ended at start: {proc.stderr.read().decode(errors='replace')[-2000:]}")
            with pytest.MonkeyPatch.context() as mp:
                for name in ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY",
                             "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_CLIENT_ID", "AZURE_STORAGE_TENANT_ID"):
                    mp.delenv(name, raising=False)
                mp.setenv("AZURE_STORAGE_CONNECTION_STRING", conn)
                from ecodask.io import objstore

                fs, _ = objstore.filesystem(f"az://{container}")
                fs.mkdir(container)
                yield conn
        finally:
            # Azurite lingers for long after SIGTERM; its data is a temporary folder: SIGKILL.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(deadline(30))
            adlfs.AzureBlobFileSystem.clear_instance_cache()

"""Helpers shared by the test files: the run's stages wired as a run wires them, waits that scale with
the machine's load, digests of output folders, edits of YAML files. (Test data and fixtures:
conftest.py.)"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from ecodask.errors import ConfigError
from ecodask.io.layers import STAGES
from ecodask.io.layout import RunFolder
from ecodask.run.config import RunConfig, load_config
from ecodask.run.stages import BY_NAME

# ------------------------------------------------------------------------------------------
# waits

#: Multiplies every wait of the tests (a slow or shared machine: 2, 5, ...).
TIMEOUT_SCALE_ENV = "ECODASK_TEST_TIMEOUT_SCALE"


def deadline(base_s: float) -> float:
    """Seconds to wait for what takes well under ``base_s`` on an idle machine (workers, servers,
    subprocesses): ``base_s`` x ``$ECODASK_TEST_TIMEOUT_SCALE`` (default 1) x the load per CPU
    (1-minute load average / CPUs, at least 1), so that waits hold on a busy machine."""
    raw = os.environ.get(TIMEOUT_SCALE_ENV, "").strip()
    try:
        scale = float(raw) if raw else 1.0
    except ValueError:
        raise ValueError(f"{TIMEOUT_SCALE_ENV}={raw!r}: must be a number") from None
    if not scale > 0:
        raise ValueError(f"{TIMEOUT_SCALE_ENV}={raw!r}: must be positive")
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    return base_s * scale * max(1.0, load)


def wait_until(condition: Callable[[], object], base_s: float, what: str | Callable[[], str],
               interval: float = 0.1):
    """Poll ``condition`` until it returns something true (returned) or :func:`deadline` of ``base_s``
    has passed since the start: then the test fails naming ``what`` (a text, or a function giving
    one when it fails). The deadline is worked out again at every poll, so a machine that gets
    busier meanwhile extends it."""
    start = time.monotonic()
    while True:
        result = condition()
        if result:
            return result
        waited = time.monotonic() - start
        if waited > deadline(base_s):
            text = what() if callable(what) else what
            pytest.fail(f"{text}: not after {waited:.0f} s (base {base_s:g} s, load "
                        f"{os.getloadavg()[0]:.1f}; {TIMEOUT_SCALE_ENV} to wait longer)")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port free on localhost now (for a server a test starts)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port: int) -> bool:
    """Whether a server listens on ``port`` of localhost."""
    import socket

    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def stop_group(proc: subprocess.Popen, sig: int = signal.SIGTERM, grace_s: float = 20) -> None:
    """Send ``sig`` to the process group of ``proc`` (started with ``start_new_session=True``);
    SIGKILL it if it has not ended within :func:`deadline` of ``grace_s``."""
    with contextlib.suppress(ProcessLookupError):  # the group is gone already
        os.killpg(proc.pid, sig)
    try:
        proc.wait(deadline(grace_s))
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# ------------------------------------------------------------------------------------------
# the stages of a run


def stage_call(cfg: RunConfig, name: str, store: str | Path | None = None) -> Callable[[], dict[str, Path]]:
    """The stage record ``name`` as :func:`ecodask.run.resume.run_stage` calls a stage (no
    arguments), on ``store`` (default: the store in the run's output folder; ingest reads none)."""
    record = BY_NAME[name]
    if name == "ingest":
        return lambda: record.run(cfg, None)
    where = Path(store) if store is not None else RunFolder(cfg.output).store
    return lambda: record.run(cfg, where)


def run_stages(cfg: RunConfig, *names: str) -> tuple[Path, dict[str, Path]]:
    """Run the named stages in the order given, as a run does but without Prefect, resume or a
    cluster of its own (the current Dask scheduler): each on the store of the ingest stage (the
    store already in the output folder when ingest is not named). Returns the store and the
    outputs of every stage run, by name (``store`` among them when ingest ran)."""
    store = RunFolder(cfg.output).store
    outputs: dict[str, Path] = {}
    for name in names:
        out = stage_call(cfg, name, store)()
        store = Path(out.get("store", store))
        outputs |= out
    return store, outputs


# ------------------------------------------------------------------------------------------
# files


def digest(folder: Path, skip: tuple[str, ...] = (), mtimes: bool = False) -> dict[str, object]:
    """sha256 of every file under ``folder`` by relative path (with its modification time in ns when
    ``mtimes``), leaving out the files with a part of their relative path in ``skip`` (a name:
    ``run.json``; a folder: ``.ecodask``). Links are followed: the arrays of an output folder's
    ``store.zarr`` are read through it; the layers it links into (``stages/``, named by the
    stages' keys) are left out."""
    out: dict[str, object] = {}
    for here, dirs, files in os.walk(folder, followlinks=True):
        rel_dir = Path(here).relative_to(folder)
        if rel_dir == Path("."):
            dirs[:] = [d for d in dirs if d != STAGES]
        for name in files:
            p = Path(here) / name
            rel = rel_dir / name
            if any(part in skip for part in rel.parts):
                continue
            sha = hashlib.sha256(p.read_bytes()).hexdigest()
            out[str(rel)] = (sha, p.stat().st_mtime_ns) if mtimes else sha
    return dict(sorted(out.items()))


def corrupt_tile(path: Path, block: str = "1_1") -> None:
    """Zero the compressed bytes of one tile of a deflate GeoTIFF: its header still reads."""
    import rasterio

    with rasterio.open(path) as src:
        off = int(src.get_tag_item(f"BLOCK_OFFSET_{block}", "TIFF", bidx=1))
        size = int(src.get_tag_item(f"BLOCK_SIZE_{block}", "TIFF", bidx=1))
    data = bytearray(path.read_bytes())
    data[off + 2: off + size - 2] = bytes(size - 4)
    path.write_bytes(bytes(data))


def edit_yaml(path: Path, fn: Callable[[dict], object]) -> Path:
    """Apply ``fn`` to the YAML document in ``path`` (changing it in place) and write it back."""
    data = yaml.safe_load(path.read_text())
    fn(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def config_error(path: Path) -> ConfigError:
    """The :class:`ConfigError` loading the configuration ``path`` raises (the test fails if none)."""
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value


def assert_same_arrays(local_store: str | Path, remote_store: object) -> None:
    """Every array of the store in a run's folder equals, value for value (NaN equal to NaN), the
    same array of a remote run's store (its layers, :class:`ecodask.io.layers.Layers`), with the
    same names on both grids."""
    import numpy as np

    from ecodask.io.store import open_store

    for here, there in zip(open_store(local_store), open_store(remote_store), strict=True):
        assert set(here.variables) == set(there.variables), (set(here.variables) ^ set(there.variables))
        for name in here.variables:
            np.testing.assert_array_equal(here[name].values, there[name].values, err_msg=name)


def ecodask_run(config: Path, env: dict[str, str], *options: str) -> subprocess.Popen:
    """``ecodask run config [options]`` as a process group of its own (its Dask workers included),
    its output captured as text."""
    return subprocess.Popen([sys.executable, "-m", "ecodask.cli", "run", str(config), *options], env=env,
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def finished_ok(proc: subprocess.Popen, base_s: float = 600) -> str:
    """The output of ``proc`` once it has exited, which it must have done with status 0."""
    output, _ = proc.communicate(timeout=deadline(base_s))
    assert proc.returncode == 0, output
    return output


def kill_once(proc: subprocess.Popen, condition: Callable[[], object], what: str,
              base_s: float = 300) -> None:
    """SIGKILL ``proc``'s process group as soon as ``condition()`` holds (polled; ``proc`` must
    still be running then), as a machine going down would."""
    def ready() -> object:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        return condition()

    try:
        wait_until(ready, base_s, what, interval=0.02)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def objects_under(fs, prefix: str) -> bool:  # noqa: ANN001 - an fsspec filesystem
    """Whether any object is under ``prefix`` now (the listing cache dropped first)."""
    fs.invalidate_cache()
    return bool(fs.exists(prefix) and fs.find(prefix))


TINY_INPUTS = ("lc_2000.tif", "lc_2010.tif", "zones.gpkg", "elev.tif")


def inputs_in_bucket(fs, local_cfg: Path, inputs: str,  # noqa: ANN001 - an fsspec filesystem
                     files: tuple[str, ...] = TINY_INPUTS) -> dict:
    """The tiny region's ``files`` uploaded beside each other under the URL ``inputs`` (``s3://`` or
    ``az://``) and its configuration's mapping naming them there (land cover 2000 and 2010, zones,
    the elevation driver; the caller sets the output)."""
    from ecodask.io import objstore

    root = objstore.filesystem(inputs)[1]
    for f in files:
        fs.put_file(str(local_cfg.parent / f), f"{root}/{f}")
    doc = yaml.safe_load(local_cfg.read_text())
    doc["landcover"]["years"] = {y: f"{inputs}/lc_{y}.tif" for y in (2000, 2010)}
    doc["zones"]["path"] = f"{inputs}/zones.gpkg"
    doc["drivers"] = {"elevation": {"path": f"{inputs}/elev.tif"}}
    return doc

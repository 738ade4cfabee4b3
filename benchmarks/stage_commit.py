"""A stage's arrays committed as one transaction: Icechunk against "manifest written last", on local
disk and on a local S3 server (issue 19, "Transactions"; docs/transactions.md):

    python -m benchmarks.run --suite stage_commit [--size 1024] [--chunk 256] [--years 2] [--groups 2]
        [--backends local s3] [--workers 2] [--repeats 1] [--kill 0] [--out bench-output]

A store shaped like a run's: ``landcover`` uint8 (year, y, x) written by an "ingest" stage, then
``esv`` float32 (year, y, x) and ``esv_group`` float32 (year, group, y, x) written by a
"transitions_esv" stage, then the same stage redone with other values (a rerun replacing it). Chunks
(1, [1,] chunk, chunk), zstd level 1, as the run's store; every chunk is written by a Dask task on
a LocalCluster of worker processes (``--workers``, one thread each). Each stage is committed by

- ``bare``: no commit at all, chunks written straight to their final arrays (the floor: what a
  reader sees is whatever was written last);
- ``manifest``: chunks written under a prefix named by the stage's key (``stages/<stage>/<key>/``),
  then the stage's manifest (key, prefix, every chunk's size and checksum: BLAKE2b on disk, the
  server's ETag from a listing on S3) written last, in one atomic step (a rename on disk, one PUT
  on S3); the previous prefix is removed after. A reader resolves the manifest, then the arrays
  at the prefix it names: the same code on disk and on S3;
- ``rename`` (disk only; what ecodask does today inside its work copy): chunks written to
  ``_staging_<name>`` arrays, renamed into place, then the manifest with BLAKE2b checksums;
- ``icechunk``: an Icechunk repository (a session per stage, forked for the Dask tasks:
  ``icechunk.dask.store_dask`` writes each chunk in a task and merges the fork sessions in a tree,
  then one ``Session.commit`` with the stage and its key in the message and metadata). After the
  redo, the expired snapshot's chunks are removed (``expire_snapshots`` + ``garbage_collect``),
  measured apart.

Measured per stage: the seconds writing chunks and committing, the requests the S3 server
answered by kind (a counting layer around the moto server, in its own process), the objects /
files and bytes written, and the commit's overhead against the bare chunk writes. ``--kill N``
then kills a writer N times per mechanism and backend at random instants of a stage redo (SIGKILL)
and checks what a reader sees: the previous commit or the new one, whole, never a mix; then a rerun
finishes. Prints Markdown tables and writes ``stage-commit-results.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.env import code_state, machine

BUCKET = "ecodask-bench"
KEY_ID, SECRET = "AKIABENCHSTAGECOMMIT", "bench-secret-stage-commit"
COUNTS_PATH = "/__bench__/counts"
MECHANISMS = ("bare", "manifest", "rename", "icechunk")
#: ESV coefficients by land-cover code, CNY/ha/yr (made up; only the bytes' shape matters here).
VALUES = np.array([np.nan, 5000, 20000, 30000, 4000, 60000, 800, 200, 9000, 40000], np.float32)
PIXEL_HA = 0.09


# --- the S3 server: moto behind a layer counting requests by kind ----------------------------------

def _kind(environ: dict) -> str:
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING", "")
    on_bucket = path.strip("/").count("/") == 0
    if method == "GET" and (on_bucket or "list-type" in query):
        return "LIST"
    if method == "PUT" and environ.get("HTTP_X_AMZ_COPY_SOURCE"):
        return "COPY"
    if method == "POST" and "delete" in query:
        return "DELETE"  # a multi-object delete: one request for up to 1,000 objects
    return method


def serve_s3(port_file: str) -> None:
    """Run a moto S3 server on a free local port (written to ``port_file``), counting requests by
    kind, the bytes PUT (``bytes_put``) and the bytes sent in answers to GETs of objects or ranges
    (``bytes_got``), and requests naming another bucket than :data:`BUCKET` (``other_bucket``);
    ``GET /__bench__/counts`` returns the counts, ``DELETE`` resets them. ``BENCH_S3_LATENCY_MS``
    in the environment: answer every S3 request that much later (a real store's latency; the server
    answers requests in parallel, as S3 does)."""
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import WSGIRequestHandler, make_server

    counts: Counter = Counter()
    lock = threading.Lock()
    latency = float(os.environ.get("BENCH_S3_LATENCY_MS") or 0) / 1000
    inner = DomainDispatcherApplication(create_backend_app)

    def app(environ: dict, start_response: Callable) -> Any:
        if environ.get("PATH_INFO") == COUNTS_PATH:
            with lock:
                body = json.dumps(dict(counts)).encode()
                if environ["REQUEST_METHOD"] == "DELETE":
                    counts.clear()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        kind = _kind(environ)
        if os.environ.get("BENCH_S3_LOG"):
            print(kind, environ.get("PATH_INFO"), environ.get("QUERY_STRING"), file=sys.stderr, flush=True)
        with lock:
            counts[kind] += 1
            if kind == "PUT":
                counts["bytes_put"] += int(environ.get("CONTENT_LENGTH") or 0)
            if environ.get("PATH_INFO", "").strip("/").partition("/")[0] != BUCKET:
                counts["other_bucket"] += 1  # e.g. a client's probe of a made-up path

        def counting_start(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            if kind == "GET" and status.startswith("2"):  # a whole object or a range of it
                size = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
                with lock:
                    counts["bytes_got"] += size
            return start_response(status, headers, *rest)

        if latency:
            time.sleep(latency)
        return inner(environ, counting_start)

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


@contextlib.contextmanager
def s3_server(folder: Path) -> Iterator[str]:
    """A counting moto server in its own process; yields its endpoint URL, with the ``AWS_*``
    variables of this process (and of the workers it starts) pointing at it and the bucket made."""
    port_file = folder / "s3-port"
    port_file.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.stage_commit", "--serve-s3", str(port_file)])
    try:
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the moto S3 server did not start")
            time.sleep(0.05)
        endpoint = f"http://127.0.0.1:{port_file.read_text()}"
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
        os.environ.update(AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET,
                          AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1", AWS_ENDPOINT_URL=endpoint)
        import s3fs

        s3fs.S3FileSystem(skip_instance_cache=True).mkdir(BUCKET)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait()


def s3_counts(endpoint: str, reset: bool = False) -> Counter:
    """The server's request counts since the last reset (and reset them)."""
    import urllib.request

    req = urllib.request.Request(endpoint + COUNTS_PATH, method="DELETE" if reset else "GET")
    with urllib.request.urlopen(req) as r:
        return Counter(json.loads(r.read()))


# --- where a mechanism writes ---------------------------------------------------------------------

@dataclass
class Backend:
    """Local disk (``root`` a folder) or S3 (``root`` an ``s3://`` URL, ``endpoint`` the server)."""

    name: str
    root: str
    endpoint: str | None = None

    def url(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *(p.strip("/") for p in parts if p)])

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (one client per process), its listing cache cleared: other
        processes write here."""
        import fsspec

        fs = fsspec.filesystem("s3" if self.endpoint else "file")
        fs.invalidate_cache()
        return fs

    def zarr_store(self, *parts: str) -> Any:
        import zarr.storage

        if self.endpoint is None:
            return zarr.storage.LocalStore(self.url(*parts))
        return zarr.storage.FsspecStore.from_url(self.url(*parts))

    def icechunk_storage(self, *parts: str) -> Any:
        import icechunk as ic

        if self.endpoint is None:
            return ic.local_filesystem_storage(self.url(*parts))
        bucket, _, prefix = self.url(*parts).removeprefix("s3://").partition("/")
        return ic.s3_storage(bucket=bucket, prefix=prefix, endpoint_url=self.endpoint, allow_http=True,
                             force_path_style=True, region="us-east-1", access_key_id=KEY_ID,
                             secret_access_key=SECRET)

    def listing(self, *parts: str) -> dict[str, int]:
        """Every object / file under the path and its size."""
        fs = self.fs
        path = self.url(*parts).removeprefix("s3://")
        try:
            found = fs.find(path, detail=True)
        except FileNotFoundError:
            return {}
        return {k: int(v["size"]) for k, v in found.items()}

    def remove(self, *parts: str) -> None:
        fs = self.fs
        path = self.url(*parts).removeprefix("s3://")
        with contextlib.suppress(FileNotFoundError):
            fs.rm(path, recursive=True)

    def requests(self, reset: bool = False) -> Counter:
        return s3_counts(self.endpoint, reset) if self.endpoint else Counter()


# --- the data: a run-shaped store, values from a seed ----------------------------------------------

@dataclass(frozen=True)
class Shape:
    years: int
    size: int
    chunk: int
    groups: int

    def landcover(self, seed: int) -> Any:
        """uint8 (year, y, x) land cover: 32-px patches of codes 1-9 with 5 % pixel noise, 0 at the
        edge rows (no data), a function of ``seed`` and the chunk's position only."""
        import dask.array as da

        def block(block_info: dict | None = None) -> np.ndarray:
            (t0, t1), (y0, y1), (x0, x1) = block_info[None]["array-location"]
            rng = np.random.default_rng([seed, t0, y0, x0])
            ny, nx = y1 - y0, x1 - x0
            patches = rng.integers(1, 10, (t1 - t0, -(-ny // 32), -(-nx // 32)), dtype=np.uint8)
            out = np.repeat(np.repeat(patches, 32, axis=1), 32, axis=2)[:, :ny, :nx]
            noise = rng.random(out.shape) < 0.05
            out[noise] = rng.integers(1, 10, int(noise.sum()), dtype=np.uint8)
            if y0 == 0:
                out[:, :8] = 0
            return out

        return da.map_blocks(block, dtype=np.uint8, chunks=((1,) * self.years, self._axis(), self._axis()))

    def _axis(self) -> tuple[int, ...]:
        n, c = self.size, self.chunk
        return (c,) * (n // c) + ((n % c,) if n % c else ())

    def esv(self, seed: int) -> Any:
        """float32 (year, y, x) CNY/yr per pixel: the land cover's coefficient times the pixel's
        area and a factor drawn from ``seed`` (NaN for no data)."""
        scale = np.float32(PIXEL_HA * (1 + (seed % 97) / 100))
        return self.landcover(seed).map_blocks(lambda lc: VALUES[lc] * scale, dtype=np.float32)

    def esv_group(self, seed: int) -> Any:
        """float32 (year, group, y, x): ``groups`` shares of the ESV."""
        import dask.array as da

        esv = self.esv(seed)
        shares = [np.float32((g + 1) / (self.groups * (self.groups + 1) / 2)) for g in range(self.groups)]
        return da.stack([esv * s for s in shares], axis=1).rechunk((1, 1, self.chunk, self.chunk))

    def arrays(self, stage: str, seed: int) -> dict[str, tuple[Any, tuple[int, ...], list[str]]]:
        """The stage's arrays: name -> (dask array, chunk shape, dimension names)."""
        c = self.chunk
        if stage == "ingest":
            return {"landcover": (self.landcover(seed), (1, c, c), ["year", "y", "x"])}
        out = {"esv": (self.esv(seed), (1, c, c), ["year", "y", "x"])}
        if self.groups:
            out["esv_group"] = (self.esv_group(seed), (1, 1, c, c), ["year", "group", "y", "x"])
        return out


def grids_staging(path: str) -> bool:
    """Whether ``path`` lies in a staged array (``_staging_<name>``) a killed writer left."""
    return "/_staging_" in path


def _fill(dtype: np.dtype) -> Any:
    return np.nan if np.dtype(dtype).kind == "f" else 0


def create_arrays(group: Any, arrays: dict, names: dict[str, str] | None = None) -> dict[str, Any]:
    """Create the empty arrays (metadata only) in the Zarr ``group`` (``names``: final name -> the
    name to create it under); return the Zarr arrays by final name."""
    import zarr.codecs

    out = {}
    for name, (arr, chunks, dims) in arrays.items():
        out[name] = group.create_array((names or {}).get(name, name), shape=arr.shape, chunks=chunks,
                                       dtype=arr.dtype, fill_value=_fill(arr.dtype), dimension_names=dims,
                                       compressors=zarr.codecs.ZstdCodec(level=1), overwrite=True)
    return out


def store_chunks(arrays: dict, targets: dict[str, Any]) -> None:
    """Write every chunk in a Dask task (the default scheduler: the benchmark's cluster)."""
    import dask.array as da

    names = list(arrays)
    da.store([arrays[n][0] for n in names], [targets[n] for n in names], lock=False)


# --- the mechanisms: one stage committed -----------------------------------------------------------

@dataclass
class StageResult:
    write_s: float = 0.0
    commit_s: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)


def _key(stage: str, seed: int) -> str:
    return hashlib.sha256(f"{stage}:{seed}".encode()).hexdigest()


def _blake2b_listing(backend: Backend, prefix: str) -> dict[str, list]:
    """Size and BLAKE2b of every file under ``prefix`` (disk), hashed on a thread per core, as a
    stage's manifest records them today (:func:`ecodask.run.verify.written`)."""
    from ecodask.run import verify

    return {k: list(v) for k, v in verify.written(Path(backend.url(prefix)), {}).items()}


def _etag_listing(backend: Backend, prefix: str) -> dict[str, list]:
    """Size and ETag (the server's MD5 of a one-part upload) of every object under ``prefix``,
    from a listing: one LIST request per 1,000 objects."""
    fs = backend.fs
    root = backend.url(prefix).removeprefix("s3://")
    found = fs.find(root, detail=True)
    return {k[len(root) + 1:]: [int(v["size"]), str(v.get("ETag", "")).strip('"')] for k, v in found.items()}


def write_manifest(backend: Backend, doc: dict, path: str) -> None:
    """The manifest, whole or not at all: a temporary file renamed (disk) or one PUT (S3)."""
    data = (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()
    if backend.endpoint is None:
        from ecodask.io.atomic import write_json

        write_json(doc, Path(backend.url(path)), sort_keys=True)
    else:
        backend.fs.pipe_file(backend.url(path).removeprefix("s3://"), data)


def read_manifest(backend: Backend, base: str, stage: str) -> dict | None:
    """The stage's manifest under ``base``, None when there is none (or half of one)."""
    path = backend.url(base, "manifests", f"{stage}.json").removeprefix("s3://")
    try:
        return json.loads(backend.fs.cat_file(path))
    except (FileNotFoundError, ValueError):
        return None


class Mechanism:
    name = ""

    def __init__(self, backend: Backend, shape: Shape, base: str) -> None:
        self.backend, self.shape, self.base = backend, shape, base

    def setup(self) -> None: ...

    def stage(self, stage: str, seed: int, crash: Callable[[str], None] = lambda _: None) -> StageResult:
        raise NotImplementedError

    def after(self) -> dict[str, Any]:
        """Clean-up after the last stage (Icechunk's garbage collection)."""
        return {}

    def read(self, stage: str) -> tuple[int | None, dict[str, np.ndarray]]:
        """What a reader sees of ``stage``: the seed its commit names and the arrays' values."""
        raise NotImplementedError

    def orphans(self) -> int:
        """Objects / files that no commit references (left by killed writers)."""
        return 0


class Bare(Mechanism):
    name = "bare"

    def setup(self) -> None:
        import zarr

        zarr.open_group(self.backend.zarr_store(self.base, "store.zarr"), mode="w")

    def stage(self, stage: str, seed: int, crash: Callable[[str], None] = lambda _: None) -> StageResult:
        import zarr

        arrays = self.shape.arrays(stage, seed)
        t0 = time.perf_counter()
        targets = create_arrays(zarr.open_group(self.backend.zarr_store(self.base, "store.zarr"), mode="r+"),
                                arrays)
        store_chunks(arrays, targets)
        return StageResult(write_s=time.perf_counter() - t0)


class Manifest(Mechanism):
    """Chunks under a prefix named by the stage's key, the manifest naming it written last."""

    name = "manifest"

    def prefix(self, stage: str, key: str) -> str:
        return f"{self.base}/stages/{stage}/{key[:16]}"

    def stage(self, stage: str, seed: int, crash: Callable[[str], None] = lambda _: None) -> StageResult:
        import zarr

        b, key = self.backend, _key(stage, seed)
        arrays = self.shape.arrays(stage, seed)
        prefix = self.prefix(stage, key)
        previous = read_manifest(b, self.base, stage)
        for other in self.unreferenced(stage, previous):  # what killed runs left: no manifest names it
            b.remove(other)
        t0 = time.perf_counter()
        group = zarr.open_group(b.zarr_store(prefix), mode="w")
        store_chunks(arrays, create_arrays(group, arrays))
        t1 = time.perf_counter()
        crash("written")
        files = _etag_listing(b, prefix) if b.endpoint else _blake2b_listing(b, prefix)
        t2 = time.perf_counter()
        doc = {"stage": stage, "key": key, "seed": seed, "prefix": prefix[len(self.base) + 1:],
               "arrays": sorted(arrays), "files": files}
        crash("listed")
        write_manifest(b, doc, f"{self.base}/manifests/{stage}.json")
        t3 = time.perf_counter()
        crash("manifest")
        if previous and previous.get("prefix") != doc["prefix"]:
            b.remove(f"{self.base}/{previous['prefix']}")
        t4 = time.perf_counter()
        return StageResult(write_s=t1 - t0, commit_s=t4 - t1,
                           parts={"checksums": t2 - t1, "manifest": t3 - t2, "previous removed": t4 - t3})

    def unreferenced(self, stage: str, manifest: dict | None) -> list[str]:
        """The key prefixes of ``stage`` that its manifest does not name (one LIST)."""
        keep = manifest["prefix"].rsplit("/", 1)[-1] if manifest else None
        try:
            found = self.backend.fs.ls(self.backend.url(self.base, "stages", stage).removeprefix("s3://"))
        except FileNotFoundError:
            return []
        return [f"{self.base}/stages/{stage}/{p.rstrip('/').rsplit('/', 1)[-1]}" for p in found
                if p.rstrip("/").rsplit("/", 1)[-1] != keep]

    def orphans(self) -> int:
        live = [m["prefix"] + "/" for s in ("ingest", "transitions_esv")
                if (m := read_manifest(self.backend, self.base, s))]
        root = self.backend.url(self.base).removeprefix("s3://") + "/"
        return sum(1 for k in self.backend.listing(self.base, "stages")
                   if not any(k.removeprefix(root).startswith(p) for p in live))

    def read(self, stage: str) -> tuple[int | None, dict[str, np.ndarray]]:
        import zarr

        m = read_manifest(self.backend, self.base, stage)
        if m is None:
            return None, {}
        g = zarr.open_group(self.backend.zarr_store(self.base, m["prefix"]), mode="r")
        return m["seed"], {n: g[n][:] for n in m["arrays"]}


class Rename(Mechanism):
    """Today's local mechanism: ``_staging_<name>`` arrays renamed into place, then the manifest."""

    name = "rename"

    def setup(self) -> None:
        import zarr

        zarr.open_group(self.backend.zarr_store(self.base, "store.zarr"), mode="w")

    def stage(self, stage: str, seed: int, crash: Callable[[str], None] = lambda _: None) -> StageResult:
        import zarr

        from ecodask.io import grids

        b, key = self.backend, _key(stage, seed)
        store = Path(b.url(self.base, "store.zarr"))
        manifest = Path(b.url(self.base, "manifests", f"{stage}.json"))
        manifest.unlink(missing_ok=True)  # as resume.run_stage: a stage under way has none
        arrays = self.shape.arrays(stage, seed)
        staged = {n: grids.staged_path(store, n) for n in arrays}
        for p in staged.values():
            shutil.rmtree(p, ignore_errors=True)
        t0 = time.perf_counter()
        group = zarr.open_group(zarr.storage.LocalStore(store), mode="r+")
        store_chunks(arrays, create_arrays(group, arrays, {n: p.name for n, p in staged.items()}))
        t1 = time.perf_counter()
        crash("written")
        grids.commit(store, staged)
        t2 = time.perf_counter()
        files = {}
        for n in arrays:
            files |= {f"{n}/{k}": v for k, v in _blake2b_listing(b, f"{self.base}/store.zarr/{n}").items()}
        t3 = time.perf_counter()
        crash("listed")
        doc = {"stage": stage, "key": key, "seed": seed, "arrays": sorted(arrays), "files": files}
        write_manifest(b, doc, f"{self.base}/manifests/{stage}.json")
        t4 = time.perf_counter()
        return StageResult(write_s=t1 - t0, commit_s=t4 - t1,
                           parts={"renames": t2 - t1, "checksums": t3 - t2, "manifest": t4 - t3})

    def read(self, stage: str) -> tuple[int | None, dict[str, np.ndarray]]:
        import zarr

        m = read_manifest(self.backend, self.base, stage)
        if m is None:
            return None, {}
        g = zarr.open_group(zarr.storage.LocalStore(self.backend.url(self.base, "store.zarr")), mode="r")
        return m["seed"], {n: g[n][:] for n in m["arrays"]}

    def orphans(self) -> int:
        return sum(1 for k in self.backend.listing(self.base, "store.zarr") if grids_staging(k))


class Icechunk(Mechanism):
    """One Icechunk repository; a session per stage, forked for the tasks, one commit."""

    name = "icechunk"

    def repo(self, create: bool = False) -> Any:
        import icechunk as ic

        storage = self.backend.icechunk_storage(self.base, "repo")
        return ic.Repository.create(storage) if create else ic.Repository.open(storage)

    def setup(self) -> None:
        self.repo(create=True)

    def stage(self, stage: str, seed: int, crash: Callable[[str], None] = lambda _: None) -> StageResult:
        import icechunk.dask
        import zarr

        key = _key(stage, seed)
        arrays = self.shape.arrays(stage, seed)
        t0 = time.perf_counter()
        session = self.repo().writable_session("main")
        root = zarr.open_group(session.store, mode="a")
        create_arrays(root, arrays)
        # The stage's key in the snapshot itself (what a rerun compares), and in the commit's
        # metadata (the history): both land with the chunks in the one commit.
        root.attrs["stages"] = {**root.attrs.get("stages", {}), stage: {"key": key, "seed": seed}}
        fork = session.fork()
        targets = [zarr.open_array(fork.store, path=n, mode="a") for n in arrays]
        merged = icechunk.dask.store_dask(sources=[arrays[n][0] for n in arrays], targets=targets)
        t1 = time.perf_counter()
        crash("written")
        session.merge(merged)
        t2 = time.perf_counter()
        session.commit(f"stage {stage}, key {key}", metadata={"stage": stage, "key": key, "seed": seed})
        t3 = time.perf_counter()
        return StageResult(write_s=t1 - t0, commit_s=t3 - t1, parts={"merge": t2 - t1, "commit": t3 - t2})

    def after(self) -> dict[str, Any]:
        repo = self.repo()
        t0 = time.perf_counter()
        now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
        expired = repo.expire_snapshots(now)
        t1 = time.perf_counter()
        gc = repo.garbage_collect(now)
        t2 = time.perf_counter()
        return {"expire_s": t1 - t0, "gc_s": t2 - t1, "snapshots_expired": len(expired),
                "chunks_deleted": gc.chunks_deleted, "bytes_deleted": gc.bytes_deleted,
                "manifests_deleted": gc.manifests_deleted, "snapshots_deleted": gc.snapshots_deleted}

    def orphans(self) -> int:
        now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
        return int(self.repo().garbage_collect(now, dry_run=True).chunks_deleted)

    def read(self, stage: str) -> tuple[int | None, dict[str, np.ndarray]]:
        import zarr

        group = zarr.open_group(self.repo().readonly_session(branch="main").store, mode="r")
        done = group.attrs.get("stages", {}).get(stage)
        if done is None:
            return None, {}
        names = sorted(self.shape.arrays(stage, 0))
        return int(done["seed"]), {n: group[n][:] for n in names}


CLASSES: dict[str, type[Mechanism]] = {c.name: c for c in (Bare, Manifest, Rename, Icechunk)}


# --- measuring -------------------------------------------------------------------------------------

def measure(mech: Mechanism) -> list[dict]:
    """Run the three stages (ingest, transitions_esv, its redo); one row each."""
    b = mech.backend
    b.remove(mech.base)
    mech.setup()
    rows = []
    for stage, seed in (("ingest", 1), ("transitions_esv", 1), ("transitions_esv", 2)):
        before = b.listing(mech.base)
        b.requests(reset=True)
        r = mech.stage(stage, seed)
        req = b.requests()
        after = b.listing(mech.base)
        new = {k: v for k, v in after.items() if before.get(k) != v}
        rows.append({"mechanism": mech.name, "backend": b.name,
                     "stage": stage if seed == 1 else f"{stage} redo",
                     "write_s": r.write_s, "commit_s": r.commit_s, "parts": r.parts,
                     "requests": dict(req), "objects_written": len(new), "bytes_written": sum(new.values()),
                     "objects_removed": len(set(before) - set(after)),
                     "footprint_objects": len(after), "footprint_bytes": sum(after.values())})
    b.requests(reset=True)
    extra = mech.after()
    if extra:
        req = b.requests()
        after = b.listing(mech.base)
        rows.append({"mechanism": mech.name, "backend": b.name, "stage": "garbage collection",
                     "write_s": 0.0, "commit_s": extra["expire_s"] + extra["gc_s"], "parts": extra,
                     "requests": dict(req), "objects_written": 0, "bytes_written": 0,
                     "objects_removed": rows[-1]["footprint_objects"] - len(after),
                     "footprint_objects": len(after), "footprint_bytes": sum(after.values())})
    if mech.name != "bare":  # what a reader sees: the last commit, every value
        for stage, seed in (("ingest", 1), ("transitions_esv", 2)):
            got, values = mech.read(stage)
            assert got == seed, (mech.name, stage, got)
            _check(mech.shape, stage, got, values)
    return rows


def _expected(shape: Shape, stage: str, seed: int) -> dict[str, np.ndarray]:
    import dask

    arrays = shape.arrays(stage, seed)
    with dask.config.set(scheduler="synchronous"):
        return {n: a.compute() for n, (a, _, _) in arrays.items()}


def _check(shape: Shape, stage: str, seed: int | None, values: dict[str, np.ndarray]) -> None:
    """The arrays a reader sees are those of the seed its commit names, every value."""
    if not values:
        return
    assert seed is not None
    for name, want in _expected(shape, stage, seed).items():
        np.testing.assert_array_equal(values[name], want, err_msg=f"{stage}/{name} is not seed {seed}'s")


# --- killed mid-commit -----------------------------------------------------------------------------

def _child(spec: str) -> None:
    """In a process of its own (killed by the parent): redo transitions_esv with the threaded
    scheduler, 2 threads, printing the instants it reaches."""
    import dask

    s = json.loads(spec)
    backend = Backend(s["backend"], s["root"], s["endpoint"])
    mech = CLASSES[s["mechanism"]](backend, Shape(**s["shape"]), s["base"])

    def crash(where: str) -> None:
        print(where, flush=True)

    print("start", flush=True)
    with dask.config.set(scheduler="threads", num_workers=2):
        mech.stage("transitions_esv", s["seed"], crash)
    print("done", flush=True)


def kill_test(backend: Backend, shape: Shape, mechanisms: list[str], kills: int, out: Path) -> list[dict]:
    """For each mechanism: commit ingest and transitions_esv (seed 1), then ``kills`` times start a
    redo (seed 2, 3, ...) in a child and SIGKILL it at a random instant up to the length of an
    uninterrupted redo; after each kill a reader must see one commit whole (seed 1's or the
    killed one's, every value); then a redo runs to the end and the reader sees it."""
    import dask

    rows = []
    for name in mechanisms:
        if name == "bare":
            continue
        mech = CLASSES[name](backend, shape, f"kill-{name}")
        backend.remove(mech.base)
        mech.setup()
        with dask.config.set(scheduler="threads", num_workers=2):
            mech.stage("ingest", 1)
            mech.stage("transitions_esv", 1)
        spec = {"backend": backend.name, "root": backend.root, "endpoint": backend.endpoint,
                "mechanism": name, "base": mech.base, "shape": shape.__dict__}
        full = _run_child({**spec, "seed": 90})  # an uninterrupted redo: its instants
        t_full, t_commit = full["done"], full["done"] - full["written"]
        _check(shape, "transitions_esv", *mech.read("transitions_esv"))
        seen: Counter = Counter()
        reached: Counter = Counter()
        committed = 90
        for i in range(kills):
            seed = 100 + i
            # Every other kill anywhere in the stage, the others within its commit (after the
            # chunks are written: the merge, renames, checksums, manifest, snapshot, ref).
            marker, delay = ("start", random.uniform(0, t_full)) if i % 2 == 0 else \
                ("written", random.uniform(0, t_commit))
            instants = _run_child({**spec, "seed": seed}, marker, delay)
            reached[list(instants)[-1] if instants else "(not started)"] += 1
            got, values = mech.read("transitions_esv")
            _check(shape, "transitions_esv", got, values)  # whole: every value of the seed it names
            if got is None and name == "rename":  # its manifest goes when a stage starts
                seen["no manifest (stage unfinished)"] += 1
                continue
            assert got in (committed, seed), (name, got, committed, seed)
            seen["new" if got == seed else "previous"] += 1
            committed = got
        orphans = mech.orphans()
        with dask.config.set(scheduler="threads", num_workers=2):
            mech.stage("transitions_esv", 999)
        got, values = mech.read("transitions_esv")
        _check(shape, "transitions_esv", got, values)
        assert got == 999
        rows.append({"mechanism": name, "backend": backend.name, "kills": kills,
                     "reader_saw": dict(seen), "last_instant_reached": dict(reached),
                     "orphans_left_by_kills": orphans, "redo_s": t_full, "commit_window_s": t_commit,
                     "rerun_ok": True})
        print(f"killed {name} on {backend.name} {kills} times: the reader saw {dict(seen)} "
              f"(instants reached: {dict(reached)}); {orphans} objects left unreferenced; a rerun committed",
              flush=True)
    return rows


def _run_child(spec: dict, marker: str | None = None, delay: float = 0.0) -> dict[str, float]:
    """Run :func:`_child`; with ``marker``, SIGKILL it ``delay`` s after it reports that instant.
    Return the instants it reported, in seconds after its "start"."""
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.stage_commit", "--child", json.dumps(spec)],
                            stdout=subprocess.PIPE, stderr=log, text=True)
    seen: dict[str, float] = {}

    def follow() -> None:
        for line in proc.stdout:
            seen[line.strip()] = time.perf_counter()

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    if marker is not None:
        deadline = time.monotonic() + 300
        while marker not in seen and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        if marker in seen:
            while proc.poll() is None and time.perf_counter() - seen[marker] < delay:
                time.sleep(0.001)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    reader.join(5)
    if marker is None and proc.returncode:
        log.seek(0)
        tail = log.read().decode(errors="replace")[-3000:]
        raise SystemExit(f"the uninterrupted child failed ({proc.returncode}): {spec}\n{tail}")
    log.close()
    t0 = seen.get("start", 0.0)
    return {k: v - t0 for k, v in sorted(seen.items(), key=lambda kv: kv[1])}


# --- the report ------------------------------------------------------------------------------------

def _fmt_req(req: dict) -> str:
    kinds = [k for k in ("PUT", "GET", "HEAD", "LIST", "DELETE", "COPY", "POST") if req.get(k)]
    return ", ".join(f"{req[k]} {k}" for k in kinds) or "-"


def report(rows: list[dict], bare: dict[tuple[str, str], float]) -> None:
    print("\n| backend | mechanism | stage | chunks written, s | commit, s | chunks + commit vs bare | "
          "requests | objects / files written | MB written | commit's parts, s |")
    print("|---|---|---|---:|---:|---:|---|---:|---:|---|")
    for r in rows:
        floor = bare.get((r["backend"], r["stage"]))
        total = r["write_s"] + r["commit_s"]
        over = f"{total / floor - 1:+.0%}" if floor and r["stage"] != "garbage collection" else ""
        parts = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in r["parts"].items())
        print(f"| {r['backend']} | {r['mechanism']} | {r['stage']} | {r['write_s']:.2f} | "
              f"{r['commit_s']:.2f} | {over} | {_fmt_req(r['requests'])} | {r['objects_written']} | "
              f"{r['bytes_written'] / 1e6:.1f} | {parts} |")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1024, help="grid side, pixels")
    ap.add_argument("--chunk", type=int, default=256, help="chunk side, pixels (the run's default is 4096)")
    ap.add_argument("--years", type=int, default=2)
    ap.add_argument("--groups", type=int, default=2, help="service groups of esv_group (0: no such array)")
    ap.add_argument("--backends", nargs="+", default=["local", "s3"], choices=["local", "s3"])
    ap.add_argument("--mechanisms", nargs="+", default=list(MECHANISMS), choices=MECHANISMS)
    ap.add_argument("--workers", type=int, default=2, help="Dask worker processes, one thread each")
    ap.add_argument("--repeats", type=int, default=1,
                    help="runs of every case, the median reported (0: the kill test only)")
    ap.add_argument("--kill", type=int, default=0, help="kills per mechanism and backend (0: none)")
    ap.add_argument("--kill-size", type=int, default=1024, help="grid side of the kill test")
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    a = ap.parse_args(argv)

    import dask
    from distributed import Client, LocalCluster

    shape = Shape(a.years, a.size, a.chunk, a.groups)
    work = (a.out / "stage-commit").resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = machine(["icechunk", "zarr", "dask", "distributed", "s3fs", "moto"])
    all_rows: list[dict] = []
    kills: list[dict] = []
    with contextlib.ExitStack() as stack:
        endpoint = stack.enter_context(s3_server(work)) if "s3" in a.backends else None
        backends = [Backend("local", str(work / "local"))] * ("local" in a.backends)
        if endpoint:
            backends.append(Backend("s3", f"s3://{BUCKET}/bench", endpoint))
        with LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          host="127.0.0.1") as cluster, Client(cluster):
            for b in backends:  # a throwaway run first: imports, the workers' first tasks, the server's
                measure(Bare(b, Shape(a.years, a.chunk * 2, a.chunk, a.groups), "warm-up"))
                b.remove("warm-up")
            for b in backends:
                for name in a.mechanisms:
                    if name == "rename" and b.endpoint:
                        continue  # no rename on S3
                    runs = [measure(CLASSES[name](b, shape, name)) for _ in range(a.repeats)]
                    if not runs:
                        continue
                    for i, row in enumerate(runs[0]):
                        for k in ("write_s", "commit_s"):
                            row[k] = float(np.median([r[i][k] for r in runs]))
                        row["parts"] = {k: float(np.median([r[i]["parts"][k] for r in runs]))
                                        if isinstance(v, float) else v for k, v in row["parts"].items()}
                        row["all_s"] = [r[i]["write_s"] + r[i]["commit_s"] for r in runs]
                        all_rows.append(row)
                        print(f"{b.name:5s} {name:8s} {row['stage']:26s} write {row['write_s']:6.2f} s  "
                              f"commit {row['commit_s']:6.2f} s  {_fmt_req(row['requests'])}", flush=True)
                    b.remove(name)
        if a.kill:  # the cluster is gone: the kill test's children use threads
            kshape = Shape(a.years, a.kill_size, min(a.chunk, a.kill_size), a.groups)
            for b in backends:
                mechs = [m for m in a.mechanisms if not (m == "rename" and b.endpoint)]
                with dask.config.set(scheduler="threads"):
                    kills += kill_test(b, kshape, mechs, a.kill, work)
    load_end = os.getloadavg()
    bare = {(r["backend"], r["stage"]): r["write_s"] + r["commit_s"]
            for r in all_rows if r["mechanism"] == "bare"}
    chunks = {n: int(np.prod([len(c) for c in arr.chunks]))
              for st in ("ingest", "transitions_esv") for n, (arr, _, _) in shape.arrays(st, 0).items()}
    print(f"\nGrid {a.size} x {a.size} px, {a.years} years, chunks {a.chunk} px ({chunks} chunks); "
          f"{a.workers} Dask worker processes x 1 thread; load average {env['load_avg_at_start'][0]:.2f} at "
          f"start, {load_end[0]:.2f} at end; {env['cores']} cores, {env['cpu']}; icechunk "
          f"{env['versions']['icechunk']}, zarr {env['versions']['zarr']}, moto {env['versions']['moto']}")
    report(all_rows, bare)
    results = {"machine": env, "code": code_state(), "args": {k: str(v) for k, v in vars(a).items()},
               "chunks": chunks, "load_avg_end": load_end, "rows": all_rows, "kills": kills}
    (a.out / "stage-commit-results.json").write_text(json.dumps(results, indent=2, default=str))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-s3":
        serve_s3(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child(sys.argv[2])
    else:
        main()

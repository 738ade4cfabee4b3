"""Object storage (S3 or any other fsspec protocol) for a run's inputs and outputs.

Input rasters in a bucket are read where they lie: the configuration names them as a
:class:`RemotePath` (:func:`locate`) and each task that reads a window opens the object in ranged
requests (S3, Azure and Google Cloud Storage through GDAL's own clients, :func:`gdal_path` and
:func:`gdal_config`, where GDAL finds the credentials; other protocols and credentials through this
module's filesystem, :func:`rasterio_options`), so a worker on any machine reads only
the tiles its window needs and nothing is downloaded whole. Inputs the flow
reads whole (zones, county statistics) are fetched into a local cache (:func:`fetch`) when the
configuration is loaded. A run with a remote output computes in a local work folder and
publishes each stage's outputs when the stage has finished (:func:`sync_up`); a later run
elsewhere downloads what it skips (:func:`sync_down`).

Credentials come from the environment only, as the protocol's own library reads it: for S3,
botocore's ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
``AWS_ENDPOINT_URL`` and ``AWS_DEFAULT_REGION`` (or a profile); for Azure Blob Storage (``az://``,
``abfs://``, adlfs), ``AZURE_STORAGE_CONNECTION_STRING`` or ``AZURE_STORAGE_ACCOUNT_NAME`` with a key,
SAS token or service principal; for Google Cloud Storage (``gs://``, ``gcs://``, gcsfs), Google's
application default credentials (``GOOGLE_APPLICATION_CREDENTIALS``, or the machine's service
account), ``STORAGE_EMULATOR_HOST`` for a local server. A URL carrying credentials is refused
(:func:`check_url`) and nothing here logs or records them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fsspec
from fsspec.spec import AbstractFileSystem

from ecodask.io import azure_exit
from ecodask.io.atomic import replacing, write_json, write_text

azure_exit.install()  # adlfs's clients opened by zarr, closed quietly at exit

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
LOCAL_PROTOCOLS = ("file", "local")
#: Environment variables that select an S3 account or endpoint (a change makes a new client).
_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE",
        "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_CLIENT_ID", "AZURE_STORAGE_TENANT_ID",
        "GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST", "FSSPEC_GS_TOKEN", "FSSPEC_GS_PROJECT")
_FETCHED = ".fetched.json"
_MD5 = re.compile(r"^[0-9a-f]{32}$")


class FetchedPath(Path):
    """The local copy of a remote input: a path to the local file that remembers its ``url``.

    Serialized (``model_dump(mode="json")``, ``run.json``) as the URL; the run's stage keys take the
    checksum of the local copy instead, as for a local input (the same bytes, the same keys).
    Derived paths (``parent``, ``/``) are plain.
    """

    url: str = ""

    @classmethod
    def of(cls, local: str | Path, url: str) -> FetchedPath:
        """``local`` remembering ``url``."""
        p = cls(local)
        p.url = url
        return p

    def with_segments(self, *args: Any) -> Path:  # noqa: D102 - pathlib hook
        return Path(*args)

    def __reduce__(self) -> tuple[Any, ...]:
        return (FetchedPath.of, (str(self), self.url))


class RemotePath(Path):
    """An input read where it lies, an object in a bucket: ``str()`` and ``os.fspath()`` give its
    ``url``, which the raster readers open (:func:`ecodask.io.rasters.open_raster`); its name, stem and
    suffix are the object's. Serialized (``run.json``) as the URL; the stage keys take the checksum
    of its bytes (:func:`checksum`), as for a local file with the same bytes. Derived paths
    (``parent``, ``/``) are plain."""

    url: str = ""

    @classmethod
    def of(cls, url: str) -> RemotePath:
        """The object at ``url``."""
        p = cls(url)
        p.url = url
        return p

    def __str__(self) -> str:
        return self.url

    def __fspath__(self) -> str:
        return self.url

    def with_segments(self, *args: Any) -> Path:  # noqa: D102 - pathlib hook
        return Path(*args)

    def __reduce__(self) -> tuple[Any, ...]:
        return (RemotePath.of, (self.url,))


def source(path: str | Path) -> str:
    """Where a file came from: its URL for a fetched or remote input, else the path."""
    return getattr(path, "url", "") or str(path)


def protocol(url: str) -> str | None:
    """The URL's protocol (``s3``), or None for a plain path."""
    m = _SCHEME.match(url)
    return m.group(1).lower() if m else None


def is_remote(value: object) -> bool:
    """Whether ``value`` is a URL of a non-local fsspec protocol (``s3://bucket/key``)."""
    if not isinstance(value, str):
        return False
    proto = protocol(value)
    return proto is not None and proto not in LOCAL_PROTOCOLS


def redact(value: object) -> object:
    """``value`` with any credentials of a URL (``scheme://user:secret@...``) replaced by ``***``."""
    if not isinstance(value, str) or not (m := _SCHEME.match(value)):
        return value
    rest = value[m.end():]
    host, slash, path = rest.partition("/")
    if "@" in rest:
        return f"{m.group(0)}***@{rest.rsplit('@', 1)[1]}"
    if ":" in host:
        return f"{m.group(0)}***{slash}{path}"
    return value


def check_url(url: str) -> str:
    """``url`` without a trailing slash; :class:`ValueError` (never echoing the URL) if it carries
    credentials, names no bucket or its protocol is not installed."""
    proto = protocol(url) or ""
    host = urlsplit(url).netloc
    if ":" in host or (proto in ("s3", "s3a", "gs", "gcs") and "@" in host):
        raise ValueError("credentials in a URL are refused: give them in the environment "
                         "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)")
    if not host:
        raise ValueError(f"a {proto}:// URL must name a bucket: {proto}://bucket/prefix")
    try:
        fsspec.get_filesystem_class(proto)
    except (ValueError, ImportError) as exc:
        raise ValueError(f"protocol {proto!r} is not available: {exc}") from None
    return url.rstrip("/")


#: Protocols a run may write its output to: its lock needs conditional writes (S3's If-None-Match /
#: If-Match, Azure Blob Storage's the same headers on its blobs, Google Cloud Storage's
#: ``ifGenerationMatch``).
S3_PROTOCOLS = ("s3", "s3a")
AZURE_PROTOCOLS = ("az", "abfs")
GCS_PROTOCOLS = ("gs", "gcs")
OUTPUT_PROTOCOLS = (*S3_PROTOCOLS, *AZURE_PROTOCOLS, *GCS_PROTOCOLS)


# adlfs keeps directory listings and does not drop a prefix's listing when it writes under it: a store
# written and then opened in one process would show no arrays. Its listings are not cached (every
# fsspec filesystem of these protocols, zarr's included, takes this default).
for _proto in AZURE_PROTOCOLS:
    fsspec.config.conf.setdefault(_proto, {}).setdefault("use_listings_cache", False)

# s3fs reads a whole object in concurrent ranges when it is larger than its block size (50 MB),
# and to know, asks for the object's size first (a HEAD) on every whole read: one request more
# for every chunk zarr reads, 935 of a tiny remote run's ~4,000 requests. A run's objects (chunks,
# tables, figures, manifests) are far smaller, so the read is one GET without that HEAD.
for _proto in S3_PROTOCOLS:
    fsspec.config.conf.setdefault(_proto, {}).setdefault("max_concurrency", 1)


def check_output_url(url: str) -> str:
    """:func:`check_url`, and a protocol a run can write to (:data:`OUTPUT_PROTOCOLS`)."""
    url = check_url(url)
    proto = protocol(url) or ""
    if proto not in OUTPUT_PROTOCOLS:
        raise ValueError(f"a run writes its output to s3:// (AWS S3, MinIO, Ceph, R2), az:// (Azure Blob "
                         f"Storage) or gs:// (Google Cloud Storage) only: its lock needs their conditional "
                         f"writes, not available here for {proto}://; inputs may be read from {proto}://")
    return url


def etag(info: dict[str, Any]) -> str | None:
    """An object's ETag from its listing entry (``ETag`` for S3, ``etag`` for Azure and Google Cloud
    Storage), quotes kept."""
    value = info.get("ETag") or info.get("etag")
    return None if value is None else str(value)


def version(info: dict[str, Any]) -> str | None:
    """What a conditional write names to replace exactly this object: Google Cloud Storage's
    ``generation`` (its conditions take generations), else the ETag (:func:`etag`)."""
    generation = info.get("generation")
    return str(generation) if generation not in (None, "") else etag(info)


def last_modified(info: dict[str, Any]) -> Any:
    """An object's last modification (the server's clock) from its listing entry: a datetime for
    S3, Azure and Google Cloud Storage (gcsfs's ``mtime``)."""
    return info.get("LastModified") or info.get("last_modified") or info.get("mtime")


def join(url: str, *parts: str) -> str:
    """``url/part/...``."""
    return "/".join([url.rstrip("/"), *(p.strip("/") for p in parts if p)])


_FS: dict[tuple[str, int, str], AbstractFileSystem] = {}


def filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """The filesystem of ``url`` (credentials from the environment) and the path within it.

    One client per protocol, thread and set of ``AWS_*`` variables; its listing cache is cleared
    on every call, as other machines may have changed the bucket.
    """
    proto = protocol(url) or "file"
    env = hashlib.sha256("\0".join(os.environ.get(k, "") for k in _ENV).encode()).hexdigest()
    key = (proto, threading.get_ident(), env)
    fs = _FS.get(key)
    if fs is None:
        if len(_FS) >= 32:  # threads come and go
            _FS.clear()
        fs = _FS[key] = fsspec.filesystem(proto, skip_instance_cache=True)
    fs.invalidate_cache()
    return fs, fs._strip_protocol(url).rstrip("/")


def fetch(url: str, folder: Path) -> FetchedPath:
    """A local copy of the object at ``url`` under ``folder``, with the objects beside it sharing
    its stem (shapefile parts, ``.aux.xml``, world files); an object is downloaded again only when
    its ETag or size changed. :class:`ValueError` if there is no such object."""
    fs, path = filesystem(url)
    parent, _, name = path.rpartition("/")
    info = _object_info(url)
    stem = Path(name).stem + "."
    wanted = [i for i in fs.ls(parent, detail=True)
              if i.get("type") == "file" and i["name"].rpartition("/")[2].startswith(stem)]
    wanted = wanted or [info]
    local = folder / hashlib.sha256(join(protocol(url) or "", parent).encode()).hexdigest()[:16]
    local.mkdir(parents=True, exist_ok=True)
    state_file = local / _FETCHED
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = {}
    for item in wanted:
        base = item["name"].rpartition("/")[2]
        token = f"{etag(item) or fs.ukey(item['name'])}:{item['size']}"
        target = local / base
        if state.get(base) == token and target.is_file() and target.stat().st_size == item["size"]:
            continue
        with replacing(target) as tmp:
            fs.get_file(item["name"], str(tmp))
        state[base] = token
        write_text(state_file, json.dumps(state, indent=1, sort_keys=True))
    return FetchedPath.of(local / name, url)


def here(path: Path) -> Path:
    """A file of the run, readable where this runs: ``path`` when it is there; an input fetched
    from a bucket fetched again into this machine's temporary folder when it is not (a worker that
    shares no disk with the flow's work folder)."""
    if isinstance(path, FetchedPath) and path.url and not path.exists():
        import tempfile

        return fetch(path.url, Path(tempfile.gettempdir()) / "ecodask-fetched")
    return path


def _object_info(url: str) -> dict[str, Any]:
    """The listing entry of the object at ``url``; :class:`ValueError` if it is not one."""
    fs, path = filesystem(url)
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise ValueError("no such object") from None
    if info.get("type") != "file":
        raise ValueError("not a file (an object prefix?)")
    return info


def locate(url: str) -> RemotePath:
    """The object at ``url`` as a :class:`RemotePath` (one HEAD request, nothing downloaded);
    :class:`ValueError` if there is no such object."""
    _object_info(url)
    return RemotePath.of(url)


def stamp(url: str) -> tuple[str, str, int]:
    """What identifies an object's bytes without reading them: its URL, ETag (or the protocol's
    version key) and size (one HEAD request)."""
    fs, path = filesystem(url)
    info = _object_info(url)
    return url, str(etag(info) or fs.ukey(path)), int(info["size"])


def checksum(url: str, algorithm: str = "blake2b") -> str:
    """``algorithm:hexdigest`` of the object's bytes, read in a stream of 4 MiB requests and kept
    nowhere: the same value :func:`ecodask.io.provenance.file_checksum` gives a local copy."""
    fs, path = filesystem(url)
    h = hashlib.new(algorithm)
    with fs.open(path, "rb", block_size=1 << 22, cache_type="none") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return f"{algorithm}:{h.hexdigest()}"


#: Bytes a raster task asks for at a time from an object read through fsspec (not S3's: GDAL reads
#: those itself): each ranged request reads this much
#: beyond what GDAL asked for, so that the next tiles of a tile row, which follow in the file, come
#: with it. A 4096-px window of a COG of 512-px tiles holds 8 runs of 8 tiles (~0.1 MB each at 20:1
#: compression): about one request a run. Larger blocks save no requests there, only add bytes.
READ_BLOCK = 1 << 18


class _Reader:
    """An object opened for reading, equal only to itself. rasterio keeps the files its opener
    opened in a dict that the threads of a Dask worker share, while fsspec's files of one object
    compare (and hash) equal: two tasks reading one object at once would close each other's file.
    This wrapper keys each open by identity."""

    def __init__(self, file: Any) -> None:
        self._file = file

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other


class _Object:
    """rasterio's view of one object, as the filesystem an opener may be (``open``, ``isfile``,
    ``isdir``, ``ls``, ``modified``, ``rm``, ``size``; rasterio is not imported here): it opens that
    object (:class:`_Reader`, ranged requests reading :data:`READ_BLOCK` ahead) and knows no other
    path. rasterio checks an opener by asking the size of ``test/test``, which a real filesystem
    would turn into requests to a bucket named ``test``, someone else's: here it is a
    :class:`FileNotFoundError` without a request."""

    def __init__(self, fs: AbstractFileSystem, path: str) -> None:
        self._fs, self._path = fs, path

    def _mine(self, path: str) -> bool:
        return self._fs._strip_protocol(str(path)).rstrip("/") == self._path

    def open(self, path: str, mode: str = "rb", **kwds: Any) -> _Reader:  # noqa: D102
        if not self._mine(path) or "r" not in mode:
            raise FileNotFoundError(path)
        return _Reader(self._fs.open(self._path, "rb", block_size=READ_BLOCK, cache_type="readahead"))

    def isfile(self, path: str) -> bool:  # noqa: D102
        return self._mine(path)

    def isdir(self, path: str) -> bool:  # noqa: D102
        return False

    def ls(self, path: str) -> list[str]:  # noqa: D102
        return []

    def modified(self, path: str) -> Any:  # noqa: D102 - rasterio then takes 0
        raise NotImplementedError

    def rm(self, path: str) -> None:  # noqa: D102
        raise PermissionError(f"{path}: an input is read only")

    def size(self, path: str) -> int:  # noqa: D102
        if not self._mine(path):
            raise FileNotFoundError(path)
        return int(self._fs.size(self._path))


def rasterio_options(path: str | Path) -> dict[str, Any]:
    """The keyword arguments of ``rasterio.open`` for ``path``: for an object URL an ``opener``
    bound to that object (:class:`_Object`: ranged requests reading :data:`READ_BLOCK` bytes ahead,
    GDAL asking for the header and the tiles a window needs), else none."""
    url = str(path)
    if not is_remote(url):
        return {}
    fs, stripped = filesystem(url)
    return {"opener": _Object(fs, stripped)}


#: Protocols whose raster objects GDAL reads itself, and its prefix for them.
GDAL_PREFIXES = {"s3": "/vsis3/", "s3a": "/vsis3/", "az": "/vsiaz/", "abfs": "/vsiaz/", "gs": "/vsigs/",
                 "gcs": "/vsigs/"}


def _gs_anonymous() -> bool:
    """Whether gcsfs is told to use no credentials (``token: anon``, e.g. ``FSSPEC_GS_TOKEN=anon``)."""
    return str(fsspec.config.conf.get("gs", {}).get("token") or os.environ.get("FSSPEC_GS_TOKEN")) == "anon"


def _gdal_credentials(proto: str) -> bool:
    """Whether GDAL's own client of ``proto`` finds the credentials the fsspec library would use: for
    S3 always (the same ``AWS_*`` variables and profiles); for Azure a connection string, or an
    account name with its key or a SAS token (a service principal is adlfs's only); for Google Cloud
    Storage a key file in ``GOOGLE_APPLICATION_CREDENTIALS``, or a local server with no credentials
    (another of Google's default credentials, gcsfs's only)."""
    env = os.environ
    if proto in AZURE_PROTOCOLS:
        return bool(env.get("AZURE_STORAGE_CONNECTION_STRING") or (
            env.get("AZURE_STORAGE_ACCOUNT_NAME")
            and (env.get("AZURE_STORAGE_ACCOUNT_KEY") or env.get("AZURE_STORAGE_SAS_TOKEN"))))
    if proto in GCS_PROTOCOLS:
        return bool(env.get("GOOGLE_APPLICATION_CREDENTIALS") or (env.get("STORAGE_EMULATOR_HOST")
                                                                  and _gs_anonymous()))
    return proto in S3_PROTOCOLS


def gdal_path(path: str | Path) -> str | None:
    """The GDAL path (``/vsis3/bucket/key``, ``/vsiaz/container/blob``, ``/vsigs/bucket/key``) of an
    object URL GDAL reads itself with the credentials of the environment, else None."""
    url = str(path)
    proto = protocol(url) or ""
    prefix = GDAL_PREFIXES.get(proto)
    if not (prefix and is_remote(url) and _gdal_credentials(proto)):
        return None
    return prefix + url.split("://", 1)[1]


#: GDAL's limits on one request, in seconds, a variable of the environment of the same name in their
#: place: a connection not made in 30 s, or a request not answered in whole in 120 s (a server that
#: accepted it and stalls), is given up and retried like a 5xx. Without them a stalled connection
#: holds a worker's read for good: curl waits forever by default. (GDAL retries curl's "timed out",
#: not the "too slow" of ``GDAL_HTTP_LOW_SPEED_TIME``, which would end the read as an error.) A
#: request asks for a few tiles of one window, so 120 s gives up only on a stall, not a slow link.
HTTP_TIMEOUTS = {"GDAL_HTTP_CONNECTTIMEOUT": "30", "GDAL_HTTP_TIMEOUT": "120"}


def gdal_config(proto: str = "s3") -> dict[str, str]:
    """GDAL's configuration for reading objects of ``proto`` itself. Every protocol: answers 429
    and 5xx (SlowDown, InternalError) retried up to 8 times, 0.5 s apart at first and twice as long
    each time, and so are connections that fail or stall (:data:`HTTP_TIMEOUTS`); the object's
    folder never listed on open (no ``.aux.xml`` or ``.ovr`` looked for
    beside it). S3: from the same ``AWS_*`` environment botocore reads (credentials, session token
    and region GDAL takes from the environment as they are), the endpoint (``AWS_ENDPOINT_URL_S3``
    or ``AWS_ENDPOINT_URL``) as ``AWS_S3_ENDPOINT`` with ``AWS_HTTPS`` and path-style addressing.
    Azure: adlfs's account name and key as GDAL's ``AZURE_STORAGE_ACCOUNT`` and
    ``AZURE_STORAGE_ACCESS_KEY`` (a connection string and a SAS token GDAL reads as they are).
    Google Cloud Storage: a local server (``STORAGE_EMULATOR_HOST``) as ``CPL_GS_ENDPOINT``, and no
    signing where gcsfs uses no credentials."""
    env = os.environ
    out = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_HTTP_MAX_RETRY": "8",
           "GDAL_HTTP_RETRY_DELAY": "0.5"}
    out |= {name: env.get(name, default) for name, default in HTTP_TIMEOUTS.items()}
    if proto in AZURE_PROTOCOLS:
        if env.get("AZURE_STORAGE_ACCOUNT_NAME") and not env.get("AZURE_STORAGE_CONNECTION_STRING"):
            out["AZURE_STORAGE_ACCOUNT"] = env["AZURE_STORAGE_ACCOUNT_NAME"]
            if env.get("AZURE_STORAGE_ACCOUNT_KEY"):
                out["AZURE_STORAGE_ACCESS_KEY"] = env["AZURE_STORAGE_ACCOUNT_KEY"]
        return out
    if proto in GCS_PROTOCOLS:
        if env.get("STORAGE_EMULATOR_HOST"):
            host = env["STORAGE_EMULATOR_HOST"]
            out["CPL_GS_ENDPOINT"] = (host if "://" in host else f"http://{host}").rstrip("/") + "/"
        if _gs_anonymous():
            out["GS_NO_SIGN_REQUEST"] = "YES"
        return out
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        parts = urlsplit(endpoint)
        out |= {"AWS_S3_ENDPOINT": parts.netloc + parts.path.rstrip("/"),
                "AWS_HTTPS": "YES" if parts.scheme == "https" else "NO", "AWS_VIRTUAL_HOSTING": "FALSE"}
    return out


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def content_md5(info: dict[str, Any]) -> str | None:
    """The MD5 (hex) of an object's bytes where its listing gives one: S3's plain ETag, Azure's
    ``content_md5``, Google Cloud Storage's ``md5Hash`` (base64); None otherwise (S3 multipart
    uploads, composite objects, other protocols)."""
    tag = str(etag(info) or "").strip('"')
    if _MD5.match(tag):
        return tag
    if info.get("md5Hash"):
        import base64

        return base64.b64decode(info["md5Hash"]).hex()
    digest = (info.get("content_settings") or {}).get("content_md5")
    return bytes(digest).hex() if digest else None


def _same(local: Path, info: dict[str, Any] | None) -> bool:
    """Whether a local file holds the remote object's bytes: same size and MD5 (:func:`content_md5`);
    when the store gives no MD5 the file counts as changed."""
    if info is None or not local.is_file() or local.stat().st_size != info.get("size"):
        return False
    md5 = content_md5(info)
    return md5 is not None and _md5(local) == md5


def _local_files(local: Path) -> dict[str, Path]:
    if local.is_dir():
        return {f.relative_to(local).as_posix(): f for f in sorted(local.rglob("*")) if f.is_file()}
    return {"": local} if local.is_file() else {}


def _remote_files(fs: AbstractFileSystem, root: str) -> dict[str, dict[str, Any]]:
    """Files at ``root`` by path relative to it (``""``: ``root`` is itself a file)."""
    try:
        found = fs.find(root, detail=True)
    except FileNotFoundError:
        return {}
    if isinstance(found, list):  # adlfs answers a list of names where ``root`` is a blob
        found = {name: fs.info(name) for name in found}
    out = {}
    for name, info in found.items():
        name = name.rstrip("/")
        if name == root:
            out[""] = info
        elif name.startswith(root + "/"):
            out[name[len(root) + 1:]] = info
    return out


def entries(url: str) -> dict[str, dict[str, Any]]:
    """The listing entry of every object under the prefix ``url``, by path relative to it (``""``:
    ``url`` is itself an object), from one LIST request per 1,000 objects (no content read); ``{}``
    when there is none."""
    fs, root = filesystem(url)
    return _remote_files(fs, root)


def record(info: dict[str, Any]) -> tuple[int, str]:
    """What a manifest records of an object: its size (bytes) and ETag (unquoted)."""
    return int(info["size"]), str(etag(info) or "").strip('"')


def listing(url: str) -> dict[str, tuple[int, str]]:
    """Size (bytes) and ETag of every object under the prefix ``url``, by path relative to it
    (:func:`entries`, :func:`record`)."""
    return {rel: record(info) for rel, info in entries(url).items()}


#: Objects read at once by :func:`misread`, and their bytes at most (held together; an object
#: larger than that is read alone).
READ_BATCH = 256
READ_BATCH_BYTES = 256 * 2**20


def misread(url: str, found: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Read back the objects ``found`` under ``url`` (relative paths with their :func:`entries`
    entries; one GET each, in batches: :func:`_batches`) and compare each one's bytes with the MD5
    the store recorded when it was uploaded (:func:`content_md5`). Return what is wrong, by path:
    bytes that differ from that MD5 (corrupted at rest or on the way), or a read that failed (the
    client's own check of a stored checksum included: S3 clients compare the CRC the server
    recorded at upload). An object without a recorded MD5 (an S3 multipart upload) is read but
    its bytes cannot be compared."""
    fs, root = filesystem(url)
    wrong: dict[str, str] = {}
    for batch in _batches(sorted(found), {rel: int(found[rel].get("size") or 0) for rel in found}):
        data = fs.cat([_join_path(root, rel) for rel in batch], on_error="return")
        for rel in batch:
            got = data.get(_join_path(root, rel))
            md5 = content_md5(found[rel])
            if not isinstance(got, bytes):
                wrong[rel] = f"could not be read back ({type(got).__name__}: {str(got)[:120]})"
            elif md5 is not None and hashlib.md5(got, usedforsecurity=False).hexdigest() != md5:
                wrong[rel] = "its bytes differ from the MD5 the store recorded"
    return wrong


def _batches(rels: list[str], sizes: dict[str, int]) -> list[list[str]]:
    """``rels`` in order, cut into batches of at most :data:`READ_BATCH` objects and
    :data:`READ_BATCH_BYTES` bytes (an object larger than that alone)."""
    out: list[list[str]] = []
    batch: list[str] = []
    held = 0
    for rel in rels:
        if batch and (len(batch) == READ_BATCH or held + sizes[rel] > READ_BATCH_BYTES):
            out.append(batch)
            batch, held = [], 0
        batch.append(rel)
        held += sizes[rel]
    return [*out, batch] if batch else out


def _join_path(root: str, rel: str) -> str:
    return f"{root}/{rel}" if rel else root


def sync_up(local: Path, url: str) -> int:
    """Make ``url`` a copy of ``local`` (a file or a folder): upload the files whose size or MD5
    differ, delete remote files under ``url`` that no longer exist locally; return the number of
    files uploaded."""
    fs, root = filesystem(url)
    files = _local_files(local)
    if not files:
        raise FileNotFoundError(f"nothing to publish at {local}")
    remote = _remote_files(fs, root)
    put = [rel for rel, f in files.items() if not _same(f, remote.get(rel))]
    if put:
        fs.put([str(files[r]) for r in put], [_join_path(root, r) for r in put])
    stale = [_join_path(root, rel) for rel in remote if rel not in files]
    if stale:
        fs.rm(stale)
    return len(put)


def sync_down(url: str, local: Path) -> int:
    """Make ``local`` a copy of the file or folder at ``url``: download what differs, delete local
    files that are not there; return the number of files downloaded."""
    fs, root = filesystem(url)
    remote = _remote_files(fs, root)
    if not remote:
        raise FileNotFoundError(f"nothing at {url}")
    if "" in remote:
        files = {"": local}
        remote = {"": remote[""]}
    else:
        files = {rel: local / rel for rel in remote}
        for rel, f in _local_files(local).items():
            if rel not in remote:
                f.unlink()
    get = [rel for rel, f in files.items() if not _same(f, remote[rel])]
    for rel in get:
        files[rel].parent.mkdir(parents=True, exist_ok=True)
        files[rel].unlink(missing_ok=True)  # a new file: never write into one a link shares
    if get:
        fs.get([_join_path(root, r) for r in get], [str(files[r]) for r in get])
    return len(get)


def exists(url: str) -> bool:
    """Whether an object (or an object prefix) exists at ``url``."""
    fs, path = filesystem(url)
    return bool(fs.exists(path))


def read_json(url: str) -> Any:
    """The JSON document at ``url``; None if there is none or it is not JSON."""
    fs, path = filesystem(url)
    try:
        return json.loads(fs.cat_file(path))
    except (FileNotFoundError, ValueError):
        return None


def put_file(local: Path, url: str) -> None:
    """Upload one file."""
    fs, path = filesystem(url)
    fs.put_file(str(local), path)


def put_json(obj: Any, url: str) -> None:
    """Write ``obj`` as indented JSON to ``url`` (one PUT, or a local file written and renamed into
    place: readers see all of it or nothing)."""
    if not is_remote(url):
        write_json(obj, url, sort_keys=True)
        return
    fs, path = filesystem(url)
    fs.pipe_file(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def remove(url: str) -> None:
    """Delete the object at ``url`` if there is one."""
    fs, path = filesystem(url)
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        pass




def remove_tree(url: str, keep: str | None = None) -> int:
    """Delete every object under the prefix ``url`` but those under ``url/keep`` (one LIST per
    1,000 objects, one DELETE request per 1,000); return how many were deleted."""
    fs, root = filesystem(url)
    kept = keep.strip("/") + "/" if keep else None
    files = [_join_path(root, rel) for rel in _remote_files(fs, root) if not (kept and rel.startswith(kept))]
    if files:
        fs.rm(files)
    return len(files)

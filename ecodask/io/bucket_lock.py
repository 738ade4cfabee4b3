"""One run at a time per remote output: a lease on the object ``<output URL>/.ecodask/lock``.

A bucket has no ``flock``, and a run's machines share no disk, so the lock is an object. It is
created with a conditional PUT (``If-None-Match: *``: the server refuses it when the object exists,
so of two runs starting at once exactly one gets it) and says who holds it (user, host, pid, start
time, command). Its holder renews it every ``lease_s / 4`` seconds with a PUT conditional on the
ETag it last wrote (``If-Match``). A lock the server last modified more than ``lease_s`` seconds ago
(its clock, ``LastModified``, against this machine's) is a dead holder's, a killed run's, and so is
one whose holder ran on this machine under a pid that no longer exists: the next run takes it over
with a PUT conditional on that ETag, so of two takers one wins. A holder whose
renewal is refused has lost its lock (it stalled past its lease and another run took over):
:func:`check` then raises before its next write to the bucket. Released with a DELETE
conditional on its ETag. A process that holds the lock may take it again (the command line, then
its flow): it is released when the outermost holder lets go.

S3 and the servers that follow its conditional writes (MinIO, moto, Ceph, R2), Azure Blob Storage
(``az://``: the same conditions as the blob service's ``If-None-Match`` / ``If-Match`` headers,
through adlfs's own client and credentials) and Google Cloud Storage (``gs://``: its JSON API's
``ifGenerationMatch``, 0 for "no object yet", else the generation last written, which stands for the
ETag here; through gcsfs's own client and credentials).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ecodask.io import objstore
from ecodask.io.lock import OutputLockedError, describe_holder

LOCK = ".ecodask/lock"
#: Seconds without a renewal after which a lock is a dead holder's.
LEASE_S = 60.0

log = logging.getLogger(__name__)


def _refused(exc: BaseException) -> bool:
    """Whether an error of the S3 or Azure client is the server refusing a condition (HTTP 412; 409
    BlobAlreadyExists for Azure's create-if-absent)."""
    while exc is not None:
        response = getattr(exc, "response", None)
        if isinstance(response, dict):
            error = response.get("Error", {})
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if error.get("Code") in ("PreconditionFailed", "ConditionalRequestConflict") or status == 412:
                return True
        if getattr(exc, "error_code", None) in ("BlobAlreadyExists", "ConditionNotMet"):  # Azure
            return True
        if getattr(exc, "code", None) == 412:  # Google Cloud Storage (gcsfs's HttpError)
            return True
        if isinstance(exc, FileExistsError) or "pre-condition" in str(exc):
            return True
        exc = exc.__cause__
    return False


async def _gcs_upload(fs: Any, bucket: str, key: str, body: bytes, generation: str) -> dict[str, Any]:
    """One multipart upload to Google Cloud Storage's JSON API, on condition that the object's
    generation is ``generation`` (``"0"``: that there is none); its answer (the object's resource)."""
    from urllib.parse import quote

    meta = json.dumps({"name": key, "contentType": "application/json"})
    data = (f"--==lock==\nContent-Type: application/json; charset=UTF-8\n\n{meta}\n--==lock==\n"
            "Content-Type: application/json\n\n").encode() + body + b"\n--==lock==--"
    return await fs._call("POST", f"{fs._location}/upload/storage/v1/b/{quote(bucket)}/o",
                          uploadType="multipart", ifGenerationMatch=generation, data=data, json_out=True,
                          headers={"Content-Type": 'multipart/related; boundary="==lock=="'})


def _azure_blob(fs: Any, bucket: str, key: str) -> Any:
    """adlfs's (async) client of one blob, with the filesystem's credentials."""
    return fs.service_client.get_blob_client(bucket, key)


def conditional_put(url: str, body: bytes, if_none_match: bool = False, if_match: str | None = None) -> str:
    """PUT ``body`` at ``url`` only if no object is there (``if_none_match``) or only if the object's
    version (:func:`ecodask.io.objstore.version`: the ETag, Google's generation) is ``if_match``;
    returns the new version. A refused condition raises the client's error (:func:`_refused` tells
    it)."""
    fs, path = objstore.filesystem(url)
    bucket, _, key = path.partition("/")
    if objstore.protocol(url) in objstore.GCS_PROTOCOLS:
        from fsspec.asyn import sync

        generation = "0" if if_none_match else if_match
        if generation is None:
            raise ValueError("a lock is written on a condition: if_none_match or if_match")
        return str(sync(fs.loop, _gcs_upload, fs, bucket, key, body, generation)["generation"])
    if objstore.protocol(url) in objstore.AZURE_PROTOCOLS:
        from azure.core import MatchConditions
        from fsspec.asyn import sync

        cond: dict[str, Any] = {"overwrite": not if_none_match}
        if if_match is not None:
            cond |= {"etag": if_match, "match_condition": MatchConditions.IfNotModified}
        answer = sync(fs.loop, _azure_blob(fs, bucket, key).upload_blob, body, **cond)
        return str(answer["etag"])
    condition = {"IfNoneMatch": "*"} if if_none_match else {"IfMatch": if_match} if if_match else {}
    answer = fs.call_s3("put_object", Bucket=bucket, Key=key, Body=body, ContentType="application/json",
                        **condition)
    return str(answer["ETag"])


def conditional_delete(url: str, if_match: str) -> None:
    """DELETE the object at ``url`` only if its version (the ETag, Google's generation) is
    ``if_match``."""
    fs, path = objstore.filesystem(url)
    bucket, _, key = path.partition("/")
    if objstore.protocol(url) in objstore.GCS_PROTOCOLS:
        from fsspec.asyn import sync

        sync(fs.loop, fs._call, "DELETE", "b/{}/o/{}", bucket, key, ifGenerationMatch=if_match)
        return
    if objstore.protocol(url) in objstore.AZURE_PROTOCOLS:
        from azure.core import MatchConditions
        from fsspec.asyn import sync

        sync(fs.loop, _azure_blob(fs, bucket, key).delete_blob, etag=if_match,
             match_condition=MatchConditions.IfNotModified)
        return
    fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=if_match)


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Lease:
    """The lock object of one remote output, held by this process and renewed by a thread."""

    def __init__(self, url: str, lease_s: float) -> None:
        self.url = url
        self.lease_s = lease_s
        self.etag: str | None = None
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.info = {"user": getpass.getuser(), "host": socket.gethostname(), "pid": os.getpid(),
                     "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                     "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300],
                     "lease_s": lease_s}

    def _put(self, if_none_match: bool = False, if_match: str | None = None) -> str:
        body = json.dumps(self.info | {"renewed": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
        return conditional_put(self.url, body.encode(), if_none_match, if_match)

    def holder(self) -> tuple[dict[str, Any], str | None, float]:
        """What the lock object says of its holder, its version (:func:`objstore.version`) and its
        age in seconds (server's last modification against this clock); ``({}, None, 0)`` when there
        is none."""
        fs, path = objstore.filesystem(self.url)
        try:
            info = fs.info(path)
            text = fs.cat_file(path)
        except FileNotFoundError:
            return {}, None, 0.0
        try:
            doc = json.loads(text)
        except ValueError:
            doc = {}
        modified = objstore.last_modified(info)
        age = ((dt.datetime.now(dt.UTC) - modified).total_seconds() if isinstance(modified, dt.datetime)
               else 0.0)
        return doc if isinstance(doc, dict) else {}, objstore.version(info), age

    def try_take(self) -> str | None:
        """Take the lock (True) if it is free or a dead holder's; else a description of its holder."""
        try:
            self.etag = self._put(if_none_match=True)
            return None
        except Exception as exc:  # noqa: BLE001 - a refusal is the answer; anything else is raised
            if not _refused(exc):
                raise
        doc, etag, age = self.holder()
        if etag is None:
            return "a run that has just released it"  # gone between the two requests: try again
        dead = (doc.get("host") == socket.gethostname() and isinstance(doc.get("pid"), int)
                and not _alive(doc["pid"]))
        if age > self.lease_s or dead:
            try:
                self.etag = self._put(if_match=etag)
                log.warning("%s: took over the lock of a run %s (%s)", self.url,
                            "gone from this machine" if dead else f"not heard from for {age:.0f} s",
                            describe_holder(doc))
                return None
            except Exception as exc:  # noqa: BLE001
                if not _refused(exc):
                    raise
                return "another run taking over a stale lock at the same time"
        return f"{describe_holder(doc)}, renewed {age:.0f} s ago"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._renew, name="ecodask-bucket-lock", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_s / 4):
            try:
                self.etag = self._put(if_match=self.etag)
            except Exception as exc:  # noqa: BLE001 - lost, or a network fault (tried again next time)
                if _refused(exc):
                    self.lost.set()
                    log.error("%s: this run's lock was taken over by another run", self.url)
                    return
                log.warning("%s: could not renew the lock (%s); trying again", self.url, exc)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.lost.is_set() or self.etag is None:
            return
        try:
            conditional_delete(self.url, self.etag)
        except Exception as exc:  # noqa: BLE001 - taken over meanwhile: not ours to delete
            if not _refused(exc):
                log.warning("%s: could not remove the lock (%s); the next run takes it over after %.0f s",
                            self.url, exc, self.lease_s)


_held: dict[str, list] = {}  # lock URL -> [lease, depth]
_guard = threading.Lock()


def lock_url(output_url: str) -> str:
    """The lock object's URL of the remote output ``output_url``."""
    return objstore.join(output_url, LOCK)


@contextlib.contextmanager
def bucket_lock(output_url: str, wait_s: float = 0.0, lease_s: float = LEASE_S,
                poll_s: float = 0.5) -> Iterator[str]:
    """Hold the lock of the remote output ``output_url`` for the block (see the module's text);
    wait up to ``wait_s`` seconds for another run to finish or its lease to run out, then raise
    :class:`~ecodask.io.lock.OutputLockedError` naming the lock and its holder."""
    url = lock_url(output_url)
    with _guard:
        if url in _held:
            _held[url][1] += 1
            reentered = True
        else:
            reentered = False
    if not reentered:
        lease = _Lease(url, lease_s)
        deadline = time.monotonic() + max(wait_s, 0.0)
        while (busy := lease.try_take()) is not None:
            if time.monotonic() >= deadline:
                raise OutputLockedError(
                    f"{url}: the output is in use by another ecodask run, {busy}; wait for it to finish "
                    f"(or --wait SECONDS), or stop it (a stopped run's lock is taken over {lease_s:.0f} s "
                    "after its last renewal)")
            time.sleep(poll_s)
        lease.start()
        with _guard:
            _held[url] = [lease, 1]
    try:
        yield url
    finally:
        with _guard:
            _held[url][1] -= 1
            last = _held[url][1] == 0
            lease = _held.pop(url)[0] if last else None
        if lease is not None:
            lease.release()


def check(output_url: str | None) -> None:
    """Raise :class:`~ecodask.io.lock.OutputLockedError` if this process held the lock of the
    remote output ``output_url`` and lost it (before writing there); nothing otherwise."""
    if output_url is None:
        return
    url = lock_url(output_url)
    with _guard:
        held = _held.get(url)
    if held is not None and held[0].lost.is_set():
        raise OutputLockedError(f"{url}: this run's lock was taken over by another run (this one stalled "
                                f"past its lease of {held[0].lease_s:.0f} s): stopped before writing more")

"""A local S3 server for the tests: moto's S3 on a free localhost port, behind a WSGI layer that
counts what it answers (requests by kind, bytes sent in GET answers, bytes received in PUTs), so
that a test can check what a run asked of the bucket, not only what ended there, and that can
answer a share of the requests with the errors S3 gives under load (:meth:`S3Server.faults`)."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest


def request_kind(environ: dict[str, Any]) -> str:
    """The S3 operation of a request, coarsely: LIST, COPY, DELETE (multi-object), else its method."""
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING", "")
    if method == "GET" and (path.strip("/").count("/") == 0 or "list-type" in query):
        return "LIST"
    if method == "PUT" and environ.get("HTTP_X_AMZ_COPY_SOURCE"):
        return "COPY"
    if method == "POST" and "delete" in query:
        return "DELETE"
    return method


class S3Server:
    """moto's S3 in a thread of this process, counting (:meth:`counts`) what it answers."""

    def __init__(self) -> None:
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        self._inner = DomainDispatcherApplication(create_backend_app)
        self._counts: Counter = Counter()
        self._lock = threading.Lock()
        self._fault_share = 0.0
        self._fault_draw = random.Random(0)
        self._put_delay_s = 0.0
        self._stalls = 0
        self._released = threading.Event()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True, request_handler=Quiet)
        self._thread = threading.Thread(target=self._server.serve_forever, name="s3-server", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def counts(self, reset: bool = False) -> Counter:
        """Requests by kind (:func:`request_kind`) and by bucket (``bucket <name>``), ``bytes_got``
        (sent in answers to GETs) and ``bytes_put`` (received in PUTs) since the last reset."""
        with self._lock:
            out = Counter(self._counts)
            if reset:
                self._counts.clear()
        return out

    def faults(self, share: float, seed: int = 0) -> None:
        """From now on answer ``share`` (0..1; 0 stops) of the requests, drawn at random with
        ``seed``, with an error in place of moto: in turn ``503 SlowDown`` (S3's answer to too
        many requests) and ``500 InternalError``; nothing reaches the bucket. Counted as
        ``faults``."""
        with self._lock:
            self._fault_share = share
            self._fault_draw = random.Random(seed)

    def slow_puts(self, seconds: float) -> None:
        """From now on answer each PUT ``seconds`` later (0 stops): writes take a while, so that a
        test can act while they are under way."""
        self._put_delay_s = float(seconds)

    def stall_reads(self, count: int) -> None:
        """From now on hold the next ``count`` ranged GETs (reads of part of an object) without an
        answer until the server stops: a connection that stalls, which only the client's own
        timeout ends. Counted as ``stalled``."""
        with self._lock:
            self._stalls = int(count)

    def _stall(self, environ: dict[str, Any]) -> bool:
        with self._lock:
            if not self._stalls or "HTTP_RANGE" not in environ:
                return False
            self._stalls -= 1
            self._counts["stalled"] += 1
        return True

    def rot(self, bucket: str, key: str) -> None:
        """Flip one byte of the object ``key`` where the server keeps it, its size and the ETag
        (MD5) it recorded at upload left as they were: bit rot at rest, which no listing shows and
        only reading the object back finds."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        obj = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_object(bucket, key)
        recorded = obj.etag  # moto computes it from the bytes on first use: now, before they rot
        data = bytearray(obj.value)
        data[len(data) // 2] ^= 0xFF
        obj.value = bytes(data)
        assert obj.etag == recorded and obj.contentsize == len(data)

    def _fault(self) -> tuple[str, bytes] | None:
        with self._lock:
            if not self._fault_share or self._fault_draw.random() >= self._fault_share:
                return None
            self._counts["faults"] += 1
            n = self._counts["faults"]
        status, code = (("503 Slow Down", "SlowDown") if n % 2
                        else ("500 Internal Server Error", "InternalError"))
        body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                f"<Message>injected by the test server</Message></Error>").encode()
        return status, body

    def _app(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        kind = request_kind(environ)
        bucket = environ.get("PATH_INFO", "").strip("/").split("/", 1)[0]
        with self._lock:
            self._counts[kind] += 1
            self._counts[f"bucket {bucket}"] += 1
            if kind == "PUT":
                self._counts["bytes_put"] += int(environ.get("CONTENT_LENGTH") or 0)
        if kind == "PUT" and self._put_delay_s:
            time.sleep(self._put_delay_s)  # a slow bucket (the server's own thread per request)
        if kind == "GET" and self._stall(environ):
            self._released.wait()  # the client gives up first (the server's own thread per request)
            start_response("503 Slow Down", [("Content-Length", "0")])
            return []
        fault = self._fault()
        if fault is not None:
            status, body = fault
            environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))  # the request's body
            start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
            return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]

        def counting_start(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            if kind == "GET" and status.startswith("2"):
                size = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
                with self._lock:
                    self._counts["bytes_got"] += size
            return start_response(status, headers, *rest)

        return self._inner(environ, counting_start)

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._thread.join()


@contextlib.contextmanager
def served_bucket(bucket: str, key_id: str, secret: str, token: str | None = None) -> Iterator[S3Server]:
    """A :class:`S3Server` with the ``AWS_*`` variables of this process (and of the processes it
    starts) pointing at it, no other AWS profile, endpoint or region in the way, and ``bucket``
    made; stopped, and the variables restored, at the end."""
    import s3fs

    from ecodask.io import objstore

    server = S3Server()
    # Clients made for another server of an earlier test (fsspec keeps them by their arguments, and
    # the endpoint comes from the environment): gone, here and at the end.
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_SESSION_TOKEN"):
                mp.delenv(name, raising=False)
            mp.setenv("AWS_ACCESS_KEY_ID", key_id)
            mp.setenv("AWS_SECRET_ACCESS_KEY", secret)
            if token is not None:
                mp.setenv("AWS_SESSION_TOKEN", token)
            mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
            mp.setenv("AWS_ENDPOINT_URL", server.endpoint)
            fs, _ = objstore.filesystem(f"s3://{bucket}")
            fs.mkdir(bucket)
            yield server
    finally:
        server.stop()
        s3fs.S3FileSystem.clear_instance_cache()

"""A reverse proxy that counts what a local object-storage emulator is asked: for the Azure and Google
Cloud Storage emulators, which do not count their own requests as the benchmarks' moto server does.

    python -m benchmarks.counting_proxy --upstream 10000 --port-file PATH [--log PATH]

Every request is forwarded as it came (method, path, headers, body) to ``127.0.0.1:<upstream>`` and the
answer returned as it came; the counts are kept by kind (``PUT`` for every upload request, ``GET``,
``HEAD``, ``LIST`` for a listing, ``DELETE``, ``BATCH`` for Google's batch requests of deletions) with
``bytes_put`` (request bodies of uploads) and ``bytes_got`` (answer bodies of GETs). ``GET`` of
:data:`COUNTS_PATH` answers the counts as JSON; ``DELETE`` of it answers them and starts again from 0.
With ``--log``, one line per request is appended there: kind, method, target, status, bytes.
The proxy adds a hop on localhost (well under a millisecond a request); it does not change what the
clients ask.
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from benchmarks.stage_commit import COUNTS_PATH  # the moto server's: one reader of counts for all three

_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}


def kind(method: str, target: str) -> str:
    """The kind of one request: PUT, GET, HEAD, LIST, DELETE or BATCH."""
    url = urlsplit(target)
    query = parse_qs(url.query)
    parts = [p for p in url.path.split("/") if p]
    if method in ("PUT", "POST", "PATCH"):
        return "BATCH" if parts[:1] == ["batch"] else "PUT"
    if method == "GET":
        # Azure: ?comp=list (with restype=container); Google: /storage/v1/b/<bucket>/o with no object
        if "list" in query.get("comp", []) or (parts[:3] == ["storage", "v1", "b"] and len(parts) == 5
                                               and parts[4] == "o"):
            return "LIST"
        return "GET"
    return method


def serve(upstream: int, port_file: Path, log: Path | None = None) -> None:
    counts: Counter = Counter()
    log_file = open(log, "a", buffering=1) if log else None  # noqa: SIM115 - for the server's life
    lock = threading.Lock()
    local = threading.local()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _answer_counts(self, reset: bool) -> None:
            with lock:
                body = json.dumps(dict(counts)).encode()
                if reset:
                    counts.clear()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes | None:
            """The request's body, sent with a length or in chunks (forwarded with its length)."""
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                parts = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()  # the CRLF after a chunk
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return b"".join(parts)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else None

        def _forward(self) -> None:
            if self.path == COUNTS_PATH and self.command in ("GET", "DELETE"):
                return self._answer_counts(self.command == "DELETE")
            body = self._body()
            length = len(body or b"")
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            if body is not None:
                headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
                headers["Content-Length"] = str(len(body))
            conn = getattr(local, "conn", None)
            for attempt in range(2):  # a kept-alive connection the emulator closed: once more, fresh
                if conn is None:
                    conn = local.conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=300)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    break
                except (http.client.HTTPException, OSError):
                    conn.close()
                    conn = local.conn = None
                    if attempt:
                        raise
            k = kind(self.command, self.path)
            with lock:
                if log_file is not None:
                    size = length or len(data)
                    log_file.write(f"{k}\t{self.command}\t{self.path}\t{resp.status}\t{size}\n")
                counts[k] += 1
                if k == "PUT":
                    counts["bytes_put"] += length
                elif k == "GET":
                    counts["bytes_got"] += len(data)
            self.send_response(resp.status, resp.reason)
            head = self.command == "HEAD"  # its Content-Length is the object's, not of a body
            for name, value in resp.getheaders():
                if name.lower() not in _HOP and (head or name.lower() != "content-length"):
                    self.send_header(name, value)
            if not head:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up on it: its business
                    self.close_connection = True
            return None

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _forward

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            import sys

            if not isinstance(sys.exc_info()[1], ConnectionError):  # a client closing a kept-alive one
                super().handle_error(request, client_address)

    server = Server(("127.0.0.1", 0), Handler)
    port_file.write_text(str(server.server_address[1]))
    server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upstream", type=int, required=True, help="the emulator's port on 127.0.0.1")
    ap.add_argument("--port-file", type=Path, required=True, help="where to write the proxy's port")
    ap.add_argument("--log", type=Path, help="append one line per request here")
    a = ap.parse_args(argv)
    serve(a.upstream, a.port_file, a.log)


if __name__ == "__main__":
    main()

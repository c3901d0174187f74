"""A fault-injecting HTTP/1.1 proxy for S3 clients (stdlib only).

Sits between S3 clients and an S3 endpoint on 127.0.0.1 and, for a fraction of the requests (seeded
RNG), either answers `503 SlowDown` with S3's XML error body or resets the connection (RST, no
answer); every other request is forwarded and its response streamed back. Clients may keep their
connections alive (boto3 does): each client connection gets its own upstream connection, and
request and response bodies are framed by Content-Length or chunked encoding as HTTP/1.1 says.

It runs in background threads of the process that creates it, so other processes (Airflow task
processes, Celery workers) use it through its URL as their S3 endpoint:

    with FaultProxy("http://127.0.0.1:25340", fault_rate=0.0) as proxy:
        env["AIRFLOW_CONN_AWS_DEFAULT"] = ... {"endpoint_url": proxy.url} ...
        proxy.fault_rate = 0.2          # faults on, mid-run if wanted
        ...
        proxy.counts()                  # {"requests", "forwarded", "slowdown", "reset"}

A fault is decided when a whole request has been read, before anything is sent upstream, so a
faulted request never reaches S3 (a retried PUT is not applied twice).
"""

from __future__ import annotations

import random
import socket
import socketserver
import struct
import threading
import uuid
from typing import BinaryIO
from urllib.parse import urlsplit

SLOWDOWN_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
    "<RequestId>{rid}</RequestId></Error>"
)
_MAX_LINE = 65536
_BODYLESS_STATUS = {204, 304}


class _Closed(Exception):
    """The peer closed its side between requests (a normal end of a keep-alive connection)."""


def _read_head(rfile: BinaryIO) -> tuple[bytes, list[tuple[str, str]]]:
    """The start line and headers of a message (without the blank line)."""
    start = rfile.readline(_MAX_LINE)
    if not start:
        raise _Closed
    while start in (b"\r\n", b"\n"):  # tolerated stray CRLF between messages (RFC 9112 2.2)
        start = rfile.readline(_MAX_LINE)
        if not start:
            raise _Closed
    headers = []
    while True:
        line = rfile.readline(_MAX_LINE)
        if not line:
            raise ConnectionError("connection closed inside a message head")
        if line in (b"\r\n", b"\n"):
            return start.rstrip(b"\r\n"), headers
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def _encode_head(start: bytes, headers: list[tuple[str, str]]) -> bytes:
    lines = [start] + [f"{k}: {v}".encode("latin-1") for k, v in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _copy_exact(rfile: BinaryIO, n: int, sink) -> None:
    while n > 0:
        chunk = rfile.read(min(n, 65536))
        if not chunk:
            raise ConnectionError("connection closed inside a message body")
        sink(chunk)
        n -= len(chunk)


def _copy_chunked(rfile: BinaryIO, sink) -> None:
    """Copies a chunked body verbatim (sizes, extensions, trailers), ending after the last CRLF."""
    while True:
        size_line = rfile.readline(_MAX_LINE)
        if not size_line:
            raise ConnectionError("connection closed inside a chunked body")
        sink(size_line)
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while True:  # trailer fields, then the final CRLF
                line = rfile.readline(_MAX_LINE)
                if not line:
                    raise ConnectionError("connection closed inside chunked trailers")
                sink(line)
                if line in (b"\r\n", b"\n"):
                    return
        _copy_exact(rfile, size + 2, sink)  # the chunk and its CRLF


def _copy_body(rfile: BinaryIO, headers: list[tuple[str, str]], sink) -> bool:
    """Copies a message body framed by its headers; False when there is no framing (read to EOF
    only makes sense for responses and is handled by the caller)."""
    te = _header(headers, "Transfer-Encoding")
    if te and "chunked" in te.lower():
        _copy_chunked(rfile, sink)
        return True
    length = _header(headers, "Content-Length")
    if length is not None:
        _copy_exact(rfile, int(length), sink)
        return True
    return False


def _wants_close(version: bytes, headers: list[tuple[str, str]]) -> bool:
    conn = (_header(headers, "Connection") or "").lower()
    return "close" in conn or (version == b"HTTP/1.0" and "keep-alive" not in conn)


class FaultProxy:
    """An HTTP/1.1 proxy to `upstream` ("http://host:port") injecting S3 faults; see the module doc.

    `fault_rate` (0..1) is the fraction of requests faulted, settable at any time; `reset_share` is
    the fraction of faults that are connection resets (the rest are 503 SlowDown). Which requests
    are faulted comes from random.Random(seed): the n-th request has the same fate on every run."""

    def __init__(
        self,
        upstream: str,
        *,
        fault_rate: float = 0.2,
        reset_share: float = 0.5,
        seed: int | str = 0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"upstream must be http://host:port, not {upstream!r}")
        self.upstream = (parts.hostname, parts.port)
        self.fault_rate = fault_rate
        self.reset_share = reset_share
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._counts = {"requests": 0, "forwarded": 0, "slowdown": 0, "reset": 0}
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 128

        self._server = Server((host, port), Handler)
        self.host = host
        self.port: int = self._server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FaultProxy:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name="faultproxy", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ counters

    def counts(self) -> dict[str, int]:
        """Requests seen, and how many were forwarded, answered 503 SlowDown, or reset."""
        with self._lock:
            return dict(self._counts)

    @property
    def forwarded(self) -> int:
        return self.counts()["forwarded"]

    @property
    def slowdowns(self) -> int:
        return self.counts()["slowdown"]

    @property
    def resets(self) -> int:
        return self.counts()["reset"]

    def _decide(self) -> str:
        with self._lock:
            self._counts["requests"] += 1
            if self._rng.random() < self.fault_rate:
                # The kinds are interleaved in proportion rather than drawn (with reset_share 0.5:
                # 503, reset, 503, ...), so a run with a handful of faults has both kinds.
                n = self._counts["slowdown"] + self._counts["reset"]
                share = self.reset_share
                fate = "reset" if int((n + 1) * share) > int(n * share) else "slowdown"
            else:
                fate = "forwarded"
            self._counts[fate] += 1
            return fate

    # ------------------------------------------------------------------ one client connection

    def _serve(self, client: socket.socket) -> None:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        crfile = client.makefile("rb")
        upstream: socket.socket | None = None
        urfile: BinaryIO | None = None
        try:
            while True:
                try:
                    start, headers = _read_head(crfile)
                except _Closed:
                    return
                method, body, close_after, headers = self._read_request(client, crfile, start, headers)
                fate = self._decide()
                if fate != "forwarded":
                    if self._answer_fault(client, fate, close_after):
                        return
                    continue

                request = _encode_head(start, headers) + b"".join(body)
                reused = upstream is not None
                if upstream is None:
                    upstream, urfile = self._connect()
                try:
                    upstream.sendall(request)
                    first = _read_head(urfile)
                except (_Closed, ConnectionError, OSError):
                    if not reused:
                        raise
                    # The upstream closed an idle kept-alive connection before this request reached
                    # it (nothing was answered): a new connection, once, as HTTP clients do.
                    upstream.close()
                    upstream, urfile = self._connect()
                    upstream.sendall(request)
                    first = _read_head(urfile)
                upstream_closes = self._relay_response(method, first, urfile, client)
                if upstream_closes:
                    upstream.close()
                    upstream, urfile = None, None
                if close_after:
                    return
        except (_Closed, ConnectionError, OSError, ValueError):
            return  # the client sees its connection close; botocore retries that like a reset
        finally:
            if upstream is not None:
                upstream.close()
            crfile.close()
            client.close()

    @staticmethod
    def _read_request(
        client: socket.socket, crfile: BinaryIO, start: bytes, headers: list[tuple[str, str]]
    ) -> tuple[bytes, list[bytes], bool, list[tuple[str, str]]]:
        """The rest of a request whose head is read: (method, body chunks, close after, headers)."""
        method, _, rest = start.partition(b" ")
        version = rest.rsplit(b" ", 1)[-1]
        expect = _header(headers, "Expect")
        if expect and expect.lower() == "100-continue":
            # Answered here, so the client sends its body now rather than after its own timeout;
            # the upstream then gets a plain request.
            headers = [(k, v) for k, v in headers if k.lower() != "expect"]
            client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body: list[bytes] = []
        _copy_body(crfile, headers, body.append)  # no framing on a request: no body
        return method, body, _wants_close(version, headers), headers

    @staticmethod
    def _answer_fault(client: socket.socket, fate: str, close_after: bool) -> bool:
        """Answers a faulted request; True when the client connection must end."""
        if fate == "reset":
            # SO_LINGER 0: close() sends RST, the client sees "connection reset by peer".
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return True
        payload = SLOWDOWN_BODY.format(rid=uuid.uuid4().hex).encode()
        head = [
            ("Content-Type", "application/xml"),
            ("Content-Length", str(len(payload))),
            ("Retry-After", "1"),
            ("x-amz-request-id", uuid.uuid4().hex[:16]),
        ]
        if close_after:
            head.append(("Connection", "close"))
        client.sendall(_encode_head(b"HTTP/1.1 503 Slow Down", head) + payload)
        return close_after

    def _connect(self) -> tuple[socket.socket, BinaryIO]:
        sock = socket.create_connection(self.upstream, timeout=300)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, sock.makefile("rb")

    def _relay_response(
        self,
        method: bytes,
        first: tuple[bytes, list[tuple[str, str]]],
        urfile: BinaryIO,
        client: socket.socket,
    ) -> bool:
        """Streams one response (after any 1xx) to the client, starting from its already read
        head `first`; True if the upstream connection cannot be reused afterwards."""
        status_line, headers = first
        while True:
            parts = status_line.split(b" ", 2)
            status = int(parts[1])
            client.sendall(_encode_head(status_line, headers))
            if not 100 <= status < 200:
                break
            status_line, headers = _read_head(urfile)
        upstream_closes = _wants_close(parts[0], headers)
        if method == b"HEAD" or status in _BODYLESS_STATUS:
            return upstream_closes
        if not _copy_body(urfile, headers, client.sendall):
            # Delimited by the server closing the connection: relay to EOF and close both.
            while chunk := urfile.read1(65536):
                client.sendall(chunk)
            raise ConnectionError("response ended by close")
        return upstream_closes

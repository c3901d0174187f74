"""imr_devtools/faultproxy.py on its own, against a stdlib HTTP/1.1 server: framing and keep-alive of
forwarded requests, and the two faults as a client sees them."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from imr_devtools.faultproxy import FaultProxy


class _Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        body = (self.path * 1000).encode()
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 777):
                part = body[i : i + 777]
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "12345")  # of the body a GET would have
        self.end_headers()

    def do_PUT(self) -> None:
        data = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[::-1])


@pytest.fixture
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_forwards_framed_bodies_on_one_kept_alive_connection(upstream) -> None:
    with FaultProxy(upstream, fault_rate=0.0) as proxy:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        conn.connect()
        sock = conn.sock
        for _ in range(2):
            conn.request("GET", "/chunked")
            assert conn.getresponse().read() == b"/chunked" * 1000
            conn.request("GET", "/length")
            assert conn.getresponse().read() == b"/length" * 1000
            conn.request("HEAD", "/length")
            head = conn.getresponse()
            assert head.status == 200 and head.read() == b""
            conn.request("PUT", "/x", body=b"abc" * 5000, headers={"Expect": "100-continue"})
            assert conn.getresponse().read() == (b"abc" * 5000)[::-1]
        assert conn.sock is sock  # http.client reconnects silently: the same socket means kept alive
        conn.close()
        assert proxy.counts() == {"requests": 8, "forwarded": 8, "slowdown": 0, "reset": 0}


def test_faults_as_the_client_sees_them(upstream) -> None:
    with FaultProxy(upstream, fault_rate=1.0, reset_share=0.0) as proxy:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        conn.request("GET", "/length")
        resp = conn.getresponse()
        assert resp.status == 503 and b"<Code>SlowDown</Code>" in resp.read()
        proxy.reset_share = 1.0
        conn.request("GET", "/length")  # the same kept-alive connection
        with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected)):
            conn.getresponse()
        conn.close()
        proxy.fault_rate = 0.0  # turned off at runtime
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        conn.request("GET", "/length")
        assert conn.getresponse().read() == b"/length" * 1000
        conn.close()
        assert (proxy.slowdowns, proxy.resets, proxy.forwarded) == (1, 1, 1)

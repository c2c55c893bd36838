"""Safe image URL fetching against a real local HTTP server (and addresses that must never be contacted).

:class:`ImageServer` is also used by the API and page tests.
"""

from __future__ import annotations

import http.server
import io
import ipaddress
import socket
import threading
import time
from email.utils import formatdate

import numpy as np
import pytest
from PIL import Image

from utils.url_fetch import MAX_PARALLEL_FETCHES, URLFetchError, address_problem, fetch_image

LAST_MODIFIED = 1714550400  # 2024-05-01 08:00:00 UTC


def red_blue_png() -> bytes:
    arr = np.zeros((10, 12, 3), np.uint8)
    arr[:5, :, 0] = 255
    arr[5:, :, 2] = 255
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    png = red_blue_png()

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes = b"", ctype: str | None = None, headers: dict | None = None) -> None:
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: C901 - one branch per test route
        path = self.path.split("?")[0]
        png = self.png
        if path == "/red.png":
            self._send(200, png, "image/png", {"Last-Modified": formatdate(LAST_MODIFIED, usegmt=True)})
        elif path == "/typed.png":
            self._send(200, png, "IMAGE/PNG; charset=binary")
        elif path == "/page.html":
            self._send(200, b"<html>hello</html>", "text/html")
        elif path == "/untyped":
            self._send(200, png)
        elif path == "/big.png":  # declares 50 MB, would send them slowly
            self._send(200, b"", "image/png", {"Content-Length": str(50_000_000)})
        elif path == "/stream.png":  # no length: streams until the connection closes
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            try:
                for _ in range(40):
                    self.wfile.write(b"\0" * 65536)
            except OSError:
                pass
        elif path == "/slow.png":  # one byte every 0.2 s for 10 s
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            try:
                for _ in range(50):
                    self.wfile.write(b"\0")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
        elif path == "/silent":
            time.sleep(5)
        elif path == "/short.png":
            self._send(200, png[:10], "image/png", {"Content-Length": str(len(png))})
        elif path == "/missing":
            self._send(404, b"not here", "text/plain")
        elif path == "/redirect":
            self._send(302, headers={"Location": f"http://127.0.0.1:{self.server.server_port}/red.png"})
        elif path == "/redirect-relative":
            self._send(301, headers={"Location": "red.png"})
        elif path == "/redirect-loop":
            self._send(307, headers={"Location": "/redirect-loop"})
        elif path == "/redirect-metadata":
            self._send(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
        elif path == "/redirect-ftp":
            self._send(302, headers={"Location": "ftp://127.0.0.1/red.png"})
        else:
            self._send(404)


class ImageServer:
    """A real HTTP server on loopback in a thread, serving the routes above."""

    def __init__(self) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.port = self.httpd.server_port
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="image-server", daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class TrickleServer:
    """A real socket server on loopback that answers every request with a status line and then one header byte
    every ``interval`` seconds (a header that never ends), for at most ``give_up`` seconds per connection."""

    HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nX-Slow: "

    def __init__(self, interval: float = 0.2, give_up: float = 15.0) -> None:
        self.interval, self.give_up = interval, give_up
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.connections = 0  # accepted so far
        self.open = 0  # being trickled now
        self.most_open = 0
        threading.Thread(target=self._accept, name="trickle-accept", daemon=True).start()

    def url(self, path: str = "/slow-headers.png") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.open += 1
                self.most_open = max(self.most_open, self.open)
            threading.Thread(target=self._trickle, args=(conn,), name="trickle", daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        end = time.monotonic() + self.give_up
        try:
            conn.recv(65536)  # the request
            for byte in self.HEAD:
                conn.sendall(bytes([byte]))
            while time.monotonic() < end and not self.stop.wait(self.interval):
                conn.sendall(b"a")
        except OSError:
            pass  # the client gave up
        finally:
            conn.close()
            with self.lock:
                self.open -= 1

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture(scope="module")
def server():
    srv = ImageServer()
    yield srv
    srv.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def refused(url: str, status: int, match: str, **kwargs) -> URLFetchError:
    with pytest.raises(URLFetchError, match=match) as info:
        fetch_image(url, **kwargs)
    assert info.value.status == status, str(info.value)
    return info.value


def test_fetches_an_image_with_its_time(server):
    got = fetch_image(server.url("/red.png"), allow_private=True)
    assert got.data == _Handler.png and got.content_type == "image/png"
    assert got.last_modified.timestamp() == LAST_MODIFIED
    assert fetch_image(server.url("/typed.png"), allow_private=True).content_type == "image/png"


def test_loopback_and_private_addresses_are_refused_by_default(server):
    port = server.port
    for url in (f"http://127.0.0.1:{port}/red.png", f"http://localhost:{port}/red.png",
                f"http://2130706433:{port}/red.png", f"http://[::ffff:127.0.0.1]:{port}/red.png",
                f"http://[::1]:{port}/red.png", "http://10.1.2.3/x.png", "http://192.168.0.10/x.png",
                "http://172.16.5.5/x.png", "http://[fd00::1]/x.png"):
        err = refused(url, 403, "refused", timeout=2)
        assert "URL_ALLOW_PRIVATE" in str(err)
    refused(f"http://localhost:{port}/red.png", 403, "localhost resolves to 127.0.0.1, a loopback address")


def test_link_local_and_reserved_addresses_are_always_refused():
    for url, what in (("http://169.254.169.254/latest/meta-data/", "link-local"), ("http://0.0.0.0/", "unspecified"),
                      ("http://224.0.0.1/", "multicast"), ("http://240.0.0.1/", "reserved"),
                      ("http://[fe80::1]/", "link-local"), ("http://100.64.0.1/", "non-public")):
        t0 = time.monotonic()
        refused(url, 403, what, allow_private=True, timeout=5)
        assert time.monotonic() - t0 < 1  # refused before any connection attempt


@pytest.mark.parametrize(
    "url, match",
    [
        ("ftp://127.0.0.1/red.png", "only http:// and https://"),
        ("file:///etc/passwd", "only http:// and https://"),
        ("javascript:alert(1)", "only http:// and https://"),
        ("gopher://example.com/", "only http:// and https://"),
        ("example.com/red.png", "only http:// and https://"),
        ("   ", "empty URL"),
        ("http://", "without a host"),
        ("http://user:secret@127.0.0.1/red.png", "user name or password"),
        ("http://127.0.0.1:99999/", "malformed"),
        ("http://does-not-exist.invalid/red.png", "cannot resolve"),
    ],
)
def test_bad_urls(url, match):
    refused(url, 400, match, allow_private=True, timeout=3)


def test_content_type_must_be_an_image(server):
    refused(server.url("/page.html"), 415, "not an image .Content-Type text/html", allow_private=True)
    refused(server.url("/untyped"), 415, "Content-Type missing", allow_private=True)


def test_size_limit_declared_and_streamed(server):
    t0 = time.monotonic()
    refused(server.url("/big.png"), 413, "50,000,000 bytes, at most 1,000,000", allow_private=True, max_bytes=1_000_000)
    assert time.monotonic() - t0 < 2
    refused(server.url("/stream.png"), 413, "more than 1,000,000 bytes", allow_private=True, max_bytes=1_000_000)
    assert fetch_image(server.url("/red.png"), allow_private=True, max_bytes=len(_Handler.png)).data == _Handler.png


def test_one_deadline_for_slow_bodies_and_silent_servers(server):
    for path in ("/slow.png", "/silent"):
        t0 = time.monotonic()
        refused(server.url(path), 400, "timed out", allow_private=True, timeout=1.0)
        assert time.monotonic() - t0 < 2.5, path


def test_one_deadline_for_trickled_headers():
    slow = TrickleServer(interval=0.2)
    try:
        t0 = time.monotonic()
        refused(slow.url(), 400, "timed out: no complete answer .* within 1 s .status line and headers",
                allow_private=True, timeout=1.0)
        assert time.monotonic() - t0 < 1.5
        assert slow.connections == 1
    finally:
        slow.close()


def test_fetches_at_once_are_limited_and_the_excess_refused_at_once():
    slow = TrickleServer(interval=0.2)
    n = MAX_PARALLEL_FETCHES + 4
    outcomes: list[tuple[float, URLFetchError]] = []
    lock = threading.Lock()
    start = threading.Barrier(n)

    def one() -> None:
        start.wait()
        t0 = time.monotonic()
        try:
            fetch_image(slow.url(), allow_private=True, timeout=1.5)
        except URLFetchError as err:
            with lock:
                outcomes.append((time.monotonic() - t0, err))

    threads = [threading.Thread(target=one) for _ in range(n)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        busy = [(dt, e) for dt, e in outcomes if e.status == 503]
        timed_out = [(dt, e) for dt, e in outcomes if "timed out" in str(e)]
        assert len(outcomes) == n and len(busy) + len(timed_out) == n, outcomes
        assert len(busy) >= 4 and len(timed_out) >= MAX_PARALLEL_FETCHES, outcomes  # (4 and 8 when all start at once)
        assert all(dt < 0.5 and "too many image URLs" in str(e) and "try again" in str(e) for dt, e in busy)
        assert all(dt < 2.0 for dt, _ in timed_out)
        assert slow.most_open <= MAX_PARALLEL_FETCHES
        # the slots are free again
        refused(slow.url(), 400, "timed out", allow_private=True, timeout=0.5)
    finally:
        slow.close()


def test_redirects_are_followed_and_checked_again(server):
    assert fetch_image(server.url("/redirect"), allow_private=True).final_url == server.url("/red.png")
    assert fetch_image(server.url("/redirect-relative"), allow_private=True).data == _Handler.png
    refused(server.url("/redirect-metadata"), 403, "169.254.169.254 is a link-local", allow_private=True)
    refused(server.url("/redirect-ftp"), 400, "only http", allow_private=True)
    refused(server.url("/redirect-loop"), 400, "more than 5 redirects", allow_private=True)


def test_http_errors_and_broken_answers(server):
    refused(server.url("/missing"), 400, "answered HTTP 404", allow_private=True)
    refused(server.url("/short.png"), 400, "ended early|broke", allow_private=True)
    refused(f"http://127.0.0.1:{free_port()}/red.png", 400, "cannot connect", allow_private=True, timeout=3)


def test_address_rules():
    ip = ipaddress.ip_address
    assert address_problem(ip("93.184.216.34"), False) is None
    assert address_problem(ip("2606:4700::1111"), False) is None
    assert address_problem(ip("127.0.0.1"), True) is None and address_problem(ip("10.0.0.1"), True) is None
    assert "loopback" in address_problem(ip("::ffff:127.0.0.1"), False)
    assert "link-local" in address_problem(ip("169.254.1.1"), True)


def teredo(server: str, client: str) -> ipaddress.IPv6Address:
    """The Teredo address (2001::/32) of ``client`` behind ``server`` (client address and port obfuscated)."""
    v4 = lambda a: int(ipaddress.IPv4Address(a))  # noqa: E731
    return ipaddress.IPv6Address((0x20010000 << 96) | (v4(server) << 64) | (0xFFFF << 32) | (v4(client) ^ 0xFFFFFFFF))


def carriers(v4: str) -> dict[str, ipaddress.IPv6Address]:
    """Every IPv6 form that carries the IPv4 address ``v4``."""
    n = int(ipaddress.IPv4Address(v4))
    return {
        "IPv4-mapped": ipaddress.IPv6Address((0xFFFF << 32) | n),
        "6to4": ipaddress.IPv6Address((0x2002 << 112) | (n << 80)),
        "Teredo": teredo("65.54.227.120", v4),
        "NAT64": ipaddress.IPv6Address((0x64FF9B << 96) | n),
        "IPv4-compatible": ipaddress.IPv6Address(n),
    }


@pytest.mark.parametrize("v4, what", [("127.0.0.1", "loopback"), ("10.1.2.3", "private"),
                                      ("192.168.0.10", "private"), ("169.254.169.254", "link-local")])
def test_ipv6_forms_are_judged_by_the_ipv4_they_carry(v4, what):
    for form, ip in carriers(v4).items():
        problem = address_problem(ip, False)
        assert problem is not None and what in problem and form in problem and v4 in problem, (form, ip, problem)
    assert "loopback" in address_problem(teredo("127.0.0.1", "93.184.216.34"), False)  # the server counts too


def test_ipv6_forms_of_public_addresses_are_allowed():
    for form, ip in carriers("93.184.216.34").items():
        assert address_problem(ip, False) is None, (form, ip)


def test_a_6to4_url_of_loopback_is_refused_before_connecting():
    t0 = time.monotonic()
    err = refused("http://[2002:7f00:1::]/", 403, "6to4", timeout=5)
    assert "127.0.0.1" in str(err) and "loopback" in str(err) and time.monotonic() - t0 < 1
    refused("http://[64:ff9b::a9fe:a9fe]/latest/meta-data/", 403, "link-local", allow_private=True, timeout=5)

"""Import from a web page against real HTTP servers on loopback (threads), real bytes and the real guarded client.

The servers are on 127.0.0.1, so most calls pass ``allow_private=True``; :func:`test_loopback_page_is_refused_without_allow_private`
shows the same page refused without it. A redirect from an allowed address to a private one needs a first
address that is public: :func:`test_a_redirect_to_loopback_is_refused_when_private_addresses_are_not_allowed` runs
its scenario in a network namespace of its own (``unshare``), where a public address is put on the loopback
interface: nothing else changes, no packet leaves, and ``allow_private`` stays False throughout.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import shlex
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable

import pytest
from PIL import Image

from tests.browser import memory_kb, reset_peak
from tests.conftest import ROOT
from tests.test_url_fetch import _Handler as ImageHandler
from utils.tools.web_import import (
    MAX_PARALLEL,
    NO_IMAGES_MESSAGE,
    USER_AGENT,
    FetchedCandidate,
    FoundImage,
    WebImportError,
    fetch_candidates,
    scan_page,
)

PUBLIC_IP = "93.184.216.34"  # any global address: it exists only inside the namespace of that one test


def image_bytes(width: int, height: int, fmt: str = "PNG") -> bytes:
    """A real image of ``width`` x ``height`` (its size tells which URL was fetched)."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (width % 256, height % 256, 90)).save(buf, format=fmt)
    return buf.getvalue()


def bomb_png(width: int, height: int, colour_type: int = 0, band_rows: int = 20) -> bytes:
    """A valid 8-bit PNG (0: grey, 6: RGBA) of ``width`` x ``height`` zero pixels, about 1000 times smaller than
    decoded, made in milliseconds: one band of rows is compressed once and flushed to stand alone
    (``Z_FULL_FLUSH``), then repeated; the Adler-32 of n zero bytes is (n mod 65521) << 16 | 1."""
    row = 1 + width * {0: 1, 6: 4}[colour_type]  # the filter byte, then the samples
    comp = zlib.compressobj(9)
    first = comp.compress(bytes(row * band_rows)) + comp.flush(zlib.Z_FULL_FLUSH)
    n = row * height
    idat = (first[:2] + first[2:] * (height // band_rows) + comp.flush(zlib.Z_FINISH)[:-4]
            + struct.pack(">I", ((n % 65521) << 16) | 1))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


ASSETS = {  # /assets/NAME: (width, height)
    "og.png": (30, 20), "tw.png": (31, 20), "plain.png": (32, 20), "small.png": (20, 15), "medium.png": (40, 30),
    "big.png": (80, 60), "pic-400.png": (40, 20), "pic-1200.png": (120, 60), "pic-fallback.png": (33, 20),
    "lazy.png": (34, 20), "linked.PNG": (35, 20), "pic.png": (36, 20),
}
PNGS = {name: image_bytes(*size) for name, size in ASSETS.items()}
JPEG = image_bytes(37, 20, "JPEG")
BOMBS = {"bomb.png": bomb_png(50_000, 50_000),  # 2.5 GB decoded: past Pillow's own limit too
         "bomb-rgba.png": bomb_png(9_000, 9_000, colour_type=6)}  # 324 MB: past utils.imaging's limits only
ROBOTS = b"""# our group: the product token of the User-Agent
User-agent: extract-unique-images
Disallow: /private/*.jpg$
Disallow: /blocked/

User-agent: *
Disallow: /
"""
MAIN_PAGE = """<!doctype html><html><head>
<base href="/assets/">
<meta property="og:image" content="og.png">
<meta name="twitter:image" content="{origin}/assets/tw.png">
<script>var later = '<img src="from-script.png">';</script>
</head><body>
<img src="plain.png" alt="plain">
<img src="small.png" srcset="small.png 200w, big.png 800w, medium.png 400w">
<picture><source srcset="pic-400.png 400w, pic-1200.png 1200w" type="image/png"><img src="pic-fallback.png"></picture>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" data-src="lazy.png">
<img src="plain.png#again">
<img src="data:image/png;base64,iVBORw0KGgo=">
<a href="/assets/linked.PNG">download</a> <a href="/about.html">about</a>
<img src="/private/photo.jpg"> <img src="/private/photo.jpg?v=2"> <img src="/private/photo.png">
</body></html>"""
DEEP_PAGE = '<html><body><img src="pic.png"></body></html>'  # relative to the final URL of /go-deep
JS_PAGE = """<html><body><div id="app"></div>
<script>document.getElementById("app").innerHTML = '<img src="/assets/plain.png">';</script></body></html>"""


class _Handler(ImageHandler):  # its quiet log and _send(status, body, ctype, headers)
    server: PageServer.HTTPServer

    def do_GET(self) -> None:  # one branch per route
        owner = self.server.owner
        owner.log(self.path, self.headers.get("User-Agent"))
        path = self.path.split("?")[0]
        name = path.rsplit("/", 1)[-1]
        if path == "/robots.txt":
            if isinstance(owner.robots, int):
                self._send(owner.robots, b"no", "text/plain")
            else:
                self._send(200, owner.robots, "text/plain")
        elif path in ("/site/page.html", "/blocked/page.html"):
            self._send(200, MAIN_PAGE.format(origin=owner.origin).encode(), "text/html; charset=utf-8")
        elif path == "/go-deep":
            self._send(302, headers={"Location": "/pages/deep/index.html"})
        elif path == "/pages/deep/index.html":
            self._send(200, DEEP_PAGE.encode(), "text/html")
        elif path == "/js.html":
            self._send(200, JS_PAGE.encode(), "text/html")
        elif path == "/many.html":
            self._send(200, "".join(f'<img src="/assets/{i}.png">' for i in range(10)).encode(), "text/html")
        elif path == "/slow.html":
            time.sleep(3)
            self._send(200, b"<img src=x.png>", "text/html")
        elif path == "/public.html":
            self._send(200, b'<img src="/assets/plain.png"><img src="/away/plain.png">', "application/xhtml+xml")
        elif path.startswith("/assets/") and name in PNGS or path.startswith("/pages/deep/") and name == "pic.png":
            self._send(200, PNGS[name], "image/png")
        elif path == "/private/photo.jpg":
            self._send(200, JPEG, "image/jpeg")
        elif path == "/private/photo.png":
            self._send(200, PNGS["plain.png"], "image/png")
        elif path == "/assets/html.png":
            self._send(200, b"<html>not an image</html>", "text/html")
        elif path == "/assets/fake.png":
            self._send(200, b"<html>says it is a PNG</html>", "image/png")
        elif path.startswith("/assets/") and name in BOMBS:
            self._send(200, BOMBS[name], "image/png")
        elif path.startswith("/hop/"):  # /hop/N: N redirects, then plain.png
            left = int(name)
            self._send(302, headers={"Location": f"/hop/{left - 1}" if left > 1 else "/assets/plain.png"})
        elif path == "/to-metadata.png":
            self._send(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
        elif path.startswith("/away/"):  # the same name on the peer server
            self._send(302, headers={"Location": f"{owner.peer}/assets/{name}"})
        elif path.startswith("/slow/"):
            owner.slow_request(lambda: self._send(200, PNGS["plain.png"], "image/png"))
        elif path == "/huge.png":
            owner.stream_huge(self)
        else:
            self._send(404, b"not here", "text/plain")


class PageServer:
    """A real threaded HTTP server (loopback unless told) serving the routes above; it records each request's
    path and User-Agent, the most /slow/ requests at once and the bytes of /huge.png it could send."""

    class HTTPServer(http.server.ThreadingHTTPServer):
        daemon_threads = True
        block_on_close = False
        owner: PageServer

    def __init__(self, host: str = "127.0.0.1", robots: bytes | int = ROBOTS) -> None:
        self.httpd = self.HTTPServer((host, 0), _Handler)
        self.httpd.owner = self
        self.origin = f"http://{host}:{self.httpd.server_port}"
        self.robots = robots  # the robots.txt, or the status it answers
        self.peer = ""  # where /away/NAME redirects (an origin)
        self.requests: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()
        self.in_flight = self.most_in_flight = 0
        self.huge_sent = 0
        self.huge_done = threading.Event()
        threading.Thread(target=self.httpd.serve_forever, name="page-server", daemon=True).start()

    def url(self, path: str) -> str:
        return self.origin + path

    def log(self, path: str, agent: str | None) -> None:
        with self.lock:
            self.requests.append((path, agent))

    def paths(self) -> list[str]:
        with self.lock:
            return [p for p, _ in self.requests]

    def slow_request(self, answer: Callable[[], None]) -> None:
        """``answer`` after 0.3 s, counting the requests under way."""
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(0.3)
            answer()
        finally:
            with self.lock:
                self.in_flight -= 1

    def stream_huge(self, handler: _Handler) -> None:
        """200 MB of image/png without a length, as fast as the client reads."""
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.end_headers()
        block = b"\0" * (1 << 20)
        try:
            for _ in range(200):
                handler.wfile.write(block)
                self.huge_sent += len(block)
        except OSError:
            pass  # the client gave up
        finally:
            self.huge_done.set()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def site():
    main, other = PageServer(), PageServer(robots=500)
    main.peer, other.peer = other.origin, main.origin
    yield main, other
    main.close()
    other.close()


def fetch(urls: list[str], **kw) -> list[FetchedCandidate]:
    options = {"timeout": 5.0, "max_bytes": 5_000_000, "max_total_bytes": 50_000_000, "allow_private": True} | kw
    return fetch_candidates(urls, **options)


def page_refused(url: str, status: int, match: str, **kw) -> WebImportError:
    with pytest.raises(WebImportError, match=match) as info:
        scan_page(url, **({"timeout": 5.0, "allow_private": True} | kw))
    assert info.value.status == status, str(info.value)
    return info.value


def test_scan_finds_every_kind_of_image_once_in_page_order(site):
    main, _ = site
    scan = scan_page(main.url("/site/page.html"), timeout=5, allow_private=True)
    assets = main.url("/assets/")  # <base href="/assets/">: not /site/
    assert scan.page_url == scan.final_url == main.url("/site/page.html") and scan.message is None
    assert scan.found == [
        FoundImage(assets + "og.png", "og:image"),
        FoundImage(assets + "tw.png", "twitter:image"),
        FoundImage(assets + "plain.png", "img"),  # its duplicate (with a #fragment) is dropped
        FoundImage(assets + "big.png", "srcset"),  # 800w, the largest, whatever its place in the list
        FoundImage(assets + "pic-1200.png", "picture"),
        FoundImage(assets + "pic-fallback.png", "img"),
        FoundImage(assets + "lazy.png", "data-src"),  # not the data: placeholder in its src
        FoundImage(assets + "linked.PNG", "link"),  # not /about.html
        FoundImage(main.url("/private/photo.jpg"), "img"),
        FoundImage(main.url("/private/photo.jpg?v=2"), "img"),
        FoundImage(main.url("/private/photo.png"), "img"),
    ]  # no data: URL, nothing from inside <script>
    assert main.url("/robots.txt") in [main.url(p) for p in main.paths()]


def test_fetched_candidates_carry_their_bytes_and_sizes_and_robots_wildcards_hold(site):
    main, _ = site
    urls = [f.url for f in scan_page(main.url("/site/page.html"), timeout=5, allow_private=True).found]
    before = len(main.paths())
    got = fetch(urls)
    assert [c.url for c in got] == urls
    by_name = {c.url.rsplit("/", 1)[-1]: c for c in got}
    for name, (w, h) in ASSETS.items():
        if name in by_name:
            c = by_name[name]
            assert c.error is None and (c.width, c.height) == (w, h), c
            assert c.data == PNGS[name] and c.size == len(PNGS[name]) and c.content_type == "image/png"
            assert c.final_url == c.url
    assert by_name["big.png"].width == 80  # the srcset's largest
    jpg = by_name["photo.jpg"]  # Disallow: /private/*.jpg$
    assert jpg.data is None and "disallowed by" in jpg.error and "robots.txt" in jpg.error
    assert by_name["photo.jpg?v=2"].error is None and by_name["photo.jpg?v=2"].content_type == "image/jpeg"
    assert by_name["photo.png"].error is None  # not .jpg
    sent = main.requests[before:]
    assert "/private/photo.jpg" not in [p for p, _ in sent]  # refused before any request
    assert {agent for _, agent in sent} == {USER_AGENT}
    # the subset the dashboard asks for, in its own order
    assert [c.width for c in fetch([urls[3], urls[0]])] == [80, 30]


def test_without_robots_the_disallowed_image_is_fetched(site):
    main, _ = site
    [c] = fetch([main.url("/private/photo.jpg")], respect_robots=False)
    assert c.error is None and (c.width, c.height) == (37, 20)


def test_relative_urls_resolve_against_the_final_url_after_redirects(site):
    main, _ = site
    scan = scan_page(main.url("/go-deep"), timeout=5, allow_private=True)
    assert scan.final_url == main.url("/pages/deep/index.html")
    assert scan.found == [FoundImage(main.url("/pages/deep/pic.png"), "img")]


def test_a_page_built_by_javascript_gives_the_clear_message(site):
    main, _ = site
    scan = scan_page(main.url("/js.html"), timeout=5, allow_private=True)
    assert scan.found == [] and scan.message == NO_IMAGES_MESSAGE
    assert "JavaScript" in NO_IMAGES_MESSAGE


def test_the_number_of_candidates_is_capped(site):
    main, _ = site
    scan = scan_page(main.url("/many.html"), timeout=5, allow_private=True, max_images=3)
    assert [f.url for f in scan.found] == [main.url(f"/assets/{i}.png") for i in range(3)]
    assert "more than 3 images" in scan.message


def test_loopback_page_is_refused_without_allow_private(site):
    main, _ = site
    before = len(main.paths())
    err = page_refused(main.url("/site/page.html"), 403, "127.0.0.1 is a loopback address", allow_private=False)
    assert "URL_ALLOW_PRIVATE" in str(err)
    [c] = fetch([main.url("/assets/plain.png")], allow_private=False)
    assert c.data is None and "loopback" in c.error
    assert len(main.paths()) == before  # neither robots.txt nor anything else was asked for


def test_pages_that_cannot_be_used(site):
    main, _ = site
    page_refused(main.url("/assets/plain.png"), 415, r"is not an HTML page \(Content-Type image/png\); give the "
                 "address of a web page")
    page_refused(main.url("/blocked/page.html"), 403, "disallowed by .*robots.txt")
    page_refused(main.url("/site/page.html"), 413, "too large", max_page_bytes=500)
    page_refused(main.url("/nothing.html"), 502, "could not be read: .* answered HTTP 404")
    page_refused(main.url("/hop/4"), 502, "more than 3 redirects")
    page_refused("ftp://127.0.0.1/page.html", 400, "only http:// and https://")
    page_refused("http://169.254.169.254/latest/", 403, "link-local")
    t0 = time.monotonic()
    page_refused(main.url("/slow.html"), 504, "timed out", timeout=0.5)
    assert time.monotonic() - t0 < 1.5


def test_robots_5xx_disallows_everything_even_behind_a_redirect(site):
    main, other = site  # other's robots.txt answers HTTP 500
    page_refused(other.url("/site/page.html"), 403, "robots.txt answered HTTP 500")
    [direct, redirected] = fetch([other.url("/assets/plain.png"), main.url("/away/plain.png")])
    assert "robots.txt answered HTTP 500" in direct.error
    assert "robots.txt answered HTTP 500" in redirected.error  # the redirect's target is checked too
    assert "/assets/plain.png" not in other.paths()
    other.robots = 404  # no robots.txt: everything allowed
    try:
        assert scan_page(other.url("/site/page.html"), timeout=5, allow_private=True).found
        [c] = fetch([main.url("/away/plain.png")])
        assert c.error is None and c.final_url == other.url("/assets/plain.png")
    finally:
        other.robots = 500


def test_redirects_are_limited_and_checked_again(site):
    main, _ = site
    three, four, metadata = fetch([main.url("/hop/3"), main.url("/hop/4"), main.url("/to-metadata.png")])
    assert three.error is None and three.final_url == main.url("/assets/plain.png") and three.width == 32
    assert four.data is None and "more than 3 redirects" in four.error
    assert metadata.data is None and "169.254.169.254 is a link-local address" in metadata.error


def test_a_huge_image_is_refused_without_reading_it_all(site):
    main, _ = site
    pid = os.getpid()
    reset_peak(pid)
    start = memory_kb(pid)["VmRSS"]
    [c] = fetch([main.url("/huge.png")], max_bytes=2_000_000)
    grown_mb = (memory_kb(pid)["VmHWM"] - start) / 1024
    assert c.data is None and "too large (more than 2,000,000 bytes)" in c.error
    assert main.huge_done.wait(10)
    assert main.huge_sent < 40 * 2**20 and grown_mb < 40, (main.huge_sent, grown_mb)  # of the 200 MB it offers


def test_decompression_bombs_are_refused_from_their_header(site):
    main, _ = site
    assert len(BOMBS["bomb.png"]) < 3_000_000 and len(BOMBS["bomb-rgba.png"]) < 400_000
    pid = os.getpid()
    reset_peak(pid)
    start = memory_kb(pid)["VmRSS"]
    t0 = time.monotonic()
    bomb, rgba, ok = fetch([main.url("/assets/bomb.png"), main.url("/assets/bomb-rgba.png"),
                            main.url("/assets/plain.png")], max_bytes=10_000_000)
    grown_mb = (memory_kb(pid)["VmHWM"] - start) / 1024
    assert bomb.data is None and "decompression bomb" in bomb.error and "100,000,000 pixels" in bomb.error
    assert rgba.data is None and "decompression bomb" in rgba.error and "limit of 256 MiB" in rgba.error
    assert ok.error is None
    assert time.monotonic() - t0 < 3 and grown_mb < 60, grown_mb


def test_images_that_are_no_images_fail_alone(site):
    main, _ = site
    urls = [main.url(p) for p in ("/assets/html.png", "/assets/og.png", "/assets/fake.png", "/assets/gone.png",
                                  "/assets/tw.png")]
    html_png, og, fake, gone, tw = fetch(urls)
    assert "is not an image (Content-Type text/html)" in html_png.error
    assert "not an image Pillow can read" in fake.error
    assert "answered HTTP 404" in gone.error
    assert og.width == 30 and tw.width == 31


def test_the_total_bytes_of_the_page_images_are_capped(site):
    main, _ = site
    names = ["og.png", "tw.png", "plain.png", "lazy.png"]  # about the same size each
    one = max(len(PNGS[n]) for n in names)
    got = fetch([main.url(f"/assets/{n}") for n in names], max_total_bytes=2 * one + one // 2)
    kept = [c for c in got if c.error is None]
    refused = [c for c in got if c.error is not None]
    assert len(kept) == 2 and sum(c.size for c in kept) <= 2 * one + one // 2
    assert len(refused) == 2 and all("max_total_bytes" in c.error and c.data is None for c in refused)
    assert all("max_total_bytes" in c.error for c in fetch([main.url("/assets/og.png")], max_total_bytes=10))


def test_fetches_at_once_are_bounded(site):
    main, _ = site
    urls = [main.url(f"/slow/{i}.png") for i in range(10)]
    main.most_in_flight = 0
    assert all(c.error is None for c in fetch(urls, parallel=3))
    assert main.most_in_flight == 3
    main.most_in_flight = 0
    assert all(c.error is None for c in fetch(urls, parallel=100))
    assert main.most_in_flight == MAX_PARALLEL


def test_bad_arguments_say_what_to_fix(site):
    main, _ = site
    with pytest.raises(TypeError, match="a list of URLs, not one string"):
        fetch(main.url("/assets/og.png"))
    with pytest.raises(ValueError, match="parallel must be more than 0"):
        fetch([main.url("/assets/og.png")], parallel=0)
    with pytest.raises(ValueError, match="max_images must be more than 0"):
        scan_page(main.url("/site/page.html"), timeout=5, max_images=0)
    assert fetch([]) == []
    [c] = fetch(["javascript:alert(1)"])
    assert "only http:// and https://" in c.error


# --- a public page whose image redirects to loopback, allow_private=False ------------------------------------

def public_scenario() -> dict:
    """Run inside a network namespace where PUBLIC_IP is on the loopback interface: the public server's page is
    scanned and its images fetched without allow_private; one image redirects to the loopback server."""
    public, private = PageServer(PUBLIC_IP), PageServer()
    public.peer = private.origin
    try:
        scan = scan_page(public.url("/public.html"), timeout=5)
        got = fetch_candidates([f.url for f in scan.found], timeout=5, max_bytes=1_000_000, max_total_bytes=10**7)
        try:
            scan_page(private.url("/site/page.html"), timeout=5)
            loopback_page = "scanned"
        except WebImportError as err:
            loopback_page = f"{err.status} {err}"
        return {"found": [f.url for f in scan.found], "errors": [c.error for c in got],
                "widths": [c.width for c in got], "loopback_page": loopback_page,
                "private_requests": private.paths(), "public_requests": public.paths(), "public": public.origin}
    finally:
        public.close()
        private.close()


def test_a_redirect_to_loopback_is_refused_when_private_addresses_are_not_allowed():
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--net", "ip", "addr", "add", f"{PUBLIC_IP}/32",
                            "dev", "lo"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"no unprivileged network namespace here: {probe.stderr.strip()}")
    script = (f"ip link set lo up && ip addr add {PUBLIC_IP}/32 dev lo && "
              f"exec {shlex.quote(sys.executable)} -m tests.test_web_import public-scenario")
    run = subprocess.run(["unshare", "--user", "--map-root-user", "--net", "sh", "-c", script], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    public = result["public"]
    assert result["found"] == [f"{public}/assets/plain.png", f"{public}/away/plain.png"]
    assert result["widths"][0] == 32 and result["errors"][0] is None  # the public image: fetched
    assert result["widths"][1] is None and "127.0.0.1 is a loopback address" in result["errors"][1]
    assert result["private_requests"] == []  # refused before connecting, though it would have answered
    assert "/robots.txt" in result["public_requests"]
    assert result["loopback_page"].startswith("403 ") and "loopback" in result["loopback_page"]


if __name__ == "__main__" and sys.argv[1:] == ["public-scenario"]:
    print(json.dumps(public_scenario()))

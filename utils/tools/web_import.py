"""Import images from a web page: list the images its HTML names (:func:`scan_page`), then fetch those chosen
(:func:`fetch_candidates`). Pure functions: no database, no UI.

Every request (the page, robots.txt, each image, each redirect) goes through the guarded client of
:mod:`utils.url_fetch`: http/https only, private and loopback addresses refused unless ``allow_private``,
link-local and reserved ones always, every redirect checked again (at most :data:`MAX_REDIRECTS`), one deadline
for the whole exchange, a byte cap, at most ``MAX_PARALLEL_FETCHES`` fetches at once in the process.

robots.txt (parsed by protego: ``*`` and ``$`` patterns, the longest match wins) is read once per host and call,
for :data:`USER_AGENT`, which is also the requests' User-Agent. It is checked for the page, for each image and for
every redirect target. A robots.txt that does not exist or cannot be reached (4xx other than 429, no connection,
a timeout, a refused redirect) allows everything, as is common practice; one that answers 5xx or 429, or is larger
than :data:`ROBOTS_MAX_BYTES`, disallows everything on its host.

Only the HTML is read: images a page builds with JavaScript are not found (:data:`NO_IMAGES_MESSAGE`).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup, Tag
from PIL import Image, UnidentifiedImageError
from protego import Protego
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from utils.imaging import DecodersBusy, ImageTooLarge, decode_slot, open_bounded
from utils.url_fetch import (
    MAX_PARALLEL_FETCHES,
    Fetched,
    URLFetchError,
    URLFetchTimeout,
    URLRemoteError,
    fetch_url,
)

log = logging.getLogger(__name__)

USER_AGENT = "extract-unique-images/1.0 (+image import)"
MAX_REDIRECTS = 3
ROBOTS_MAX_BYTES = 512 * 1024  # Google reads the first 500 KiB; a larger robots.txt disallows everything here
#: image fetches at once in one call: each may hold a second fetch slot, for the robots.txt of a redirect's target
MAX_PARALLEL = MAX_PARALLEL_FETCHES // 2
NO_IMAGES_MESSAGE = ("no images found in the page's HTML "
                     "(pages that build their images with JavaScript are not supported)")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".jpe", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".avif")
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_OG_IMAGE = ("og:image", "og:image:url", "og:image:secure_url")
_TWITTER_IMAGE = ("twitter:image", "twitter:image:src")


@dataclass
class FoundImage:
    """An image URL named by the page; ``source`` says where: "img", "srcset", "picture", "data-src",
    "og:image", "twitter:image" or "link"."""

    url: str
    source: str


@dataclass
class PageScan:
    """The images a page names, in page order without duplicates; ``message`` says why the list is empty or
    cut short (None otherwise)."""

    page_url: str
    final_url: str
    found: list[FoundImage]
    message: str | None


@dataclass
class FetchedCandidate:
    """One fetched URL: the image (``data`` and its facts; ``content_type`` from the decoded format) or ``error``."""

    url: str
    data: bytes | None
    content_type: str | None
    width: int | None
    height: int | None
    size: int | None
    error: str | None
    final_url: str | None = None  # after redirects, when the image was fetched


class WebImportError(ValueError):
    """The page itself cannot be used; ``status`` is the HTTP status an API should answer with (400 bad URL,
    403 refused address or robots.txt, 413 too large, 415 not HTML, 502 the site failed, 503 too many fetches at
    once in this process, 504 timeout)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be more than 0, not {value!r}")


# --- robots.txt ----------------------------------------------------------------------------------------------

def _origin(url: str) -> str | None:
    """scheme://host[:port] of an http(s) URL (its robots.txt lives there), None for anything else."""
    try:
        parts = parse_url(url.strip())
    except (LocationParseError, AttributeError):
        return None
    if parts.scheme not in ("http", "https") or not parts.host:
        return None
    return parts._replace(auth=None, path=None, query=None, fragment=None).url


class _Robots:
    """The robots.txt rules of each host, fetched once per call through the guarded client (thread-safe)."""

    def __init__(self, timeout: float, allow_private: bool) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self._rules: dict[str, Protego | str] = {}  # origin: its rules, or why everything is disallowed
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def check(self, url: str, seconds_left: float) -> None:
        """Refuse ``url`` (URLFetchError 403) when its host's robots.txt disallows it for :data:`USER_AGENT`;
        the signature of url_fetch's ``check``."""
        origin = _origin(url)
        if origin is None:
            return  # the guarded client refuses such a URL itself
        rules = self._rules_for(origin, min(self.timeout, seconds_left))
        if isinstance(rules, str):
            raise URLFetchError(f"{url} is disallowed: {origin}/robots.txt {rules}", status=403)
        if not rules.can_fetch(url, USER_AGENT):
            raise URLFetchError(f"{url} is disallowed by {origin}/robots.txt for {USER_AGENT!r}", status=403)

    def _rules_for(self, origin: str, timeout: float) -> Protego | str:
        with self._lock:
            lock = self._locks.setdefault(origin, threading.Lock())
        with lock:  # one fetch per host; the others wait for its answer
            if origin not in self._rules:
                self._rules[origin] = self._load(origin, timeout)
            return self._rules[origin]

    def _load(self, origin: str, timeout: float) -> Protego | str:
        try:
            got = fetch_url(f"{origin}/robots.txt", timeout=timeout, max_bytes=ROBOTS_MAX_BYTES,
                            allow_private=self.allow_private, max_redirects=5, content_types=None,
                            what="robots.txt", accept="text/plain", user_agent=USER_AGENT)
        except URLFetchTimeout:
            if timeout < self.timeout:
                raise  # cut short by the deadline of the fetch that asked: not "unreachable", and not kept
            return Protego.parse("")  # unreachable
        except URLRemoteError as err:
            if err.http_status is not None and (err.http_status >= 500 or err.http_status == 429):
                return f"answered HTTP {err.http_status}, so everything on the host counts as disallowed"
            return Protego.parse("")  # none (4xx) or unreachable: no rules
        except URLFetchError as err:
            if err.status == 413:
                return f"is larger than {ROBOTS_MAX_BYTES:,} bytes, so everything on the host counts as disallowed"
            if err.status == 503:
                raise  # our own fetch slots are taken: not checked, so not allowed either
            return Protego.parse("")  # a refused redirect: unreachable
        return Protego.parse(got.data.decode("utf-8-sig", "replace"))


# --- finding the images in the HTML ----------------------------------------------------------------------------

def _srcset(value: str) -> list[tuple[str, list[str]]]:
    """The (URL, descriptors) candidates of a ``srcset`` value, split as the HTML standard says: a URL runs to
    the next whitespace (commas at its end are separators), its descriptors to the next comma outside brackets."""
    out, pos, n = [], 0, len(value)
    while True:
        while pos < n and (value[pos].isspace() or value[pos] == ","):
            pos += 1
        if pos >= n:
            return out
        start = pos
        while pos < n and not value[pos].isspace():
            pos += 1
        url, descriptors = value[start:pos], ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            start, depth = pos, 0
            while pos < n and (value[pos] != "," or depth):
                if value[pos] == "(":
                    depth += 1
                elif value[pos] == ")" and depth:
                    depth -= 1
                pos += 1
            descriptors = value[start:pos]
        if url:
            out.append((url, descriptors.split()))


def _number(descriptor: str, unit: str) -> float | None:
    if not descriptor.endswith(unit):
        return None
    try:
        return float(descriptor[:-1])
    except ValueError:
        return None


def _largest_in_srcset(value: str | None) -> str | None:
    """The URL of the largest candidate of a ``srcset``: by its ``w`` descriptor when any candidate has one, else
    by ``x`` (no descriptor is 1x); the first of equals. None when there is no candidate."""
    best: tuple[int, float, str] | None = None
    for url, descriptors in _srcset(value or ""):
        width = next((w for d in descriptors if (w := _number(d, "w")) is not None), None)
        density = next((x for d in descriptors if (x := _number(d, "x")) is not None), 1.0)
        key = (1, width, url) if width is not None else (0, density, url)
        if best is None or key[:2] > best[:2]:
            best = key
    return best[2] if best else None


def _attr(tag: Tag, name: str) -> str | None:
    value = tag.get(name)
    if isinstance(value, list):  # bs4 splits a few attributes (rel, class) into lists
        value = " ".join(value)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _in_tag(tag: Tag) -> list[tuple[str | None, str]]:
    """The (raw URL, source) an element names: one image per ``img`` (its lazy-load attribute, else the largest
    of its srcset, else its src), the largest of a ``picture > source``, og/twitter meta, links to image files."""
    if tag.name == "img":
        lazy = _largest_in_srcset(_attr(tag, "data-srcset")) or _attr(tag, "data-src") or _attr(tag, "data-lazy-src")
        if lazy:
            return [(lazy, "data-src")]
        best = _largest_in_srcset(_attr(tag, "srcset"))
        return [(best, "srcset")] if best else [(_attr(tag, "src"), "img")]
    if tag.name == "source" and tag.parent is not None and tag.parent.name == "picture":
        return [(_largest_in_srcset(_attr(tag, "data-srcset") or _attr(tag, "srcset")), "picture")]
    if tag.name == "meta":
        key = (_attr(tag, "property") or _attr(tag, "name") or "").lower()
        source = "og:image" if key in _OG_IMAGE else "twitter:image" if key in _TWITTER_IMAGE else None
        return [(_attr(tag, "content"), source)] if source else []
    if tag.name == "a":
        href = _attr(tag, "href")
        if href and urlsplit(href).path.lower().endswith(IMAGE_EXTENSIONS):
            return [(href, "link")]
    return []


def _normalise_url(raw: str, base: str) -> str | None:
    """``raw`` resolved against ``base`` and normalised (scheme and host lower case, default port and fragment
    dropped, unsafe characters percent-encoded); None for data: URLs and anything not http(s)."""
    try:
        parts = parse_url(urljoin(base, raw))
    except (LocationParseError, ValueError):
        return None
    if parts.scheme not in ("http", "https") or not parts.host:  # data:, javascript:, blob:...
        return None
    port = None if parts.port == {"http": 80, "https": 443}[parts.scheme] else parts.port
    return parts._replace(port=port, path=parts.path or "/", fragment=None).url


def find_images(html: bytes | str, page_url: str, max_images: int = 200) -> tuple[list[FoundImage], bool]:
    """The images ``html`` names, resolved against its ``<base href>`` (else ``page_url``), in page order,
    without data: URLs and duplicates; at most ``max_images`` (the flag says whether more were cut off)."""
    soup = BeautifulSoup(html, "html.parser")
    base_tag = soup.find("base", href=True)
    base = urljoin(page_url, _attr(base_tag, "href") or "") if base_tag is not None else page_url
    found: list[FoundImage] = []
    seen: set[str] = set()
    for tag in soup.find_all(["img", "source", "meta", "a"]):
        for raw, source in _in_tag(tag):
            url = _normalise_url(raw, base) if raw else None
            if url is None or url in seen:
                continue
            if len(found) == max_images:
                return found, True
            seen.add(url)
            found.append(FoundImage(url, source))
    return found, False


# --- the page --------------------------------------------------------------------------------------------------

def _page_error(err: URLFetchError) -> WebImportError:
    if isinstance(err, URLFetchTimeout):
        return WebImportError(f"the page could not be read in time: {err}", status=504)
    if isinstance(err, URLRemoteError):
        return WebImportError(f"the page could not be read: {err}", status=502)
    if err.status == 415:
        return WebImportError(f"{err}; give the address of a web page (HTML) that shows the images", status=415)
    return WebImportError(str(err), status=err.status)


def scan_page(url: str, *, timeout: float, max_page_bytes: int = 5_000_000, allow_private: bool = False,
              max_images: int = 200) -> PageScan:
    """The images the HTML page at ``url`` names (see :func:`find_images`), without fetching them.

    ``timeout``: seconds for the whole exchange, robots.txt and redirects included. Raises
    :class:`WebImportError` when the page cannot be used (refused address, robots.txt, not HTML, too large...).
    """
    _positive(timeout=timeout, max_page_bytes=max_page_bytes, max_images=max_images)
    robots = _Robots(timeout, allow_private)
    try:
        page = fetch_url(url, timeout=timeout, max_bytes=max_page_bytes, allow_private=allow_private,
                         max_redirects=MAX_REDIRECTS, content_types=_HTML_TYPES, what="an HTML page",
                         accept="text/html,application/xhtml+xml", user_agent=USER_AGENT, check=robots.check)
    except URLFetchError as err:
        raise _page_error(err) from None
    found, cut = find_images(page.data, page.final_url, max_images)
    message = None if found else NO_IMAGES_MESSAGE
    if cut:
        message = f"the page names more than {max_images} images; only the first {max_images} are listed"
    return PageScan(url.strip(), page.final_url, found, message)


# --- the images ------------------------------------------------------------------------------------------------

class _Budget:
    """The total bytes of one call's images: each fetch borrows its byte cap before it starts, and keeps what its
    image needs, so the images held never pass ``total`` together."""

    def __init__(self, total: int) -> None:
        self.total, self.kept, self.lent = total, 0, 0
        self._cond = threading.Condition()

    def borrow(self, want: int) -> int:
        """Up to ``want`` bytes: waits while fetches under way may give some back; 0 when all is kept."""
        with self._cond:
            self._cond.wait_for(lambda: self.total - self.kept - self.lent >= want or self.lent == 0)
            grant = max(0, min(want, self.total - self.kept - self.lent))
            self.lent += grant
            return grant

    def settle(self, grant: int, kept: int) -> None:
        with self._cond:
            self.lent -= grant
            self.kept += kept
            self._cond.notify_all()


class _NotAnImage(Exception):
    """Fetched bytes that do not decode to an image; the message says why."""


def _decoded(data: bytes, declared: str, wait: float) -> tuple[str, int, int]:
    """(content type of the decoded format, width, height) of ``data``, decoded within utils.imaging's limits
    (header checked first: :class:`ImageTooLarge`); :class:`_NotAnImage` when it is no readable image."""
    try:
        img, (width, height) = open_bounded(data)
    except UnidentifiedImageError:
        raise _NotAnImage(f"not an image Pillow can read (Content-Type {declared}, "
                         f"first bytes {data[:8]!r})") from None
    except (OSError, SyntaxError) as err:
        raise _NotAnImage(f"broken image header: {err}") from None
    try:
        with decode_slot(wait):
            img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise _NotAnImage(f"broken or truncated image: {err}") from None
    finally:
        img.close()
    return Image.MIME.get(img.format or "", declared), width, height


def _fetch_one(url: str, timeout: float, max_bytes: int, allow_private: bool, robots: _Robots | None,
               budget: _Budget) -> FetchedCandidate:
    def failed(error: str) -> FetchedCandidate:
        return FetchedCandidate(url, None, None, None, None, None, error)

    deadline = time.monotonic() + timeout
    grant = kept = 0
    try:
        if robots is not None:  # the first host's robots.txt outside the image's fetch slot
            robots.check(url, timeout)
        left = deadline - time.monotonic()
        if left <= 0:
            return failed(f"timed out: no complete answer within {timeout:g} s (robots.txt included)")
        grant = budget.borrow(max_bytes)
        if grant == 0:
            return failed(f"not fetched: the images fetched already reach the total limit of "
                          f"{budget.total:,} bytes (max_total_bytes)")
        try:
            got: Fetched = fetch_url(url, timeout=left, max_bytes=grant, allow_private=allow_private,
                                     max_redirects=MAX_REDIRECTS, user_agent=USER_AGENT,
                                     check=robots.check if robots is not None else None)
        except URLFetchError as err:
            if err.status == 413 and grant < max_bytes:
                return failed(f"{err}: only {grant:,} bytes were left of the total limit of {budget.total:,} "
                              "bytes for the page's images (max_total_bytes)")
            raise
        ctype, width, height = _decoded(got.data, got.content_type, max(deadline - time.monotonic(), 0.1))
        kept = len(got.data)
        return FetchedCandidate(url, got.data, ctype, width, height, kept, None, got.final_url)
    except ImageTooLarge as err:
        return failed(f"refused, a decompression bomb: {err}")
    except (URLFetchError, DecodersBusy, _NotAnImage) as err:
        return failed(str(err))
    except Exception as err:  # one image's failure never aborts the others
        log.exception("web import: fetching %s failed", url)
        return failed(f"unexpected error: {type(err).__name__}: {err}")
    finally:
        if grant:
            budget.settle(grant, kept)


def fetch_candidates(urls: list[str], *, timeout: float, max_bytes: int, max_total_bytes: int,
                     allow_private: bool = False, parallel: int = 4,
                     respect_robots: bool = True) -> list[FetchedCandidate]:
    """Fetch ``urls`` (any of a scan's, in the same order): each image or a clear error; one failure never stops
    the others.

    ``timeout``: seconds per image, its host's robots.txt included (read once per host and call).
    ``max_bytes``: the cap of one image; ``max_total_bytes``: of all the images kept together (an image past what
    is left fails). ``parallel``: fetches at once, at most :data:`MAX_PARALLEL`. Each image is decoded within the
    limits of :mod:`utils.imaging` (its header checked before a pixel is decoded).
    """
    if isinstance(urls, str):
        raise TypeError("urls must be a list of URLs, not one string")
    _positive(timeout=timeout, max_bytes=max_bytes, max_total_bytes=max_total_bytes, parallel=parallel)
    if not urls:
        return []
    robots = _Robots(timeout, allow_private) if respect_robots else None
    budget = _Budget(max_total_bytes)
    workers = min(int(parallel), MAX_PARALLEL, len(urls))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="web-import") as pool:
        return list(pool.map(lambda u: _fetch_one(u, timeout, max_bytes, allow_private, robots, budget), urls))

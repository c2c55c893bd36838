"""Fetch one image (or, with :func:`fetch_url`, any allowed content) from a URL without becoming a way into the
local network (SSRF).

* only ``http`` and ``https``; no credentials in the URL;
* the host name is resolved once and **every** address it resolves to is checked: loopback and private
  addresses are refused unless ``allow_private`` (``URL_ALLOW_PRIVATE``); link-local (cloud metadata
  services such as 169.254.169.254), multicast, reserved and unspecified addresses are always refused;
  IPv6 addresses that carry IPv4 addresses (IPv4-mapped, 6to4, Teredo, NAT64, IPv4-compatible) are checked as
  the IPv4 addresses they carry (``http://[2002:7f00:1::]/`` is 127.0.0.1);
* the connection goes to the address that was checked (no second DNS lookup that could answer differently),
  with the original host name in ``Host`` and for TLS (SNI and certificate check);
* redirects (at most ``max_redirects``) are followed by hand, each target checked like the first URL;
* one deadline (``timeout`` seconds) for the whole exchange: connecting, the TLS handshake, the status line and
  headers, redirects and the body. urllib3's timeouts apply to each socket read, so a server trickling one byte at
  a time would pass them; a watchdog timer shuts the socket down when the deadline passes instead. The body is
  streamed and abandoned as soon as it exceeds ``max_bytes`` (a larger ``Content-Length`` is refused before reading);
* at most :data:`MAX_PARALLEL_FETCHES` fetches at once per process; one more fails at once with status 503
  instead of waiting (each fetch holds a thread for up to its timeout);
* the answer must be 200 with ``Content-Type: image/*`` (:func:`fetch_url`: the content types it is given);
* :func:`fetch_url` can call a ``check`` before each request (the first and every redirect), e.g. for robots.txt.

Every refusal is a :class:`URLFetchError` whose ``status`` is the HTTP status an API should answer with; those
caused by the server or the network are :class:`URLRemoteError` (timeouts: :class:`URLFetchTimeout`).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import math
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import urllib3
import urllib3.connection
import urllib3.response

_CHUNK = 64 * 1024
_REDIRECTS = {301, 302, 303, 307, 308}
_USER_AGENT = "extract-unique-images/stats (+image statistics)"
#: fetches at once in one process: each holds a thread (of the API's pool) for up to its timeout
MAX_PARALLEL_FETCHES = 8
_fetch_slots = threading.BoundedSemaphore(MAX_PARALLEL_FETCHES)


class URLFetchError(ValueError):
    """The URL cannot or may not be fetched; ``status`` is the HTTP status to answer (400, 403, 413, 415, 503)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class URLRemoteError(URLFetchError):
    """The server could not be reached or its answer not used (name resolution, connection, TLS, a broken answer,
    redirects, a status other than 200); ``http_status`` is the status it answered, if it answered one."""

    def __init__(self, message: str, status: int = 400, http_status: int | None = None) -> None:
        super().__init__(message, status)
        self.http_status = http_status


class URLFetchTimeout(URLRemoteError):
    """No complete answer within the deadline."""


@dataclass(frozen=True)
class Fetched:
    url: str
    final_url: str
    content_type: str
    data: bytes
    last_modified: datetime | None


FetchedImage = Fetched  # the name fetch_image's callers know


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)  # what URL_ALLOW_PRIVATE opens (with loopback); other non-public ranges stay closed


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the last 32 bits are an IPv4 address
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d (:: and ::1 excluded below)


def embedded_ipv4(ip: IPAddress) -> list[tuple[str, ipaddress.IPv4Address]]:
    """The IPv4 addresses an IPv6 address carries, with the name of the form: IPv4-mapped, 6to4 (2002::/16),
    Teredo (2001::/32: server and client), NAT64 (64:ff9b::/96), IPv4-compatible (::a.b.c.d); [] for others."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    found: list[tuple[str, ipaddress.IPv4Address]] = []
    if ip.ipv4_mapped is not None:
        found.append(("IPv4-mapped", ip.ipv4_mapped))
    if ip.sixtofour is not None:
        found.append(("6to4", ip.sixtofour))
    if ip.teredo is not None:
        found.extend(("Teredo", v4) for v4 in ip.teredo)
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _NAT64:
        found.append(("NAT64", low32))
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:
        found.append(("IPv4-compatible", low32))
    return found


def address_problem(ip: IPAddress, allow_private: bool) -> str | None:
    """Why a connection to ``ip`` is refused, or None when it is allowed.

    An IPv6 address that carries IPv4 addresses (see :func:`embedded_ipv4`) is judged by those alone: refused as
    soon as one of them would be, allowed when all are.
    """
    carried = embedded_ipv4(ip)
    for form, v4 in carried:
        problem = address_problem(v4, allow_private)
        if problem is not None:
            return f"{problem} ({v4}, carried in the {form} address {ip})"
    if carried:
        return None
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_link_local:
        return "a link-local address (e.g. a cloud metadata service)"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_loopback:
        return None if allow_private else "a loopback address"
    if any(ip.version == net.version and ip in net for net in _PRIVATE_NETWORKS):
        return None if allow_private else "a private network address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved or non-public address"
    return None


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # as written in the URL (no brackets)
    port: int
    ip: str  # the checked address we connect to
    path: str  # path and query


def _check_url(url: str, allow_private: bool) -> _Target:
    if not isinstance(url, str) or not url.strip():
        raise URLFetchError("empty URL")
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise URLFetchError(f"malformed URL {url!r}: {err}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise URLFetchError(f"only http:// and https:// URLs are allowed, not {scheme + ':' if scheme else 'this'} ({url!r})")
    if parts.username is not None or parts.password is not None:
        raise URLFetchError("URLs with a user name or password are not allowed")
    host = parts.hostname
    if not host:
        raise URLFetchError(f"URL without a host: {url!r}")
    port = port or (443 if scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise URLRemoteError(f"cannot resolve the host {host!r}: {err}") from None
    addresses = []
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%")[0])
        problem = address_problem(ip, allow_private)
        if problem is not None:
            where = f"{ip} is" if host in (str(ip), info[4][0]) else f"{host} resolves to {ip},"
            raise URLFetchError(
                f"{where} {problem}; such URLs are refused"
                + ("" if "loopback" not in problem and "private" not in problem else " (see URL_ALLOW_PRIVATE)"),
                status=403,
            )
        addresses.append(str(ip))
    if not addresses:
        raise URLFetchError(f"the host {host!r} has no address")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return _Target(scheme, host, port, addresses[0], path)


def _host_header(target: _Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = 443 if target.scheme == "https" else 80
    return host if target.port == default else f"{host}:{target.port}"


def _left(deadline: float, timeout: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise URLFetchTimeout(f"timed out: no complete answer within {timeout:g} s")
    return left


class _DeadlineConnection:
    """Mixin for urllib3 connections: the TLS handshake gets only what is left of the deadline (CPython applies a
    socket's timeout to the whole handshake), not a fresh connect timeout."""

    deadline = math.inf

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        sock.settimeout(max(0.001, self.deadline - time.monotonic()))
        return sock


class _HTTPConnection(_DeadlineConnection, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineConnection, urllib3.connection.HTTPSConnection):
    pass


class _Watchdog:
    """Shuts a connected socket down when the deadline passes: a read blocked on a server that trickles its
    headers or body (each byte within the socket timeout) then ends at once. ``cancel()`` before closing.

    It holds the socket itself: http.client drops ``conn.sock`` when an answer has no length, and a closed
    socket object refuses the shutdown (its descriptor number, maybe reused meanwhile, is never touched).
    """

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self.fired = False
        self._sock: socket.socket | None = sock
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.name = "url-fetch-deadline"
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._sock is None:
                return
            self.fired = True
            with contextlib.suppress(OSError):
                socket.socket.shutdown(self._sock, socket.SHUT_RDWR)  # the OS-level shutdown, also under TLS

    def cancel(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._sock = None


def _connect(target: _Target, deadline: float, timeout: float) -> urllib3.connection.HTTPConnection:
    """A connection to the checked address (TLS with the URL's host name), within the deadline."""
    left = _left(deadline, timeout)
    if target.scheme == "https":
        conn: urllib3.connection.HTTPConnection = _HTTPSConnection(
            target.ip, target.port, timeout=left, server_hostname=target.host, assert_hostname=target.host)
    else:
        conn = _HTTPConnection(target.ip, target.port, timeout=left)
    conn.deadline = deadline  # type: ignore[attr-defined]
    try:
        conn.connect()
    except Exception as err:  # noqa: BLE001 - network errors become URLFetchError, others pass as they are
        conn.close()
        raise _connect_error(err, target, timeout) from None
    return conn


def _connect_error(err: Exception, target: _Target, timeout: float) -> Exception:
    """The URLFetchError for a failed connect (``err`` itself when it is no network error)."""
    where = f"{target.host}:{target.port}"
    if isinstance(err, urllib3.exceptions.NewConnectionError):  # (a subclass of the timeout error in urllib3 2)
        return URLRemoteError(f"cannot connect to {where}: {err}")
    if isinstance(err, (TimeoutError, urllib3.exceptions.TimeoutError)):
        return URLFetchTimeout(f"timed out: no answer from {target.host} within {timeout:g} s")
    if isinstance(err, (ssl.SSLError, ssl.CertificateError, urllib3.exceptions.SSLError)):
        return URLRemoteError(f"TLS error with {target.host}: {err}")
    if isinstance(err, (urllib3.exceptions.HTTPError, OSError)):
        return URLRemoteError(f"cannot connect to {where}: {err}")
    return err


_READ_ERRORS = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


def _request(conn: urllib3.connection.HTTPConnection, target: _Target, watchdog: _Watchdog, timeout: float,
             accept: str, user_agent: str) -> urllib3.response.BaseHTTPResponse:
    """Send the GET and read the status line and headers (the watchdog ends a trickling answer)."""
    try:
        conn.request("GET", target.path, headers={"Host": _host_header(target), "User-Agent": user_agent,
                                                   "Accept": accept, "Accept-Encoding": "identity"},
                     preload_content=False, decode_content=False)
        resp = conn.getresponse()
    except _READ_ERRORS as err:
        if watchdog.fired or isinstance(err, (TimeoutError, urllib3.exceptions.TimeoutError)):
            raise _headers_timeout(target, timeout) from None
        raise URLRemoteError(f"{target.host} broke the connection before answering: {err}") from None
    if watchdog.fired:  # http.client takes the shutdown for the end of the headers
        resp.close()
        raise _headers_timeout(target, timeout)
    return resp


def _headers_timeout(target: _Target, timeout: float) -> URLFetchError:
    return URLFetchTimeout(f"timed out: no complete answer from {target.host} within {timeout:g} s "
                           "(status line and headers included)")


def fetch_image(
    url: str,
    *,
    timeout: float = 10.0,
    max_bytes: int = 25_000_000,
    allow_private: bool = False,
    max_redirects: int = 5,
) -> FetchedImage:
    """The image at ``url`` (see the module docstring for every check); :class:`URLFetchError` otherwise.

    At most :data:`MAX_PARALLEL_FETCHES` run at once in this process; beyond that the call fails at once (503).
    """
    return fetch_url(url, timeout=timeout, max_bytes=max_bytes, allow_private=allow_private,
                     max_redirects=max_redirects)


def fetch_url(
    url: str,
    *,
    timeout: float = 10.0,
    max_bytes: int = 25_000_000,
    allow_private: bool = False,
    max_redirects: int = 5,
    content_types: tuple[str, ...] | None = ("image/",),
    what: str = "an image",
    accept: str = "image/*",
    user_agent: str = _USER_AGENT,
    check: Callable[[str, float], None] | None = None,
) -> Fetched:
    """What ``url`` answers, with every check of :func:`fetch_image` (and its share of the process's fetch slots).

    ``content_types``: the accepted Content-Types, each a full type (``text/html``) or a prefix ending in ``/``
    (``image/``); None accepts any, a missing one included. Another is refused (415) as not ``what``.
    ``accept``, ``user_agent``: the request's headers. ``check(url, seconds_left)`` runs before each request,
    the first and every redirect, once the URL's address passed; it refuses the URL by raising.
    """
    if not _fetch_slots.acquire(blocking=False):
        raise URLFetchError(f"too many image URLs being fetched at once (at most {MAX_PARALLEL_FETCHES}); "
                            "try again in a moment", status=503)
    try:
        return _fetch(url, timeout, max_bytes, allow_private, max_redirects,
                      _Want(content_types, what, accept, user_agent, check))
    finally:
        _fetch_slots.release()


@dataclass(frozen=True)
class _Want:
    content_types: tuple[str, ...] | None
    what: str
    accept: str
    user_agent: str
    check: Callable[[str, float], None] | None


def _fetch(url: str, timeout: float, max_bytes: int, allow_private: bool, max_redirects: int,
           want: _Want) -> Fetched:
    deadline = time.monotonic() + timeout
    current = url.strip() if isinstance(url, str) else url
    for _ in range(max_redirects + 1):
        target = _check_url(current, allow_private)
        if want.check is not None:
            want.check(current, _left(deadline, timeout))
        conn = _connect(target, deadline, timeout)
        watchdog = _Watchdog(conn.sock, _left(deadline, timeout))  # type: ignore[arg-type]
        resp = None
        try:
            resp = _request(conn, target, watchdog, timeout, want.accept, want.user_agent)
            if resp.status in _REDIRECTS:
                location = resp.headers.get("Location")
                if not location:
                    raise URLRemoteError(f"{current} redirects without a Location")
                current = urljoin(current, location)
                continue
            return _read(resp, url, current, target, watchdog, timeout, max_bytes, want)
        finally:
            watchdog.cancel()
            if resp is not None:
                resp.close()
            conn.close()
    raise URLRemoteError(f"more than {max_redirects} redirects")


def _type_accepted(ctype: str, accepted: tuple[str, ...] | None) -> bool:
    if accepted is None:
        return True
    return bool(ctype) and any(ctype.startswith(a) if a.endswith("/") else ctype == a for a in accepted)


def _read(resp: urllib3.response.BaseHTTPResponse, url: str, final: str, target: _Target, watchdog: _Watchdog,
          timeout: float, max_bytes: int, want: _Want) -> Fetched:
    if resp.status != 200:
        raise URLRemoteError(f"{final} answered HTTP {resp.status} {resp.reason or ''}".rstrip(),
                             http_status=resp.status)
    ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if not _type_accepted(ctype, want.content_types):
        raise URLFetchError(f"{final} is not {want.what} (Content-Type {ctype or 'missing'})", status=415)
    length = resp.headers.get("Content-Length")
    if length is not None and length.strip().isdigit() and int(length) > max_bytes:
        raise URLFetchError(f"{final} is too large ({int(length):,} bytes, at most {max_bytes:,})", status=413)
    chunks, size = [], 0
    while True:
        try:
            chunk = resp.read1(_CHUNK)
        except _READ_ERRORS as err:
            if watchdog.fired or isinstance(err, (TimeoutError, urllib3.exceptions.TimeoutError)):
                raise URLFetchTimeout(f"timed out reading {final} (limit {timeout:g} s)") from None
            raise URLRemoteError(f"connection to {target.host} broke while reading: {err}") from None
        if not chunk:
            break
        size += len(chunk)
        if size > max_bytes:
            raise URLFetchError(f"{final} is too large (more than {max_bytes:,} bytes)", status=413)
        chunks.append(chunk)
    if watchdog.fired:  # the shutdown can look like the end of a body without a length
        raise URLFetchTimeout(f"timed out reading {final} (limit {timeout:g} s)")
    if length is not None and length.strip().isdigit() and size < int(length):
        raise URLRemoteError(f"{final} ended early ({size} of {int(length)} bytes)")
    modified = None
    if resp.headers.get("Last-Modified"):
        try:
            modified = parsedate_to_datetime(resp.headers["Last-Modified"])
        except (TypeError, ValueError):
            modified = None
    return Fetched(url, final, ctype, b"".join(chunks), modified)

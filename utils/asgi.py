"""Small ASGI helpers shared by the HTTP API and the dashboard's gate: request-body limits and JSON answers."""

from __future__ import annotations

import json
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(values: list[str]) -> list[Network]:
    """TRUSTED_PROXIES as networks (single addresses become /32 or /128)."""
    return [ipaddress.ip_network(v, strict=False) for v in values]


def has_forwarding_headers(scope: dict[str, Any]) -> bool:
    """Whether the request says it was forwarded (X-Forwarded-For or Forwarded)."""
    return any(k.lower() in (b"x-forwarded-for", b"forwarded") for k, _ in scope.get("headers") or [])




class BodyTooLarge(Exception):
    """The streamed request body went past its limit."""


def declared_length(scope: dict[str, Any]) -> int | None:
    """The request's Content-Length, None when absent or not a number."""
    length = dict(scope.get("headers") or []).get(b"content-length", b"")
    return int(length) if length.isdigit() else None


def limit_receive(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises :class:`BodyTooLarge` once more than ``limit`` body bytes have arrived."""
    seen = 0

    async def limited() -> dict[str, Any]:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge()
        return message

    return limited


async def send_json(send: Callable[[dict[str, Any]], Awaitable[None]], status: int, detail: str) -> None:
    """Answer ``{"detail": detail}`` with ``status`` (not cached)."""
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})


def _forwarded_for(scope: dict[str, Any]) -> list[str]:
    values = [v.decode("latin-1") for k, v in scope.get("headers") or [] if k.lower() == b"x-forwarded-for"]
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def _in(address: str | None, nets: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in net for net in nets if net.version == ip.version)


def client_address(scope: dict[str, Any], trusted: list[Network], keep_loopback: bool = False) -> str | None:
    """The client's address if it is known for sure, else None.

    The peer's own address counts unless the request carries X-Forwarded-For. Through a proxy listed in
    TRUSTED_PROXIES (``trusted``) the nearest untrusted address of X-Forwarded-For counts. Without trusted
    proxies a forwarded address never counts: uvicorn, which Streamlit runs, replaces the peer by the header's
    address for loopback peers (or for whatever FORWARDED_ALLOW_IPS lists), so an address that appears in the
    header may have been chosen by the client. A loopback address is no client's own (a browser on this PC, or
    a proxy): None, unless ``keep_loopback``.
    """
    peer = _plain((scope.get("client") or (None,))[0])
    forwarded = [_plain(a) for a in _forwarded_for(scope)]
    if not forwarded:
        chosen = peer
    elif not trusted:
        chosen = None if peer in forwarded else peer
    elif peer is not None and not _in(peer, trusted) and peer not in forwarded:
        chosen = peer  # a direct client that sent the header itself
    else:
        # the nearest address that is not one of our proxies; if all are, the chain's origin (itself trusted)
        chosen = next((a for a in reversed(forwarded) if a and not _in(a, trusted)), forwarded[0])
    if chosen is None or (_is_loopback(chosen) and not keep_loopback):
        return None
    return chosen


def _plain(address: str | None) -> str | None:
    """The address without an IPv4-mapped IPv6 prefix (``::ffff:10.0.0.1`` is ``10.0.0.1``)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False

"""Small ASGI helpers shared by the HTTP API and the dashboard's gate: request-body limits and JSON answers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]


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

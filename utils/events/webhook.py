"""Webhooks: every event as a JSON POST, signed with HMAC-SHA256 like GitHub's webhooks.

Headers: ``Content-Type: application/json``, ``X-Event-Id`` (the event's UUID; the same on every repeated
delivery), ``X-Event-Type`` and, with WEBHOOK_SECRET, ``X-Signature-256: sha256=<hex HMAC-SHA256 of the exact body
bytes>``. A 2xx answer delivers the event; 408, 429, 5xx, no answer or no connection are tried again later
(``Retry-After`` in seconds is followed); any other answer (4xx, a redirect) is a refusal (:class:`DeliveryError`
with ``permanent``).
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

import requests

TRANSIENT_STATUS = {408, 429}


class DeliveryError(RuntimeError):
    """An attempt failed; ``permanent``: the receiver refused the event (trying again will not help by itself);
    ``retry_after``: seconds the receiver asked to wait."""

    def __init__(self, message: str, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


def signature(secret: str, body: bytes) -> str:
    """The ``X-Signature-256`` value of ``body``: ``sha256=`` and the hex HMAC-SHA256 with ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def shown_url(url: str) -> str:
    """A webhook address as the pages and logs show it: scheme, host and port only (paths and queries of webhook
    addresses often hold a token)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}" + ("/…" if parts.path.strip("/") or parts.query else "")


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:  # an HTTP date: the usual backoff applies
        return None


class WebhookSender:
    """POSTs events to one address over one persistent connection."""

    def __init__(self, url: str, secret: str | None, timeout_s: float) -> None:
        self.url = url
        self.secret = secret
        self.timeout_s = timeout_s
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "extract-unique-images-events/1"

    def send(self, event_id: str, event_type: str, body: str) -> None:
        """Deliver one event; raises :class:`DeliveryError` with the reason."""
        data = body.encode()
        headers = {"Content-Type": "application/json", "X-Event-Id": event_id, "X-Event-Type": event_type}
        if self.secret:
            headers["X-Signature-256"] = signature(self.secret, data)
        where = shown_url(self.url)
        try:
            answer = self.session.post(self.url, data=data, headers=headers, timeout=self.timeout_s,
                                       allow_redirects=False)
        except requests.Timeout:
            raise DeliveryError(f"{where} did not answer within {self.timeout_s:g} s (WEBHOOK_TIMEOUT_S)") from None
        except requests.ConnectionError as err:
            reason = "connection refused" if "refused" in str(err).lower() else type(err).__name__
            raise DeliveryError(f"cannot reach {where} ({reason}); is the receiver running?") from None
        except requests.RequestException as err:
            raise DeliveryError(f"{where}: {type(err).__name__}: {err}") from None
        if 200 <= answer.status_code < 300:
            return
        text = " ".join(answer.text.split())[:200]
        message = f"{where} answered {answer.status_code} {answer.reason or ''}".rstrip()
        message += f": {text}" if text else ""
        transient = answer.status_code in TRANSIENT_STATUS or answer.status_code >= 500
        if 300 <= answer.status_code < 400:
            message += " (a redirect: set the final address in WEBHOOK_URLS)"
        wait = _retry_after(answer.headers.get("Retry-After"))
        raise DeliveryError(message, permanent=not transient, retry_after=wait)

    def close(self) -> None:
        self.session.close()

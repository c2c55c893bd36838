"""The events of the capture: what happened, when, at which station; one JSON body per event, sent as it is.

Body (the webhook's request body and the MQTT payload, byte for byte)::

    {"id": "6f1c...-uuid", "type": "image.kept", "time": "2026-12-10T09:15:02.123456+00:00",
     "station": "packing-3", "data": {...}}

``id`` is a UUID made once when the event is recorded; a delivery that is repeated (the receiver answered too late,
the station died before it noted the answer) carries the same id: delivery is at least once, receivers dedupe by it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final, Literal

EventType = Literal["order.started", "image.kept", "order.closed", "camera.error", "camera.recovered"]

#: Every event type with what its ``data`` holds (README, Events).
EVENT_TYPES: Final[dict[str, str]] = {
    "order.started": "order_id, order_number, folder, mode, resumed, threshold, images_per_second, camera",
    "image.kept": "order_id, order_number, image_id, seq, file_name, distance, forced, captured_at, width, height",
    "order.closed": "order_id, order_number, folder, mode, images, video_file, video_frames, frames, camera_errors",
    "camera.error": "order_id, order_number, camera, message",
    "camera.recovered": "order_id, order_number, camera, message (the error that ended), lasted_s",
}


@dataclass(frozen=True)
class Event:
    """One event; :meth:`body` is what every destination receives."""

    type: str
    data: dict[str, Any]
    station: str
    id: str
    time: datetime

    @classmethod
    def new(cls, type: str, data: dict[str, Any], station: str, time: datetime | None = None) -> "Event":
        """A new event with a fresh UUID, at ``time`` (default now, UTC)."""
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type!r}; one of {', '.join(EVENT_TYPES)}")
        return cls(type, dict(data), station, str(uuid.uuid4()), time or datetime.now(timezone.utc))

    def body(self) -> str:
        """The JSON body (compact, UTF-8 when sent)."""
        return json.dumps({"id": self.id, "type": self.type,
                           "time": self.time.astimezone(timezone.utc).isoformat(timespec="microseconds"),
                           "station": self.station, "data": self.data}, separators=(",", ":"), ensure_ascii=False,
                          default=str)


def topic(prefix: str, event_type: str) -> str:
    """The MQTT topic of an event type: ``<prefix>/order/started``, ``<prefix>/image/kept``, ..."""
    return f"{prefix}/{event_type.replace('.', '/')}"


def availability_topic(prefix: str) -> str:
    """Where the station says ``online`` (retained) and its last will ``offline``, as Frigate does."""
    return f"{prefix}/available"

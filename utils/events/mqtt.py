"""MQTT: every event published with QoS 1 under MQTT_TOPIC_PREFIX, the way camera tools such as Frigate publish theirs.

Topics: ``<prefix>/order/started``, ``<prefix>/image/kept``, ``<prefix>/order/closed``, ``<prefix>/camera/error``,
``<prefix>/camera/recovered`` (payload: the webhook's JSON body, byte for byte), and ``<prefix>/available``:
``online`` (retained) while the station's dispatcher is connected, ``offline`` when it stops, and as its last will
when it disappears without a word (the broker publishes it). The client is paho-mqtt; it reconnects by itself
(1 s doubling up to 60 s) and an event counts as delivered once the broker acknowledged it (PUBACK).
"""

from __future__ import annotations

import logging
import ssl
import threading
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt

from utils.events.model import availability_topic, topic
from utils.events.webhook import DeliveryError

logger = logging.getLogger(__name__)


class MqttSender:
    """One connection to the broker of MQTT_URL (see the module docstring)."""

    def __init__(self, url: str, prefix: str, station: str, timeout_s: float = 10.0) -> None:
        parts = urlsplit(url)
        self.tls = parts.scheme == "mqtts"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (8883 if self.tls else 1883)
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.where = f"{parts.scheme}://{self.host}:{self.port}"
        self.problem: str | None = "not connected yet"
        self._connected = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"extract-unique-images-{station}",
                             clean_session=True)
        if parts.username:
            client.username_pw_set(unquote(parts.username), unquote(parts.password or "") or None)
        if self.tls:
            client.tls_set(cert_reqs=ssl.CERT_REQUIRED)  # the system's certificate authorities
        client.will_set(availability_topic(prefix), "offline", qos=1, retain=True)
        client.reconnect_delay_set(1, 60)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        self.client = client
        client.connect_async(self.host, self.port, keepalive=30)
        client.loop_start()

    # -- paho's callbacks (its network thread)
    def _on_connect(self, client: mqtt.Client, _userdata: object, _flags: object, reason: object,
                    _props: object = None) -> None:
        if getattr(reason, "is_failure", False):
            self.problem = f"the broker {self.where} refused the connection: {reason} (check the user and password " \
                           "in MQTT_URL)"
            logger.warning("MQTT: %s", self.problem)
            return
        client.publish(availability_topic(self.prefix), "online", qos=1, retain=True)
        self.problem = None
        self._connected.set()
        logger.info("MQTT: connected to %s, events under %s/", self.where, self.prefix)

    def _on_disconnect(self, _client: mqtt.Client, _userdata: object, _flags: object, reason: object,
                       _props: object = None) -> None:
        self._connected.clear()
        self.problem = f"disconnected from {self.where} ({reason})"

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: object) -> None:
        self._connected.clear()
        self.problem = f"cannot reach the broker {self.where}; is it running?"

    # -- delivery
    def send(self, event_id: str, event_type: str, body: str) -> None:
        """Publish one event (QoS 1) and wait for the broker's acknowledgement; :class:`DeliveryError` otherwise."""
        if not self._connected.wait(self.timeout_s):
            raise DeliveryError(f"MQTT: {self.problem or 'not connected'}")
        info = self.client.publish(topic(self.prefix, event_type), body.encode(), qos=1)
        try:
            info.wait_for_publish(self.timeout_s)
        except (RuntimeError, ValueError) as err:
            raise DeliveryError(f"MQTT: publishing to {self.where} failed ({err})") from None
        if not info.is_published():
            raise DeliveryError(f"MQTT: {self.where} did not acknowledge within {self.timeout_s:g} s")

    def close(self) -> None:
        """Say ``offline`` (retained), disconnect and stop the network thread."""
        if self._connected.is_set():
            info = self.client.publish(availability_topic(self.prefix), "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(self.timeout_s)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

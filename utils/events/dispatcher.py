"""The dispatcher: one thread, in one process per station database, delivers the events of the outbox.

It holds the lease ``events`` (as the sync and the scheduled jobs hold theirs), and per destination takes the oldest
waiting events in order: a delivered one is marked done, a failed attempt is counted and the destination waits
EVENT_RETRY_FIRST_S, doubling up to EVENT_RETRY_MAX_S (or the receiver's ``Retry-After``) before it tries the same
event again: nothing is skipped or dropped while a receiver is down. A receiver that refuses an event for good
(HTTP 4xx other than 408/429) gets it EVENT_GIVE_UP_AFTER times, then it is marked failed (listed on the Settings
page, sent again on request) and the next events go on. The thread sleeps until a commit of this process queued an
event (:attr:`utils.storage.Store.event_listeners`), the next retry is due, or IDLE_POLL_S passed (events queued by
another process of the station). Delivered events are pruned after EVENT_KEEP_DAYS.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

from utils.events import outbox
from utils.events.webhook import DeliveryError, WebhookSender, shown_url
from utils.storage import StorageError, Store, utc_now

logger = logging.getLogger(__name__)

LEASE = "events"
LEASE_TTL_S = 60.0
IDLE_POLL_S = 5.0  # events queued by another process of the station are seen within this
BATCH = 50
PRUNE_EVERY_S = 3600.0


class Sender(Protocol):
    """Delivers events to one destination."""

    def send(self, event_id: str, event_type: str, body: str) -> None: ...  # raises DeliveryError

    def close(self) -> None: ...


def shown_destination(destination: str) -> str:
    """A destination as pages and logs show it (no token or password)."""
    return "MQTT" if destination == "mqtt" else shown_url(destination)


def senders_for(settings: Any) -> dict[str, Callable[[], Sender]]:
    """A factory of the sender of every destination of these settings."""
    secret = settings.WEBHOOK_SECRET.get_secret_value() if settings.WEBHOOK_SECRET else None
    out: dict[str, Callable[[], Sender]] = {}
    for url in settings.WEBHOOK_URLS:
        out[url] = lambda url=url: WebhookSender(url, secret, settings.WEBHOOK_TIMEOUT_S)
    if settings.MQTT_URL:
        from utils.events.mqtt import MqttSender

        out["mqtt"] = lambda: MqttSender(settings.MQTT_URL.get_secret_value(), settings.mqtt_topic_prefix,
                                         settings.STATION_NAME, timeout_s=settings.WEBHOOK_TIMEOUT_S)
    return out


class EventDispatcher:
    """The delivery thread of one station database (see the module docstring)."""

    def __init__(self, store: Store, senders: dict[str, Callable[[], Sender]], *, retry_first_s: float = 1.0,
                 retry_max_s: float = 300.0, give_up_after: int = 5, keep_days: float = 7.0) -> None:
        from utils.jobs import holder_id

        self.store = store
        self.factories = senders
        self.retry_first_s = retry_first_s
        self.retry_max_s = retry_max_s
        self.give_up_after = give_up_after
        self.keep_days = keep_days
        self.holder = holder_id()
        self._senders: dict[str, Sender] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune = 0.0
        self.has_lease = False
        self.problem: str | None = None  # the station database's, when it cannot be read
        self.delivered = 0  # by this process since it started

    # -- one round
    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt after ``attempts`` failed ones: first, doubling, capped."""
        return min(self.retry_max_s, self.retry_first_s * 2 ** max(0, attempts - 1))

    def sender(self, destination: str) -> Sender:
        if destination not in self._senders:
            self._senders[destination] = self.factories[destination]()
        return self._senders[destination]

    def deliver(self, destination: str) -> float | None:
        """Send the waiting events of one destination in order, until one fails or none is due; returns the
        seconds until its next attempt is due (0: more wait at once), None when nothing waits."""
        batch = outbox.waiting(self.store, destination, BATCH)
        for item in batch:
            now = utc_now()
            if item.next_attempt_at is not None and item.next_attempt_at > now:
                return (item.next_attempt_at - now).total_seconds()
            if self._stop.is_set():
                return None
            try:
                self.sender(destination).send(item.event_id, item.type, item.body)
            except DeliveryError as err:
                attempts = item.attempts + 1
                now = utc_now()
                if err.permanent and attempts >= self.give_up_after:
                    logger.error("Event %s (%s) to %s failed for good after %d attempts: %s", item.event_id,
                                 item.type, shown_destination(destination), attempts, err)
                    outbox.mark_retry(self.store, item, str(err), None, failed_at=now)
                    continue
                wait = self.backoff(attempts) if err.retry_after is None else min(self.retry_max_s, err.retry_after)
                if attempts == 1 or attempts % 10 == 0:
                    logger.warning("Event %s (%s) to %s: %s (attempt %d, next in %.1f s)", item.event_id, item.type,
                                   shown_destination(destination), err, attempts, wait)
                outbox.mark_retry(self.store, item, str(err), now + timedelta(seconds=wait))
                return wait
            outbox.mark_done(self.store, item, utc_now())
            self.delivered += 1
        return 0.0 if len(batch) >= BATCH else None

    def run_once(self) -> float:
        """One round over every destination; returns the seconds to sleep before the next."""
        waits = []
        for destination in self.factories:
            if self._stop.is_set():
                break
            wait = self.deliver(destination)
            if wait is not None:
                waits.append(wait)
        if time.monotonic() - self._last_prune > PRUNE_EVERY_S:
            self._last_prune = time.monotonic()
            pruned = outbox.prune(self.store, outbox.retention_cutoff(utc_now(), self.keep_days))
            if pruned:
                logger.info("Events: %d delivered event(s) older than %g days pruned", pruned, self.keep_days)
        return min([IDLE_POLL_S, *waits])

    # -- the thread
    def start(self) -> "EventDispatcher":
        if self.wake not in self.store.event_listeners:
            self.store.event_listeners.append(self.wake)
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="events", daemon=True)
            self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """Look at the outbox now (an event was just committed)."""
        self._wake.set()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop after the attempt under way, close the connections (MQTT: ``offline``) and give the lease back."""
        self._stop.set()
        self._wake.set()
        if self.wake in self.store.event_listeners:
            self.store.event_listeners.remove(self.wake)
        if self._thread is not None:
            self._thread.join(timeout)
        self._close_senders()
        if self.has_lease:
            try:
                self.store.release_lease(LEASE, self.holder)
            except StorageError as err:
                logger.warning("Events: could not give the lease back (%s); it expires in %.0f s", err, LEASE_TTL_S)
        self.has_lease = False

    def _close_senders(self) -> None:
        for destination, sender in list(self._senders.items()):
            try:
                sender.close()
            except Exception:  # noqa: BLE001 - closing must not stop the others
                logger.exception("Events: closing %s failed", shown_destination(destination))
        self._senders.clear()

    def _run(self) -> None:
        from utils.jobs import drop_dead_holder

        while not self._stop.is_set():
            wait = IDLE_POLL_S
            try:
                drop_dead_holder(self.store, LEASE, self.holder)
                holding = self.store.acquire_lease(LEASE, self.holder, LEASE_TTL_S)
                if self.has_lease and not holding:
                    self._close_senders()  # another process delivers now
                self.has_lease = holding
                if holding:
                    self._wake.clear()
                    wait = self.run_once()
                self.problem = None
            except StorageError as err:  # the station's own database: shown, tried again
                self.problem = str(err)
                logger.warning("Events: %s", err)
            except Exception:  # noqa: BLE001 - the thread outlives any error; logged with its traceback
                logger.exception("Events: unexpected error; trying again in %.0f s", IDLE_POLL_S)
                self.problem = "unexpected error (see the log)"
            if wait > 0:
                self._wake.wait(wait)


def delivery_overview(store: Store, destinations: tuple[str, ...]) -> list[dict[str, Any]]:
    """One row per destination for the Settings page: state (delivering, retrying, failed, not configured), waiting,
    failed and delivered events, since when events wait, the next attempt and the last error."""
    states = {st.destination: st for st in outbox.states(store)}
    rows = []
    for destination in dict.fromkeys([*destinations, *states]):
        st = states.get(destination) or outbox.DestinationState(destination, 0, 0, 0, None, None, None, None)
        if destination not in destinations:
            state = "not configured any more"
        elif st.failed:
            state = "failed"
        elif st.waiting and st.last_error:
            state = "retrying"
        else:
            state = "waiting" if st.waiting else "ok"
        rows.append({"destination": shown_destination(destination), "state": state, "waiting": st.waiting,
                     "failed": st.failed, "delivered": st.delivered, "oldest waiting": st.oldest_waiting,
                     "next attempt": st.next_attempt_at, "last delivered": st.last_delivered,
                     "last error": st.last_error or ""})
    return rows


_dispatchers: dict[str, EventDispatcher] = {}
_dispatchers_lock = threading.Lock()


def ensure_event_dispatcher(store: Store, settings: Any) -> EventDispatcher | None:
    """This process's delivery thread for the store's database (started once), or None without a destination."""
    if not settings.event_destinations:
        return None
    store.event_destinations = settings.event_destinations
    with _dispatchers_lock:
        dispatcher = _dispatchers.get(store.database_key)
        if dispatcher is None or not dispatcher.running:
            dispatcher = EventDispatcher(
                store, senders_for(settings), retry_first_s=settings.EVENT_RETRY_FIRST_S,
                retry_max_s=settings.EVENT_RETRY_MAX_S, give_up_after=settings.EVENT_GIVE_UP_AFTER,
                keep_days=settings.EVENT_KEEP_DAYS,
            ).start()
            _dispatchers[store.database_key] = dispatcher
        return dispatcher


def dispatcher_of(store: Store) -> EventDispatcher | None:
    """The running dispatcher of this process for the store's database, if any."""
    with _dispatchers_lock:
        dispatcher = _dispatchers.get(store.database_key)
    return dispatcher if dispatcher is not None and dispatcher.running else None


def stop_event_dispatcher(store: Store) -> None:
    """Stop this process's dispatcher of the store's database (if one runs)."""
    with _dispatchers_lock:
        dispatcher = _dispatchers.pop(store.database_key, None)
    if dispatcher is not None:
        dispatcher.stop()


def stop_all_event_dispatchers() -> None:
    """Stop every dispatcher of this process and give their leases back (tests, shutdown)."""
    with _dispatchers_lock:
        dispatchers = list(_dispatchers.values())
        _dispatchers.clear()
    for dispatcher in dispatchers:
        dispatcher.stop()

"""The durable outbox of the events: the ``events`` and ``event_deliveries`` tables of the station database.

An event is written with one delivery row per destination in the caller's transaction (:func:`queue`), so an order
or image row and its event are committed together or not at all. The dispatcher (utils/events/dispatcher.py) reads
the deliveries of one destination in event order and notes each result here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import and_, case, delete, exists, func, insert, select, update

from utils.db import schema as db
from utils.events.model import Event

if TYPE_CHECKING:
    from utils.db.engine import Tx
    from utils.storage import Store


@dataclass(frozen=True)
class Delivery:
    """One event waiting for one destination."""

    event: int  # the event's row (its place in the order of events)
    event_id: str
    type: str
    body: str
    destination: str
    attempts: int
    next_attempt_at: datetime | None


@dataclass(frozen=True)
class DestinationState:
    """What the Settings page shows of one destination."""

    destination: str
    waiting: int
    failed: int
    delivered: int
    oldest_waiting: datetime | None
    next_attempt_at: datetime | None
    last_error: str | None
    last_delivered: datetime | None


def _ts(value: datetime) -> str:
    from utils.storage import _ts as ts

    return ts(value)


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def queue(con: Tx, event: Event, destinations: Sequence[str]) -> int:
    """Record ``event`` and a delivery for every destination, in the caller's transaction; returns its row id."""
    row = con.execute(insert(db.events).values(event_id=event.id, type=event.type, created_at=_ts(event.time),
                                               body=event.body()).returning(db.events.c.id)).scalar_one()
    con.execute(insert(db.event_deliveries), [{"event": row, "destination": d} for d in destinations])
    return int(row)


def waiting(store: Store, destination: str, limit: int = 50) -> list[Delivery]:
    """The oldest deliveries not done to ``destination`` (the failed ones left out), in event order."""
    e, d = db.events, db.event_deliveries
    rows = store._query(
        select(e.c.id, e.c.event_id, e.c.type, e.c.body, d.c.attempts, d.c.next_attempt_at)
        .join_from(d, e, e.c.id == d.c.event)
        .where(d.c.destination == destination, d.c.done_at.is_(None), d.c.failed_at.is_(None))
        .order_by(d.c.event).limit(limit))
    return [Delivery(r["id"], r["event_id"], r["type"], r["body"], destination, r["attempts"],
                     _dt(r["next_attempt_at"])) for r in rows]


def _where(delivery: Delivery):  # noqa: ANN202 - a SQLAlchemy condition
    d = db.event_deliveries
    return and_(d.c.event == delivery.event, d.c.destination == delivery.destination)


def mark_done(store: Store, delivery: Delivery, now: datetime) -> None:
    """The destination took the event."""
    d = db.event_deliveries
    with store._tx() as con:
        con.execute(update(d).where(_where(delivery)).values(
            attempts=d.c.attempts + 1, done_at=_ts(now), last_error=None, next_attempt_at=None))


def mark_retry(store: Store, delivery: Delivery, error: str, next_attempt: datetime | None,
               failed_at: datetime | None = None) -> None:
    """Count a failed attempt: try again at ``next_attempt``, or (``failed_at``) not before someone asks."""
    d = db.event_deliveries
    with store._tx() as con:
        con.execute(update(d).where(_where(delivery)).values(
            attempts=d.c.attempts + 1, last_error=error[:500],
            next_attempt_at=None if next_attempt is None else _ts(next_attempt),
            failed_at=None if failed_at is None else _ts(failed_at)))


def retry_failed(store: Store, destination: str | None = None) -> int:
    """Send the deliveries marked failed again (of one destination, or all); returns how many."""
    d = db.event_deliveries
    stmt = update(d).where(d.c.done_at.is_(None), d.c.failed_at.is_not(None))
    if destination is not None:
        stmt = stmt.where(d.c.destination == destination)
    with store._tx() as con:
        n = con.execute(stmt.values(failed_at=None, next_attempt_at=None)).rowcount
        store._local.events_queued = bool(n)  # the dispatcher of this process hears of it after the commit
    return int(n)


def prune(store: Store, older_than: datetime) -> int:
    """Forget the deliveries done before ``older_than`` and the events with no delivery left; returns how many
    events went. Waiting and failed deliveries are never pruned."""
    e, d = db.events, db.event_deliveries
    cutoff = _ts(older_than)
    with store._tx() as con:
        con.execute(delete(d).where(d.c.done_at.is_not(None), d.c.done_at < cutoff))
        left = exists().where(d.c.event == e.c.id)
        return int(con.execute(delete(e).where(e.c.created_at < cutoff, ~left)).rowcount)


def states(store: Store) -> list[DestinationState]:
    """Per destination: waiting, failed and delivered counts, the oldest waiting event, the next attempt, the last
    error and the last delivery."""
    e, d = db.events, db.event_deliveries
    open_ = and_(d.c.done_at.is_(None), d.c.failed_at.is_(None))
    rows = store._query(select(
        d.c.destination,
        func.sum(case((open_, 1), else_=0)).label("waiting"),
        func.sum(case((and_(d.c.done_at.is_(None), d.c.failed_at.is_not(None)), 1), else_=0)).label("failed"),
        func.sum(case((d.c.done_at.is_not(None), 1), else_=0)).label("delivered"),
        func.min(case((open_, e.c.created_at))).label("oldest"),
        func.min(case((open_, d.c.next_attempt_at))).label("next_attempt"),
        func.max(d.c.done_at).label("last_done"),
    ).join_from(d, e, e.c.id == d.c.event).group_by(d.c.destination).order_by(d.c.destination))
    out = []
    for r in rows:
        last = store._query(select(d.c.last_error).where(d.c.destination == r["destination"], d.c.done_at.is_(None),
                                                         d.c.last_error.is_not(None))
                            .order_by(d.c.event.desc()).limit(1))
        out.append(DestinationState(r["destination"], int(r["waiting"] or 0), int(r["failed"] or 0),
                                    int(r["delivered"] or 0), _dt(r["oldest"]), _dt(r["next_attempt"]),
                                    last[0]["last_error"] if last else None, _dt(r["last_done"])))
    return out


def retention_cutoff(now: datetime, keep_days: float) -> datetime:
    """The time before which delivered events are pruned."""
    return now - timedelta(days=keep_days)

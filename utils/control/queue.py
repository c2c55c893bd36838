"""The command queue between the HTTP API and the capture engine, in the station database.

The API (any process) writes a command row and waits for its answer; the one process that runs the engine claims
waiting rows in order, carries them out and writes the answer (an HTTP status and a JSON result). A command not
claimed before its deadline is marked ``expired`` and never carried out later: a caller that got 504 knows that
nothing happened. The engine also publishes what it does (``engine_status``) about once a second.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import delete, insert, select, update

from utils.db import schema as db
from utils.db.engine import upsert
from utils.storage import Store, utc_now

Action = Literal["start", "close", "save-image"]
ACTIONS: tuple[str, ...] = ("start", "close", "save-image")
ENGINE = "capture"  # the engine's name in engine_status and its lease ("capture-engine")
LEASE = "capture-engine"


@dataclass(frozen=True)
class Command:
    """One queued command."""

    id: int
    action: str
    payload: dict[str, Any]
    requested_by: str | None


@dataclass(frozen=True)
class Answer:
    """The engine's answer to a command: an HTTP status and a JSON body."""

    status: int
    body: dict[str, Any]


def submit(store: Store, action: Action, payload: dict[str, Any], requested_by: str, timeout_s: float) -> int:
    """Queue a command for the engine; returns its id. It is dropped unless begun within ``timeout_s``."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    with store._tx() as con:
        rows = con.rows(insert(db.control_commands).values(
            action=action, payload=json.dumps(payload), requested_by=requested_by, created_at=utc_now().isoformat(),
            deadline=time.time() + timeout_s, state="waiting").returning(db.control_commands.c.id))
    return int(rows[0]["id"])


def answer_of(store: Store, command_id: int) -> Answer | None:
    """The answer once the engine wrote it, else None."""
    c = db.control_commands
    rows = store._query(select(c.c.state, c.c.status, c.c.result).where(c.c.id == command_id))
    if not rows or rows[0]["state"] != "done":
        return None
    return Answer(int(rows[0]["status"]), json.loads(rows[0]["result"] or "{}"))


def give_up(store: Store, command_id: int) -> bool:
    """Drop a command the engine has not begun (True); False when it is under way or done (its answer comes)."""
    c = db.control_commands
    with store._tx() as con:
        return con.execute(update(c).where(c.c.id == command_id, c.c.state == "waiting")
                           .values(state="expired", answered_at=utc_now().isoformat())).rowcount == 1


def claim_next(store: Store) -> Command | None:
    """The oldest waiting command, now marked running (None: nothing waits). Commands past their deadline are
    marked expired first."""
    c = db.control_commands
    now = time.time()
    with store._tx() as con:
        con.execute(update(c).where(c.c.state == "waiting", c.c.deadline <= now)
                    .values(state="expired", answered_at=utc_now().isoformat()))
        row = con.one(select(c.c.id, c.c.action, c.c.payload, c.c.requested_by)
                      .where(c.c.state == "waiting").order_by(c.c.id).limit(1))
        if row is None:
            return None
        con.execute(update(c).where(c.c.id == row["id"]).values(state="running"))
    return Command(int(row["id"]), row["action"], json.loads(row["payload"] or "{}"), row["requested_by"])


def has_waiting(store: Store) -> bool:
    """Whether a command waits (a cheap read, done a few times a second by the engine)."""
    c = db.control_commands
    return bool(store._query(select(c.c.id).where(c.c.state == "waiting").limit(1)))


def finish(store: Store, command_id: int, answer: Answer) -> None:
    """Write the engine's answer."""
    c = db.control_commands
    with store._tx() as con:
        con.execute(update(c).where(c.c.id == command_id).values(
            state="done", status=answer.status, result=json.dumps(answer.body, default=str),
            answered_at=utc_now().isoformat()))


def prune(store: Store, older_than_s: float = 7 * 86400) -> int:
    """Delete answered or expired commands older than ``older_than_s``; returns how many."""
    c = db.control_commands
    cutoff = time.time() - older_than_s
    with store._tx() as con:
        return con.execute(delete(c).where(c.c.state.in_(("done", "expired")), c.c.deadline < cutoff)).rowcount


def publish(store: Store, holder: str, state: dict[str, Any]) -> None:
    """Write the engine's live state (see :func:`engine_state`)."""
    es = db.engine_status
    with store._tx() as con:
        stmt = upsert(con, es).values(name=ENGINE, holder=holder, updated_at=time.time(),
                                      state=json.dumps(state, default=str))
        con.execute(stmt.on_conflict_do_update(index_elements=[es.c.name], set_={
            "holder": stmt.excluded.holder, "updated_at": stmt.excluded.updated_at, "state": stmt.excluded.state}))


@dataclass(frozen=True)
class EngineState:
    """The engine's last published state and how old it is."""

    holder: str
    age_s: float
    state: dict[str, Any]


def engine_state(store: Store) -> EngineState | None:
    """The engine's last published state, None if no engine ever ran on this database."""
    es = db.engine_status
    rows = store._query(select(es.c.holder, es.c.updated_at, es.c.state).where(es.c.name == ENGINE))
    if not rows:
        return None
    return EngineState(rows[0]["holder"], max(0.0, time.time() - float(rows[0]["updated_at"])),
                       json.loads(rows[0]["state"] or "{}"))

"""The durable async event queue and its outcome counters, in the shared database.

Writes are steps for a GroupCommit batch (functions of the Database): the caller composes
them so that an event's removal and everything its outcome produces commit atomically.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from lamina.model.event import AsyncEvent, LastAttempt, Outcome
from lamina.store.database import Database


def _progress(event: AsyncEvent) -> str:
    last = event.last
    return orjson.dumps(
        {
            "invokes": event.invokes,
            "retries": event.retries,
            "backoffs": event.backoffs,
            "last": None
            if last is None
            else {
                "version": last.executed_version,
                "error": last.function_error,
                "payload": last.payload.decode("utf-8", "replace"),
            },
        }
    ).decode()


def insert(db: Database, event: AsyncEvent) -> None:
    db.execute(
        "INSERT INTO async_events (id, region, name, qualifier, payload, accepted_at, due_at, "
        "progress) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event.id,
            event.region,
            event.name,
            event.qualifier,
            event.payload,
            event.accepted_at,
            event.due_at,
            _progress(event),
        ),
    )


def reschedule(db: Database, event: AsyncEvent) -> None:
    db.execute(
        "UPDATE async_events SET due_at = ?, progress = ? WHERE id = ?",
        (event.due_at, _progress(event), event.id),
    )


def remove(db: Database, event_id: str) -> None:
    db.execute("DELETE FROM async_events WHERE id = ?", (event_id,))


def count(db: Database, region: str, name: str, outcomes: Iterable[Outcome]) -> None:
    for outcome in outcomes:
        db.execute(
            "INSERT INTO async_outcomes (region, name, outcome, count) VALUES (?, ?, ?, 1) "
            "ON CONFLICT (region, name, outcome) DO UPDATE SET count = async_outcomes.count + 1",
            (region, name, outcome.value),
        )


def pending(db: Database) -> list[AsyncEvent]:
    """Every event not yet settled, oldest first (startup recovery)."""
    rows = db.all(
        "SELECT id, region, name, qualifier, payload, accepted_at, due_at, progress "
        "FROM async_events ORDER BY accepted_at"
    )
    events = []
    for id_, region, name, qualifier, payload, accepted_at, due_at, progress in rows:
        state = orjson.loads(progress)
        last = state["last"]
        events.append(
            AsyncEvent(
                id_,
                region,
                name,
                qualifier,
                bytes(payload),
                accepted_at,
                due_at,
                state["invokes"],
                state["retries"],
                state["backoffs"],
                None
                if last is None
                else LastAttempt(last["version"], last["error"], last["payload"].encode()),
            )
        )
    return events


def outcomes(db: Database, region: str, name: str) -> dict[str, int]:
    rows = db.all(
        "SELECT outcome, count FROM async_outcomes WHERE region = ? AND name = ?", (region, name)
    )
    return {outcome: int(n) for outcome, n in rows}

"""Built-in durable queues and their messages, in the shared database (FIFO by row id)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from lamina.store.database import Database


@dataclass(frozen=True, slots=True)
class QueueInfo:
    region: str
    name: str
    created_at: float
    messages: int
    oldest_sent_at: float | None


@dataclass(frozen=True, slots=True)
class Message:
    message_id: str
    body: str
    attributes: dict[str, Any]
    sent_at: float


def exists(db: Database, region: str, name: str) -> bool:
    return db.one("SELECT 1 FROM queues WHERE region = ? AND name = ?", (region, name)) is not None


def create(db: Database, region: str, name: str, now: float) -> bool:
    """False if the queue already exists."""
    if exists(db, region, name):
        return False
    db.execute(
        "INSERT INTO queues (region, name, created_at) VALUES (?, ?, ?)", (region, name, now)
    )
    return True


def delete(db: Database, region: str, name: str) -> bool:
    gone = db.execute("DELETE FROM queues WHERE region = ? AND name = ?", (region, name))
    return gone.rowcount > 0


_INFO = (
    "SELECT q.region, q.name, q.created_at, COUNT(m.id), MIN(m.sent_at) FROM queues q "
    "LEFT JOIN queue_messages m ON m.region = q.region AND m.queue = q.name "
)


def info(db: Database, region: str, name: str) -> QueueInfo | None:
    row = db.one(
        _INFO + "WHERE q.region = ? AND q.name = ? GROUP BY q.region, q.name", (region, name)
    )
    return QueueInfo(*row) if row else None


def listing(db: Database, region: str) -> list[QueueInfo]:
    rows = db.all(_INFO + "WHERE q.region = ? GROUP BY q.region, q.name ORDER BY q.name", (region,))
    return [QueueInfo(*row) for row in rows]


def send(db: Database, region: str, name: str, message: Message) -> None:
    db.execute(
        "INSERT INTO queue_messages (region, queue, message_id, body, attributes, sent_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            region,
            name,
            message.message_id,
            message.body,
            orjson.dumps(message.attributes).decode(),
            message.sent_at,
        ),
    )


def peek(db: Database, region: str, name: str, limit: int) -> list[Message]:
    return [m for _, m in _oldest(db, region, name, limit)]


def take(db: Database, region: str, name: str, limit: int) -> list[Message]:
    """Remove and return the oldest `limit` messages (call inside a write transaction)."""
    found = _oldest(db, region, name, limit)
    db.executemany("DELETE FROM queue_messages WHERE id = ?", [(row_id,) for row_id, _ in found])
    return [m for _, m in found]


def delete_messages(db: Database, region: str, name: str, message_ids: list[str]) -> int:
    """Remove the messages with these ids (those still there); how many went."""
    removed = 0
    for message_id in message_ids:
        gone = db.execute(
            "DELETE FROM queue_messages WHERE region = ? AND queue = ? AND message_id = ?",
            (region, name, message_id),
        )
        removed += gone.rowcount
    return removed


def _oldest(db: Database, region: str, name: str, limit: int) -> list[tuple[int, Message]]:
    rows = db.all(
        "SELECT id, message_id, body, attributes, sent_at FROM queue_messages "
        "WHERE region = ? AND queue = ? ORDER BY id LIMIT ?",
        (region, name, limit),
    )
    return [(r[0], Message(r[1], r[2], orjson.loads(r[3]), r[4])) for r in rows]

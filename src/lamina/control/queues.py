"""Built-in durable queues: where destinations and dead-letter configs deliver, and what users
create, read and drain (CLI and HTTP API). Named by SQS-style ARNs so that the AWS tools accept
them as DeadLetterConfig and destination targets."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from lamina.clock import Clock
from lamina.errors import Conflict, InvalidParameter, NotFound
from lamina.store import queues as rows
from lamina.store.database import Database
from lamina.store.group_commit import GroupCommit
from lamina.store.queues import Message, QueueInfo

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")  # SQS queue-name rule
_ARN = re.compile(r"^arn:aws:sqs:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?P<name>[^:]+)$")
MAX_BODY = 1_048_576  # what a user may send by hand (SQS's 1 MiB); records may be larger
MAX_BATCH = 1000


class QueueNotFound(NotFound):
    def __init__(self, arn: str) -> None:
        super().__init__(f"Queue not found: {arn}")


class QueueExists(Conflict):
    def __init__(self, arn: str) -> None:
        super().__init__(f"Queue already exists: {arn}")


@dataclass(frozen=True, slots=True)
class QueueRef:
    region: str
    name: str


class QueueService:
    def __init__(self, database: Database, commits: GroupCommit, clock: Clock, account: str):
        self._db = database
        self._commits = commits
        self._clock = clock
        self._account = account

    # --- names -------------------------------------------------------------------------------

    def arn(self, ref: QueueRef) -> str:
        return f"arn:aws:sqs:{ref.region}:{self._account}:{ref.name}"

    def ref(self, region: str, name: str) -> QueueRef:
        if not _NAME.match(name):
            raise InvalidParameter(
                f"Invalid queue name {name!r}: 1 to 80 letters, digits, hyphens or underscores."
            )
        return QueueRef(region, name)

    def parse_arn(self, arn: str) -> QueueRef | None:
        """The built-in queue an `arn:aws:sqs:` ARN names in this account, or None."""
        match = _ARN.match(arn)
        if match is None or match["account"] != self._account or not _NAME.match(match["name"]):
            return None
        return QueueRef(match["region"], match["name"])

    def exists(self, ref: QueueRef) -> bool:
        return rows.exists(self._db, ref.region, ref.name)

    # --- queues ------------------------------------------------------------------------------

    async def create(self, ref: QueueRef) -> QueueInfo:
        with self._db.write(invalidate=False):
            created = rows.create(self._db, ref.region, ref.name, self._clock.time())
        if not created:
            raise QueueExists(self.arn(ref))
        return self.describe(ref)

    def describe(self, ref: QueueRef) -> QueueInfo:
        found = rows.info(self._db, ref.region, ref.name)
        if found is None:
            raise QueueNotFound(self.arn(ref))
        return found

    def listing(self, region: str) -> list[QueueInfo]:
        return rows.listing(self._db, region)

    async def delete(self, ref: QueueRef) -> None:
        with self._db.write(invalidate=False):
            deleted = rows.delete(self._db, ref.region, ref.name)
        if not deleted:
            raise QueueNotFound(self.arn(ref))

    # --- messages ----------------------------------------------------------------------------

    def message(self, body: str, attributes: dict[str, Any] | None = None) -> Message:
        return Message(str(uuid.uuid4()), body, attributes or {}, self._clock.time())

    async def send(self, ref: QueueRef, body: str, attributes: dict[str, Any]) -> Message:
        if len(body.encode()) > MAX_BODY:
            raise InvalidParameter(f"Message body must be at most {MAX_BODY} bytes.")
        message = self.message(body, attributes)

        def step(db: Database) -> None:
            if not rows.exists(db, ref.region, ref.name):
                raise QueueNotFound(self.arn(ref))
            rows.send(db, ref.region, ref.name, message)

        await self._commits.write(step)
        return message

    def peek(self, ref: QueueRef, limit: int) -> list[Message]:
        self.describe(ref)
        return rows.peek(self._db, ref.region, ref.name, _limit(limit))

    async def drain(self, ref: QueueRef, limit: int) -> list[Message]:
        """Remove and return the oldest messages: once returned, they are the caller's."""
        taken: list[Message] = []

        def step(db: Database) -> None:
            if not rows.exists(db, ref.region, ref.name):
                raise QueueNotFound(self.arn(ref))
            taken.extend(rows.take(db, ref.region, ref.name, _limit(limit)))

        await self._commits.write(step)
        return taken

    async def delete_messages(self, ref: QueueRef, message_ids: list[str]) -> int:
        """Remove the given messages (a reader has them now); how many were still there. With
        `peek`, a reader that may fail on the way (a closed pipe) takes messages losing none."""
        if len(message_ids) > MAX_BATCH:
            raise InvalidParameter(f"MessageIds must hold at most {MAX_BATCH} ids.")
        removed: list[int] = []

        def step(db: Database) -> None:
            if not rows.exists(db, ref.region, ref.name):
                raise QueueNotFound(self.arn(ref))
            removed.append(rows.delete_messages(db, ref.region, ref.name, message_ids))

        await self._commits.write(step)
        return removed[0]


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_BATCH:
        raise InvalidParameter(f"MaxMessages must be between 1 and {MAX_BATCH}.")
    return limit

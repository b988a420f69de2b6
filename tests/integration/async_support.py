"""Helpers for the async-invocation tests: built-in queues over Lamina's signed HTTP API."""

from __future__ import annotations

import json
from typing import Any

from lamina_support import poll, raw_request

# A handler that answers, fails or sleeps as its event says.
ASYNC_HANDLER = """
import time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    if event.get("fail"):
        raise ValueError("boom: " + str(event.get("fail")))
    return {"ok": event, "request": context.aws_request_id}
"""


class Queues:
    """The built-in queues of one server (`/lamina/queues`)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def create(self, name: str) -> str:
        answer = raw_request(
            self.endpoint, "POST", "/lamina/queues", body=json.dumps({"Name": name}).encode()
        )
        assert answer.status == 201, answer.content
        arn: str = answer.json()["Queue"]["QueueArn"]
        return arn

    def describe(self, name: str) -> dict[str, Any]:
        answer = raw_request(self.endpoint, "GET", f"/lamina/queues/{name}")
        assert answer.status == 200, answer.content
        queue: dict[str, Any] = answer.json()["Queue"]
        return queue

    def send(self, name: str, body: str) -> str:
        document = json.dumps({"Body": body}).encode()
        answer = raw_request(
            self.endpoint, "POST", f"/lamina/queues/{name}/messages", body=document
        )
        assert answer.status == 200, answer.content
        message_id: str = answer.json()["MessageId"]
        return message_id

    def peek(self, name: str, limit: int = 100) -> list[dict[str, Any]]:
        answer = raw_request(
            self.endpoint, "GET", f"/lamina/queues/{name}/messages", query=f"MaxMessages={limit}"
        )
        assert answer.status == 200, answer.content
        messages: list[dict[str, Any]] = answer.json()["Messages"]
        return messages

    def drain(self, name: str, limit: int = 1000) -> list[dict[str, Any]]:
        body = json.dumps({"MaxMessages": limit}).encode()
        answer = raw_request(self.endpoint, "POST", f"/lamina/queues/{name}/drain", body=body)
        assert answer.status == 200, answer.content
        messages: list[dict[str, Any]] = answer.json()["Messages"]
        return messages

    def wait(self, name: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll until the queue holds at least `count` messages; returns them (kept)."""
        found = poll(lambda: self.peek(name, 1000), lambda m: len(m) >= count, timeout)
        assert len(found) >= count, (name, found)
        return found


def async_stats(endpoint: str, name: str) -> dict[str, Any]:
    answer = raw_request(endpoint, "GET", f"/lamina/functions/{name}/async")
    assert answer.status == 200, answer.content
    stats: dict[str, Any] = answer.json()
    return stats


def records(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in messages]

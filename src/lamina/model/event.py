"""Asynchronous invocation: an accepted event, its progress, and how it ended."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Outcome(enum.StrEnum):
    """How an accepted event ended, or what happened on the way (each is counted per function)."""

    SUCCEEDED = "succeeded"  # the function returned without error
    FAILED = "failed"  # function errors outlasted MaximumRetryAttempts, or reserved concurrency 0
    EXPIRED = "expired"  # MaximumEventAgeInSeconds passed first
    DISCARDED = "discarded"  # the function (or its version or alias) was deleted meanwhile
    RETRIED = "retried"  # a function error led to another attempt
    THROTTLED = "throttled"  # a throttle or system error put it back on the queue
    DEAD_LETTERED = "dead_lettered"  # the original event went to DeadLetterConfig's target
    DESTINED = "destined"  # a record went to an OnSuccess / OnFailure destination
    DELIVERY_FAILED = "delivery_failed"  # the DLQ or destination was gone: nothing to deliver to


FINAL = frozenset({Outcome.SUCCEEDED, Outcome.FAILED, Outcome.EXPIRED, Outcome.DISCARDED})


@dataclass(frozen=True, slots=True)
class LastAttempt:
    """What the last invocation answered (for the destination record)."""

    executed_version: str
    function_error: str | None
    payload: bytes


@dataclass(slots=True)
class AsyncEvent:
    """An accepted event: stored before the 202, removed only once it has an outcome."""

    id: str  # the request id the caller got with the 202, and the function sees
    region: str
    name: str
    qualifier: str | None
    payload: bytes
    accepted_at: float  # epoch seconds
    due_at: float  # epoch seconds: not before
    invokes: int = 0  # invocations that ran (approximateInvokeCount)
    retries: int = 0  # retries after function errors
    backoffs: int = 0  # consecutive throttles or system errors (exponential backoff)
    last: LastAttempt | None = field(default=None)

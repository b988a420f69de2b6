"""Per-function time series: one-minute buckets for the last 24 hours, in memory.

Each function gets a ring of 1,440 slots the first time it is invoked or throttled; a slot holds
the bucket of one minute and is replaced when the ring comes round to it again, so memory is
bounded by the number of functions and an update is a few attribute operations (no locks: the
event loop is the only writer and reader). Series do not survive a restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

MINUTES = 1440  # 24 hours of one-minute buckets
PERIOD_S = 60


class Bucket:
    """What one function did during one minute."""

    __slots__ = (
        "cold_starts",
        "duration_count",
        "duration_max",
        "duration_sum",
        "errors",
        "invocations",
        "minute",
        "throttles",
    )

    def __init__(self, minute: int) -> None:
        self.minute = minute  # minutes since the epoch
        self.invocations = 0
        self.errors = 0
        self.throttles = 0
        self.cold_starts = 0
        self.duration_count = 0
        self.duration_sum = 0.0  # seconds
        self.duration_max = 0.0

    def as_point(self) -> dict[str, Any]:
        average = self.duration_sum / self.duration_count if self.duration_count else None
        return {
            "Timestamp": _iso(self.minute),
            "Invocations": self.invocations,
            "Errors": self.errors,
            "Throttles": self.throttles,
            "ColdStarts": self.cold_starts,
            "DurationCount": self.duration_count,
            "DurationSumMs": round(self.duration_sum * 1000, 3),
            "DurationMaxMs": round(self.duration_max * 1000, 3),
            "DurationAverageMs": None if average is None else round(average * 1000, 3),
        }


class TimeSeries:
    """Minute buckets per (region, function name)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._rings: dict[tuple[str, str], list[Bucket | None]] = {}

    def bucket(self, region: str, name: str) -> Bucket:
        """The current minute's bucket of a function, made if needed."""
        minute = int(self._clock() // PERIOD_S)
        ring = self._rings.get((region, name))
        if ring is None:
            ring = self._rings[(region, name)] = [None] * MINUTES
        slot = minute % MINUTES
        bucket = ring[slot]
        if bucket is None or bucket.minute != minute:
            bucket = ring[slot] = Bucket(minute)
        return bucket

    def invoked(self, region: str, name: str, duration_s: float, error: bool, cold: bool) -> None:
        bucket = self.bucket(region, name)
        bucket.invocations += 1
        bucket.duration_count += 1
        bucket.duration_sum += duration_s
        if duration_s > bucket.duration_max:
            bucket.duration_max = duration_s
        if error:
            bucket.errors += 1
        if cold:
            bucket.cold_starts += 1

    def throttled(self, region: str, name: str) -> None:
        self.bucket(region, name).throttles += 1

    def forget(self, region: str, name: str) -> None:
        self._rings.pop((region, name), None)

    def points(self, region: str, name: str, minutes: int = 60) -> list[dict[str, Any]]:
        """The last `minutes` buckets (1..1,440), oldest first, the current minute last; minutes
        without activity are zero points, so a chart needs no gap filling."""
        minutes = max(1, min(MINUTES, minutes))
        now = int(self._clock() // PERIOD_S)
        ring = self._rings.get((region, name))
        found: list[dict[str, Any]] = []
        for minute in range(now - minutes + 1, now + 1):
            bucket = ring[minute % MINUTES] if ring is not None else None
            if bucket is None or bucket.minute != minute:
                bucket = Bucket(minute)
            found.append(bucket.as_point())
        return found


def _iso(minute: int) -> str:
    return datetime.fromtimestamp(minute * PERIOD_S, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

"""CloudWatch Logs semantics over the function log store: groups, streams, events, retention.

Log groups exist once something has written to them (Lambda creates a function's group on its
first log line, as AWS does). Reads flush the store's buffer first, so what a function printed
is readable at once, drop events past the group's retention (whole expired segments are
deleted on the way), and scan the files in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import heapq
import itertools
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

import orjson

from lamina.errors import InvalidParameter, NotFound, ValidationFailed
from lamina.observability.filter_pattern import Pattern, compile_pattern
from lamina.observability.logstore import (
    Event,
    FileLogSink,
    GroupInfo,
    Position,
    StreamInfo,
    finder_for,
)

# PutRetentionPolicy's accepted values (CloudWatch Logs API reference, retentionInDays).
RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
)  # fmt: skip
MAX_EVENTS = 10_000  # GetLogEvents / FilterLogEvents default and maximum `limit`
MAX_RESPONSE_BYTES = 1_048_576  # both return at most 1 MB of events per call
EVENT_OVERHEAD = 26  # bytes AWS counts per event on top of its message (PutLogEvents quota)
DEFAULT_PAGE = 50

GROUP_MISSING = "The specified log group does not exist."
STREAM_MISSING = "The specified log stream does not exist."
BAD_TOKEN = "The specified nextToken is invalid."

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class EventsPage:
    events: list[Event]
    forward_token: str
    backward_token: str


@dataclass(frozen=True, slots=True)
class FilterPage:
    events: list[Event]
    next_token: str | None


def event_id(event: Event) -> str:
    """A stable, unique, numeric id (AWS's are long digit strings too)."""
    crc = zlib.crc32(event.stream.encode())
    return f"{event.timestamp:015d}{crc:010d}{event.seq:010d}{event.offset:015d}"


class LogService:
    def __init__(self, store: FileLogSink, account_id: str) -> None:
        self._store = store
        self._account = account_id

    def group_arn(self, region: str, group: str) -> str:
        return f"arn:aws:logs:{region}:{self._account}:log-group:{group}"

    def stream_arn(self, region: str, group: str, stream: str) -> str:
        return f"{self.group_arn(region, group)}:log-stream:{stream}"

    # --- groups and streams ----------------------------------------------------------------------

    async def groups(
        self,
        region: str,
        prefix: str | None = None,
        pattern: str | None = None,
        limit: int | None = None,
        token: str | None = None,
    ) -> tuple[list[GroupInfo], str | None]:
        if prefix is not None and pattern is not None:
            raise InvalidParameter(
                "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters."
            )
        self._store.flush()
        names = self._store.groups(region)
        if prefix is not None:
            names = [n for n in names if n.startswith(prefix)]
        if pattern:  # a case-sensitive substring (DescribeLogGroups, logGroupNamePattern)
            names = [n for n in names if pattern in n]
        page, next_token = _page(names, limit, token)
        infos = await asyncio.to_thread(lambda: [self._store.group_info(region, n) for n in page])
        return [i for i in infos if i is not None], next_token

    async def streams(
        self,
        region: str,
        group: str,
        prefix: str | None = None,
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = None,
        token: str | None = None,
    ) -> tuple[list[StreamInfo], str | None]:
        by_time = order_by == "LastEventTime"
        if by_time and prefix is not None:
            raise InvalidParameter("Cannot order by LastEventTime with a logStreamNamePrefix.")
        self._existing(region, group)

        def listing() -> list[StreamInfo]:
            names = [n for n in self._store.streams(region, group) if n.startswith(prefix or "")]
            infos = [self._store.stream_info(region, group, n) for n in names]
            found = [i for i in infos if i is not None]
            if by_time:
                found.sort(key=lambda i: (i.last_event_ms or 0, i.name))
            return found[::-1] if descending else found

        infos, next_token = _page(await asyncio.to_thread(listing), limit, token)
        return infos, next_token

    async def delete_group(self, region: str, group: str) -> None:
        if not self._store.delete_group(region, group):
            raise NotFound(GROUP_MISSING)

    async def delete_stream(self, region: str, group: str, stream: str) -> None:
        self._existing(region, group)
        if not self._store.delete_stream(region, group, stream):
            raise NotFound(STREAM_MISSING)

    async def put_retention(self, region: str, group: str, days: int) -> None:
        if days not in RETENTION_DAYS:
            allowed = ", ".join(str(d) for d in RETENTION_DAYS)
            raise ValidationFailed(
                [
                    f"Value '{days}' at 'retentionInDays' failed to satisfy constraint: "
                    f"Member must satisfy enum value set: [{allowed}]"
                ]
            )
        self._store.flush()
        if not self._store.set_retention(region, group, days):
            raise NotFound(GROUP_MISSING)

    async def delete_retention(self, region: str, group: str) -> None:
        self._store.flush()
        if not self._store.set_retention(region, group, None):
            raise NotFound(GROUP_MISSING)

    def _existing(self, region: str, group: str) -> None:
        self._store.flush()  # a group exists from its first line on, flushed or not
        if self._store.group_info(region, group, with_size=False) is None:
            raise NotFound(GROUP_MISSING)

    def _prepare_read(self, region: str, group: str, start_ms: int | None) -> int | None:
        """Flush, check the group, drop what retention expired; the effective start time."""
        self._store.flush()
        self._existing(region, group)
        self._store.expire_group(region, group)
        cutoff = self._store.cutoff_ms(region, group)
        if cutoff is None:
            return start_ms
        return cutoff if start_ms is None else max(start_ms, cutoff)

    # --- GetLogEvents ----------------------------------------------------------------------------

    async def get_events(
        self,
        region: str,
        group: str,
        stream: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        token: str | None = None,
        limit: int | None = None,
        from_head: bool = False,
    ) -> EventsPage:
        """AWS's paging: `f/` tokens read forward from a position, `b/` tokens backward from
        one; without a token, the oldest events (from_head) or the newest ones. At the end of
        the stream the token passed in comes back unchanged (GetLogEvents API reference)."""
        direction, position = _parse_stream_token(token) if token else (None, None)
        start = self._prepare_read(region, group, start_ms)
        if not self._store.stream_exists(region, group, stream):
            raise NotFound(STREAM_MISSING)
        count = limit or MAX_EVENTS
        forward = direction == "f" or (direction is None and from_head)

        def read() -> list[Event]:
            if forward:
                found = self._store.read_forward(
                    region, group, stream, start_ms=start, end_ms=end_ms, at=position
                )
                return _take(found, count)
            found = self._store.read_backward(
                region, group, stream, start_ms=start, end_ms=end_ms, before=position
            )
            return _take(found, count)[::-1]

        events = await asyncio.to_thread(read)
        if events:
            return EventsPage(
                events,
                _stream_token("f", events[-1].next_position),
                _stream_token("b", events[0].position),
            )
        at = position or (0, 0)
        forward_token = token if direction == "f" and token else _stream_token("f", at)
        backward_token = token if direction == "b" and token else _stream_token("b", at)
        return EventsPage([], forward_token, backward_token)

    # --- FilterLogEvents -------------------------------------------------------------------------

    async def filter_events(
        self,
        region: str,
        group: str,
        stream_names: list[str] | None = None,
        stream_prefix: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        pattern: str | None = None,
        token: str | None = None,
        limit: int | None = None,
    ) -> FilterPage:
        """Matching events of the group's streams in time order (interleaved, as AWS always
        does now); `nextToken` resumes after the last event returned."""
        if stream_names is not None and stream_prefix is not None:
            raise InvalidParameter(
                "logStreamNames and logStreamNamePrefix are mutually exclusive parameters."
            )
        compiled = compile_pattern(pattern or "")
        after = _parse_filter_token(token) if token else None
        start = self._prepare_read(region, group, start_ms)
        if after is not None:
            start = after[0] if start is None else max(start, after[0])
        count = limit or MAX_EVENTS

        def read() -> FilterPage:
            names = self._store.streams(region, group)
            if stream_names is not None:
                wanted = set(stream_names)
                names = [n for n in names if n in wanted]
            if stream_prefix is not None:
                names = [n for n in names if n.startswith(stream_prefix)]
            sources = [
                self._matching(region, group, n, start, end_ms, compiled, after) for n in names
            ]
            merged = heapq.merge(*sources, key=_order)
            events = _take(merged, count)
            more = next(merged, None) is not None
            return FilterPage(events, _filter_token(events[-1]) if more and events else None)

        return await asyncio.to_thread(read)

    def _matching(
        self,
        region: str,
        group: str,
        stream: str,
        start_ms: int | None,
        end_ms: int | None,
        pattern: Pattern,
        after: tuple[int, str, int, int] | None,
    ) -> Iterator[Event]:
        finder = finder_for(pattern.prefilter)
        found = self._store.read_forward(
            region, group, stream, start_ms=start_ms, end_ms=end_ms, finder=finder
        )
        for event in found:
            if after is not None and _order(event) <= after:
                continue
            if pattern.matches(event.message):
                yield event


# --- helpers ---------------------------------------------------------------------------------


def _order(event: Event) -> tuple[int, str, int, int]:
    return (event.timestamp, event.stream, event.seq, event.offset)


def _take(events: Iterator[Event], count: int) -> list[Event]:
    """Up to `count` events and at most 1 MB of them (AWS's per-call cap)."""
    taken: list[Event] = []
    size = 0
    for event in itertools.islice(events, count):
        size += len(event.message.encode()) + EVENT_OVERHEAD
        if taken and size > MAX_RESPONSE_BYTES:
            break
        taken.append(event)
    return taken


def _stream_token(direction: str, position: Position) -> str:
    return f"{direction}/{position[0]:010d}{position[1]:020d}"


def _parse_stream_token(token: str) -> tuple[str, Position]:
    direction, _, digits = token.partition("/")
    if direction not in ("f", "b") or len(digits) != 30 or not digits.isdigit():
        raise InvalidParameter(BAD_TOKEN)
    return direction, (int(digits[:10]), int(digits[10:]))


def _filter_token(event: Event) -> str:
    raw = orjson.dumps([event.timestamp, event.stream, event.seq, event.offset])
    return base64.urlsafe_b64encode(raw).decode()


def _parse_filter_token(token: str) -> tuple[int, str, int, int]:
    try:
        ms, stream, seq, offset = orjson.loads(base64.urlsafe_b64decode(token))
        return int(ms), str(stream), int(seq), int(offset)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidParameter(BAD_TOKEN) from None


def _page(items: list[T], limit: int | None, token: str | None) -> tuple[list[T], str | None]:
    """A page of a listing; the token is the index of the next item."""
    start = 0
    if token is not None:
        try:
            start = int(base64.urlsafe_b64decode(token))
        except (ValueError, binascii.Error):
            raise InvalidParameter(BAD_TOKEN) from None
    end = start + (limit or DEFAULT_PAGE)
    next_token = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return items[start:end], next_token

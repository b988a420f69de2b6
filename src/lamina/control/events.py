"""Asynchronous invocation (InvocationType=Event): accept durably, run, retry, deliver outcomes.

Accept: the event is committed (group commit, one fsync per batch) before the 202 is sent, so a
crash after the 202 loses nothing; at restart every stored event is scheduled again
(at-least-once, as AWS promises). Dispatch: events run through the same InvokeService as
synchronous invokes. Each function has its own queue, as in AWS: its events start in order, up to
`max_in_flight` of them at once (scaling out like synchronous invokes, within the function's
reserved concurrency if it has one), and functions take turns for the server's `max_total`
slots, so one function's backlog never holds up another's events. Then, as AWS does
(event-formats.md §9.3):
- a function error is retried up to MaximumRetryAttempts, after ~1 min and then ~2 min;
- a throttle or a system error goes back on the queue with exponential backoff (1 s to 5 min),
  without using up retries, until MaximumEventAgeInSeconds; but with reserved concurrency 0
  the event fails at once, to its DLQ or OnFailure destination, as AWS does since 2021;
- the end is SUCCEEDED, FAILED, EXPIRED or DISCARDED (function deleted: its waiting events
  at once, so a function re-created under the name never runs them): the event is removed in
  the same transaction that counts the outcome and delivers the destination record or the dead
  letter. Every outcome is counted per function (`outcomes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from lamina.clock import Clock
from lamina.control.destinations import Deliveries, dead_letter_attributes, record
from lamina.control.event_config import DEFAULT_POLICY, AsyncPolicy, EventConfigService
from lamina.control.functions import FunctionService
from lamina.control.invoke import MAX_ASYNC_PAYLOAD, InvokeService, checked_payload
from lamina.errors import EntityTooLarge, FunctionNotFound, LaminaError
from lamina.ids import FunctionRef
from lamina.model.event import FINAL, AsyncEvent, LastAttempt, Outcome
from lamina.model.function import LATEST
from lamina.store import events as rows
from lamina.store.database import Database
from lamina.store.group_commit import GroupCommit

log = logging.getLogger(__name__)

RETRY_DELAYS = (60.0, 120.0)  # before the first and the second retry after a function error
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 300.0  # throttles and system errors


@dataclass(frozen=True, slots=True)
class QueueStats:
    """One function's async queue: waiting events, the oldest one's age, and outcome counts."""

    pending: int
    in_flight: int
    oldest_age_s: float | None
    outcomes: dict[str, int]


class EventQueue:
    def __init__(
        self,
        database: Database,
        commits: GroupCommit,
        invoker: InvokeService,
        functions: FunctionService,
        configs: EventConfigService,
        deliveries: Deliveries,
        clock: Clock,
        account: str,
        delay_scale: float = 1.0,
        max_in_flight: int = 100,
        max_total: int = 1000,
        on_outcomes: Callable[[str, str, Iterable[str]], None] | None = None,
        reserved: Callable[[str, str], int | None] = lambda region, name: None,
    ) -> None:
        self._db = database
        self._commits = commits
        self._invoker = invoker
        self._functions = functions
        self._configs = configs
        self._deliveries = deliveries
        self._clock = clock
        self._account = account
        self._scale = delay_scale
        self._max_in_flight = max_in_flight  # per function: a burst scales out to this many
        # A function's reserved concurrency bounds its events in flight: more would only be
        # throttled and backed off. At least one runs, so that an event can still expire.
        self._reserved = reserved
        self._max_total = max_total
        # Ready events per (region, name), in the order functions get their turn.
        self._ready: dict[tuple[str, str], deque[AsyncEvent]] = {}
        self._waiting: dict[str, tuple[AsyncEvent, asyncio.TimerHandle]] = {}
        self._running: dict[tuple[str, str, str], asyncio.Task[None]] = {}  # (id, region, name)
        self._in_flight: Counter[tuple[str, str]] = Counter()  # of _running, per function
        self._closed = False
        self._on_outcomes = on_outcomes  # metrics: told each outcome once it is committed
        # Running events of a deleted function: what their attempt asks next (a retry, a
        # backoff) is discarded instead.
        self._orphans: set[str] = set()

    # --- accept ------------------------------------------------------------------------------

    async def accept(self, ref: FunctionRef, payload: bytes, request_id: str) -> None:
        """Store the event durably; returns when it is committed (then the 202 may go)."""
        await self._invoker.check(ref)
        if len(payload) > MAX_ASYNC_PAYLOAD:
            raise EntityTooLarge(  # AWS's wording, as SDK error logs show it
                f"{len(payload)} byte payload is too large for the Event invocation type "
                f"(limit {MAX_ASYNC_PAYLOAD} bytes)"
            )
        payload = checked_payload(payload)
        now = self._clock.time()
        event = AsyncEvent(request_id, ref.region, ref.name, ref.qualifier, payload, now, now)
        await self._commits.write(lambda db: rows.insert(db, event))
        self._enqueue(event)

    async def function_deleted(self, region: str, name: str) -> None:
        """The function is deleted: its waiting events end DISCARDED now, so that a function
        created later under the same name never runs them; one running now ends with its
        attempt."""
        function = (region, name)
        gone = list(self._ready.pop(function, ()))
        for event_id, (event, timer) in list(self._waiting.items()):
            if (event.region, event.name) == function:
                timer.cancel()
                del self._waiting[event_id]
                gone.append(event)
        self._orphans.update(key[0] for key in self._running if key[1:] == function)
        await asyncio.gather(
            *(self._settle(event, Outcome.DISCARDED, DEFAULT_POLICY) for event in gone)
        )

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Schedule what a previous run accepted and did not finish."""
        recovered = rows.pending(self._db)
        for event in recovered:
            self._enqueue(event)
        if recovered:
            log.info("recovered %d async events", len(recovered))

    async def close(self) -> None:
        """Stop dispatching. Unfinished events stay stored and run after the next start."""
        self._closed = True
        for _, timer in self._waiting.values():
            timer.cancel()
        self._waiting.clear()
        self._ready.clear()
        running = list(self._running.values())
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def stats(self, region: str, name: str) -> QueueStats:
        def mine(event: AsyncEvent) -> bool:
            return event.region == region and event.name == name

        queued = [
            *self._ready.get((region, name), ()),
            *(e for e, _ in self._waiting.values() if mine(e)),
        ]
        in_flight = self._in_flight[(region, name)]
        oldest = min((e.accepted_at for e in queued), default=None)
        age = None if oldest is None else max(0.0, self._clock.time() - oldest)
        return QueueStats(len(queued), in_flight, age, rows.outcomes(self._db, region, name))

    def depths(self) -> dict[tuple[str, str], tuple[int, int, float | None]]:
        """Per (region, name) with events: (waiting, in flight, oldest waiting one's age)."""
        now = self._clock.time()
        found: dict[tuple[str, str], tuple[int, int, float | None]] = {}
        ready = (event for events in self._ready.values() for event in events)
        for event in [*ready, *(e for e, _ in self._waiting.values())]:
            waiting, running, age = found.get((event.region, event.name), (0, 0, None))
            mine = max(0.0, now - event.accepted_at)
            found[(event.region, event.name)] = (waiting + 1, running, max(age or 0.0, mine))
        for _, region, name in self._running:
            waiting, running, age = found.get((region, name), (0, 0, None))
            found[(region, name)] = (waiting, running + 1, age)
        return found

    # --- dispatch ----------------------------------------------------------------------------

    def _enqueue(self, event: AsyncEvent) -> None:
        # A retry is queued by its own attempt's task, which ends a loop turn later: from now
        # on the event counts as waiting, not also as in flight.
        key = (event.id, event.region, event.name)
        if key in self._running:
            self._stopped(key)
        delay = event.due_at - self._clock.time()
        if delay > 0:
            timer = asyncio.get_running_loop().call_later(delay, self._due, event.id)
            self._waiting[event.id] = (event, timer)
        else:
            self._make_ready(event)

    def _due(self, event_id: str) -> None:
        event, _ = self._waiting.pop(event_id)
        self._make_ready(event)

    def _make_ready(self, event: AsyncEvent) -> None:
        self._ready.setdefault((event.region, event.name), deque()).append(event)
        self._pump()

    def _pump(self) -> None:
        """Start ready events: each function up to its `max_in_flight`, in turns, while the
        server has slots; a function that still has events goes to the back of the turn."""
        if self._closed:
            return
        for function in list(self._ready):
            room = self._max_total - len(self._running)
            if room <= 0:
                return
            events = self._ready.pop(function)
            for _ in range(min(room, self._limit(function) - self._in_flight[function])):
                if not events:
                    break
                self._start(events.popleft())
            if events:
                self._ready[function] = events  # its next turn comes after the others'

    def _limit(self, function: tuple[str, str]) -> int:
        reserved = self._reserved(*function)
        return (
            self._max_in_flight if reserved is None else max(1, min(self._max_in_flight, reserved))
        )

    def _start(self, event: AsyncEvent) -> None:
        key = (event.id, event.region, event.name)
        task = asyncio.get_running_loop().create_task(self._run(event))
        self._running[key] = task
        self._in_flight[(event.region, event.name)] += 1
        task.add_done_callback(functools.partial(self._finished, key))

    def _stopped(self, key: tuple[str, str, str]) -> None:
        del self._running[key]
        function = key[1:]
        self._in_flight[function] -= 1
        if not self._in_flight[function]:
            del self._in_flight[function]

    def _finished(self, key: tuple[str, str, str], task: asyncio.Task[None]) -> None:
        if self._running.get(key) is task:  # not if a retry of the event already runs
            self._stopped(key)
        self._pump()

    async def _run(self, event: AsyncEvent) -> None:
        try:
            await self._attempt(event)
        except asyncio.CancelledError:
            raise
        except Exception:  # never lose it: the event stays stored; try again later
            log.exception("async event %s could not be settled; retrying", event.id)
            self._backoff_later(event)

    async def _attempt(self, event: AsyncEvent) -> None:
        if event.id in self._orphans:  # its function was deleted while it ran
            await self._settle(event, Outcome.DISCARDED, DEFAULT_POLICY)
            return
        policy = await self._configs.policy(event.region, event.name, event.qualifier)
        now = self._clock.time()
        if now - event.accepted_at > policy.max_age_s:
            await self._settle(event, Outcome.EXPIRED, policy)
            return
        if self._reserved(event.region, event.name) == 0:
            # Reserved concurrency 0 throttles everything, and AWS then sends the event to the
            # DLQ or OnFailure destination at once instead of retrying it (its notice of
            # August 2021, quoted in SummitRoute/aws_breaking_changes#48). The record's
            # condition is not documented for this case: RetriesExhausted, 0 invocations.
            await self._settle(event, Outcome.FAILED, policy)
            return
        ref = FunctionRef(event.region, self._account, event.name, event.qualifier)
        try:
            outcome = await self._invoker.invoke(ref, event.payload, None, event.id, False)
        except FunctionNotFound:
            await self._settle(event, Outcome.DISCARDED, policy)
            return
        except LaminaError as error:  # throttled, not Active yet, or a system error
            log.debug("async event %s deferred: %s", event.id, error.message)
            await self._defer(event, policy, Outcome.THROTTLED, self._backoff(event))
            return
        event.invokes += 1
        event.backoffs = 0
        event.last = LastAttempt(outcome.executed_version, outcome.function_error, outcome.payload)
        if outcome.function_error is None:
            await self._settle(event, Outcome.SUCCEEDED, policy)
        elif event.retries < policy.max_retries:
            delay = RETRY_DELAYS[min(event.retries, len(RETRY_DELAYS) - 1)] * self._scale
            event.retries += 1
            await self._defer(event, policy, Outcome.RETRIED, delay)
        else:
            await self._settle(event, Outcome.FAILED, policy)

    def _backoff(self, event: AsyncEvent) -> float:
        delay: float = min(BACKOFF_FIRST * 2.0**event.backoffs, BACKOFF_MAX) * self._scale
        event.backoffs += 1
        return delay

    def _backoff_later(self, event: AsyncEvent) -> None:
        if self._closed:
            return
        event.due_at = self._clock.time() + self._backoff(event)
        self._enqueue(event)

    async def _defer(
        self, event: AsyncEvent, policy: AsyncPolicy, why: Outcome, delay: float
    ) -> None:
        """Run it again after `delay`, unless it would be too old by then: that ends it now."""
        if event.id in self._orphans:  # its function was deleted while it ran
            await self._settle(event, Outcome.DISCARDED, policy)
            return
        now = self._clock.time()
        if now + delay - event.accepted_at > policy.max_age_s:
            await self._settle(event, Outcome.EXPIRED, policy)
            return
        event.due_at = now + delay

        def step(db: Database) -> None:
            rows.reschedule(db, event)
            rows.count(db, event.region, event.name, (why,))

        await self._commits.write(step)
        if self._on_outcomes is not None:
            self._on_outcomes(event.region, event.name, (why,))
        self._enqueue(event)

    async def _settle(self, event: AsyncEvent, outcome: Outcome, policy: AsyncPolicy) -> None:
        """Remove the event, count its outcome and deliver it: one transaction."""
        assert outcome in FINAL
        self._orphans.discard(event.id)
        now = self._clock.time()
        follow_ups: list[AsyncEvent] = []
        deliveries = []
        if outcome is Outcome.SUCCEEDED and policy.on_success:
            body = record(event, "Success", self._account, now)
            deliveries.append(
                self._deliveries.step(
                    event, policy.on_success, body, {}, Outcome.DESTINED, now, follow_ups
                )
            )
        if outcome in (Outcome.FAILED, Outcome.EXPIRED):
            condition = "RetriesExhausted" if outcome is Outcome.FAILED else "EventAgeExceeded"
            if policy.on_failure:
                body = record(event, condition, self._account, now)
                deliveries.append(
                    self._deliveries.step(
                        event, policy.on_failure, body, {}, Outcome.DESTINED, now, follow_ups
                    )
                )
            dead_letter = await self._dead_letter_target(event)
            if dead_letter:
                deliveries.append(
                    self._deliveries.step(
                        event,
                        dead_letter,
                        event.payload,
                        dead_letter_attributes(event),
                        Outcome.DEAD_LETTERED,
                        now,
                        follow_ups,
                    )
                )

        counted: list[Outcome] = []

        def step(db: Database) -> None:
            rows.remove(db, event.id)
            counted[:] = [outcome, *(deliver(db) for deliver in deliveries)]
            rows.count(db, event.region, event.name, counted)

        # What a delivery produced must be durable; a bare removal may be lost (the event then
        # runs again: async invocation is at-least-once, as in AWS).
        await self._commits.write(step, durable=bool(deliveries))
        if self._on_outcomes is not None:
            self._on_outcomes(event.region, event.name, counted)
        if outcome is not Outcome.SUCCEEDED:
            log.info("async event %s of %s ended %s", event.id, event.name, outcome.value)
        for follow_up in follow_ups:
            self._enqueue(follow_up)

    async def _dead_letter_target(self, event: AsyncEvent) -> str | None:
        """DeadLetterConfig of the version that ran (or the one invoked, if none ran)."""
        version = event.last.executed_version if event.last else event.qualifier or LATEST
        ref = FunctionRef(event.region, self._account, event.name, version)
        try:
            _, found = await self._functions.resolve(ref)
        except FunctionNotFound:
            return None
        return found.config.dead_letter_target

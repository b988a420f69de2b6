"""Concurrency: reserved concurrency, the account's pool, and admission of invocations.

AWS's accounting (../shared/reference/limits.md §2): the account has `limit` concurrent
executions per region. A function with reserved concurrency R takes R out of the account's pool
and never runs more than R at once; provisioned concurrency P is claimed ahead, from R when R is
set, else from the account. Everything else shares what is left:

    UnreservedConcurrentExecutions = limit - sum(R) - sum(P of functions without R)

and at least 100 of it must stay unreserved. Invocations that a provisioned environment serves
were paid for by P; every other (on-demand) invocation is admitted here, from in-memory counters
(no SQL per invoke), and refused with TooManyRequests when its pool is full. New on-demand
environments of one function are also limited to `scaling_rate` per 10 s (a token bucket).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from lamina.control.functions import FunctionService
from lamina.errors import FunctionNotFound, InvalidParameter, TooManyRequests
from lamina.ids import FunctionRef
from lamina.store.function_settings import Document, FunctionSettings, SettingKind

MIN_UNRESERVED = 100
SCALING_WINDOW_S = 10.0  # AWS: 1,000 new environments per function every 10 seconds

# Throttle reasons (botocore's ThrottleReason enum; limits.md §3).
RESERVED_LIMIT = "ReservedFunctionConcurrentInvocationLimitExceeded"
ACCOUNT_LIMIT = "ConcurrentInvocationLimitExceeded"
RATE_LIMIT = "FunctionInvocationRateLimitExceeded"
RESERVED_RATE_LIMIT = "ReservedFunctionInvocationRateLimitExceeded"

# control-api.md §4.14.
QUALIFIED = (
    "This operation is permitted on Lambda functions only. Aliases and versions do not support "
    "this operation. Please specify either a function name or an unqualified function ARN."
)
RESERVED_BELOW_MINIMUM = (
    "Specified ReservedConcurrentExecutions for function decreases account's "
    f"UnreservedConcurrentExecution below its minimum value of [{MIN_UNRESERVED}]."
)
# The next three are LocalStack's (services/lambda_/provider.py), recorded against AWS by its
# snapshot tests; the odd spacing of the first is theirs.
RESERVED_BELOW_PROVISIONED = (
    " ReservedConcurrentExecutions  {reserved} should not be lower than function's total "
    "provisioned concurrency [{provisioned}]."
)
PROVISIONED_ABOVE_RESERVED = (
    "Requested Provisioned Concurrency should not be greater than the "
    "reservedConcurrentExecution for function"
)
PROVISIONED_BELOW_MINIMUM = (
    "Specified ConcurrentExecutions for function decreases account's "
    f"UnreservedConcurrentExecution below its minimum value of [{MIN_UNRESERVED}]."
)
PROVISIONED_ABOVE_LIMIT = (
    "Specified ConcurrentExecutions for function is greater than account's unreserved "
    "concurrency [{limit}]."
)


@dataclass(slots=True)
class _Use:
    """One function's settings and what it is running now."""

    reserved: int | None
    provisioned: int  # sum of its provisioned concurrency configs (requested)
    running: int  # on-demand invocations in flight
    tokens: float  # scaling-rate bucket: new environments it may start now
    refilled: float  # when `tokens` was last brought up to date

    @property
    def claim(self) -> int:
        """What it takes out of the account's pool."""
        return self.reserved if self.reserved is not None else self.provisioned


@dataclass(slots=True)
class _Region:
    claimed: int = 0  # sum of every function's claim
    running: int = 0  # on-demand invocations in flight of functions without a reservation


@dataclass(frozen=True, slots=True)
class Lease:
    """An admitted on-demand invocation; give it back with `release`."""

    use: _Use
    pool: _Region | None  # None: it ran on its function's reservation


class ConcurrencyService:
    def __init__(
        self,
        functions: FunctionService,
        settings: FunctionSettings,
        limit: int,
        scaling_rate: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._functions = functions
        self._settings = settings
        self.limit = limit
        self._rate = float(scaling_rate)
        self._clock = clock
        self._uses: dict[tuple[str, str], _Use] = {}
        self._regions: dict[str, _Region] = {}

    async def load(self) -> None:
        """Reservations and provisioned totals from the store (startup)."""
        for region, name, _, document in await self._settings.of_kind(
            SettingKind.RESERVED_CONCURRENCY
        ):
            self._use(region, name).reserved = _reserved_of(document)
        for region, name, _, document in await self._settings.of_kind(
            SettingKind.PROVISIONED_CONCURRENCY
        ):
            self._use(region, name).provisioned += int(document["Requested"])
        for region in {region for region, _ in self._uses}:
            self._recount(region)

    # --- admission (the invoke path) -----------------------------------------------------------

    def admit(self, region: str, name: str) -> Lease:
        """Admit one on-demand invocation or raise TooManyRequests."""
        use = self._uses.get((region, name)) or self._use(region, name)
        if use.reserved is not None:
            if use.running < use.reserved - use.provisioned:
                use.running += 1
                return Lease(use, None)
            raise TooManyRequests(RESERVED_LIMIT)
        pool = self._regions.get(region) or self._region(region)
        if pool.running < self.limit - pool.claimed:
            use.running += 1
            pool.running += 1
            return Lease(use, pool)
        raise TooManyRequests(ACCOUNT_LIMIT)

    def release(self, lease: Lease) -> None:
        lease.use.running -= 1
        if lease.pool is not None:
            lease.pool.running -= 1

    def take_launch(self, region: str, name: str) -> None:
        """A new on-demand environment is about to start: spend a token of the function's
        scaling rate, or raise TooManyRequests. Unused rate does not accumulate past one
        window's worth (AWS)."""
        use = self._uses.get((region, name)) or self._use(region, name)
        now = self._clock()
        tokens = min(self._rate, use.tokens + (now - use.refilled) * self._rate / SCALING_WINDOW_S)
        use.refilled = now
        if tokens < 1.0:
            use.tokens = tokens
            reason = RESERVED_RATE_LIMIT if use.reserved is not None else RATE_LIMIT
            raise TooManyRequests(reason)
        use.tokens = tokens - 1.0

    # --- reads ---------------------------------------------------------------------------------

    def reserved(self, region: str, name: str) -> int | None:
        use = self._uses.get((region, name))
        return use.reserved if use is not None else None

    def unreserved(self, region: str) -> int:
        """GetAccountSettings' UnreservedConcurrentExecutions."""
        pool = self._regions.get(region)
        return self.limit - (pool.claimed if pool is not None else 0)

    # --- reserved concurrency (Put/Get/DeleteFunctionConcurrency) ------------------------------

    async def get_reserved(self, ref: FunctionRef) -> int | None:
        _unqualified(ref)
        await self._functions.get(ref)
        return self.reserved(ref.region, ref.name)

    async def put_reserved(self, ref: FunctionRef, reserved: int) -> int:
        _unqualified(ref)
        await self._functions.get(ref)
        use = self._use(ref.region, ref.name)

        def change(_: Document | None) -> Document:
            # Checked inside the write transaction against the counters it will update.
            free = self.unreserved(ref.region) + use.claim
            if free - reserved < MIN_UNRESERVED:
                raise InvalidParameter(RESERVED_BELOW_MINIMUM)
            if reserved < use.provisioned:
                raise InvalidParameter(
                    RESERVED_BELOW_PROVISIONED.format(
                        reserved=reserved, provisioned=use.provisioned
                    )
                )
            return {"ReservedConcurrentExecutions": reserved}

        await self._write(ref, change)
        use.reserved = reserved
        self._recount(ref.region)
        return reserved

    async def delete_reserved(self, ref: FunctionRef) -> None:
        _unqualified(ref)
        await self._functions.get(ref)
        await self._write(ref, lambda _: None)
        use = self._use(ref.region, ref.name)
        use.reserved = None
        self._recount(ref.region)

    # --- provisioned concurrency (called by ProvisionedService) --------------------------------

    def check_provisioned(self, region: str, name: str, replaced: int, requested: int) -> int:
        """The function's provisioned total once a config of `replaced` asks for `requested`,
        or InvalidParameter if its reservation or the account cannot take it."""
        use = self._use(region, name)
        before = use.provisioned
        after = before - replaced + requested
        if use.reserved is not None:
            if after > use.reserved:
                raise InvalidParameter(PROVISIONED_ABOVE_RESERVED)
            return after
        if requested > self.limit:
            raise InvalidParameter(PROVISIONED_ABOVE_LIMIT.format(limit=self.limit))
        if after > before and self.unreserved(region) - (after - before) < MIN_UNRESERVED:
            raise InvalidParameter(PROVISIONED_BELOW_MINIMUM)
        return after

    def set_provisioned(self, region: str, name: str, total: int) -> None:
        self._use(region, name).provisioned = total
        self._forget_if_unused(region, name)
        self._recount(region)

    async def reload(self, region: str, name: str) -> None:
        """The function changed or is gone: re-read its reservation (deleting a function
        deletes its settings)."""
        document = await self._settings.get(region, name, SettingKind.RESERVED_CONCURRENCY)
        use = self._use(region, name)
        use.reserved = _reserved_of(document) if document is not None else None
        self._forget_if_unused(region, name)
        self._recount(region)

    # --- helpers -------------------------------------------------------------------------------

    async def _write(
        self, ref: FunctionRef, change: Callable[[Document | None], Document | None]
    ) -> None:
        try:
            await self._settings.update(
                ref.region, ref.name, SettingKind.RESERVED_CONCURRENCY, "", change
            )
        except FunctionNotFound:
            raise FunctionNotFound(self._functions.arn(ref)) from None

    def _use(self, region: str, name: str) -> _Use:
        use = self._uses.get((region, name))
        if use is None:
            use = self._uses[(region, name)] = _Use(None, 0, 0, self._rate, self._clock())
        return use

    def _forget_if_unused(self, region: str, name: str) -> None:
        """Bounded memory: a deleted function leaves nothing behind."""
        use = self._uses.get((region, name))
        if use is not None and use.reserved is None and use.provisioned == 0 and not use.running:
            del self._uses[(region, name)]

    def _region(self, region: str) -> _Region:
        pool = self._regions.get(region)
        if pool is None:
            pool = self._regions[region] = _Region()
        return pool

    def _recount(self, region: str) -> None:
        """Settings changed (control plane only): recompute the region's claimed total."""
        self._region(region).claimed = sum(
            use.claim for (r, _), use in self._uses.items() if r == region
        )


def _unqualified(ref: FunctionRef) -> None:
    if ref.qualifier is not None:
        raise InvalidParameter(QUALIFIED)


def _reserved_of(document: Document) -> int:
    return int(document["ReservedConcurrentExecutions"])

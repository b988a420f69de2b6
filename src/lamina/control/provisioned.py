"""Provisioned concurrency: configs on published versions and aliases, and the environments
they keep initialized.

A config asks for N environments initialized ahead of demand. On a version they are that
version's; on an alias they are the alias's version's, split by the routing weights when the
alias routes between two (botocore's model: AllocatedProvisionedConcurrentExecutions "fluctuates
depending on the amount of concurrency that is provisioned for the function versions"). The
scheduler keeps them (scheduler/pool.py); this service says how many, reports Status
(IN_PROGRESS until all are initialized, then READY; FAILED when their init fails), and
re-creates them after a restart. Configs count against reserved or account concurrency
(ConcurrencyService.check_provisioned).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from lamina.clock import Clock
from lamina.control.concurrency import ConcurrencyService
from lamina.control.functions import FunctionService
from lamina.control.invoke import InvokeService
from lamina.control.paging import offset_page
from lamina.errors import (
    AliasNotFound,
    Conflict,
    FunctionNotFound,
    InvalidParameter,
    ProvisionedConcurrencyConfigNotFound,
)
from lamina.ids import FunctionRef
from lamina.model.alias import Alias, is_alias_name
from lamina.model.function import LATEST
from lamina.store.function_settings import Document, FunctionSettings, SettingKind
from lamina.worker.invocation import Target

log = logging.getLogger(__name__)

KIND = SettingKind.PROVISIONED_CONCURRENCY

# control-api.md §4.14.
UNPUBLISHED = "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
# LocalStack's AWS-validated provider (get/delete_provisioned_concurrency_config, put_...).
NOT_PUBLISHED = "The function resource provided must be an alias or a published version."
VERSION_TAKEN = (
    "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned "
    "version"
)
ALIAS_TAKES = "Version is pointed by a Provisioned Concurrency alias"

Key = tuple[str, str, str]
Shares = dict[str, int]  # version -> environments


class Provisioner(Protocol):
    """The scheduler's side (scheduler/pool.py)."""

    def provision(self, target: Target, count: int) -> None: ...

    def unprovision(self, key: Key) -> None: ...

    def provisioned(self, key: Key) -> tuple[int, str | None]: ...


class AliasReader(Protocol):
    async def get(self, region: str, function: str, name: str) -> Alias | None: ...

    async def of_function(self, region: str, function: str) -> list[Alias]: ...


@dataclass(frozen=True, slots=True)
class ProvisionedConfig:
    """One config as AWS reports it."""

    qualifier: str
    requested: int
    available: int
    allocated: int
    status: str  # IN_PROGRESS | READY | FAILED
    reason: str | None
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class ConfigPage:
    configs: list[ProvisionedConfig]
    next_marker: str | None


class ProvisionedService:
    def __init__(
        self,
        functions: FunctionService,
        settings: FunctionSettings,
        aliases: AliasReader,
        concurrency: ConcurrencyService,
        invoker: InvokeService,
        scheduler: Provisioner,
        clock: Clock,
    ) -> None:
        self._functions = functions
        self._settings = settings
        self._aliases = aliases
        self._concurrency = concurrency
        self._invoker = invoker
        self._scheduler = scheduler
        self._clock = clock
        # What each config was split into, and what each function's versions were given.
        self._shares: dict[tuple[str, str, str], Shares] = {}
        self._allocated: dict[tuple[str, str], Shares] = {}
        self._lock = asyncio.Lock()  # one reconcile at a time (control plane only)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """After a restart: initialize the environments of every stored config (in the
        background, so the server answers at once; Status says IN_PROGRESS meanwhile)."""
        functions = {(region, name) for region, name, _, _ in await self._settings.of_kind(KIND)}
        for region, name in sorted(functions):
            self._spawn(self.reconcile(region, name))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- the API -------------------------------------------------------------------------------

    async def put(self, ref: FunctionRef, count: int) -> ProvisionedConfig:
        qualifier = await self._target_qualifier(ref, UNPUBLISHED)
        versions = await self._versions_of(ref.region, ref.name, qualifier)
        if LATEST in versions:
            raise InvalidParameter(UNPUBLISHED)  # an alias of $LATEST
        await self._check_overlap(ref.region, ref.name, qualifier, versions)
        now = self._clock.now()
        totals: list[int] = []

        def change(current: Document | None) -> Document:
            # Inside the write transaction, against the counters updated right after it
            # (nothing in between yields to the event loop).
            replaced = int(current["Requested"]) if current else 0
            totals.append(
                self._concurrency.check_provisioned(ref.region, ref.name, replaced, count)
            )
            return {"Requested": count, "LastModified": now.isoformat()}

        await self._write(ref, qualifier, change)
        self._concurrency.set_provisioned(ref.region, ref.name, totals[-1])
        await self.reconcile(ref.region, ref.name)
        config = await self._config(ref.region, ref.name, qualifier)
        assert config is not None
        # AWS answers every Put with IN_PROGRESS (control-api.md §4.14), whatever follows.
        return dataclasses.replace(config, status="IN_PROGRESS", reason=None)

    async def get(self, ref: FunctionRef) -> ProvisionedConfig:
        qualifier = await self._target_qualifier(ref, NOT_PUBLISHED)
        config = await self._config(ref.region, ref.name, qualifier)
        if config is None:
            raise ProvisionedConcurrencyConfigNotFound()
        return config

    async def delete(self, ref: FunctionRef) -> None:
        """Idempotent, as AWS (LocalStack: 'delete is idempotent')."""
        qualifier = await self._target_qualifier(ref, NOT_PUBLISHED)
        await self._write(ref, qualifier, lambda _: None)
        await self.reconcile(ref.region, ref.name)

    async def list_page(
        self, ref: FunctionRef, marker: str | None, max_items: int | None
    ) -> ConfigPage:
        unqualified = dataclasses.replace(ref, qualifier=None)
        await self._functions.get(unqualified)
        qualifiers = sorted(await self._settings.of_function(ref.region, ref.name, KIND))
        page, next_marker = offset_page(qualifiers, marker, max_items)
        configs = []
        for qualifier in page:
            config = await self._config(ref.region, ref.name, qualifier)
            if config is not None:
                configs.append(config)
        return ConfigPage(configs, next_marker)

    # --- keeping environments in line with the configs ----------------------------------------

    def function_changed(self, region: str, name: str) -> None:
        """The function changed or is gone (deleting it deletes its configs), or one of its
        aliases moved: bring reservations and environments in line, soon."""
        self._spawn(self._refresh(region, name))

    async def qualifier_gone(self, region: str, name: str, qualifier: str) -> None:
        """A version or alias was deleted: its configs go, and so do their environments."""
        await self._settings.delete_qualifier(region, name, qualifier)
        await self.reconcile(region, name)

    async def reconcile(self, region: str, name: str) -> None:
        """Ask the scheduler for exactly what the stored configs say."""
        async with self._lock:
            configs = await self._settings.of_function(region, name, KIND)
            self._concurrency.set_provisioned(
                region, name, sum(int(doc["Requested"]) for doc in configs.values())
            )
            wanted: Shares = {}
            for key in [k for k in self._shares if k[:2] == (region, name)]:
                del self._shares[key]
            for qualifier, document in configs.items():
                shares = _split(
                    int(document["Requested"]), await self._versions_of(region, name, qualifier)
                )
                self._shares[(region, name, qualifier)] = shares
                for version, count in shares.items():
                    wanted[version] = wanted.get(version, 0) + count
            for version in self._allocated.get((region, name), {}).keys() - wanted.keys():
                self._scheduler.unprovision((region, name, version))
            for version, count in wanted.items():
                await self._provision(region, name, version, count)
            if wanted:
                self._allocated[(region, name)] = wanted
            else:
                self._allocated.pop((region, name), None)

    async def _provision(self, region: str, name: str, version: str, count: int) -> None:
        ref = FunctionRef(region, self._functions.account_id, name, version)
        try:
            target = await self._invoker.provisioned_target(ref)
        except FunctionNotFound:
            log.warning("provisioned concurrency config names a missing version %s", ref)
            self._scheduler.unprovision((region, name, version))
            return
        self._scheduler.provision(target, count)

    async def _refresh(self, region: str, name: str) -> None:
        await self._concurrency.reload(region, name)
        await self.reconcile(region, name)

    # --- helpers -------------------------------------------------------------------------------

    async def _target_qualifier(self, ref: FunctionRef, latest_message: str) -> str:
        """The version or alias a request names, which must exist and not be $LATEST."""
        qualifier = ref.qualifier
        if qualifier is None or qualifier == LATEST:
            raise InvalidParameter(latest_message)
        if is_alias_name(qualifier):
            # The alias is looked up first: of a missing function too, AWS answers "Cannot find
            # alias arn" (LocalStack's AWS snapshot test_provisioned_concurrency_exceptions,
            # put_provisioned_functionname_doesnotexist_alias).
            if await self._aliases.get(ref.region, ref.name, qualifier) is None:
                raise AliasNotFound(self._functions.arn(ref))
        else:
            await self._functions.resolve(ref)  # 404 for a missing function or version
        return qualifier

    async def _versions_of(self, region: str, name: str, qualifier: str) -> dict[str, float]:
        """The versions a qualifier runs, with their share of its invocations."""
        if qualifier.isdigit():
            return {qualifier: 1.0}
        alias = await self._aliases.get(region, name, qualifier)
        if alias is None:
            return {}
        shares = dict(alias.weights)
        shares[alias.version] = 1.0 - sum(shares.values())
        return shares

    async def check_alias_target(
        self, region: str, name: str, alias: str, versions: Mapping[str, float]
    ) -> None:
        """Before an alias with provisioned concurrency moves to `versions`: never to
        `$LATEST`, and not onto a version provisioned otherwise (AWS's guide: "Each version of
        a function can only have one provisioned concurrency configuration")."""
        if await self._settings.get(region, name, KIND, alias) is None:
            return
        if LATEST in versions:
            raise InvalidParameter(UNPUBLISHED)
        await self._check_overlap(region, name, alias, versions)

    async def _check_overlap(
        self, region: str, name: str, qualifier: str, versions: Mapping[str, float]
    ) -> None:
        """A version gets provisioned concurrency through itself or through one alias, never
        both, nor through two aliases (LocalStack's AWS-validated provider raises these
        ResourceConflictExceptions; AWS's guide: "Two aliases can't allocate provisioned
        concurrency for the same version")."""
        configs = await self._settings.of_function(region, name, KIND)
        aliases = await self._aliases.of_function(region, name)
        if qualifier.isdigit():
            for alias in aliases:
                if alias.name in configs and alias.references(qualifier):
                    raise Conflict(ALIAS_TAKES)
            return
        others = [a for a in aliases if a.name in configs and a.name != qualifier]
        for version in versions:
            if version in configs or any(a.references(version) for a in others):
                raise Conflict(VERSION_TAKEN)

    async def _config(self, region: str, name: str, qualifier: str) -> ProvisionedConfig | None:
        document = await self._settings.get(region, name, KIND, qualifier)
        if document is None:
            return None
        requested = int(document["Requested"])
        available, reason = 0, None
        allocated = self._allocated.get((region, name), {})
        for version, share in self._shares.get((region, name, qualifier), {}).items():
            ready, failure = self._scheduler.provisioned((region, name, version))
            total = allocated.get(version, share)
            # Configs sharing a version (two aliases) share its environments pro rata.
            available += min(share, ready * share // total) if total else 0
            reason = reason or failure
        status = "FAILED" if reason else "READY" if available >= requested else "IN_PROGRESS"
        return ProvisionedConfig(
            qualifier,
            requested,
            available,
            available,
            status,
            reason,
            datetime.fromisoformat(document["LastModified"]),
        )

    async def _write(self, ref: FunctionRef, qualifier: str, change: Any) -> None:
        try:
            await self._settings.update(ref.region, ref.name, KIND, qualifier, change)
        except FunctionNotFound:
            raise FunctionNotFound(self._functions.arn(ref)) from None

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("provisioned concurrency upkeep failed", exc_info=task.exception())


def _split(count: int, versions: dict[str, float]) -> Shares:
    """`count` environments over versions by weight (the primary, listed last, takes the
    rounding remainder)."""
    shares: Shares = {}
    remaining = count
    for version, weight in list(versions.items())[:-1]:
        shares[version] = round(count * weight)
        remaining -= shares[version]
    if versions:
        shares[list(versions)[-1]] = remaining
    return {version: n for version, n in shares.items() if n > 0}

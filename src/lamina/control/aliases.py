"""Aliases: create, read, list, update (RevisionId guard) and delete, with AWS's routing rules.

Every write is one atomic AliasStore transaction that also sees the function's versions, so an
alias never points at a version that does not exist. Messages follow LocalStack's AWS-validated
provider (`_create_routing_config_model`, `create_alias`, `get_alias`) and control-api.md §4.13.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from lamina.control.functions import FunctionService
from lamina.control.paging import decode_marker, encode_marker
from lamina.errors import (
    AliasExists,
    AliasNotFound,
    FunctionNotFound,
    InvalidParameter,
    RevisionMismatch,
)
from lamina.ids import FunctionRef, function_arn
from lamina.model.alias import Alias
from lamina.model.function import LATEST
from lamina.store.aliases import AliasStore, Change

PAGE_LIMIT = 50  # as ListFunctions; AWS documents no page size for ListAliases

# A qualifier of the function is gone (region, function, qualifier): its settings go with it.
Forget = Callable[[str, str, str], Awaitable[None]]
# Before an alias moves (region, function, alias, the versions it will run): may refuse it.
CheckMove = Callable[[str, str, str, Mapping[str, float]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class AliasPage:
    aliases: list[Alias]
    next_marker: str | None


@dataclass(frozen=True, slots=True)
class AliasChanges:
    """What UpdateAlias sets; None leaves the current value."""

    version: str | None = None
    description: str | None = None
    weights: Mapping[str, float] | None = None
    revision_id: str | None = None  # precondition


class AliasService:
    def __init__(
        self,
        functions: FunctionService,
        store: AliasStore,
        forget: Forget | None = None,
        moved: Callable[[str, str], None] | None = None,
        check_move: CheckMove | None = None,
    ) -> None:
        self._functions = functions
        self._store = store
        self._forget = forget  # a deleted alias's settings go (e.g. provisioned concurrency)
        self._moved = moved  # an alias now routes elsewhere (provisioned environments follow)
        self._check_move = check_move  # e.g. provisioned concurrency may not follow everywhere

    def arn(self, ref: FunctionRef, name: str) -> str:
        return function_arn(ref.region, ref.account, ref.name, name)

    # --- reads ---------------------------------------------------------------------------------

    async def get(self, ref: FunctionRef, name: str) -> Alias:
        ref = _unqualified(ref)
        await self._functions.get(ref)
        alias = await self._store.get(ref.region, ref.name, name)
        if alias is None:
            raise AliasNotFound(self.arn(ref, name))
        return alias

    async def list_page(
        self, ref: FunctionRef, version: str | None, marker: str | None, max_items: int | None
    ) -> AliasPage:
        """Aliases by name; `version` keeps those whose primary version it is (as LocalStack)."""
        ref = _unqualified(ref)
        await self._functions.get(ref)
        after = decode_marker(marker)
        limit = min(max_items or PAGE_LIMIT, PAGE_LIMIT)
        found = [
            alias
            for alias in await self._store.of_function(ref.region, ref.name)
            if (version is None or alias.version == version)
            and (after is None or alias.name > after)
        ]
        page = found[:limit]
        more = len(found) > limit
        return AliasPage(page, encode_marker(page[-1].name) if more and page else None)

    # --- writes --------------------------------------------------------------------------------

    async def create(
        self,
        ref: FunctionRef,
        name: str,
        version: str,
        description: str | None = None,
        weights: Mapping[str, float] | None = None,
    ) -> Alias:
        ref = _unqualified(ref)

        def change(current: Alias | None, versions: frozenset[str]) -> Alias:
            self._check_version(ref, version, versions)
            if current is not None:
                raise AliasExists(self.arn(ref, name))
            self._check_routing(ref, version, weights or {}, versions)
            return Alias(
                ref.region,
                ref.name,
                name,
                version,
                str(uuid.uuid4()),
                description or "",  # AWS always answers a Description, "" when none
                dict(weights or {}),
            )

        # A missing function is reported with the version the alias was to name (LocalStack's
        # AWS snapshot routing_config_exc_fn_doesnotexist: "Function not found: ...:fn:1").
        created = await self._write(ref, name, change, missing=version)
        assert created is not None
        return created

    async def update(self, ref: FunctionRef, name: str, changes: AliasChanges) -> Alias:
        ref = _unqualified(ref)
        before = await self._store.get(ref.region, ref.name, name)
        if self._check_move is not None and before is not None:
            version = before.version if changes.version is None else changes.version
            weights = before.weights if changes.weights is None else changes.weights
            await self._check_move(ref.region, ref.name, name, {version: 1.0, **weights})

        def change(current: Alias | None, versions: frozenset[str]) -> Alias:
            if current is None:
                # AWS's wording here (apex/up#606 quotes it; localstack/localstack#11832)
                raise AliasNotFound(self.arn(ref, name), lead="Alias not found")
            if changes.revision_id is not None and changes.revision_id != current.revision_id:
                raise RevisionMismatch()
            version = current.version if changes.version is None else changes.version
            if changes.version is not None:
                self._check_version(ref, version, versions)
            weights = current.weights if changes.weights is None else dict(changes.weights)
            # The routing is checked against the new primary even when only that changed.
            self._check_routing(ref, version, weights, versions)
            description = current.description
            if changes.description is not None:
                description = changes.description
            # Every update gets a new RevisionId, even one that changes nothing (as LocalStack).
            return dataclasses.replace(
                current,
                version=version,
                description=description,
                weights=weights,
                revision_id=str(uuid.uuid4()),
            )

        updated = await self._write(ref, name, change)
        assert updated is not None
        if self._moved is not None:
            self._moved(ref.region, ref.name)
        return updated

    async def delete(self, ref: FunctionRef, name: str) -> None:
        """Deleting an alias that is not there succeeds (204), as AWS answers
        (localstack/localstack#11832, #11878); the function must exist."""
        ref = _unqualified(ref)
        existed: list[bool] = []

        def change(current: Alias | None, versions: frozenset[str]) -> None:
            existed.append(current is not None)

        await self._write(ref, name, change)
        if existed[0] and self._forget is not None:
            await self._forget(ref.region, ref.name, name)  # e.g. its provisioned concurrency

    # --- rules ---------------------------------------------------------------------------------

    def _check_version(self, ref: FunctionRef, version: str, versions: frozenset[str]) -> None:
        if version not in versions:
            raise FunctionNotFound(self.arn(ref, version))

    def _check_routing(
        self,
        ref: FunctionRef,
        primary: str,
        weights: Mapping[str, float],
        versions: frozenset[str],
    ) -> None:
        """AWS's order (LocalStack `_create_routing_config_model`); weights outside [0, 1] and
        non-numeric keys fail the model's own constraints first (ValidationException)."""
        if not weights:
            return
        if len(weights) > 1:
            raise InvalidParameter(
                "Number of items in AdditionalVersionWeights cannot be greater than 1"
            )
        (additional,) = weights
        if additional == primary:
            raise InvalidParameter(
                f"Invalid function version {primary}. Function version {primary} is already "
                "included in routing configuration."
            )
        if primary == LATEST:
            raise InvalidParameter(
                "$LATEST is not supported for an alias pointing to more than 1 version"
            )
        if additional == LATEST or additional not in versions:
            raise FunctionNotFound(self.arn(ref, additional))

    async def _write(
        self, ref: FunctionRef, name: str, change: Change, missing: str | None = None
    ) -> Alias | None:
        """`missing`: the qualifier a missing function's ARN is reported with."""
        try:
            return await self._store.update(ref.region, ref.name, name, change)
        except FunctionNotFound as error:
            if error.arn == ref.name:  # the store knows names, not ARNs
                arn = self._functions.arn(ref) if missing is None else self.arn(ref, missing)
                raise FunctionNotFound(arn) from None
            raise


def _unqualified(ref: FunctionRef) -> FunctionRef:
    """Alias operations name the function; a qualifier in its ARN plays no part."""
    return dataclasses.replace(ref, qualifier=None) if ref.qualifier is not None else ref

"""Functions: create, read, list, update code and configuration, delete, tag.

Every mutation gets a new RevisionId and is applied atomically through the Store; a stale
RevisionId precondition fails with RevisionMismatch before anything changes.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lamina.clock import Clock
from lamina.control.activation import Activator
from lamina.control.code import CodeRepository
from lamina.control.layers import LayerService
from lamina.control.paging import decode_marker, encode_marker
from lamina.control.validation import check_config, check_runtime, check_tags
from lamina.errors import (
    Conflict,
    FunctionExists,
    FunctionNotFound,
    InvalidParameter,
    RevisionMismatch,
)
from lamina.ids import FunctionRef, function_arn
from lamina.model.alias import Alias, is_alias_name
from lamina.model.function import (
    LATEST,
    CodeRef,
    Function,
    FunctionConfig,
    FunctionVersion,
    State,
    Status,
    UpdateStatus,
)
from lamina.model.layer import LayerVersion
from lamina.store.aliases import AliasStore
from lamina.store.protocol import Published, Store

log = logging.getLogger(__name__)

PAGE_LIMIT = 50  # AWS returns at most 50 functions per ListFunctions page
VERSION_CACHE_LIMIT = 4096

CREATING = Status(State.PENDING, "The function is being created.", "Creating")
# Code is extracted before a version is published, so a published version is ready at once.
PUBLISHED = Status(State.ACTIVE, last_update=UpdateStatus.SUCCESSFUL)
UPDATING = Status(
    State.ACTIVE, None, None, UpdateStatus.IN_PROGRESS, "The function is being created.", "Creating"
)


@dataclass(frozen=True, slots=True)
class NewFunction:
    name: str
    config: FunctionConfig
    zip_file: bytes
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Page:
    functions: list[Function]
    next_marker: str | None


@dataclass(frozen=True, slots=True)
class VersionPage:
    """ListFunctions with FunctionVersion=ALL: (function, version) entries."""

    entries: list[tuple[Function, FunctionVersion]]
    next_marker: str | None


class FunctionService:
    """Lambda's function lifecycle over a Store and the code repository."""

    def __init__(
        self,
        store: Store,
        code: CodeRepository,
        activator: Activator,
        clock: Clock,
        account_id: str,
        on_change: Callable[[str, str], None] = lambda region, name: None,
        aliases: AliasStore | None = None,
        draw: Callable[[], float] = random.random,  # weighted alias routing
        on_version_gone: Callable[[str, str, str], Awaitable[None]] | None = None,
        layers: LayerService | None = None,
        on_function_gone: Callable[[str, str], Awaitable[None]] | None = None,
    ) -> None:
        self._layers = layers  # checks `Layers` references and the combined unzipped size
        self._on_change = on_change  # retires warm environments of the old code/config
        self._on_version_gone = on_version_gone  # its per-qualifier settings go with it
        self._on_function_gone = on_function_gone  # e.g. its queued async events
        self._aliases = aliases
        self._draw = draw
        # Published versions by (region, name, number), each with the Function value it was
        # read under: the store hands out a new value after any write, so a matching one
        # proves the version is still there (invoking a version or alias costs no SQL).
        self._versions: dict[tuple[str, str, str], tuple[Function, FunctionVersion]] = {}
        self._store = store
        self._code = code
        self._activator = activator
        self._clock = clock
        self.account_id = account_id

    # --- reads -------------------------------------------------------------------------------

    async def get(self, ref: FunctionRef) -> Function:
        """The function itself (tags, `$LATEST`), whatever the qualifier."""
        function = await self._store.get_function(ref.region, ref.name)
        if function is None:
            raise FunctionNotFound(self.arn(ref))
        return function

    async def resolve(self, ref: FunctionRef) -> tuple[Function, FunctionVersion]:
        """The function and the version an invocation of `ref` runs: `$LATEST` when
        unqualified; through an alias with a routing configuration, a version drawn by weight
        on every call (control-api.md §4.10: X-Amz-Executed-Version names it)."""
        function = await self.get(ref)
        qualifier = ref.qualifier
        if qualifier is None or qualifier == LATEST:
            return function, function.latest
        if qualifier.isdigit():
            return function, await self._published(function, qualifier, ref)
        alias = await self._alias(function, qualifier, ref)
        return function, await self._published(function, alias.pick(self._draw()), ref)

    async def describe(self, ref: FunctionRef) -> tuple[Function, FunctionVersion]:
        """Like `resolve`, but an alias names its primary version: GetFunction and
        GetFunctionConfiguration through an alias describe the version it points to, never a
        weighted draw (LocalStack's AWS-validated get_function resolves alias.function_version)."""
        if ref.qualifier is None or not is_alias_name(ref.qualifier):
            return await self.resolve(ref)
        function = await self.get(ref)
        alias = await self._alias(function, ref.qualifier, ref)
        return function, await self._published(function, alias.version, ref)

    async def _alias(self, function: Function, name: str, ref: FunctionRef) -> Alias:
        found = None
        if self._aliases is not None:
            found = await self._aliases.get(function.region, function.name, name)
        if found is None:
            raise FunctionNotFound(self.arn(ref))  # AWS: the qualified ARN, as for versions
        return found

    async def _published(
        self, function: Function, number: str, ref: FunctionRef
    ) -> FunctionVersion:
        """Version `number` of `function` (`$LATEST` too), from memory when nothing changed."""
        if number == LATEST:
            return function.latest
        key = (function.region, function.name, number)
        cached = self._versions.get(key)
        if cached is not None and cached[0] is function:
            return cached[1]
        version = await self._store.get_version(function.region, function.name, number)
        if version is None:
            raise FunctionNotFound(self.arn(ref))
        if len(self._versions) >= VERSION_CACHE_LIMIT:
            self._versions.clear()
        self._versions[key] = (function, version)
        return version

    async def versions(self, ref: FunctionRef) -> list[FunctionVersion]:
        await self.get(ref)
        return await self._store.list_versions(ref.region, ref.name)

    async def list_page(self, region: str, marker: str | None, max_items: int | None) -> Page:
        limit = min(max_items or PAGE_LIMIT, PAGE_LIMIT)
        after = decode_marker(marker)
        found = await self._store.list_functions(region, after, limit + 1)
        page = found[:limit]
        more = len(found) > limit
        return Page(page, encode_marker(page[-1].name) if more and page else None)

    async def list_all_versions_page(
        self, region: str, marker: str | None, max_items: int | None
    ) -> VersionPage:
        """Every version of every function: by function name, `$LATEST` first, then published
        versions in order. The Marker names the last entry given (function and version), so a
        page may end inside a function's versions."""
        limit = min(max_items or PAGE_LIMIT, PAGE_LIMIT)
        name, _, version = (decode_marker(marker) or "").partition("\n")
        entries: list[tuple[Function, FunctionVersion]] = []
        if version:  # resume inside that function's versions
            current = await self._store.get_function(region, name)
            if current is not None:
                rest = await self._store.list_versions(region, name)
                entries += [(current, v) for v in rest if _order(v.version) > _order(version)]
        after = name or None
        while len(entries) <= limit:
            batch = await self._store.list_functions(region, after, limit + 1)
            for function in batch:
                versions = await self._store.list_versions(region, function.name)
                entries += [(function, v) for v in versions]
            if len(batch) <= limit:
                break
            after = batch[-1].name
        page = entries[:limit]
        if len(entries) <= limit or not page:
            return VersionPage(page, None)
        last_function, last_version = page[-1]
        return VersionPage(page, encode_marker(f"{last_function.name}\n{last_version.version}"))

    async def usage(self, region: str) -> tuple[int, int]:
        return await self._store.usage(region)

    async def code_of(self, region: str, name: str, digest: str) -> bytes:
        """The zip behind a download link, if a version of the function still uses that code
        (GetFunction of a published version links to that version's code)."""
        versions = await self._store.list_versions(region, name)
        if not any(version.code.sha256_hex == digest for version in versions):
            raise FunctionNotFound(function_arn(region, self.account_id, name))
        return await self._code.read(digest)

    # --- mutations ---------------------------------------------------------------------------

    async def create(self, region: str, new: NewFunction) -> Function:
        check_config(new.config)
        check_tags(dict(new.tags))
        if await self._store.get_function(region, new.name) is not None:
            raise FunctionExists(new.name)
        layers = await self._checked_layers(region, new.config.layers)
        staged: list[str] = []
        try:
            async with self._code.staged(new.zip_file) as code:
                staged.append(code.sha256_hex)
                self._check_size(code, layers)
                version = self._version(new.config, code, CREATING)
                function = Function(region, new.name, version, dict(new.tags))
                await self._store.create_function(function)
        except BaseException:
            for digest in staged:  # e.g. a concurrent create took the name: keep no orphan
                await self._forget_code_if_unused(digest)
            raise
        self._activator.schedule(region, new.name)
        return function

    async def publish(
        self,
        ref: FunctionRef,
        code_sha256_hex: str | None = None,
        description: str | None = None,
        revision_id: str | None = None,
        with_update: bool = False,
    ) -> FunctionVersion:
        """Snapshot `$LATEST` as the next version; an unchanged function returns the last one.
        `with_update`: the Publish flag of the update that just changed `$LATEST`."""
        now = self._clock.now()

        def make(
            function: Function, previous: FunctionVersion | None, number: int
        ) -> Published | None:
            latest = function.latest
            _check_revision(function, revision_id)
            if not with_update:
                self._check_settled(function)
            if code_sha256_hex is not None and code_sha256_hex != latest.code.sha256_hex:
                raise InvalidParameter(
                    f"CodeSHA256 ({_wire_sha256(code_sha256_hex)}) is different from current "
                    f"CodeSHA256 in $LATEST ({_wire_sha256(latest.code.sha256_hex)}). Please try "
                    "again with the CodeSHA256 in $LATEST."
                )
            if previous is not None and _made_from(previous, latest):
                return None
            config = latest.config
            if description is not None:
                config = dataclasses.replace(config, description=description)
            version = FunctionVersion(
                str(number),
                config,
                latest.code,
                PUBLISHED,
                now,
                str(uuid.uuid4()),
                source_description=latest.config.description,
            )
            # Publishing is a mutation of the function: $LATEST's RevisionId changes too
            # (control-api.md §4.1), so a writer holding the old one gets 412.
            return Published(version, dataclasses.replace(latest, revision_id=str(uuid.uuid4())))

        try:
            return await self._store.publish_version(ref.region, ref.name, make)
        except FunctionNotFound:
            raise FunctionNotFound(self.arn(ref)) from None

    async def update_code(
        self, ref: FunctionRef, zip_file: bytes, revision_id: str | None, dry_run: bool
    ) -> Function:
        current = await self._mutable(ref)
        _check_revision(current, revision_id)
        self._check_settled(current)
        layers = await self._layers_in_use(ref.region, current.latest.config.layers)
        if dry_run:
            code = await self._code.check(zip_file)
            self._check_size(code, layers)
            return dataclasses.replace(
                current, latest=dataclasses.replace(current.latest, code=code)
            )
        previous = current.latest.code.sha256_hex
        async with self._code.staged(zip_file) as code:
            try:
                self._check_size(code, layers)
            except InvalidParameter:
                if code.sha256_hex != previous:
                    await self._forget_code_if_unused(code.sha256_hex)
                raise

            def change(function: Function) -> Function:
                _check_revision(function, revision_id)
                self._check_settled(function)
                latest = function.latest
                return dataclasses.replace(
                    function, latest=self._version(latest.config, code, UPDATING)
                )

            updated = await self._update(ref, change)
        self._on_change(ref.region, ref.name)
        if previous != code.sha256_hex:
            await self._forget_code_if_unused(previous)
        self._activator.schedule(ref.region, ref.name)
        return updated

    async def update_configuration(
        self, ref: FunctionRef, changes: Mapping[str, Any], revision_id: str | None
    ) -> Function:
        current = await self._mutable(ref)
        _check_revision(current, revision_id)
        self._check_settled(current)
        config = dataclasses.replace(current.latest.config, **changes)
        check_config(config)
        dropped: list[str] = []
        if "layers" in changes:
            layers = await self._checked_layers(ref.region, config.layers)
            self._check_size(current.latest.code, layers)
            dropped = await self._layer_digests(ref.region, current.latest.config.layers)

        def change(function: Function) -> Function:
            _check_revision(function, revision_id)
            self._check_settled(function)
            latest = function.latest
            return dataclasses.replace(
                function, latest=self._version(config, latest.code, UPDATING)
            )

        updated = await self._update(ref, change)
        self._on_change(ref.region, ref.name)
        await self._forget_layers(dropped)  # a deleted layer version no function names any more
        self._activator.schedule(ref.region, ref.name)
        return updated

    async def delete(self, ref: FunctionRef) -> None:
        if ref.qualifier == LATEST:
            raise InvalidParameter(
                "$LATEST version cannot be deleted without deleting the function."
            )
        if is_alias_name(ref.qualifier):
            # DeleteFunction never deletes an alias (LocalStack's AWS-validated provider).
            raise InvalidParameter("Deletion of aliases is not currently supported.")
        if ref.qualifier is not None:
            await self._delete_version(ref)
            return
        versions = await self._store.list_versions(ref.region, ref.name)
        removed = await self._store.delete_function(ref.region, ref.name)
        if removed is None:
            raise FunctionNotFound(self.arn(ref))
        self._on_change(ref.region, ref.name)
        if self._on_function_gone is not None:
            await self._on_function_gone(ref.region, ref.name)
        for digest in {v.code.sha256_hex for v in versions}:
            await self._forget_code_if_unused(digest)
        layers = {arn for v in versions for arn in v.config.layers}
        await self._forget_layers(await self._layer_digests(ref.region, sorted(layers)))

    async def _delete_version(self, ref: FunctionRef) -> None:
        assert ref.qualifier is not None
        if self._aliases is not None:
            # Checked and deleted without yielding to the event loop, so no alias can start
            # pointing at the version in between (AliasStore checks versions in its writes).
            aliases = await self._aliases.of_function(ref.region, ref.name)
            users = [alias.name for alias in aliases if alias.references(ref.qualifier)]
            if users:
                raise Conflict(
                    "Unable to delete version because the following aliases reference it: "
                    f"[{', '.join(users)}]"
                )
        removed = await self._store.delete_version(ref.region, ref.name, ref.qualifier)
        if removed is None:
            # A version that is not there is deleted already: AWS answers 204 (measured on the
            # live service, floci-io/floci#2824; LocalStack alike). The function must exist.
            await self.get(dataclasses.replace(ref, qualifier=None))
            return
        if self._on_version_gone is not None:
            await self._on_version_gone(ref.region, ref.name, ref.qualifier)
        await self._forget_code_if_unused(removed.code.sha256_hex)
        await self._forget_layers(await self._layer_digests(ref.region, removed.config.layers))

    async def tag(self, ref: FunctionRef, tags: Mapping[str, str]) -> None:
        def change(function: Function) -> Function:
            merged = {**function.tags, **tags}
            check_tags(merged)
            return dataclasses.replace(function, tags=merged)

        await self._update(ref, change)

    async def untag(self, ref: FunctionRef, keys: list[str]) -> None:
        def change(function: Function) -> Function:
            kept = {k: v for k, v in function.tags.items() if k not in keys}
            return dataclasses.replace(function, tags=kept)

        await self._update(ref, change)

    # --- helpers -----------------------------------------------------------------------------

    def arn(self, ref: FunctionRef) -> str:
        return function_arn(ref.region, self.account_id, ref.name, ref.qualifier)

    def _check_settled(self, function: Function) -> None:
        """AWS takes one change of a function at a time: while an update is InProgress, other
        updates and PublishVersion are refused (control-api.md §4.2; clients wait with the
        function_updated waiter)."""
        if function.latest.status.last_update is UpdateStatus.IN_PROGRESS:
            arn = function_arn(function.region, self.account_id, function.name)
            raise Conflict(
                "The operation cannot be performed at this time. An update is in progress for "
                f"resource: {arn}"
            )

    def _version(self, config: FunctionConfig, code: CodeRef, status: Status) -> FunctionVersion:
        return FunctionVersion(LATEST, config, code, status, self._clock.now(), str(uuid.uuid4()))

    async def _mutable(self, ref: FunctionRef) -> Function:
        if ref.qualifier not in (None, LATEST):
            # Only $LATEST is mutable; published versions are snapshots.
            raise FunctionNotFound(self.arn(ref))
        return await self.get(ref)

    async def _update(self, ref: FunctionRef, change: Callable[[Function], Function]) -> Function:
        try:
            return await self._store.update_function(ref.region, ref.name, change)
        except FunctionNotFound:
            raise FunctionNotFound(self.arn(ref)) from None

    async def _forget_code_if_unused(self, digest: str) -> None:
        await self._code.discard_unless_used(digest, self._store.code_in_use)

    # --- layers ------------------------------------------------------------------------------

    async def _checked_layers(self, region: str, arns: Sequence[str]) -> list[LayerVersion]:
        """The live layer versions newly named in `Layers`, or AWS's error."""
        if not arns:
            return []
        if self._layers is None:
            raise InvalidParameter(f"Layer version {arns[0]} does not exist.")
        return await self._layers.check_references(region, arns)

    async def _layers_in_use(self, region: str, arns: Sequence[str]) -> list[LayerVersion]:
        """The layers a stored version names, deleted ones included (AWS keeps them)."""
        if not arns or self._layers is None:
            return []
        return await self._layers.in_use(region, arns)

    def _check_size(self, code: CodeRef, layers: Sequence[LayerVersion]) -> None:
        if self._layers is not None:
            self._layers.check_size(code, layers)

    async def _layer_digests(self, region: str, arns: Sequence[str]) -> list[str]:
        return [layer.code.sha256_hex for layer in await self._layers_in_use(region, arns)]

    async def _forget_layers(self, digests: Sequence[str]) -> None:
        for digest in digests:
            await self._forget_code_if_unused(digest)


def _made_from(version: FunctionVersion, latest: FunctionVersion) -> bool:
    """Whether `$LATEST` still has the code and configuration `version` was published from.
    The Description given to PublishVersion describes the version only: publishing again with
    another one makes no new version (AWS; LocalStack's AWS-validated internal revision)."""
    source = version.source_description
    if source is None:  # stored before the source was kept: compare all but the description
        source = latest.config.description
    source_config = dataclasses.replace(version.config, description=source)
    return version.code == latest.code and source_config == latest.config


def _order(version: str) -> int:
    """A version's place in a function's list: `$LATEST` first, then by number."""
    return int(version) if version.isdigit() else -1


def _check_revision(function: Function, revision_id: str | None) -> None:
    if revision_id is not None and revision_id != function.latest.revision_id:
        raise RevisionMismatch()


def _wire_sha256(hex_digest: str) -> str:
    """AWS quotes CodeSha256 values as on the wire, in base64 (control-api.md §4.12)."""
    try:
        return base64.b64encode(bytes.fromhex(hex_digest)).decode()
    except ValueError:
        return hex_digest  # not a digest at all: quoted as given


__all__ = ["FunctionService", "NewFunction", "Page", "check_runtime"]

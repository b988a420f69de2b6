"""Lambda layers: publish, read, list, delete, their resource policies, and what functions need
from them (checking the references, the combined size, and the extracted trees to run).

Layer archives go through the same `CodeRepository` as function code: the hostile-zip checks,
the encrypted content-addressed blobs, the read-only extracted cache and its garbage collection
(`SqliteStore.code_in_use` counts layer versions too).

Behaviour follows AWS's API reference and LocalStack's AWS-validated provider
(localstack-core/localstack/services/lambda_/provider.py: `_validate_layers`,
`get_layer_version`, `add_layer_version_permission`, ...), whose messages are quoted here.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lamina.clock import Clock
from lamina.control.code import CodeRepository
from lamina.control.paging import decode_marker, encode_marker
from lamina.errors import (
    AccessDenied,
    Conflict,
    InvalidParameter,
    NotFound,
    RevisionMismatch,
    ValidationFailed,
)
from lamina.model.function import CodeRef
from lamina.model.layer import (
    LayerArn,
    LayerPolicy,
    LayerStatement,
    LayerVersion,
    layer_arn,
    parse_layer_arn,
)
from lamina.store.archive import ArchiveLimits
from lamina.store.layers import LayerStore

PAGE_LIMIT = 50  # ListLayers / ListLayerVersions: MaxItems 1-50 (control-api.md)
NOT_FOUND = "The resource you requested does not exist."
VERSION_PATTERN = (
    "(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:"
    "\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)"
)


@dataclass(frozen=True, slots=True)
class NewLayerVersion:
    name: str
    zip_file: bytes
    description: str = ""
    compatible_runtimes: tuple[str, ...] = ()
    compatible_architectures: tuple[str, ...] = ()
    license_info: str | None = None


@dataclass(frozen=True, slots=True)
class LayerPage:
    versions: list[LayerVersion]
    next_marker: str | None


class LayerService:
    def __init__(
        self,
        store: LayerStore,
        code: CodeRepository,
        clock: Clock,
        account_id: str,
        code_in_use: Callable[[str], Awaitable[bool]],
        max_unzipped_bytes: int = ArchiveLimits().max_unzipped_bytes,
    ) -> None:
        self._code_in_use = code_in_use  # SqliteStore.code_in_use: functions and layers
        self._store = store
        self._code = code
        self._clock = clock
        self.account_id = account_id
        self._max_unzipped = max_unzipped_bytes
        # Layer version ARN -> code digest: a version's content never changes, and a deleted
        # version keeps its row, so an entry never goes stale (the invoke path reads it).
        self._digests: dict[str, str] = {}

    # --- layer versions ----------------------------------------------------------------------

    async def publish(self, region: str, new: NewLayerVersion) -> LayerVersion:
        """Validate and store the archive, then record the next version of the layer."""
        name = self._own_name(region, new.name)
        async with self._code.staged(new.zip_file) as code:
            now = self._clock.now()

            def make(number: int) -> LayerVersion:
                return LayerVersion(
                    region,
                    name,
                    number,
                    code,
                    now,
                    new.description,
                    new.compatible_runtimes,
                    new.compatible_architectures,
                    new.license_info,
                )

            try:
                return await self._store.publish(region, name, self.account_id, make)
            except BaseException:
                await self._forget_code(code.sha256_hex)
                raise

    async def get(self, region: str, name_or_arn: str, version: int) -> LayerVersion:
        """GetLayerVersion: 404 "The resource you requested does not exist." (LocalStack)."""
        _check_number(version)
        name = self._name(region, name_or_arn)
        found = None if name is None else await self._store.get(region, name, version)
        if found is None:
            raise NotFound(NOT_FOUND)
        return found

    async def get_by_arn(self, region: str, arn: str) -> LayerVersion:
        parsed = parse_layer_arn(arn)
        if parsed is None or parsed.version is None:
            raise ValidationFailed(
                [
                    f"Value '{arn}' at 'arn' failed to satisfy constraint: Member must satisfy "
                    f"regular expression pattern: {VERSION_PATTERN}"
                ]
            )
        if (parsed.region, parsed.account) != (region, self.account_id):
            raise NotFound(NOT_FOUND)
        return await self.get(region, parsed.name, parsed.version)

    async def list_layers(
        self,
        region: str,
        runtime: str | None,
        architecture: str | None,
        marker: str | None,
        max_items: int | None,
    ) -> LayerPage:
        """Each layer with its newest version matching the filters, by name."""
        after = decode_marker(marker)
        latest: list[LayerVersion] = []
        for layer in await self._store.all_versions(region):
            if after is not None and layer.name <= after:
                continue
            if latest and latest[-1].name == layer.name:
                continue
            if layer.matches(runtime, architecture):
                latest.append(layer)
        return _page(latest, max_items, lambda layer: encode_marker(layer.name))

    async def list_versions(
        self,
        region: str,
        name_or_arn: str,
        runtime: str | None,
        architecture: str | None,
        marker: str | None,
        max_items: int | None,
    ) -> LayerPage:
        """Versions newest first. An unknown layer lists nothing (LocalStack: no error)."""
        name = self._name(region, name_or_arn)
        found = [] if name is None else await self._store.versions(region, name)
        below = _decode_version_marker(marker)
        matching = [
            layer
            for layer in found
            if (below is None or layer.version < below) and layer.matches(runtime, architecture)
        ]
        return _page(matching, max_items, lambda layer: str(layer.version))

    async def delete(self, region: str, name_or_arn: str, version: int) -> None:
        """DeleteLayerVersion: 204 whether or not it existed (LocalStack's AWS-validated
        provider pops without an error). Functions already using it keep working: the row
        stays as a tombstone and its code stays while they name it."""
        _check_number(version)
        name = self._name(region, name_or_arn)
        if name is None:
            return
        removed = await self._store.delete(region, name, version)
        if removed is not None:
            await self._forget_code(removed.code.sha256_hex)

    async def code_of(self, region: str, name: str, digest: str) -> bytes:
        """The archive behind a Content.Location link, while a live version holds it."""
        versions = await self._store.versions(region, name)
        if not any(layer.code.sha256_hex == digest for layer in versions):
            raise NotFound(NOT_FOUND)
        return await self._code.read(digest)

    async def usage(self, region: str) -> int:
        return await self._store.usage(region)

    # --- resource policy ---------------------------------------------------------------------

    async def add_permission(
        self,
        region: str,
        name_or_arn: str,
        version: int,
        statement: LayerStatement,
        revision_id: str | None,
    ) -> tuple[dict[str, Any], str]:
        """AddLayerVersionPermission: the statement as AWS renders it, and the new RevisionId."""
        name, arn = self._version_arn(region, name_or_arn, version)

        def change(policy: LayerPolicy | None) -> LayerPolicy:
            current = policy or LayerPolicy(str(uuid.uuid4()))
            if current.find(statement.sid) is not None:
                raise Conflict(
                    f"The statement id ({statement.sid}) provided already exists. Please "
                    "provide a new statement id, or remove the existing statement."
                )
            _check_policy_revision(policy, revision_id)
            return LayerPolicy(str(uuid.uuid4()), (*current.statements, statement))

        updated = await self._change_policy(region, name, version, arn, change)
        assert updated is not None
        return _render(statement, arn), updated.revision_id

    async def remove_permission(
        self, region: str, name_or_arn: str, version: int, sid: str, revision_id: str | None
    ) -> None:
        name, arn = self._version_arn(region, name_or_arn, version)

        def change(policy: LayerPolicy | None) -> LayerPolicy | None:
            _check_policy_revision(policy, revision_id)
            if policy is None or policy.find(sid) is None:
                raise NotFound(f"Statement {sid} is not found in resource policy.")
            kept = tuple(s for s in policy.statements if s.sid != sid)
            return LayerPolicy(str(uuid.uuid4()), kept) if kept else None

        await self._change_policy(region, name, version, arn, change)

    async def policy(
        self, region: str, name_or_arn: str, version: int
    ) -> tuple[dict[str, Any], str]:
        """GetLayerVersionPolicy: the document and its RevisionId."""
        name, arn = self._version_arn(region, name_or_arn, version)
        if await self._store.get(region, name, version) is None:
            raise NotFound(f"Layer version {arn} does not exist.")
        found = await self._store.policy(region, name, version)
        if found is None:
            raise NotFound("No policy is associated with the given resource.")
        document = {
            "Version": "2012-10-17",
            "Id": "default",
            "Statement": [_render(s, arn) for s in found.statements],
        }
        return document, found.revision_id

    async def _change_policy(
        self, region: str, name: str, version: int, arn: str, change: Any
    ) -> LayerPolicy | None:
        try:
            updated: LayerPolicy | None = await self._store.change_policy(
                region, name, version, change
            )
        except LookupError:
            raise NotFound(f"Layer version {arn} does not exist.") from None
        return updated

    # --- what functions need -----------------------------------------------------------------

    async def check_references(self, region: str, arns: Sequence[str]) -> list[LayerVersion]:
        """The live layer versions a function's `Layers` names, in order, or AWS's error
        (LocalStack `_validate_layers`): another account's version is AccessDenied, another
        region's or a missing one InvalidParameterValue, two versions of a layer too."""
        seen: dict[str, str] = {}
        found: list[LayerVersion] = []
        for arn in arns:
            parsed = parse_layer_arn(arn)
            if parsed is None or parsed.version is None:
                raise ValidationFailed(
                    [
                        f"Value '[{arn}]' at 'layers' failed to satisfy constraint: Member must "
                        "satisfy constraint: [Member must have length less than or equal to "
                        "2048, Member must have length greater than or equal to 1, Member must "
                        f"satisfy regular expression pattern: {VERSION_PATTERN}, Member must "
                        "not be null]"
                    ]
                )
            if parsed.account != self.account_id:
                raise AccessDenied(
                    f"User: arn:aws:iam::{self.account_id}:root is not authorized to perform: "
                    f"lambda:GetLayerVersion on resource: {arn} because no resource-based "
                    "policy allows the lambda:GetLayerVersion action"
                )
            if parsed.region != region:
                raise InvalidParameter(
                    "Layers are not in the same region as the function. "
                    f"Layers are expected to be in region {region}."
                )
            layer = await self._store.get(region, parsed.name, parsed.version)
            if layer is None:
                raise InvalidParameter(f"Layer version {arn} does not exist.")
            if parsed.layer_arn in seen:
                raise InvalidParameter(
                    "Two different versions of the same layer are not allowed to be referenced "
                    f"in the same function. {seen[parsed.layer_arn]} and {arn} are versions of "
                    "the same layer."
                )
            seen[parsed.layer_arn] = arn
            found.append(layer)
        return found

    async def in_use(self, region: str, arns: Sequence[str]) -> list[LayerVersion]:
        """The versions a stored function names, deleted ones included (it keeps them)."""
        found: list[LayerVersion] = []
        for arn in arns:
            parsed = parse_layer_arn(arn)
            if parsed is None or parsed.version is None:
                continue
            layer = await self._store.get(
                parsed.region, parsed.name, parsed.version, deleted_too=True
            )
            if layer is not None:
                found.append(layer)
        return found

    def check_size(self, code: CodeRef, layers: Sequence[LayerVersion]) -> None:
        """Function plus layers, unzipped, at most 250 MB. The message is AWS's, as recorded in
        the AWS Lambda quotas documentation and re:Post answers."""
        total = code.unzipped_size + sum(layer.code.unzipped_size for layer in layers)
        if total > self._max_unzipped:
            raise InvalidParameter(
                "Function code combined with layers exceeds the maximum allowed size of "
                f"{self._max_unzipped} bytes. The actual size is {total} bytes."
            )

    async def code_dirs(self, region: str, arns: Sequence[str]) -> tuple[str, ...]:
        """The extracted trees of a function's layers, in its order (later layers win at
        /opt). Re-extracted from the verified blob if the cache lost one: a tampered blob
        raises CodeIntegrityError and the function does not run."""
        dirs: list[str] = []
        for arn in arns:
            digest = self._digests.get(arn)
            if digest is None:
                layers = await self.in_use(region, [arn])
                if not layers:
                    raise NotFound(f"Layer version {arn} does not exist.")
                digest = self._digests[arn] = layers[0].code.sha256_hex
            dirs.append(str(await self._code.ensure_extracted(digest)))
        return tuple(dirs)

    async def sizes(self, region: str, arns: Sequence[str]) -> list[dict[str, Any]]:
        """A function's `Layers` as GetFunction shows them: `[{"Arn", "CodeSize"}]`."""
        found = {layer.arn(self.account_id): layer for layer in await self.in_use(region, arns)}
        return [
            {"Arn": arn, "CodeSize": found[arn].code.size if arn in found else 0} for arn in arns
        ]

    # --- helpers -----------------------------------------------------------------------------

    def _name(self, region: str, name_or_arn: str) -> str | None:
        """The layer name a LayerName member (name or layer ARN) means here; None when the
        ARN names another region or account (nothing of ours)."""
        if not name_or_arn.startswith("arn:"):
            return name_or_arn
        parsed = parse_layer_arn(name_or_arn)
        if parsed is None or (parsed.region, parsed.account) != (region, self.account_id):
            return None
        return parsed.name

    def _own_name(self, region: str, name_or_arn: str) -> str:
        name = self._name(region, name_or_arn)
        if name is None:
            raise InvalidParameter(
                f"Layers can only be published in this account and region: {name_or_arn}"
            )
        return name

    def _version_arn(self, region: str, name_or_arn: str, version: int) -> tuple[str, str]:
        _check_number(version)
        parsed: LayerArn | None = parse_layer_arn(name_or_arn)
        name = parsed.name if parsed is not None else name_or_arn
        arn = layer_arn(region, self.account_id, name, version)
        if self._name(region, name_or_arn) is None:
            raise NotFound(f"Layer version {arn} does not exist.")
        return name, arn

    async def _forget_code(self, digest: str) -> None:
        await self._code.discard_unless_used(digest, self._code_in_use)


def _check_number(version: int) -> None:
    if version < 1:
        raise InvalidParameter("Layer Version Cannot be less than 1")


def _check_policy_revision(policy: LayerPolicy | None, revision_id: str | None) -> None:
    if revision_id is not None and (policy is None or policy.revision_id != revision_id):
        raise RevisionMismatch("GetLayerPolicy")


def _render(statement: LayerStatement, arn: str) -> dict[str, Any]:
    """A statement as AWS shows it (awscli's add-layer-version-permission example): an
    account principal becomes its root ARN, an organization a PrincipalOrgID condition."""
    principal: Any = statement.principal
    if principal.isdigit():
        principal = {"AWS": f"arn:aws:iam::{principal}:root"}
    elif principal.startswith("arn:"):
        principal = {"AWS": principal}
    out: dict[str, Any] = {
        "Sid": statement.sid,
        "Effect": "Allow",
        "Principal": principal,
        "Action": statement.action,
        "Resource": arn,
    }
    if statement.organization_id:
        out["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": statement.organization_id}}
    return out


def _page(items: list[LayerVersion], max_items: int | None, marker: Any) -> LayerPage:
    limit = min(max_items or PAGE_LIMIT, PAGE_LIMIT)
    page = items[:limit]
    more = len(items) > limit
    return LayerPage(page, marker(page[-1]) if more and page else None)


def _decode_version_marker(marker: str | None) -> int | None:
    if not marker:
        return None
    if not marker.isdigit():
        raise InvalidParameter(f"Invalid Marker: {marker}")
    return int(marker)

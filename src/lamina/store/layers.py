"""Layer versions and their resource policies, on the shared SQLite `Database`.

A deleted version stays as a tombstone row: its number is never handed out again, and a
function that already uses it still resolves its code (AWS keeps a copy "until no functions
refer to it"; the code's garbage collection asks `code_in_use`, which counts such references).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from lamina.model.function import CodeRef
from lamina.model.layer import LayerPolicy, LayerStatement, LayerVersion
from lamina.store.database import Database


class LayerStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def publish(
        self, region: str, name: str, account: str, make: Callable[[int], LayerVersion]
    ) -> LayerVersion:
        """Store the next version of `name` (numbers continue after deleted versions)."""
        with self._db.write(invalidate=False):
            (last,) = self._db.one(
                "SELECT COALESCE(MAX(version), 0) FROM layer_versions "
                "WHERE region = ? AND name = ?",
                (region, name),
            )
            layer = make(int(last) + 1)
            self._db.execute(
                "INSERT INTO layer_versions "
                "(region, name, version, arn, code_sha256, code_size, document) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    region,
                    name,
                    layer.version,
                    layer.arn(account),
                    layer.code.sha256_hex,
                    layer.code.size,
                    _encode(layer),
                ),
            )
        return layer

    async def get(
        self, region: str, name: str, version: int, *, deleted_too: bool = False
    ) -> LayerVersion | None:
        row = self._db.one(
            "SELECT document FROM layer_versions WHERE region = ? AND name = ? AND version = ?"
            + ("" if deleted_too else " AND deleted = 0"),
            (region, name, version),
        )
        return _decode(row[0]) if row else None

    async def versions(self, region: str, name: str) -> list[LayerVersion]:
        """Live versions of one layer, newest first."""
        rows = self._db.all(
            "SELECT document FROM layer_versions WHERE region = ? AND name = ? AND deleted = 0 "
            "ORDER BY version DESC",
            (region, name),
        )
        return [_decode(row[0]) for row in rows]

    async def all_versions(self, region: str) -> list[LayerVersion]:
        """Live versions of every layer of the region, by name, newest first."""
        rows = self._db.all(
            "SELECT document FROM layer_versions WHERE region = ? AND deleted = 0 "
            "ORDER BY name, version DESC",
            (region,),
        )
        return [_decode(row[0]) for row in rows]

    async def delete(self, region: str, name: str, version: int) -> LayerVersion | None:
        """Make the version a tombstone; returns it, or None if it was not live."""
        with self._db.write(invalidate=False):
            found = await self.get(region, name, version)
            if found is not None:
                self._db.execute(
                    "UPDATE layer_versions SET deleted = 1, policy = NULL "
                    "WHERE region = ? AND name = ? AND version = ?",
                    (region, name, version),
                )
        return found

    async def policy(self, region: str, name: str, version: int) -> LayerPolicy | None:
        row = self._db.one(
            "SELECT policy FROM layer_versions "
            "WHERE region = ? AND name = ? AND version = ? AND deleted = 0",
            (region, name, version),
        )
        return _decode_policy(row[0]) if row and row[0] else None

    async def change_policy(
        self,
        region: str,
        name: str,
        version: int,
        change: Callable[[LayerPolicy | None], LayerPolicy | None],
    ) -> LayerPolicy | None:
        """Read, change and write the policy atomically (`change` may raise to refuse).

        Raises LookupError if the version is not live."""
        with self._db.write(invalidate=False):
            row = self._db.one(
                "SELECT policy FROM layer_versions "
                "WHERE region = ? AND name = ? AND version = ? AND deleted = 0",
                (region, name, version),
            )
            if row is None:
                raise LookupError(name)
            updated = change(_decode_policy(row[0]) if row[0] else None)
            self._db.execute(
                "UPDATE layer_versions SET policy = ? "
                "WHERE region = ? AND name = ? AND version = ?",
                (_encode_policy(updated) if updated else None, region, name, version),
            )
        return updated

    async def usage(self, region: str) -> int:
        """Zip bytes of the region's live layer versions (AccountUsage.TotalCodeSize)."""
        (size,) = self._db.one(
            "SELECT COALESCE(SUM(code_size), 0) FROM layer_versions "
            "WHERE region = ? AND deleted = 0",
            (region,),
        )
        return int(size)


# A layer's code is in use while the version is live, or while a function version still
# names a deleted version's ARN (stored documents hold the ARNs as JSON strings: quoting the
# ARN keeps `...:layer:x:1` from matching `...:layer:x:10`). Used by SqliteStore.code_in_use.
LAYER_CODE_IN_USE = (
    "SELECT 1 FROM layer_versions l WHERE l.code_sha256 = ? AND (l.deleted = 0 OR EXISTS ("
    "SELECT 1 FROM function_versions v WHERE v.region = l.region "
    "AND instr(v.document, '\"' || l.arn || '\"') > 0)) LIMIT 1"
)


def _encode(layer: LayerVersion) -> str:
    doc: dict[str, Any] = {
        "region": layer.region,
        "name": layer.name,
        "version": layer.version,
        "code": {
            "sha256": layer.code.sha256_hex,
            "size": layer.code.size,
            "unzipped": layer.code.unzipped_size,
        },
        "created": layer.created.isoformat(),
        "description": layer.description,
        "compatible_runtimes": list(layer.compatible_runtimes),
        "compatible_architectures": list(layer.compatible_architectures),
        "license_info": layer.license_info,
    }
    return orjson.dumps(doc).decode()


def _decode(raw: str) -> LayerVersion:
    doc = orjson.loads(raw)
    code = doc["code"]
    return LayerVersion(
        region=doc["region"],
        name=doc["name"],
        version=doc["version"],
        code=CodeRef(code["sha256"], code["size"], code["unzipped"]),
        created=datetime.fromisoformat(doc["created"]),
        description=doc["description"],
        compatible_runtimes=tuple(doc["compatible_runtimes"]),
        compatible_architectures=tuple(doc["compatible_architectures"]),
        license_info=doc["license_info"],
    )


def _encode_policy(policy: LayerPolicy) -> str:
    statements = [
        {
            "sid": s.sid,
            "action": s.action,
            "principal": s.principal,
            "organization_id": s.organization_id,
        }
        for s in policy.statements
    ]
    return orjson.dumps({"revision_id": policy.revision_id, "statements": statements}).decode()


def _decode_policy(raw: str) -> LayerPolicy:
    doc = orjson.loads(raw)
    return LayerPolicy(doc["revision_id"], tuple(LayerStatement(**s) for s in doc["statements"]))

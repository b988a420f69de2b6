"""Layer versions and their resource policies, as immutable values; layer ARNs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from lamina.model.function import CodeRef

# arn:aws:lambda:<region>:<account>:layer:<name>[:<version>] (botocore's LayerVersionArn).
_LAYER_ARN = re.compile(
    r"^arn:(?:aws[a-zA-Z-]*)?:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"layer:(?P<name>[a-zA-Z0-9-_]+)(?::(?P<version>[0-9]+))?$"
)


@dataclass(frozen=True, slots=True)
class LayerArn:
    """A layer, or one version of it, named by ARN."""

    region: str
    account: str
    name: str
    version: int | None = None

    @property
    def layer_arn(self) -> str:
        return layer_arn(self.region, self.account, self.name)


def parse_layer_arn(raw: str) -> LayerArn | None:
    match = _LAYER_ARN.match(raw)
    if match is None:
        return None
    version = match["version"]
    return LayerArn(
        match["region"], match["account"], match["name"], int(version) if version else None
    )


def layer_arn(region: str, account: str, name: str, version: int | None = None) -> str:
    arn = f"arn:aws:lambda:{region}:{account}:layer:{name}"
    return f"{arn}:{version}" if version is not None else arn


@dataclass(frozen=True, slots=True)
class LayerVersion:
    """One immutable version of a layer: its code and what it declares."""

    region: str
    name: str
    version: int
    code: CodeRef
    created: datetime
    description: str = ""
    compatible_runtimes: tuple[str, ...] = ()
    compatible_architectures: tuple[str, ...] = ()
    license_info: str | None = None

    def arn(self, account: str) -> str:
        return layer_arn(self.region, account, self.name, self.version)

    def matches(self, runtime: str | None, architecture: str | None) -> bool:
        """ListLayers/ListLayerVersions filters: a version declaring nothing matches nothing."""
        if runtime is not None and runtime not in self.compatible_runtimes:
            return False
        return architecture is None or architecture in self.compatible_architectures


@dataclass(frozen=True, slots=True)
class LayerStatement:
    """One statement of a layer version's resource policy (AddLayerVersionPermission)."""

    sid: str
    action: str
    principal: str
    organization_id: str | None = None


@dataclass(frozen=True, slots=True)
class LayerPolicy:
    revision_id: str
    statements: tuple[LayerStatement, ...] = ()

    def find(self, sid: str) -> LayerStatement | None:
        return next((s for s in self.statements if s.sid == sid), None)

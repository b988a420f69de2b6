"""ARNs and function references: parsing and formatting, nothing else."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lamina.errors import FunctionNotFound, InvalidParameter, ValidationFailed

# name | partial ARN (account:function:name) | full ARN, each optionally ":qualifier".
_FUNCTION_REF = re.compile(
    r"^(?:arn:(?P<partition>aws[a-zA-Z-]*)?:lambda:(?P<region>[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):)?"
    r"(?:(?P<account>\d{12}):)?"
    r"(?:function:)?"
    r"(?P<name>[a-zA-Z0-9-_]+)"
    r"(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9-_]+))?$"
)


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """A function named by a request, resolved to a region, a name and an optional qualifier."""

    region: str
    account: str
    name: str
    qualifier: str | None = None


def function_arn(region: str, account: str, name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def parse_function_ref(raw: str, region: str, account: str) -> FunctionRef:
    """Resolve a FunctionName path member as AWS does (name, partial or full ARN)."""
    match = _FUNCTION_REF.match(raw)
    if match is None:
        raise InvalidParameter(f"Invalid function name or ARN: {raw}")
    arn_region = match["region"]
    if arn_region and arn_region != region:
        # AWS: 404 "Functions from 'r1' are not reachable in this region ('r2')".
        raise FunctionNotFound(
            raw, f"Functions from '{arn_region}' are not reachable in this region ('{region}')"
        )
    name = match["name"]
    if len(name) > 64:
        raise ValidationFailed(
            [
                f"Value '{name}' at 'functionName' failed to satisfy constraint: "
                "Member must have length less than or equal to 64"
            ]
        )
    ref_account = match["account"] or account
    if ref_account != account:
        raise FunctionNotFound(function_arn(region, ref_account, name, match["qualifier"]))
    return FunctionRef(region, account, name, match["qualifier"])


def with_qualifier(ref: FunctionRef, qualifier: str | None) -> FunctionRef:
    """Merge a `Qualifier` parameter with the one in the name; they must agree (AWS rule)."""
    if qualifier is None:
        return ref
    if ref.qualifier is not None and ref.qualifier != qualifier:
        raise InvalidParameter(
            "The derived qualifier from the function name does not match the specified qualifier."
        )
    return FunctionRef(ref.region, ref.account, ref.name, qualifier)

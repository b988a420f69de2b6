"""The Lambda wire protocol, driven by botocore's own service model.

Routing (method + URI template), binding of uri/querystring/header/body members, validation of
the model's constraints, and binding of output members to status, headers and body all come
from `botocore/data/lambda/.../service-2.json`, so every operation has AWS's exact shape.
Semantics are not decided here.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import unquote

import botocore.session
import orjson
from botocore.model import OperationModel, ServiceModel, Shape, StructureShape

from lamina.errors import MalformedRequest, UnknownOperation, ValidationFailed

# Shapes whose enum AWS checks as a semantic rule (InvalidParameterValueException with its own
# wording) rather than as a model constraint; control/ validates them.
SEMANTIC_ENUMS = frozenset({"Runtime"})


@cache
def load_service_model(service: str = "lambda") -> ServiceModel:
    return botocore.session.get_session().get_service_model(service)


@dataclass(frozen=True, slots=True)
class Route:
    operation: OperationModel
    segments: tuple[str, ...]  # literal text, "{Label}" or "{Label+}"
    query_literal: tuple[tuple[str, str], ...]
    literal_count: int

    def match(self, parts: list[str]) -> dict[str, str] | None:
        labels: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            if segment.endswith("+}"):
                labels[segment[1:-2]] = unquote("/".join(parts[index:]))
                return labels
            if index >= len(parts):
                return None
            if segment.startswith("{"):
                if not parts[index]:
                    return None
                labels[segment[1:-1]] = unquote(parts[index])
            elif segment != parts[index]:
                return None
        return labels if len(parts) == len(self.segments) else None


@dataclass(frozen=True, slots=True)
class WireRequest:
    method: str
    path: str  # raw, still percent-encoded
    query: list[tuple[str, str]]  # decoded pairs, in order
    headers: Mapping[str, str]  # lower-case names
    body: bytes


@dataclass(slots=True)
class WireResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class Router:
    """Finds the operation for a method and path, preferring the most specific template."""

    def __init__(self, model: ServiceModel) -> None:
        # Indexed by method and first path segment (the API version date), which narrows each
        # lookup to a handful of templates.
        self._routes: dict[tuple[str, str], list[Route]] = {}
        for name in model.operation_names:
            operation = model.operation_model(name)
            route = _route_for(operation)
            key = (operation.http["method"], route.segments[0])
            self._routes.setdefault(key, []).append(route)
        for routes in self._routes.values():
            # Query literals first (they are stricter), then the most literal segments.
            routes.sort(key=lambda r: (-len(r.query_literal), -r.literal_count))

    def resolve(self, request: WireRequest) -> tuple[OperationModel, dict[str, str]]:
        parts = request.path.split("?", 1)[0].strip("/").split("/")
        query = set(request.query)
        for route in self._routes.get((request.method, parts[0]), ()):
            if not query.issuperset(route.query_literal):
                continue
            labels = route.match(parts)
            if labels is not None:
                return route.operation, labels
        raise UnknownOperation(f"No Lambda operation matches {request.method} {request.path}")


def _route_for(operation: OperationModel) -> Route:
    uri = operation.http["requestUri"]
    path, _, query = uri.partition("?")
    segments = tuple(path.strip("/").split("/"))
    literal = tuple(
        (k, v) for k, _, v in (pair.partition("=") for pair in query.split("&") if pair)
    )
    count = sum(1 for s in segments if not s.startswith("{"))
    return Route(operation, segments, literal, count)


# --- input -------------------------------------------------------------------------------------


def parse_input(
    operation: OperationModel, labels: Mapping[str, str], request: WireRequest
) -> dict[str, Any]:
    """Bind and validate the request's members; raises ValidationFailed / MalformedRequest."""
    shape = operation.input_shape
    if shape is None:
        return {}
    payload_name = shape.serialization.get("payload")
    params: dict[str, Any] = {}
    body_members: dict[str, Shape] = {}
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        if location is not None:
            value = _bind_located(member, location, name, labels, request)
            if value is not None:
                params[name] = value
        elif name == payload_name:
            params.update(_bind_payload(member, name, request.body))
        else:
            body_members[name] = member
    if body_members and request.body:
        params.update(_bind_body(body_members, request.body))
    problems: list[str] = []
    _validate_structure(shape, params, "", problems)
    if problems:
        raise ValidationFailed(problems)
    return params


def _bind_located(
    member: Shape, location: str, name: str, labels: Mapping[str, str], request: WireRequest
) -> Any:
    wire_name = member.serialization.get("name", name)
    if location == "uri":
        return _from_text(member, labels[wire_name], name) if wire_name in labels else None
    if location == "header":
        value = request.headers.get(wire_name.lower())
        return None if value is None else _from_text(member, value, name)
    if location == "querystring":
        values = [v for k, v in request.query if k == wire_name]
        if not values:
            return None
        if member.type_name == "list":
            return [_from_text(member.member, v, name) for v in values]  # type: ignore[attr-defined]
        return _from_text(member, values[-1], name)
    return None


def _bind_payload(member: Shape, name: str, body: bytes) -> dict[str, Any]:
    if member.type_name == "blob":
        return {name: body}
    return {name: _from_json(member, _load_json(body), name)} if body else {}


def _bind_body(members: Mapping[str, Shape], body: bytes) -> dict[str, Any]:
    document = _load_json(body)
    if not isinstance(document, dict):
        raise MalformedRequest("Could not parse request body into json: expected an object")
    return {
        name: _from_json(member, document[name], name)
        for name, member in members.items()
        if document.get(name) is not None
    }


def _load_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise MalformedRequest(f"Could not parse request body into json: {error}") from None


def _from_text(shape: Shape, text: str, name: str) -> Any:
    kind = shape.type_name
    try:
        if kind in ("integer", "long"):
            return int(text)
        if kind in ("double", "float"):
            return float(text)
    except ValueError:
        where = f"Value '{text}' at '{_camel(name)}' failed to satisfy constraint"
        raise ValidationFailed([f"{where}: Member must be a number"]) from None
    if kind == "boolean":
        return text.lower() == "true"
    return text


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "double": (int, float),
    "float": (int, float),
    "boolean": (bool,),
    "list": (list,),
    "map": (dict,),
    "structure": (dict,),
    "blob": (str,),
    "timestamp": (int, float, str),
}


def _is_json_type(value: object, expected: tuple[type, ...], kind: str) -> bool:
    # bool is an int in Python, but not in JSON.
    return isinstance(value, expected) and (kind == "boolean" or not isinstance(value, bool))


def _from_json(shape: Shape, value: Any, path: str) -> Any:
    kind = shape.type_name
    expected = _JSON_TYPES.get(kind, (object,))
    if not _is_json_type(value, expected, kind):
        raise MalformedRequest(
            f"Could not parse request body into json: value of '{_camel(path)}' "
            f"must be of type {kind}"
        )
    if kind == "structure":
        members = shape.members  # type: ignore[attr-defined]
        return {
            k: _from_json(members[k], v, f"{path}.{k}")
            for k, v in value.items()
            if k in members and v is not None
        }
    if kind == "list":
        return [_from_json(shape.member, item, path) for item in value]  # type: ignore[attr-defined]
    if kind == "map":
        return {
            _from_json(shape.key, k, path): _from_json(shape.value, v, path)  # type: ignore[attr-defined]
            for k, v in value.items()
        }
    if kind == "blob":
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedRequest(
                f"Could not parse request body into json: '{_camel(path)}' is not valid base64"
            ) from None
    return value


# --- validation ----------------------------------------------------------------------------------


_NUMBERS = ("integer", "long", "double", "float")


def _camel(path: str) -> str:
    return ".".join(part[:1].lower() + part[1:] for part in path.split("."))


@cache
def _pattern(regex: str) -> re.Pattern[str] | None:
    try:
        return re.compile(regex)
    except re.error:
        return None


def _validate_structure(
    shape: StructureShape, value: Mapping[str, Any], prefix: str, problems: list[str]
) -> None:
    problems.extend(
        f"Value null at '{_camel(prefix + name)}' failed to satisfy constraint: "
        "Member must not be null"
        for name in shape.required_members
        if value.get(name) is None
    )
    for name, item in value.items():
        _validate(shape.members[name], item, prefix + name, problems)


def _validate(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    kind = shape.type_name

    def where() -> str:
        # Only for a problem: showing a value can be costly (a structure holding a 50 MB zip).
        return f"Value {_show(value)} at '{_camel(path)}' failed to satisfy constraint: Member must"

    if kind in ("string", "blob", "list", "map"):
        _check_bounds(shape, len(value), where, problems)
    elif kind in _NUMBERS:
        _check_bounds(shape, value, where, problems)
    if kind == "string":
        _check_string(shape, value, where, problems)
    elif kind == "structure":
        _validate_structure(shape, value, path + ".", problems)  # type: ignore[arg-type]
    elif kind == "list":
        for item in value:
            _validate(shape.member, item, path, problems)  # type: ignore[attr-defined]
    elif kind == "map":
        _check_entries(shape, value, path, problems)


def _check_entries(shape: Shape, value: Mapping[Any, Any], path: str, problems: list[str]) -> None:
    """A map's entries are reported by aspect, keys then values, each once however many
    entries break it, with every rule of that aspect's shape, as AWS does: "Value '{2=1.5}' at
    'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy
    constraint: [Member must have value less than or equal to 1.0, Member must have value greater
    than or equal to 0.0, Member must not be null]" (LocalStack's AWS-validated CreateAlias
    errors). A sensitive map is not shown ("Value at 'environment.variables' ...")."""
    key_shape, value_shape = shape.key, shape.value  # type: ignore[attr-defined]
    sensitive = any(s.metadata.get("sensitive") for s in (shape, key_shape, value_shape))
    shown = "Value" if sensitive else f"Value '{_show_map(value_shape, value)}'"
    for aspect, member, items, rules in (
        ("keys", key_shape, value.keys(), _rules(key_shape)),
        ("value", value_shape, value.values(), [*_rules(value_shape), "Member must not be null"]),
    ):
        broken: list[str] = []
        for item in items:
            _validate(member, item, path, broken)
        if broken:
            problems.append(
                f"{shown} at '{_camel(path)}' failed to satisfy constraint: "
                f"Map {aspect} must satisfy constraint: [{', '.join(rules)}]"
            )


@cache
def _constraints(shape: Shape) -> dict[str, str]:
    """Each constraint of a shape as AWS words it after "Member must", in the order AWS lists
    them for a map (maximum, minimum, pattern, enum). Cached: the model's shapes live as long."""
    meta = shape.metadata
    measure = "value" if shape.type_name in _NUMBERS else "length"
    said = {}
    if "max" in meta:
        said["max"] = f"have {measure} less than or equal to {meta['max']}"
    if "min" in meta:
        said["min"] = f"have {measure} greater than or equal to {meta['min']}"
    if "pattern" in meta:
        said["pattern"] = f"satisfy regular expression pattern: {meta['pattern']}"
    if "enum" in meta:
        said["enum"] = f"satisfy enum value set: [{', '.join(meta['enum'])}]"
    return said


def _rules(shape: Shape) -> list[str]:
    return [f"Member must {rule}" for rule in _constraints(shape).values()]


def _show_map(value_shape: Shape, value: Mapping[Any, Any]) -> str:
    """As Java prints a map: {key=value, ...}, a double with its decimal point."""
    double = value_shape.type_name in ("double", "float")
    return "{" + ", ".join(f"{k}={float(v) if double else v}" for k, v in value.items()) + "}"


def _check_bounds(
    shape: Shape, measure: float, where: Callable[[], str], problems: list[str]
) -> None:
    meta = shape.metadata
    if "min" in meta and measure < meta["min"]:
        problems.append(f"{where()} {_constraints(shape)['min']}")
    if "max" in meta and measure > meta["max"]:
        problems.append(f"{where()} {_constraints(shape)['max']}")


def _check_string(shape: Shape, value: str, where: Callable[[], str], problems: list[str]) -> None:
    meta = shape.metadata
    if "enum" in meta and shape.name not in SEMANTIC_ENUMS and value not in meta["enum"]:
        problems.append(f"{where()} {_constraints(shape)['enum']}")
    pattern = _pattern(meta["pattern"]) if "pattern" in meta else None
    if pattern is not None and not pattern.fullmatch(value):
        problems.append(f"{where()} {_constraints(shape)['pattern']}")


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "'<binary>'"
    if isinstance(value, list):
        return "'[" + ", ".join(str(v) for v in value) + "]'"
    return f"'{value}'"


# --- output --------------------------------------------------------------------------------------


def build_response(operation: OperationModel, output: Mapping[str, Any]) -> WireResponse:
    """Bind output members to the status line, headers and body as the model says."""
    response = WireResponse(status=int(operation.http.get("responseCode", 200)))
    shape = operation.output_shape
    if shape is None:
        return response
    payload_name = shape.serialization.get("payload")
    body: dict[str, Any] = {}
    for name, value in output.items():
        if value is None:
            continue
        member = shape.members[name]
        location = member.serialization.get("location")
        if location == "statusCode":
            response.status = int(value)
        elif location == "header":
            response.headers[member.serialization["name"]] = str(value)
        elif name == payload_name:
            response.body = value if isinstance(value, bytes) else orjson.dumps(value)
            response.headers.setdefault("Content-Type", "application/json")
        else:
            body[name] = value
    if payload_name is None and (body or response.status != 204):
        response.body = orjson.dumps(body)
        response.headers["Content-Type"] = "application/json"
    return response

"""Metrics and audit endpoints, and the audit record of a control-plane call.

* `GET /metrics`: the Prometheus text format, unauthenticated like `/_lamina/health`
  (scrapers do not sign requests). It names functions and versions, nothing else; keep the port
  off untrusted networks or put a proxy in front if function names are sensitive.
* `GET /lamina/functions/{name}/metrics?minutes=60` (signed): the function's one-minute buckets
  of the last `minutes` (1..1,440), oldest first, as JSON for the console.
* `GET /lamina/audit?since=10m|ISO|epoch&function=NAME&limit=N` (signed): audit records.
* `GET /lamina/audit/verify` (signed): the chain's verification (also offline, see
  `lamina audit verify --data-dir`).

Every Lambda API operation but the data plane (Invoke, InvokeAsync, InvokeWithResponseStream)
is recorded, authenticated or not: time, access key (the one claimed, when the signature
failed), source address, region, operation, resource ARN, parameters, HTTP status, error code,
request id, user agent. Parameters never keep code, payloads or environment variable values:
bytes become their size and SHA-256, `Environment.Variables` keeps only its keys.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import orjson

from lamina.api.wire import WireRequest, WireResponse
from lamina.errors import InvalidParameter, LaminaError
from lamina.ids import function_arn, parse_function_ref
from lamina.observability.audit import AuditLog, parse_since, read_records, timestamp, verify
from lamina.observability.metrics import CONTENT_TYPE, Metrics

DATA_PLANE = frozenset({"Invoke", "InvokeAsync", "InvokeWithResponseStream"})
REDACTED = "***"
SECRET_MEMBERS = frozenset({"Payload", "ClientContext"})
MAX_STRING = 4096  # longer parameter strings are cut in the record
MAX_LIST = 1000

_SERIES = re.compile(r"^/lamina/functions/(?P<name>[a-zA-Z0-9_-]{1,64})/metrics$")
_CLAIMED = re.compile(r"Credential=([^/,\s]{1,128})/[^/,\s]*/([^/,\s]{1,32})/")
_JSON = {"Content-Type": "application/json"}
# Operations that change nothing (after any `logs:` / `lamina:` prefix).
_READS = ("Get", "List", "Describe", "Filter")


class AuditNote:
    """What the API learned about a call while handling it; recorded once it is answered."""

    __slots__ = ("access_key", "authenticated", "operation", "params", "region", "user_agent")

    def __init__(self) -> None:
        self.operation: str | None = None  # None: nothing to record (data plane, Lamina's own)
        self.access_key: str | None = None
        self.authenticated = False
        self.region: str | None = None
        self.params: dict[str, Any] = {}
        self.user_agent = ""

    def control_call(
        self, operation: str, access_key: str, region: str, authenticated: bool, agent: str
    ) -> None:
        if operation in DATA_PLANE:
            return
        self.operation = operation
        self.access_key = access_key
        self.region = region
        self.authenticated = authenticated
        self.user_agent = agent[:256]


def claimed_key(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(access key, region) a request names in its Authorization header, not verified."""
    found = _CLAIMED.search(headers.get("authorization", ""))
    return (found.group(1), found.group(2)) if found else (None, None)


class ObservabilityApi:
    def __init__(
        self,
        metrics: Metrics,
        audit: AuditLog | None,
        account_id: str,
        now: Callable[[], float],
    ) -> None:
        self.metrics = metrics
        self.audit = audit
        self._account = account_id
        self._now = now

    # --- /metrics ------------------------------------------------------------------------------

    async def scrape(self) -> WireResponse:
        body = await self.metrics.exposition_off_loop()
        return WireResponse(200, {"Content-Type": CONTENT_TYPE}, body)

    # --- /lamina/... -----------------------------------------------------------------------------

    async def handle(
        self, request: WireRequest, raw_query: str, region: str
    ) -> WireResponse | None:
        """Serve a signed Lamina endpoint of this module, or None if the path is not one."""
        path = request.path
        if request.method != "GET":
            return None
        query = dict(parse_qsl(raw_query))
        series = _SERIES.match(path)
        if series is not None:
            minutes = _int_param(query, "minutes", 60, 1, 1440)
            points = self.metrics.series.points(region, series["name"], minutes)
            document = {
                "FunctionName": series["name"],
                "Region": region,
                "PeriodSeconds": 60,
                "Points": points,
            }
            return WireResponse(200, dict(_JSON), orjson.dumps(document))
        if self.audit is None or path not in ("/lamina/audit", "/lamina/audit/verify"):
            return None
        directory = self.audit.directory
        if path == "/lamina/audit/verify":
            found = await asyncio.to_thread(verify, directory)
            return WireResponse(200, dict(_JSON), orjson.dumps(found.as_json()))
        since = None
        if query.get("since"):
            try:
                since = parse_since(query["since"], self._now())
            except ValueError as error:
                raise InvalidParameter(str(error)) from None
        limit = _int_param(query, "limit", 1000, 1, 100_000)
        function = query.get("function") or None
        records = await asyncio.to_thread(read_records, directory, since, function, limit)
        return WireResponse(200, dict(_JSON), orjson.dumps({"Records": records}))

    # --- the audit record ----------------------------------------------------------------------

    async def record(
        self, note: AuditNote, client: Any, response: WireResponse, request_id: str
    ) -> None:
        """Append the call's record: a change returns once it is on disk; a read (Get*,
        List*) does not wait for the fsync."""
        if self.audit is None or note.operation is None:
            return
        entry = self.entry(note, client, response, request_id)
        if note.operation.rpartition(":")[2].startswith(_READS):
            self.audit.note(entry)
        else:
            await self.audit.append(entry)

    def entry(
        self, note: AuditNote, client: Any, response: WireResponse, request_id: str
    ) -> dict[str, Any]:
        resource, function = self._resource(note)
        source = client[0] if isinstance(client, (list, tuple)) and client else None
        return {
            "time": timestamp(self._now()),
            "request_id": request_id,
            "access_key": note.access_key,
            "authenticated": note.authenticated,
            "source_ip": source,
            "region": note.region,
            "operation": note.operation,
            "resource": resource,
            "function": function,
            "parameters": redact(note.params),
            "status": response.status,
            "error": response.headers.get("x-amzn-ErrorType"),
            "user_agent": note.user_agent,
        }

    def _resource(self, note: AuditNote) -> tuple[str | None, str | None]:
        """(resource ARN, function name) the call is about, as far as it names them."""
        params, region = note.params, note.region or ""
        group = params.get("logGroupName")
        if isinstance(group, str):  # CloudWatch Logs: the log group's ARN
            return f"arn:aws:logs:{region}:{self._account}:log-group:{group}", None
        raw = params.get("FunctionName")
        if not isinstance(raw, str):
            raw = params.get("Resource")  # tagging operations take an ARN
        if not isinstance(raw, str):
            return None, None
        try:
            ref = parse_function_ref(raw, region, self._account)
        except LaminaError:
            return raw, None
        qualifier = params.get("Qualifier") or ref.qualifier
        if (note.operation or "").endswith("Alias") and isinstance(params.get("Name"), str):
            qualifier = params["Name"]
        return function_arn(ref.region, ref.account, ref.name, qualifier), ref.name


def redact(value: Any) -> Any:
    """Parameters as recorded: no code, payloads or environment variable values."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return {"Bytes": len(data), "Sha256": hashlib.sha256(data).hexdigest()}
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        for key, item in value.items():
            if key == "Variables" and isinstance(item, dict):
                kept[key] = dict.fromkeys(item, REDACTED)
            elif key in SECRET_MEMBERS:
                kept[key] = REDACTED
            else:
                kept[str(key)] = redact(item)
        return kept
    if isinstance(value, (list, tuple)):
        return [redact(item) for item in value[:MAX_LIST]]
    if isinstance(value, str) and len(value) > MAX_STRING:
        return value[:MAX_STRING] + "..."
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _int_param(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidParameter(f"{name} must be an integer from {low} to {high}")
    return int(raw)

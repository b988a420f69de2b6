"""AWS Signature Version 4 verification (server side), as botocore's SigV4Auth signs.

See ../shared/reference/limits.md §6. Returns the verified access key and the region of the
signature's scope: each region is its own namespace.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import quote

from lamina.errors import (
    IncompleteSignature,
    MissingAuthentication,
    SignatureExpired,
    SignatureMismatch,
    UnknownAccessKey,
)

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True, slots=True)
class Identity:
    access_key: str
    region: str
    service: str


@dataclass(frozen=True, slots=True)
class _Authorization:
    access_key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def _parse_authorization(value: str) -> _Authorization:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignature(f"Unsupported authorization algorithm: {algorithm}")
    parts: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, val = item.strip().partition("=")
        if sep:
            parts[key] = val.strip()
    try:
        credential = parts["Credential"].split("/")
        access_key, date, region, service, terminator = credential
        signed = tuple(parts["SignedHeaders"].split(";"))
        signature = parts["Signature"]
    except (KeyError, ValueError):
        raise IncompleteSignature(
            "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' "
            f"parameters. Authorization={value}"
        ) from None
    if terminator != "aws4_request":
        raise IncompleteSignature(
            f"Credential should be scoped with a valid terminator: {terminator}"
        )
    return _Authorization(access_key, date, region, service, signed, signature)


@lru_cache(maxsize=256)
def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


@lru_cache(maxsize=4096)
def _canonical_uri(raw_path: str) -> str:
    # Non-S3 services encode the already-encoded path once more.
    return quote(raw_path or "/", safe="/-_.~")


def _canonical_query(raw_query: str) -> str:
    pairs = []
    for item in raw_query.split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        pairs.append((key, value))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _canonical_headers(headers: Mapping[str, str], names: tuple[str, ...]) -> str:
    lines = []
    for name in names:
        value = headers.get(name)
        if value is None:
            raise SignatureMismatch(f"Signed header {name} is missing from the request")
        lines.append(f"{name}:{' '.join(value.split())}\n")
    return "".join(lines)


def _parse_amz_date(value: str) -> datetime:
    """`YYYYMMDDTHHMMSSZ`; hand-parsed because strptime costs ~25 us per request."""
    if len(value) != 16 or value[8] != "T" or value[15] != "Z":
        raise ValueError(value)
    return datetime(
        int(value[0:4]),
        int(value[4:6]),
        int(value[6:8]),
        int(value[9:11]),
        int(value[11:13]),
        int(value[13:15]),
        tzinfo=UTC,
    )


class SigV4Verifier:
    """Verifies requests against a fixed set of access keys."""

    def __init__(self, keys: Mapping[str, str], max_skew_seconds: int) -> None:
        self._keys = dict(keys)
        self._max_skew = max_skew_seconds

    def verify(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: Mapping[str, str],
        body: bytes,
        now: datetime,
    ) -> Identity:
        """Headers are lower-case names. Raises an AuthenticationError subclass on failure."""
        value = headers.get("authorization")
        if not value:
            raise MissingAuthentication("Missing Authentication Token")
        auth = _parse_authorization(value)
        secret = self._keys.get(auth.access_key)
        if secret is None:
            raise UnknownAccessKey("The security token included in the request is invalid.")
        amz_date = headers.get("x-amz-date", "")
        self._check_time(amz_date, auth.date, now)
        payload_hash = headers.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
        canonical = "\n".join(
            (
                method,
                _canonical_uri(raw_path),
                _canonical_query(raw_query),
                _canonical_headers(headers, auth.signed_headers),
                ";".join(auth.signed_headers),
                payload_hash,
            )
        )
        scope = f"{auth.date}/{auth.region}/{auth.service}/aws4_request"
        to_sign = "\n".join(
            (ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest())
        )
        key = _signing_key(secret, auth.date, auth.region, auth.service)
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, auth.signature):
            raise SignatureMismatch(
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method. "
                "Consult the service documentation for details."
            )
        return Identity(auth.access_key, auth.region, auth.service)

    def _check_time(self, amz_date: str, scope_date: str, now: datetime) -> None:
        try:
            signed_at = _parse_amz_date(amz_date)
        except ValueError:
            raise IncompleteSignature(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
                "header."
            ) from None
        if amz_date[:8] != scope_date:
            raise SignatureMismatch(
                f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                f"date from HTTP: '{scope_date}' != '{amz_date[:8]}'"
            )
        skew = (now - signed_at).total_seconds()
        if abs(skew) > self._max_skew:
            minutes = self._max_skew // 60
            stamp = now.strftime("%Y%m%dT%H%M%SZ")
            if skew > 0:
                bound = now.timestamp() - self._max_skew
                edge = datetime.fromtimestamp(bound, UTC).strftime("%Y%m%dT%H%M%SZ")
                raise SignatureExpired(
                    f"Signature expired: {amz_date} is now earlier than {edge} "
                    f"({stamp} - {minutes} min.)"
                )
            edge = datetime.fromtimestamp(now.timestamp() + self._max_skew, UTC).strftime(
                "%Y%m%dT%H%M%SZ"
            )
            raise SignatureExpired(
                f"Signature not yet current: {amz_date} is still later than {edge} "
                f"({stamp} + {minutes} min.)"
            )

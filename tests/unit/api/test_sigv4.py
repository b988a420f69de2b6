"""SigV4 verification against signatures botocore itself produces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from lamina.api.sigv4 import SigV4Verifier
from lamina.errors import (
    IncompleteSignature,
    MissingAuthentication,
    SignatureExpired,
    SignatureMismatch,
    UnknownAccessKey,
)


def now() -> datetime:
    return datetime.now(UTC)


VERIFIER = SigV4Verifier({"AKID": "secret"}, max_skew_seconds=300)


def signed(
    method: str, url: str, body: bytes = b"", *, secret: str = "secret", region: str = "eu-west-1"
) -> tuple[str, str, dict[str, str]]:
    request = AWSRequest(method=method, url=url, data=body, headers={"Host": "localhost:8910"})
    SigV4Auth(Credentials("AKID", secret), "lambda", region).add_auth(request)
    raw_path, _, raw_query = url.split("localhost:8910", 1)[1].partition("?")
    headers = {k.lower(): v for k, v in request.headers.items()}
    return raw_path, raw_query, headers


def signed_at(headers: dict[str, str]) -> datetime:
    return datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8910/2015-03-31/functions/my-fn",
        "http://localhost:8910/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af/invocations?Qualifier=%24LATEST",
        "http://localhost:8910/2017-03-31/tags/arn%3Aaws%3Alambda%3Aeu-west-1%3A000000000000%3Afunction%3Af?tagKeys=b&tagKeys=a",
        "http://localhost:8910/2015-03-31/functions?Marker=a%20b%2Fc&MaxItems=5",
    ],
)
def test_accepts_botocore_signatures_and_reports_scope_region(url: str) -> None:
    path, query, headers = signed("GET", url)
    identity = VERIFIER.verify("GET", path, query, headers, b"", signed_at(headers))
    assert (identity.access_key, identity.region, identity.service) == (
        "AKID",
        "eu-west-1",
        "lambda",
    )


def test_body_is_part_of_the_signature() -> None:
    path, query, headers = signed("POST", "http://localhost:8910/2015-03-31/functions", b'{"a":1}')
    now = signed_at(headers)
    VERIFIER.verify("POST", path, query, headers, b'{"a":1}', now)
    with pytest.raises(SignatureMismatch):
        VERIFIER.verify("POST", path, query, headers, b'{"a":2}', now)


def test_wrong_secret_is_rejected() -> None:
    path, query, headers = signed("GET", "http://localhost:8910/x", secret="wrong")
    with pytest.raises(SignatureMismatch):
        VERIFIER.verify("GET", path, query, headers, b"", signed_at(headers))


def test_unknown_key_and_missing_header() -> None:
    path, query, headers = signed("GET", "http://localhost:8910/x")
    with pytest.raises(UnknownAccessKey):
        SigV4Verifier({"OTHER": "s"}, 300).verify("GET", path, query, headers, b"", now())
    with pytest.raises(MissingAuthentication):
        VERIFIER.verify("GET", path, query, {"host": "localhost:8910"}, b"", now())


def test_malformed_authorization_header() -> None:
    headers = {"host": "h", "authorization": "AWS4-HMAC-SHA256 Credential=AKID"}
    with pytest.raises(IncompleteSignature):
        VERIFIER.verify("GET", "/", "", headers, b"", now())


@pytest.mark.parametrize("offset", [timedelta(minutes=6), timedelta(minutes=-6)])
def test_clock_skew_over_five_minutes_is_rejected(offset: timedelta) -> None:
    path, query, headers = signed("GET", "http://localhost:8910/x")
    with pytest.raises(SignatureExpired):
        VERIFIER.verify("GET", path, query, headers, b"", signed_at(headers) + offset)


def test_clock_skew_within_five_minutes_is_accepted() -> None:
    path, query, headers = signed("GET", "http://localhost:8910/x")
    VERIFIER.verify("GET", path, query, headers, b"", signed_at(headers) + timedelta(minutes=4))

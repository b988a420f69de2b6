"""How the CLI reaches a Lamina server: connection options, clients, and error mapping.

Every user-facing command talks to the server through this module, so that endpoint, region
and credentials are resolved one way and every failure becomes one line on stderr with a
stable exit code:

* 0 -- success
* 1 -- the server answered with an AWS error (or the deploy ended in a failed state)
* 2 -- usage error (click's own code)
* 3 -- the server cannot be reached
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import boto3
import click
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError as BotoConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

CloudWatchLogsClient = Any  # boto3-stubs' logs package is not a dependency

DEFAULT_ENDPOINT = "http://127.0.0.1:8910"
DEFAULT_REGION = "us-east-1"
DEV_ACCESS_KEY = "test"
DEV_SECRET_KEY = "test"

EXIT_AWS_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 300.0  # a large CreateFunction is unpacked and stored before the answer comes
UPLOAD_CHUNK = 256 * 1024

JsonObject = dict[str, Any]
Progress = Callable[[int], None]


class CliError(click.ClickException):
    """A failure reported as a single `lamina: ...` line on stderr."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"lamina: {self.format_message()}", err=True)


class AwsError(CliError):
    """The server rejected the request with an AWS error code."""

    exit_code = EXIT_AWS_ERROR

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code


class Unreachable(CliError):
    """No conversation with the server was possible."""

    exit_code = EXIT_UNREACHABLE


@dataclass(frozen=True)
class Target:
    """Where and as whom the CLI talks to Lamina."""

    endpoint: str
    region: str
    credentials: Credentials


def resolve_credentials() -> Credentials:
    """AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the environment, else the dev keys."""
    access_key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if bool(access_key) != bool(secret_key):
        raise click.UsageError(
            "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither (dev keys test/test)"
        )
    token = os.environ.get("AWS_SESSION_TOKEN") or None
    return Credentials(access_key or DEV_ACCESS_KEY, secret_key or DEV_SECRET_KEY, token)


def _check_endpoint(ctx: click.Context, param: click.Parameter, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(f"{value!r} is not an http(s)://host[:port] URL")
    try:
        _ = parts.port
    except ValueError:
        raise click.BadParameter(f"{value!r} has an invalid port") from None
    return value.rstrip("/")


def target_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add --endpoint/--region to a command; it receives `target` and runs with mapped errors."""

    @functools.wraps(command)
    def run(*args: Any, endpoint: str, region: str, **kwargs: Any) -> None:
        target = Target(endpoint, region, resolve_credentials())
        with mapped_errors(target):
            command(*args, target=target, **kwargs)

    with_region = click.option(
        "--region",
        envvar=["AWS_REGION", "AWS_DEFAULT_REGION"],
        default=DEFAULT_REGION,
        show_default=True,
        help="Region to work in (env AWS_REGION, AWS_DEFAULT_REGION).",
    )
    with_endpoint = click.option(
        "--endpoint",
        envvar=["LAMINA_ENDPOINT", "AWS_ENDPOINT_URL"],
        default=DEFAULT_ENDPOINT,
        show_default=True,
        callback=_check_endpoint,
        help="Lamina server URL (env LAMINA_ENDPOINT, AWS_ENDPOINT_URL).",
    )
    return with_endpoint(with_region(run))


def lambda_client(target: Target) -> LambdaClient:
    """A boto3 Lambda client for the target; one attempt per call, so failures surface fast."""
    client: LambdaClient = _client(target, "lambda")
    return client


def logs_client(target: Target) -> CloudWatchLogsClient:
    """A boto3 CloudWatch Logs client for the target (the same endpoint as Lambda's)."""
    client: CloudWatchLogsClient = _client(target, "logs")
    return client


def _client(target: Target, service: str) -> Any:
    factory: Any = boto3.client  # typed per service by the stubs; the service is a parameter
    return factory(
        service,
        endpoint_url=target.endpoint,
        region_name=target.region,
        aws_access_key_id=target.credentials.access_key,
        aws_secret_access_key=target.credentials.secret_key,
        aws_session_token=target.credentials.token,
        config=Config(
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            retries={"total_max_attempts": 1},
        ),
    )


def _unreachable(target: Target, reason: str) -> Unreachable:
    return Unreachable(
        f"cannot connect to the Lamina server at {target.endpoint} ({reason}); "
        "is it running? Start one with `lamina server`."
    )


@contextmanager
def mapped_errors(target: Target) -> Iterator[None]:
    """Turn every failure into a CliError with the right exit code; never a traceback."""
    try:
        yield
    except (click.ClickException, click.exceptions.Exit, click.Abort):
        raise
    except ClientError as error:
        details = error.response.get("Error", {})
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code, message = details.get("Code", ""), details.get("Message", "")
        reason = error.response.get("Reason")  # TooManyRequestsException: which limit
        if reason:
            message = f"{message} (Reason: {reason})"
        raise _aws_error(target, status, code, message) from None
    except BotoConnectionError as error:
        raise _unreachable(target, _connection_reason(error)) from None
    except ReadTimeoutError:
        raise Unreachable(
            f"the Lamina server at {target.endpoint} did not answer within {READ_TIMEOUT:g}s"
        ) from None
    except ParamValidationError as error:  # botocore's header line, then what is wrong
        raise click.UsageError(" ".join(str(error).split())) from None
    except UnicodeEncodeError as error:  # an argument holding bytes that are not UTF-8 text
        bad = error.object[error.start : error.end].encode("utf-8", "surrogateescape")
        raise click.UsageError(f"an argument is not UTF-8 text: it holds {bad!r}") from None
    except BotoCoreError as error:
        raise CliError(_first_line(error)) from None
    except OSError as error:
        raise CliError(str(error)) from None
    except Exception as error:  # the promise is one line, never a traceback
        raise CliError(f"unexpected error: {type(error).__name__}: {error}") from None


def _connection_reason(error: BotoConnectionError) -> str:
    """'connection refused', 'unknown host: ...': the socket error under botocore's wrapping."""
    cause: BaseException | None = error.kwargs.get("error")
    while cause is not None:
        if isinstance(cause, OSError):
            return _socket_reason(cause)
        cause = cause.__cause__ or cause.__context__
    return "connection timed out" if "timeout" in type(error).__name__.lower() else "no connection"


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# Path segments a URL's normalisation removes: as a name in a path, the request would reach
# another endpoint than the one signed (or none).
_DOT_SEGMENTS = (".", "..")


def function_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A function NAME argument (botocore puts it in the path; it refuses "" itself)."""
    if value in _DOT_SEGMENTS:
        raise click.BadParameter(f"{value!r} is not a function name")
    return value


def path_segment(name: str) -> str:
    """NAME as one path segment: a slash is escaped, an empty or dot name refused."""
    if not name or name in _DOT_SEGMENTS:
        raise click.BadParameter(f"{name!r} is not a name", param_hint="NAME")
    return quote(name, safe="")


# --- signed requests sent by hand, for uploads with real progress -------------------------


def signed_json_request(
    target: Target,
    method: str,
    path: str,
    payload: JsonObject,
    on_progress: Progress | None = None,
) -> JsonObject:
    """Send a SigV4-signed JSON request in chunks, calling `on_progress(n)` per chunk sent.

    boto3 hands the whole body to urllib3 at once, so it cannot report upload progress;
    this sends the same request the way botocore would sign it, one chunk at a time.
    """
    body = _json_body(payload)
    url = f"{target.endpoint}{path}"
    headers = _signed_headers(target, method, url, body)
    connection = _connect(target)
    try:
        parts = urlsplit(url)
        where = parts.path + (f"?{parts.query}" if parts.query else "")
        _send(target, connection, (method, where, headers), body, on_progress)
        return _read_response(target, connection)
    finally:
        connection.close()


def request_size(payload: JsonObject) -> int:
    """Bytes `signed_json_request` will upload for this payload (its progress total)."""
    return len(_json_body(payload))


def _json_body(payload: JsonObject) -> bytes:
    # ensure_ascii=False: an argument that is not UTF-8 text fails here, as a usage error,
    # instead of reaching the server as an escaped lone surrogate
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _signed_headers(target: Target, method: str, url: str, body: bytes) -> dict[str, str]:
    """The headers botocore's SigV4 signer produces for this request."""
    parts = urlsplit(url)
    request = AWSRequest(
        method=method,
        url=url,
        data=body,
        headers={
            "Host": _host_header(parts.scheme, parts.netloc),
            "Content-Type": "application/json",
        },
    )
    SigV4Auth(target.credentials, "lambda", target.region).add_auth(request)
    return {name: str(value) for name, value in request.headers.items()}


def _host_header(scheme: str, netloc: str) -> str:
    default_port = ":443" if scheme == "https" else ":80"
    return netloc[: -len(default_port)] if netloc.endswith(default_port) else netloc


def _connect(target: Target) -> http.client.HTTPConnection:
    parts = urlsplit(target.endpoint)
    factory = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = factory(parts.hostname or "", parts.port, timeout=CONNECT_TIMEOUT)
    try:
        connection.connect()
    except (OSError, http.client.HTTPException) as error:
        connection.close()
        raise _unreachable(target, _socket_reason(error)) from None
    return connection


def _socket_reason(error: Exception) -> str:
    if isinstance(error, socket.gaierror):
        return f"unknown host: {error.strerror}"
    if isinstance(error, TimeoutError):
        return "connection timed out"
    reason = getattr(error, "strerror", None) or _first_line(error)
    return str(reason[:1].lower() + reason[1:])


def _send(
    target: Target,
    connection: http.client.HTTPConnection,
    head: tuple[str, str, dict[str, str]],
    body: bytes,
    on_progress: Progress | None,
) -> None:
    method, path, headers = head
    connection.putrequest(method, path or "/", skip_host=True, skip_accept_encoding=True)
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.putheader("Content-Length", str(len(body)))
    try:
        connection.endheaders()
        if connection.sock is not None:
            connection.sock.settimeout(READ_TIMEOUT)
        for start in range(0, len(body), UPLOAD_CHUNK):
            chunk = body[start : start + UPLOAD_CHUNK]
            connection.send(chunk)
            if on_progress is not None:
                on_progress(len(chunk))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may have answered early (e.g. request too large): read its answer
    except (OSError, http.client.HTTPException) as error:
        raise Unreachable(
            f"lost the connection to {target.endpoint} while uploading: {_socket_reason(error)}"
        ) from None


def _read_response(target: Target, connection: http.client.HTTPConnection) -> JsonObject:
    try:
        response = connection.getresponse()
        raw = response.read()
    except TimeoutError:
        raise Unreachable(
            f"the Lamina server at {target.endpoint} did not answer within {READ_TIMEOUT:g}s"
        ) from None
    except (OSError, http.client.HTTPException) as error:
        raise Unreachable(
            f"lost the connection to {target.endpoint}: {_socket_reason(error)}"
        ) from None
    document = _json_or_none(raw)
    if response.status < 300 and not raw:
        return {}  # e.g. 204 No Content
    if response.status >= 300:
        code, message = _error_fields(response.getheader("x-amzn-ErrorType"), document, raw)
        raise _aws_error(target, response.status, code, message)
    if not isinstance(document, dict):
        raise CliError(f"unexpected answer from {target.endpoint}: {raw[:200]!r}")
    return document


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _error_fields(error_type: str | None, document: Any, raw: bytes) -> tuple[str, str]:
    """The code and message botocore's rest-json parser would read from an error answer."""
    fields = document if isinstance(document, dict) else {}
    code = (error_type or "").split(":", 1)[0] or str(fields.get("__type", "")).split("#")[-1]
    message = fields.get("message") or fields.get("Message") or fields.get("errorMessage")
    if not message and not isinstance(document, dict):  # not an AWS answer: one line of it
        message = " ".join(raw[:200].decode("utf-8", "replace").split())
    return code, str(message or "")


def _aws_error(target: Target, status: int, code: str, message: str) -> AwsError:
    if code and not code.isdigit():
        return AwsError(code, message)
    detail = f": {message}" if message else ""
    return AwsError(
        "UnexpectedResponse",
        f"HTTP {status} from {target.endpoint} without an AWS error code; "
        f"is it a Lamina server?{detail}",
    )

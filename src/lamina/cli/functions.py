"""`lamina functions ls`, `lamina deploy` and `lamina delete`: manage functions."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import sys
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lamina.cli.client import (
    CliError,
    JsonObject,
    Target,
    function_name,
    lambda_client,
    path_segment,
    request_size,
    signed_json_request,
    target_options,
)

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

DEFAULT_ROLE = "arn:aws:iam::000000000000:role/lamina"
API_PREFIX = "/2015-03-31/functions"
PROGRESS_THRESHOLD = 1024 * 1024  # packages above 1 MiB show an upload progress bar
SKIPPED_DIRS = frozenset({"__pycache__", ".git"})
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps keep the package byte-for-byte stable
SETTLE_TIMEOUT = 120.0

Configuration = Mapping[str, Any]


# --- lamina functions ls ------------------------------------------------------------------


@click.group()
def functions() -> None:
    """Inspect functions."""


@functions.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print the raw ListFunctions entries.")
@target_options
def list_command(target: Target, as_json: bool) -> None:
    """List all functions in the region."""
    found = list(_all_functions(lambda_client(target)))
    if as_json:
        click.echo(json.dumps(found, indent=2, default=str))
    elif not found:
        click.echo(f"No functions in {target.region}.", err=True)
    else:
        click.echo(_table(found))


def _all_functions(client: LambdaClient) -> Iterator[Configuration]:
    for page in client.get_paginator("list_functions").paginate():
        yield from page.get("Functions", [])


TABLE_HEADER = ("NAME", "RUNTIME", "MEMORY", "TIMEOUT", "CODE SIZE", "LAST MODIFIED")


def _table(found: Sequence[Configuration]) -> str:
    rows = [TABLE_HEADER, *(_row(function) for function in found)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(TABLE_HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _row(function: Configuration) -> tuple[str, str, str, str, str, str]:
    return (
        str(function.get("FunctionName", "")),
        str(function.get("Runtime", "-")),
        f"{function.get('MemorySize', '-')} MB",
        f"{function.get('Timeout', '-')} s",
        human_size(int(function.get("CodeSize", 0))),
        _when(str(function.get("LastModified", ""))),
    )


def _when(timestamp: str) -> str:
    try:
        moment = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        return timestamp or "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def human_size(size: int) -> str:
    """1536 -> '1.5 KiB'."""
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024 or unit == "MiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# --- lamina delete ------------------------------------------------------------------------


@click.command()
@click.argument("name", callback=function_name)
@target_options
def delete(target: Target, name: str) -> None:
    """Delete the function NAME."""
    lambda_client(target).delete_function(FunctionName=name)
    click.echo(f"Deleted function {name}.")


# --- lamina deploy ------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionSpec:
    """The configuration flags given to `lamina deploy`; None means 'not given'."""

    runtime: str | None
    handler: str | None
    role: str | None
    memory: int | None
    timeout: int | None
    environment: dict[str, str] | None
    description: str | None

    def given(self) -> JsonObject:
        """The flags that were given, under their Lambda API names."""
        fields: JsonObject = {
            "Runtime": self.runtime,
            "Handler": self.handler,
            "Role": self.role,
            "MemorySize": self.memory,
            "Timeout": self.timeout,
            "Description": self.description,
        }
        if self.environment is not None:
            fields["Environment"] = {"Variables": self.environment}
        return {key: value for key, value in fields.items() if value is not None}


def _parse_env(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str] | None:
    if not values:
        return None
    environment: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE")
        environment[key] = value
    return environment


@click.command()
@click.argument(
    "directory", type=click.Path(exists=True, file_okay=False, readable=True, path_type=Path)
)
@click.option("--name", required=True, callback=function_name, help="Function name.")
@click.option("--runtime", help="Runtime, e.g. python3.12 (required to create).")
@click.option("--handler", help="Handler, e.g. app.handler (required to create).")
@click.option("--role", help=f"Execution role ARN [new functions: {DEFAULT_ROLE}].")
@click.option("--memory", type=click.IntRange(128, 10240), help="Memory in MB.")
@click.option("--timeout", type=click.IntRange(1, 900), help="Timeout in seconds.")
@click.option(
    "--env",
    "environment",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_parse_env,
    help="Environment variable; repeat for more. Replaces the whole environment.",
)
@click.option("--description", help="Description.")
@target_options
def deploy(
    target: Target,
    directory: Path,
    name: str,
    runtime: str | None,
    handler: str | None,
    role: str | None,
    memory: int | None,
    timeout: int | None,
    environment: dict[str, str] | None,
    description: str | None,
) -> None:
    """Deploy DIRECTORY: create the function, or update its code and given settings.

    DIRECTORY is zipped deterministically (sorted entries, unix modes kept, no __pycache__
    or .git). Configuration flags are applied on update only when given.
    """
    spec = FunctionSpec(runtime, handler, role, memory, timeout, environment, description)
    package = package_directory(directory)
    client = lambda_client(target)
    if _exists(client, name):
        verb = _update(target, client, name, package, spec)
    else:
        _create(target, name, package, spec)
        verb = "Created"
    result = _settled(client, name)
    click.echo(f"{verb} function {name} ({human_size(len(package))} package)")
    for key in ("FunctionArn", "CodeSha256", "State"):
        click.echo(f"{key + ':':<13}{result.get(key, '-')}")


def _exists(client: LambdaClient, name: str) -> bool:
    try:
        client.get_function_configuration(FunctionName=name)
    except client.exceptions.ResourceNotFoundException:
        return False
    return True


def _create(target: Target, name: str, package: bytes, spec: FunctionSpec) -> None:
    if spec.runtime is None or spec.handler is None:
        raise click.UsageError(
            f"function {name!r} does not exist yet: --runtime and --handler are required "
            "to create it"
        )
    payload: JsonObject = {
        "FunctionName": name,
        "Role": DEFAULT_ROLE,
        **spec.given(),
        "Code": {"ZipFile": _b64(package)},
    }
    _upload(target, "POST", API_PREFIX, payload, name, len(package))


def _update(
    target: Target, client: LambdaClient, name: str, package: bytes, spec: FunctionSpec
) -> str:
    path = f"{API_PREFIX}/{path_segment(name)}/code"
    _upload(target, "PUT", path, {"ZipFile": _b64(package)}, name, len(package))
    changes = _changes(_settled(client, name), spec.given())
    if not changes:
        return "Updated code of"
    client.update_function_configuration(FunctionName=name, **changes)
    return "Updated code and configuration of"


def _changes(current: Configuration, wanted: JsonObject) -> JsonObject:
    """The given settings that differ from the function's current ones."""
    now = dict(current)
    now["Environment"] = {"Variables": current.get("Environment", {}).get("Variables", {})}
    return {key: value for key, value in wanted.items() if now.get(key) != value}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _upload(
    target: Target, method: str, path: str, payload: JsonObject, name: str, package_size: int
) -> JsonObject:
    if package_size <= PROGRESS_THRESHOLD:
        return signed_json_request(target, method, path, payload)
    with click.progressbar(
        length=request_size(payload),
        label=f"Uploading {name} ({human_size(package_size)})",
        file=sys.stderr,
    ) as bar:
        return signed_json_request(target, method, path, payload, on_progress=bar.update)


def _settled(client: LambdaClient, name: str) -> Configuration:
    """The function's configuration once it is no longer Pending or InProgress."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    delay = 0.05
    while True:
        config = client.get_function_configuration(FunctionName=name)
        busy = config.get("State") == "Pending" or config.get("LastUpdateStatus") == "InProgress"
        if not busy or time.monotonic() >= deadline:
            break
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
    if config.get("State") == "Failed" or config.get("LastUpdateStatus") == "Failed":
        reason = config.get("StateReason") or config.get("LastUpdateStatusReason") or "no reason"
        raise CliError(f"function {name} failed to deploy: {reason}")
    return config


# --- packaging ----------------------------------------------------------------------------


def package_directory(root: Path) -> bytes:
    """A deterministic zip of `root`: sorted entries, fixed times, unix modes kept."""
    files = _package_files(root)
    if not files:
        raise click.UsageError(f"nothing to deploy: {root} contains no files")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.writestr(_zip_entry(root, path), path.read_bytes())
    return buffer.getvalue()


def _package_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for current, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIPPED_DIRS]
        found.extend(path for f in filenames if (path := Path(current, f)).is_file())
    return sorted(found, key=lambda path: path.relative_to(root).as_posix())


def _zip_entry(root: Path, path: Path) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=ZIP_EPOCH)
    executable = path.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
    info.create_system = 3  # unix, so extractors honour the mode bits
    info.compress_type = zipfile.ZIP_DEFLATED
    return info

"""`lamina logs NAME [--follow] [--since 10m]`: a function's log events, like `aws logs tail`."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import click
from botocore.exceptions import ClientError

from lamina.cli.client import (
    CloudWatchLogsClient,
    Target,
    lambda_client,
    logs_client,
    target_options,
)

POLL_SECONDS = 1.0
_SINCE = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def since_ms(value: str, now: float) -> int:
    """`10m`, `2h`, `1d`, ... before `now`, or an ISO 8601 time; epoch milliseconds."""
    match = _SINCE.match(value.strip())
    if match is not None:
        return int((now - int(match[1]) * _UNIT_SECONDS[match[2]]) * 1000)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither a duration like 10m, 2h, 1d nor an ISO 8601 time",
            param_hint="--since",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _log_group(target: Target, name: str) -> str:
    """The function's log group (its LoggingConfig's); a name starting with / is a group."""
    if name.startswith("/"):
        return name
    config = lambda_client(target).get_function_configuration(FunctionName=name)
    group = config.get("LoggingConfig", {}).get("LogGroup")
    return group or f"/aws/lambda/{name}"


def _events(
    client: CloudWatchLogsClient, group: str, start: int, pattern: str | None
) -> Iterator[dict[str, Any]]:
    """Every event from `start` on, page after page; nothing if the group does not exist."""
    kwargs: dict[str, Any] = {"logGroupName": group, "startTime": start}
    if pattern:
        kwargs["filterPattern"] = pattern
    while True:
        try:
            page = client.filter_log_events(**kwargs)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return  # the function has not written a line yet
            raise
        yield from page.get("events", [])
        token = page.get("nextToken")
        if not token:
            return
        kwargs["nextToken"] = token


def _show(event: dict[str, Any]) -> None:
    stamp = datetime.fromtimestamp(event["timestamp"] / 1000, UTC)
    text = event["message"].rstrip("\n")
    click.echo(f"{stamp.isoformat(timespec='milliseconds')} {event['logStreamName']} {text}")


@click.command()
@click.argument("name")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until interrupted.")
@click.option(
    "--since",
    default="10m",
    show_default=True,
    help="How far back to start: 30s, 10m, 2h, 1d, 1w, or an ISO 8601 time.",
)
@click.option("--filter", "pattern", help="A CloudWatch Logs filter pattern, e.g. ERROR.")
@target_options
def logs(target: Target, name: str, follow: bool, since: str, pattern: str | None) -> None:
    """Print the log events of function NAME (or of the log group NAME, if it starts with /).

    Each line is `<time> <stream> <message>`, oldest first, as `aws logs tail` prints them.
    """
    start = since_ms(since, time.time())
    group = _log_group(target, name)
    client = logs_client(target)
    seen: set[str] = set()  # event ids at the newest timestamp already printed
    newest = start
    while True:
        for event in _events(client, group, newest, pattern):
            if event["eventId"] in seen:
                continue
            if event["timestamp"] > newest:
                newest, seen = event["timestamp"], set()
            seen.add(event["eventId"])
            _show(event)
        if not follow:
            return
        try:
            time.sleep(POLL_SECONDS)  # the Logs API has no push: poll it, as `aws logs tail` does
        except KeyboardInterrupt:
            return

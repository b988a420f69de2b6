"""`lamina queue ...` (the built-in durable queues) and `lamina events NAME` (a function's
async queue: waiting events and how events ended)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from lamina.cli.client import (
    CliError,
    JsonObject,
    Target,
    path_segment,
    signed_json_request,
    target_options,
)

PREFIX = "/lamina/queues"
MAX_BATCH = 1000  # messages per request, as the queue API takes them


def _call(target: Target, method: str, path: str, payload: JsonObject | None = None) -> JsonObject:
    return signed_json_request(target, method, path, payload or {})


def _echo(document: Any) -> None:
    click.echo(json.dumps(document, indent=2))


@click.group()
def queue() -> None:
    """Built-in durable queues: destinations and dead-letter targets (arn:aws:sqs:...)."""


@queue.command("create")
@click.argument("name")
@target_options
def create(target: Target, name: str) -> None:
    """Create queue NAME and print its ARN."""
    created = _call(target, "POST", PREFIX, {"Name": name})
    click.echo(created["Queue"]["QueueArn"])


@queue.command("ls")
@target_options
def listing(target: Target) -> None:
    """List the region's queues with their depth."""
    found = _call(target, "GET", PREFIX)["Queues"]
    if not found:
        click.echo("No queues.", err=True)
    for one in found:
        click.echo(f"{one['Name']}\t{one['Messages']}\t{one['QueueArn']}")


@queue.command("show")
@click.argument("name")
@target_options
def show(target: Target, name: str) -> None:
    """Describe queue NAME: ARN, depth, age of the oldest message."""
    _echo(_call(target, "GET", f"{PREFIX}/{path_segment(name)}")["Queue"])


@queue.command("send")
@click.argument("name")
@click.argument("body")
@click.option("--attribute", "attributes", multiple=True, help="KEY=VALUE, repeatable.")
@target_options
def send(target: Target, name: str, body: str, attributes: tuple[str, ...]) -> None:
    """Append BODY to queue NAME and print the message id."""
    pairs: dict[str, str] = {}
    for key, value in map(_pair, attributes):
        if key in pairs:
            raise click.BadParameter(f"{key!r} is given twice", param_hint="--attribute")
        pairs[key] = value
    sent = _call(
        target,
        "POST",
        f"{PREFIX}/{path_segment(name)}/messages",
        {"Body": body, "Attributes": pairs},
    )
    click.echo(sent["MessageId"])


@queue.command("peek")
@click.argument("name")
@click.option("-n", "--max", "limit", default=10, show_default=True, help="Messages to show.")
@target_options
def peek(target: Target, name: str, limit: int) -> None:
    """Print the oldest messages of NAME, one JSON document per line, leaving them queued."""
    found = _call(target, "GET", f"{PREFIX}/{path_segment(name)}/messages?MaxMessages={limit}")
    for message in found["Messages"]:
        click.echo(json.dumps(message))


@queue.command("drain")
@click.argument("name")
@click.option("-n", "--max", "limit", type=int, help="Messages to take.  [default: 10]")
@click.option("--all", "everything", is_flag=True, help="Take every message.")
@target_options
def drain(target: Target, name: str, limit: int | None, everything: bool) -> None:
    """Take the oldest messages of NAME: print them, one JSON document per line, then remove
    them. A message is removed only once it is written: if the output fails (a closed pipe, a
    full disk), the rest stays queued. Two readers at once may both print a message."""
    if everything and limit is not None:
        raise click.UsageError("--all takes every message; -n takes a number of them.")
    segment = path_segment(name)
    wanted = None if everything else (10 if limit is None else limit)
    taken = 0
    try:
        while wanted is None or taken < wanted:
            batch = MAX_BATCH if wanted is None else min(MAX_BATCH, wanted - taken)
            found = _call(target, "GET", f"{PREFIX}/{segment}/messages?MaxMessages={batch}")
            if not found["Messages"]:
                break
            written: list[str] = []
            try:
                for message in found["Messages"]:
                    click.echo(json.dumps(message))  # flushed: a closed pipe fails here
                    written.append(message["MessageId"])
            finally:  # remove what was written, even when the next write failed
                taken += len(written)
                if written:
                    _call(target, "POST", f"{PREFIX}/{segment}/delete", {"MessageIds": written})
    except OSError as error:  # the output, not the server: the CLI client maps those
        _silence_stdout()
        raise CliError(
            f"cannot write the messages ({error.strerror or error}): took {taken}, the rest "
            f"stays in queue {name}"
        ) from None
    click.echo(f"Took {taken} message{'' if taken == 1 else 's'} from {name}.", err=True)


def _silence_stdout() -> None:
    """A closed stdout must not fail again when Python flushes it at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


@queue.command("delete")
@click.argument("name")
@target_options
def delete(target: Target, name: str) -> None:
    """Delete queue NAME and every message in it."""
    _call(target, "DELETE", f"{PREFIX}/{path_segment(name)}")
    click.echo(f"Deleted queue {name}.")


def _pair(item: str) -> tuple[str, str]:
    key, equals, value = item.partition("=")
    if not equals or not key:
        raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--attribute")
    return key, value


@click.command()
@click.argument("name")
@target_options
def events(target: Target, name: str) -> None:
    """Show function NAME's async queue: waiting and running events, the oldest one's age, and
    counts of what happened to its events: how they ended (succeeded, failed, expired,
    discarded), what was delivered (destined, dead_lettered, delivery_failed) and the attempts
    on the way (retried, throttled: one per attempt, so an event may count many times)."""
    _echo(_call(target, "GET", f"/lamina/functions/{path_segment(name)}/async"))

"""`lamina queue ...` (the built-in durable queues) and `lamina events NAME` (a function's
async queue: waiting events and how events ended)."""

from __future__ import annotations

import json
from typing import Any

import click

from lamina.cli.client import (
    JsonObject,
    Target,
    path_segment,
    signed_json_request,
    target_options,
)

PREFIX = "/lamina/queues"


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
    for found in _call(target, "GET", PREFIX)["Queues"]:
        click.echo(f"{found['Name']}\t{found['Messages']}\t{found['QueueArn']}")


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
    pairs = dict(_pair(item) for item in attributes)
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
@click.option("-n", "--max", "limit", default=10, show_default=True, help="Messages to take.")
@click.option("--all", "everything", is_flag=True, help="Take every message.")
@target_options
def drain(target: Target, name: str, limit: int, everything: bool) -> None:
    """Take (remove and print) the oldest messages of NAME, one JSON document per line."""
    path = f"{PREFIX}/{path_segment(name)}/drain"
    while True:
        taken = _call(target, "POST", path, {"MaxMessages": 1000 if everything else limit})
        for message in taken["Messages"]:
            click.echo(json.dumps(message))
        if not everything or not taken["Messages"]:
            return


@queue.command("delete")
@click.argument("name")
@target_options
def delete(target: Target, name: str) -> None:
    """Delete queue NAME and every message in it."""
    _call(target, "DELETE", f"{PREFIX}/{path_segment(name)}")


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

"""`lamina invoke NAME [PAYLOAD]`: run a function and print what it returned."""

from __future__ import annotations

import base64
import sys
from typing import Literal

import click

from lamina.cli.client import Target, function_name, lambda_client, target_options

EXIT_FUNCTION_ERROR = 4


@click.command()
@click.argument("name", callback=function_name)
@click.argument("payload", required=False, default="")
@click.option("--qualifier", help="Version or alias to invoke.")
@click.option("--log", "show_log", is_flag=True, help="Print the invocation's log tail too.")
@click.option(
    "--async", "asynchronous", is_flag=True, help="Queue the event (InvocationType Event)."
)
@target_options
def invoke(
    target: Target,
    name: str,
    payload: str,
    qualifier: str | None,
    show_log: bool,
    asynchronous: bool,
) -> None:
    """Invoke NAME with PAYLOAD (JSON; `-` reads standard input).

    Synchronous by default: prints the result, and exits 4 when the function failed
    (X-Amz-Function-Error), after printing its error. With --async, prints the request id once
    the event is durably queued (`lamina events NAME` shows how it ended).
    """
    if asynchronous and show_log:
        raise click.UsageError("--log prints a synchronous invocation's log; --async has none")
    body = sys.stdin.buffer.read() if payload == "-" else payload.encode()
    client = lambda_client(target)
    if asynchronous:
        if qualifier is not None:  # '' is botocore's usage error, not $LATEST
            queued = client.invoke(
                FunctionName=name, Payload=body, InvocationType="Event", Qualifier=qualifier
            )
        else:
            queued = client.invoke(FunctionName=name, Payload=body, InvocationType="Event")
        click.echo(queued["ResponseMetadata"]["RequestId"])
        return
    log_type: Literal["Tail", "None"] = "Tail" if show_log else "None"
    if qualifier is not None:
        response = client.invoke(
            FunctionName=name, Payload=body, LogType=log_type, Qualifier=qualifier
        )
    else:
        response = client.invoke(FunctionName=name, Payload=body, LogType=log_type)
    result = response["Payload"].read()
    if show_log and "LogResult" in response:
        click.echo(base64.b64decode(response["LogResult"]).decode(errors="replace"), err=True)
    click.echo(result.decode(errors="replace"))
    if response.get("FunctionError"):
        sys.exit(EXIT_FUNCTION_ERROR)

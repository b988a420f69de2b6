"""`lamina versions`, `lamina publish`, `lamina aliases` and `lamina alias create|update|delete`:
published versions and the aliases that point at them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import click

from lamina.cli.client import Target, function_name, lambda_client, target_options
from lamina.cli.functions import human_size

Entry = Mapping[str, Any]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _paged(pages: Iterable[Mapping[str, Any]], key: str) -> Iterator[Entry]:
    for page in pages:
        yield from page.get(key, [])


def _show(
    entries: list[Entry], as_json: bool, header: Sequence[str], rows: list[list[str]]
) -> None:
    if as_json:
        click.echo(json.dumps(entries, indent=2, default=str))
    else:
        click.echo(_table(header, rows))


# --- versions ---------------------------------------------------------------------------------


@click.command()
@click.argument("name", callback=function_name)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the raw ListVersionsByFunction entries."
)
@target_options
def versions(target: Target, name: str, as_json: bool) -> None:
    """List the versions of NAME: $LATEST, then the published ones."""
    pages = lambda_client(target).get_paginator("list_versions_by_function")
    found = list(_paged(pages.paginate(FunctionName=name), "Versions"))
    rows = [
        [
            str(entry.get("Version", "")),
            human_size(int(entry.get("CodeSize", 0))),
            str(entry.get("CodeSha256", ""))[:12],
            str(entry.get("Description", "")) or "-",
        ]
        for entry in found
    ]
    _show(found, as_json, ("VERSION", "CODE SIZE", "CODE SHA256", "DESCRIPTION"), rows)


@click.command()
@click.argument("name", callback=function_name)
@click.option("--description", help="Description of the version (default: the function's).")
@target_options
def publish(target: Target, name: str, description: str | None) -> None:
    """Publish $LATEST of NAME as a new version (or name the last one if nothing changed)."""
    client = lambda_client(target)
    # PublishVersion answers an unchanged function with its last version, as if new: the
    # versions that existed before tell the two apart.
    pages = client.get_paginator("list_versions_by_function").paginate(FunctionName=name)
    before = {str(entry.get("Version")) for entry in _paged(pages, "Versions")}
    if description is None:
        published = client.publish_version(FunctionName=name)
    else:
        published = client.publish_version(FunctionName=name, Description=description)
    version = published["Version"]
    if version in before:
        click.echo(f"No change since version {version} of {name}: nothing published")
    else:
        click.echo(f"Published version {version} of {name}")
    click.echo(f"{'FunctionArn:':<13}{published['FunctionArn']}")


# --- aliases ----------------------------------------------------------------------------------


def _routing(alias: Entry) -> str:
    weights = alias.get("RoutingConfig", {}).get("AdditionalVersionWeights", {})
    return ", ".join(f"{version}={weight:g}" for version, weight in weights.items()) or "-"


@click.command()
@click.argument("name", callback=function_name)
@click.option("--json", "as_json", is_flag=True, help="Print the raw ListAliases entries.")
@target_options
def aliases(target: Target, name: str, as_json: bool) -> None:
    """List the aliases of NAME."""
    pages = lambda_client(target).get_paginator("list_aliases")
    found = list(_paged(pages.paginate(FunctionName=name), "Aliases"))
    if not found and not as_json:
        click.echo(f"No aliases of {name}.", err=True)
        return
    rows = [
        [
            str(alias.get("Name", "")),
            str(alias.get("FunctionVersion", "")),
            _routing(alias),
            str(alias.get("Description", "")) or "-",
        ]
        for alias in found
    ]
    _show(found, as_json, ("ALIAS", "VERSION", "ROUTING", "DESCRIPTION"), rows)


def _parse_weights(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, float] | None:
    if not values:
        return None
    weights: dict[str, float] = {}
    for item in values:
        version, sep, weight = item.partition("=")
        try:
            if not sep or not version:
                raise ValueError(item)
            if version in weights:
                raise click.BadParameter(f"version {version} is given twice")
            weights[version] = float(weight)
        except ValueError:
            raise click.BadParameter(f"{item!r} is not VERSION=WEIGHT (e.g. 2=0.1)") from None
    return weights


WEIGHT_HELP = "Send this share (0-1) of invocations to another version, e.g. 2=0.1."


@click.group()
def alias() -> None:
    """Create, update or delete an alias."""


@alias.command("create")
@click.argument("name", callback=function_name)
@click.argument("alias_name", metavar="ALIAS")
@click.option("--version", "version", required=True, help="Version the alias points to.")
@click.option("--description", help="Description.")
@click.option(
    "--weight", "weights", multiple=True, metavar="VERSION=WEIGHT", callback=_parse_weights,
    help=WEIGHT_HELP,
)  # fmt: skip
@target_options
def create_command(
    target: Target,
    name: str,
    alias_name: str,
    version: str,
    description: str | None,
    weights: dict[str, float] | None,
) -> None:
    """Create ALIAS of function NAME, pointing to --version."""
    params: dict[str, Any] = {"FunctionName": name, "Name": alias_name, "FunctionVersion": version}
    if description is not None:
        params["Description"] = description
    if weights is not None:
        params["RoutingConfig"] = {"AdditionalVersionWeights": weights}
    _report("Created", lambda_client(target).create_alias(**params))


@alias.command("update")
@click.argument("name", callback=function_name)
@click.argument("alias_name", metavar="ALIAS")
@click.option("--version", "version", help="Version the alias points to.")
@click.option("--description", help="Description.")
@click.option(
    "--weight", "weights", multiple=True, metavar="VERSION=WEIGHT", callback=_parse_weights,
    help=WEIGHT_HELP,
)  # fmt: skip
@click.option(
    "--no-routing",
    is_flag=True,
    help="Drop the routing: every invocation runs the alias's version.",
)
@target_options
def update_command(
    target: Target,
    name: str,
    alias_name: str,
    version: str | None,
    description: str | None,
    weights: dict[str, float] | None,
    no_routing: bool,
) -> None:
    """Update ALIAS of function NAME; options not given keep their value."""
    if no_routing and weights is not None:
        raise click.UsageError("--weight and --no-routing exclude each other")
    if version is None and description is None and weights is None and not no_routing:
        raise click.UsageError(
            "nothing to update: give --version, --description, --weight or --no-routing"
        )
    params: dict[str, Any] = {"FunctionName": name, "Name": alias_name}
    if version is not None:
        params["FunctionVersion"] = version
    if description is not None:
        params["Description"] = description
    if weights is not None or no_routing:
        params["RoutingConfig"] = {"AdditionalVersionWeights": weights or {}}
    _report("Updated", lambda_client(target).update_alias(**params))


@alias.command("delete")
@click.argument("name", callback=function_name)
@click.argument("alias_name", metavar="ALIAS")
@target_options
def delete_command(target: Target, name: str, alias_name: str) -> None:
    """Delete ALIAS of function NAME."""
    client = lambda_client(target)
    # DeleteAlias succeeds for an alias that is not there (as AWS): asking first lets the CLI
    # say which it was (GetAlias's 404 is the answer when it is missing).
    client.get_alias(FunctionName=name, Name=alias_name)
    client.delete_alias(FunctionName=name, Name=alias_name)
    click.echo(f"Deleted alias {alias_name} of {name}.")


def _report(verb: str, answer: Entry) -> None:
    routing = _routing(answer)
    extra = f" (routing {routing})" if routing != "-" else ""
    click.echo(f"{verb} alias {answer['Name']} -> version {answer['FunctionVersion']}{extra}")
    click.echo(f"{'AliasArn:':<13}{answer['AliasArn']}")

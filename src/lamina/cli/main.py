"""Entry point of the `lamina` command."""

from __future__ import annotations

import click

from lamina import __version__
from lamina.cli.aliases import alias, aliases, publish, versions
from lamina.cli.audit import audit
from lamina.cli.functions import delete, deploy, functions
from lamina.cli.invoke import invoke
from lamina.cli.logs import logs
from lamina.cli.queues import events, queue
from lamina.cli.server import server


@click.group()
@click.version_option(__version__, prog_name="lamina")
def cli() -> None:
    """Lamina: AWS Lambda that you run yourself."""


cli.add_command(server)
cli.add_command(functions)
cli.add_command(deploy)
cli.add_command(delete)
cli.add_command(invoke)
cli.add_command(versions)
cli.add_command(publish)
cli.add_command(aliases)
cli.add_command(alias)
cli.add_command(queue)
cli.add_command(events)
cli.add_command(logs)
cli.add_command(audit)


def main() -> None:
    cli()

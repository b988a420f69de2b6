"""Entry point of the `lamina` command."""

from __future__ import annotations

import click

from lamina import __version__
from lamina.cli.functions import delete, deploy, functions
from lamina.cli.invoke import invoke
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


def main() -> None:
    cli()

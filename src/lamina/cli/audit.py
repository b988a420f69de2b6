"""`lamina audit`: list the audit trail of control-plane calls, and verify its hash chain.

Both read through the server's signed endpoints by default (`GET /lamina/audit`,
`GET /lamina/audit/verify`). With `--data-dir` they read `<data_dir>/audit/` directly instead,
which works while the server is down (and needs read access to the data directory).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import click

from lamina.cli.client import CliError, Target, signed_json_request, target_options
from lamina.observability.audit import parse_since, read_records, verify

AUDIT_DIR = "audit"


class BrokenTrail(CliError):
    exit_code = 1


def _data_dir_option(command: Any) -> Any:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Read <DIR>/audit directly instead of asking the server (works while it is down).",
    )(command)


@click.group(invoke_without_command=True)
@click.option("--since", default=None, help="Only calls since then: 10m, 2h, 1d, or ISO 8601.")
@click.option("--function", "function", default=None, help="Only calls about this function.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON record per line.")
@_data_dir_option
@target_options
@click.pass_context
def audit(
    ctx: click.Context,
    target: Target,
    since: str | None,
    function: str | None,
    limit: int,
    as_json: bool,
    data_dir: Path | None,
) -> None:
    """List control-plane calls (oldest first), or `verify` the trail."""
    if ctx.invoked_subcommand is not None:
        return
    if data_dir is not None:
        try:
            cutoff = parse_since(since, time.time()) if since else None
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--since") from None
        records = read_records(data_dir / AUDIT_DIR, cutoff, function, limit)
    else:
        query = {"since": since, "function": function, "limit": str(limit)}
        path = "/lamina/audit?" + urlencode({k: v for k, v in query.items() if v})
        records = signed_json_request(target, "GET", path, {})["Records"]
    for record in records:
        click.echo(json.dumps(record, sort_keys=True) if as_json else _line(record))


def _line(record: dict[str, Any]) -> str:
    what = record.get("function") or record.get("resource") or "-"
    fields = [
        record.get("time"),
        record.get("status", "-"),
        record.get("error") or "-",
        record.get("operation"),
        what,
        record.get("access_key") or "-",
        record.get("source_ip") or "-",
        record.get("request_id") or "-",
    ]
    return "\t".join(str(field) for field in fields)


@audit.command("verify")
@_data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@target_options
def verify_command(target: Target, data_dir: Path | None, as_json: bool) -> None:
    """Walk the hash chain; exit 1 naming the first edited, deleted or missing record."""
    if data_dir is not None:
        found = verify(data_dir / AUDIT_DIR).as_json()
    else:
        found = signed_json_request(target, "GET", "/lamina/audit/verify", {})
    if as_json:
        click.echo(json.dumps(found, sort_keys=True))
    if not found["Ok"]:
        raise BrokenTrail(
            f"audit trail broken after {found['Records']} records: {found['Problem']}"
        )
    if not as_json:
        click.echo(f"ok: {found['Records']} records, last {found['LastSeq']} {found['LastHash']}")

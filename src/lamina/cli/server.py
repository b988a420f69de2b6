"""`lamina server`: run the platform."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import click
import uvicorn

from lamina.api.http import CoalescingHttpToolsProtocol
from lamina.app import accepted_keys, open_lamina
from lamina.errors import StartupRefused
from lamina.settings import ServerSettings, load_settings


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:  # uvloop is optional; asyncio's own loop works, a little slower
        return asyncio.new_event_loop
    return uvloop.new_event_loop


class _Server(uvicorn.Server):
    """uvicorn's server, announcing readiness once its socket is listening."""

    def __init__(
        self, config: uvicorn.Config, settings: ServerSettings, sock: socket.socket, isolation: str
    ):
        super().__init__(config)
        self._settings = settings
        self._sock = sock
        self._isolation = isolation

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            _announce(self._settings, self._sock.getsockname()[1], self._isolation)


ISOLATION_TEXT = {
    "strict": "strict (namespaces, cgroups, seccomp, unprivileged uid)",
    "userns": "userns (user + other namespaces, seccomp, rlimits; no cgroups)",
    "rlimits": "rlimits only: INSECURE for untrusted code",
}


def _announce(settings: ServerSettings, port: int, isolation: str) -> None:
    endpoint = f"http://{_bracketed(settings.host)}:{port}"
    # A wildcard address is not one to connect to: the hint names loopback instead.
    reachable = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(settings.host, settings.host)
    click.echo(f"Lamina listening on {endpoint}")
    click.echo(f"  data directory  {settings.data_dir.resolve()}")
    click.echo(f"  account         {settings.account_id}")
    click.echo(f"  isolation       {ISOLATION_TEXT[isolation]}")
    if settings.only_dev_keys:
        click.echo("  credentials     AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test")
    else:
        click.echo(f"  access keys     {', '.join(sorted(accepted_keys(settings)))}")
    # --endpoint-url, not AWS_ENDPOINT_URL: AWS CLI releases before 2.13 ignore the variable.
    click.echo(
        f"  try             aws --endpoint-url http://{_bracketed(reachable)}:{port} "
        f"--region {settings.default_region} lambda list-functions"
    )


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _defer_signals() -> None:
    """uvicorn re-raises SIGINT/SIGTERM after its graceful shutdown so outer handlers run; make
    ours the outer handlers, so the process then tears down environments, cgroups and zygotes
    instead of dying on the spot."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)


async def _serve(settings: ServerSettings) -> None:
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    async with open_lamina(settings, api_port=sock.getsockname()[1]) as lamina:
        sockets = [sock]
        if lamina.gateway is not None:
            # Functions reach the API on the bridge address (AWS_ENDPOINT_URL); only this
            # port is open to them there.
            bridge = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            bridge.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            bridge.bind((lamina.gateway, sock.getsockname()[1]))
            sockets.append(bridge)
        config = uvicorn.Config(
            lamina.api,
            lifespan="off",
            loop="none",
            http=CoalescingHttpToolsProtocol,
            access_log=False,
            proxy_headers=False,  # Lamina is the edge; no X-Forwarded-* rewriting per request
            server_header=False,
            log_level="warning",
            timeout_keep_alive=75,
        )
        _defer_signals()
        # Everything built so far (the service models above all) lives as long as the server:
        # keep it out of the cyclic collector, whose full passes would otherwise stall requests.
        gc.freeze()
        server = _Server(config, settings, sock, lamina.isolation.value)
        await server.serve(sockets=sockets)


@click.command()
@click.option(
    "--host", envvar="LAMINA_HOST", default=None, help="Address to listen on [127.0.0.1]."
)
@click.option(
    "--port", envvar="LAMINA_PORT", type=int, default=None, help="Port [8910]; 0 picks one."
)
@click.option(
    "--data-dir",
    envvar="LAMINA_DATA_DIR",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where all state is kept [./data].",
)
@click.option(
    "--allow-dev-keys",
    is_flag=True,
    default=None,
    help="Accept the development keys test/test on a non-loopback address.",
)
def server(
    host: str | None, port: int | None, data_dir: Path | None, allow_dev_keys: bool | None
) -> None:
    """Run the Lamina server."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = load_settings(
            host=host, port=port, data_dir=data_dir, allow_dev_keys_off_loopback=allow_dev_keys
        )
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_serve(settings))
    except StartupRefused as error:
        raise click.ClickException(error.message) from None
    except OSError as error:
        raise click.ClickException(
            f"cannot listen on {settings.host}:{settings.port}: {error}"
        ) from None

"""Thin handlers, one module per resource group: bind -> control call -> wire shape."""

from __future__ import annotations

from lamina.api.context import Handler
from lamina.api.handlers import (
    account,
    aliases,
    concurrency,
    event_config,
    functions,
    invoke,
    layers,
    tags,
)

HANDLERS: dict[str, Handler] = {
    **functions.HANDLERS,
    **aliases.HANDLERS,
    **tags.HANDLERS,
    **account.HANDLERS,
    **invoke.HANDLERS,
    **event_config.HANDLERS,
    **concurrency.HANDLERS,
    **layers.HANDLERS,
}

"""Raises from the handler, and logs through `logging` first."""

import logging
from typing import Any, NoReturn


def fail(message: str) -> NoReturn:
    raise ValueError(message)


def handler(event: Any, context: Any) -> Any:
    if event.get("log"):
        logging.getLogger().warning(event["log"])
        return {"logged": event["log"]}
    fail("bad input: " + str(event.get("value")))

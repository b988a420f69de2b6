"""Fails during init with a message that is unique per init, after counting inits in /tmp."""

import uuid
from typing import Any

with open("/tmp/inits", "a") as inits:
    inits.write("init\n")
with open("/tmp/inits") as inits:
    COUNT = len(inits.readlines())

if COUNT > 0:
    raise RuntimeError(f"init failed {COUNT} {uuid.uuid4()}")


def handler(event: Any, context: Any) -> Any:
    return "unreachable"

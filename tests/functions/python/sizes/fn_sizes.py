"""Returns a value of the kind the event asks for."""

from typing import Any


def handler(event: Any, context: Any) -> Any:
    kind = event["kind"]
    if kind == "bytes":
        return b"\x00raw\xffbytes"
    if kind == "none":
        return None
    if kind == "string":
        return "just a string"
    if kind == "chars":  # a JSON string of exactly event["size"] bytes
        return "x" * (event["size"] - 2)
    if kind == "chatty":
        for i in range(event["lines"]):
            print(f"line {i:05d} " + "." * 89)
        return {"printed": event["lines"]}
    raise ValueError(kind)

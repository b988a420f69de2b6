"""Network probes run inside a function (deployed as app.py)."""

from __future__ import annotations

import json
import os
import socket
from typing import Any


def _connect(host: str, port: int, timeout: float) -> str:
    sock = socket.socket()
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
    except OSError as error:
        return f"{type(error).__name__}:{error.errno}"
    try:
        return f"connected:{sock.recv(100).decode()}"
    except TimeoutError:
        return "connected:"  # a service that waits for the client to speak first (HTTP)
    except OSError as error:
        return f"{type(error).__name__}:{error.errno}"
    finally:
        sock.close()


def _addresses() -> list[str]:
    with open("/proc/net/fib_trie") as trie:
        lines = trie.read().splitlines()
    return sorted(
        {lines[i - 1].split()[-1] for i, line in enumerate(lines) if "/32 host LOCAL" in line}
    )


def handler(event: dict[str, Any], context: Any) -> Any:
    probe = event["probe"]
    if probe == "connect":
        return _connect(event["host"], event["port"], event.get("timeout", 2.0))
    if probe == "addresses":
        return {"addresses": _addresses(), "endpoint": os.environ.get("AWS_ENDPOINT_URL")}
    if probe == "listen":
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", event["port"]))
        server.listen()
        server.settimeout(event["seconds"])
        try:
            conn, _ = server.accept()
            conn.close()
            return "accepted"
        except OSError:
            return "nobody came"
        finally:
            server.close()
    if probe == "invoke":
        import boto3

        client = boto3.client("lambda")
        response = client.invoke(FunctionName=event["target"], Payload=json.dumps(event["payload"]))
        return {"from_target": json.loads(response["Payload"].read())}
    raise ValueError(probe)

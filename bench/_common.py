"""Shared benchmark plumbing: servers in subprocesses, signed keep-alive requests, statistics."""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ROOT = Path(__file__).resolve().parent.parent
CREDENTIALS = Credentials("test", "test")
ROLE = "arn:aws:iam::000000000000:role/bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def lamina_server(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "lamina", "server", "--port", "0", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                yield match.group(1)
                break
        else:
            raise RuntimeError("lamina server did not start")
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextmanager
def bare_server() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "_bare_server.py"), str(port)])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    yield f"http://127.0.0.1:{port}"
                    return
            time.sleep(0.05)  # polling a port the child binds: no readiness line to wait on
        raise RuntimeError("bare server did not start")
    finally:
        process.terminate()
        process.wait(timeout=20)


@dataclass(frozen=True)
class Prepared:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def signed(
    endpoint: str, method: str, path: str, body: bytes = b"", region: str = "us-east-1"
) -> Prepared:
    """A request signed like botocore signs it (replayable for the 5-minute skew window)."""
    headers = {"Content-Type": "application/json"} if body else {}
    request = AWSRequest(method=method, url=endpoint + path, data=body, headers=headers)
    SigV4Auth(CREDENTIALS, "lambda", region).add_auth(request)
    return Prepared(method, path, dict(request.headers.items()), body)


class Client:
    """One keep-alive connection."""

    def __init__(self, endpoint: str) -> None:
        host, port = endpoint.removeprefix("http://").split(":")
        self._conn = http.client.HTTPConnection(host, int(port))

    def send(self, request: Prepared) -> tuple[int, bytes]:
        self._conn.request(request.method, request.path, request.body, request.headers)
        response = self._conn.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self._conn.close()


def create(endpoint: str, name: str, code: bytes, memory: int = 128) -> None:
    """CreateFunction of a Python handler `app.py` through the API, then wait for Active."""
    create_zip(endpoint, name, zip_of({"app.py": code}), "python3.11", "app.handler", memory)


def create_zip(
    endpoint: str, name: str, package: bytes, runtime: str, handler: str, memory: int = 128
) -> None:
    """CreateFunction of any deployment package through the API, then wait for Active."""
    body = json.dumps(
        {
            "FunctionName": name,
            "Runtime": runtime,
            "Role": ROLE,
            "Handler": handler,
            "MemorySize": memory,
            "Code": {"ZipFile": base64.b64encode(package).decode()},
        }
    ).encode()
    client = Client(endpoint)
    status, raw = client.send(signed(endpoint, "POST", "/2015-03-31/functions", body))
    assert status == 201, raw
    path = f"/2015-03-31/functions/{name}/configuration"
    for _ in range(500):
        status, raw = client.send(signed(endpoint, "GET", path))
        if json.loads(raw)["State"] == "Active":
            client.close()
            return
        time.sleep(0.01)  # polling the control plane for a state change, as the SDK waiter does
    raise RuntimeError(f"{name} did not become Active")


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    latency_ms: dict[str, float]  # "50%", "99%", ... with --latency


def wrk_run(
    url: str,
    request: Prepared,
    seconds: int,
    connections: int = 16,
    threads: int = 2,
    pause_ms: int = 0,
) -> WrkResult:
    """wrk replaying one signed request: its throughput and latency distribution. With
    `pause_ms`, each connection waits that long before each request (a paced load; the pause
    is not part of the latency)."""
    headers = "".join(
        f'wrk.headers["{k}"] = {json.dumps(v)}\n'
        for k, v in request.headers.items()
        if k.lower() not in ("content-length", "host")
    )
    body = json.dumps(request.body.decode())
    lua = f'wrk.method = "{request.method}"\nwrk.body = {body}\n{headers}'
    if pause_ms:
        lua += f"function delay()\n  return {pause_ms}\nend\n"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    try:
        command = [
            "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
            "-s", script.name,
        ]  # fmt: skip
        out = subprocess.run(
            [*command, url + request.path], capture_output=True, text=True, check=True
        ).stdout
    finally:
        os.unlink(script.name)
    if "Non-2xx" in out:
        raise RuntimeError("wrk saw errors:\n" + out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    units = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    latency = {
        q: float(v) * units[u]
        for q, v, u in re.findall(r"^\s+(\d+%)\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    }
    return WrkResult(rps, latency)


def wrk(url: str, request: Prepared, seconds: int, connections: int = 16) -> float:
    """Requests per second from wrk replaying one signed request."""
    return wrk_run(url, request, seconds, connections).requests_per_s


def time_calls(call: Callable[[], object], count: int, warmup: int = 50) -> list[float]:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary_ms(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples) * 1e3, percentile(samples, 0.99) * 1e3


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def one_megabyte_zip() -> bytes:
    """~1 MB zipped: a handler plus 1 MB of incompressible data."""
    return zip_of(
        {"app.py": b"def handler(e, c):\n    return e\n", "data.bin": os.urandom(1 << 20)}
    )

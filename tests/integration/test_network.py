"""Egress networking (issue 3): functions reach the outside world but nothing reaches them,
port 25 is closed, the host's services are out of reach except Lamina's API, and mode `none`
leaves only loopback.

The outside world is a test host in a network namespace this test creates, at 203.0.113.2
(TEST-NET-3: never routed beyond this machine), running a small TCP service on ports 8080 and 25.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lamina_support import ROLE, client as make_client, make_zip, start_server

PROBE = (Path(__file__).parent.parent / "functions" / "network" / "fn_probe.py").read_text()
TEST_HOST = "203.0.113.2"
HOST_SIDE = "203.0.113.1"
SERVICE = (
    "import socket, sys, threading\n"
    "def serve(port):\n"
    "    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "    s.bind(('0.0.0.0', port)); s.listen()\n"
    "    while True:\n"
    "        c, _ = s.accept(); c.sendall(b'hello from the test host'); c.close()\n"
    "for port in (8080, 25):\n"
    "    threading.Thread(target=serve, args=(port,), daemon=True).start()\n"
    "print('ready', flush=True)\n"
    "sys.stdin.read()\n"
)


def sh(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


@pytest.fixture(scope="module")
def test_host() -> Iterator[str]:
    """A host on its own network namespace, routed from this machine, serving 8080 and 25."""
    tag = uuid.uuid4().hex[:6]
    namespace, outside, inside = f"lmt-{tag}", f"lmto{tag}", f"lmti{tag}"
    sh("ip", "netns", "add", namespace)
    try:
        sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        sh("ip", "link", "set", inside, "netns", namespace)
        sh("ip", "addr", "add", f"{HOST_SIDE}/24", "dev", outside)
        sh("ip", "link", "set", outside, "up")
        run_in = ("ip", "netns", "exec", namespace)
        sh(*run_in, "ip", "addr", "add", f"{TEST_HOST}/24", "dev", inside)
        sh(*run_in, "ip", "link", "set", inside, "up")
        sh(*run_in, "ip", "link", "set", "lo", "up")
        sh(*run_in, "ip", "route", "add", "default", "via", HOST_SIDE)
        service = subprocess.Popen(
            [*run_in, sys.executable, "-c", SERVICE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert service.stdout is not None
        assert service.stdout.readline().strip() == "ready"
        try:
            yield namespace
        finally:
            assert service.stdin is not None
            service.stdin.close()
            service.kill()
            service.wait()
            service.stdout.close()
    finally:
        subprocess.run(["ip", "link", "del", outside], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)


@dataclass(frozen=True)
class Function:
    name: str
    call: Callable[..., Any]

    def __call__(self, **event: Any) -> Any:
        return self.call(**event)


Deploy = Callable[..., Function]


def deployer(endpoint: str) -> Deploy:
    client = make_client(endpoint)

    def deploy(memory: int = 128) -> Function:
        name = f"net-{uuid.uuid4().hex[:10]}"
        client.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=ROLE,
            Handler="app.handler",
            MemorySize=memory,
            Timeout=20,
            Code={"ZipFile": make_zip({"app.py": PROBE})},
        )
        client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})

        def invoke(**event: Any) -> Any:
            response = client.invoke(FunctionName=name, Payload=json.dumps(event))
            body = json.loads(response["Payload"].read())
            assert "FunctionError" not in response, body
            return body

        return Function(name, invoke)

    return deploy


@pytest.fixture
def deploy(server: Any) -> Deploy:
    return deployer(server.endpoint)


def test_a_function_reaches_a_host_outside(test_host: str, deploy: Deploy) -> None:
    invoke = deploy()
    assert (
        invoke(probe="connect", host=TEST_HOST, port=8080) == "connected:hello from the test host"
    )


def test_smtp_is_blocked(test_host: str, deploy: Deploy) -> None:
    invoke = deploy()
    # The same host answers on 8080 (above), so only the port rule can stop this.
    result = invoke(probe="connect", host=TEST_HOST, port=25, timeout=1.0)
    assert result.startswith(("TimeoutError", "ConnectionRefusedError")), result


def test_nothing_reaches_a_function_from_outside(test_host: str, deploy: Deploy) -> None:
    invoke = deploy()
    address = next(a for a in invoke(probe="addresses")["addresses"] if not a.startswith("127."))
    outcome: dict[str, Any] = {}
    listening = threading.Thread(
        target=lambda: outcome.update(result=invoke(probe="listen", port=9000, seconds=3))
    )
    listening.start()
    for source in ([], ["ip", "netns", "exec", test_host]):  # from this host, and from outside
        connect = (
            f"import socket; s = socket.socket(); s.settimeout(1); s.connect(({address!r}, 9000))"
        )
        attempt = subprocess.run(
            [*source, sys.executable, "-c", connect], capture_output=True, check=False
        )
        assert attempt.returncode != 0, attempt
    listening.join()
    assert outcome["result"] == "nobody came"


def test_host_services_are_out_of_reach_but_the_api_is_not(test_host: str, deploy: Deploy) -> None:
    invoke = deploy()
    endpoint = invoke(probe="addresses")["endpoint"]
    gateway, port = endpoint.removeprefix("http://").split(":")
    # A host service listening on every address: reachable from the test host, not from a function.
    listener = subprocess.Popen(
        [sys.executable, "-c", SERVICE.replace("(8080, 25)", "(8081,)")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == "ready"
        for host in (gateway, HOST_SIDE):
            result = invoke(probe="connect", host=host, port=8081, timeout=1.0)
            assert not result.startswith("connected"), (host, result)
        assert invoke(probe="connect", host=gateway, port=int(port)).startswith("connected")
    finally:
        assert listener.stdin is not None
        listener.stdin.close()
        listener.kill()
        listener.wait()
        assert listener.stdout is not None
        listener.stdout.close()


def test_functions_call_functions_through_the_api(deploy: Deploy) -> None:
    target = deploy()
    caller = deploy(1769)  # one full vCPU: importing boto3 at 128 MB's CPU share takes seconds
    outcome = caller(probe="invoke", target=target.name, payload={"probe": "addresses"})
    assert outcome["from_target"]["endpoint"].startswith("http://")


def test_mode_none_leaves_only_loopback(test_host: str, tmp_path: Path) -> None:
    live = start_server(tmp_path / "data", env={"LAMINA_NETWORK": "none"})
    try:
        invoke = deployer(live.endpoint)()
        probe = invoke(probe="addresses")
        assert probe["addresses"] == ["127.0.0.1"]
        assert probe["endpoint"] is None
        result = invoke(probe="connect", host=TEST_HOST, port=8080, timeout=1.0)
        assert result == "OSError:101", result  # ENETUNREACH: no route out at all
    finally:
        live.stop()

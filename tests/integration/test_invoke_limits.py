"""Invoke limits and failures: timeouts, out-of-memory, runtime crashes, and that none of them
leaves a process or a cgroup behind."""

from __future__ import annotations

import base64
import glob
import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from host_probes import (
    all_pids,
    group_members,
    memory_group,
    named,
    read_text,
    start_time,
)
from lamina_support import ACCOUNT, client, make_zip, poll, start_server, unique_name

pytestmark = pytest.mark.integration

Create = Callable[..., dict[str, Any]]
FUNCTIONS = Path(__file__).resolve().parent.parent / "functions" / "python"
INIT_RE = r"\tInit Duration: \d+\.\d\d ms\t"


# --- helpers -------------------------------------------------------------------------------------


def crash_zip() -> bytes:
    return make_zip({"app.py": (FUNCTIONS / "crash" / "fn_crash.py").read_text()})


def deploy(lam: Any, create: Create | None = None, **overrides: Any) -> str:
    name = unique_name()
    params: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": "python3.11",
        "Role": f"arn:aws:iam::{ACCOUNT}:role/lambda-role",
        "Handler": "app.handler",
        "Code": {"ZipFile": crash_zip()},
        **overrides,
    }
    if create is not None:
        params.pop("FunctionName")
        create(name, **params)
    else:
        lam.create_function(**params)
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    return name


def invoke(lam: Any, name: str, event: dict[str, Any]) -> tuple[dict[str, Any], Any, str]:
    """(response, decoded JSON body, log tail) of a RequestResponse invoke with LogType=Tail."""
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), LogType="Tail")
    with response["Payload"] as body:
        payload = json.loads(body.read())
    return response, payload, base64.b64decode(response["LogResult"]).decode()


def request_id_of(log: str) -> str:
    match = re.search(r"^REPORT RequestId: (\S+)\t", log, re.MULTILINE)
    assert match, log
    return match.group(1)


def assert_platform_error(
    response: dict[str, Any], body: Any, error_type: str, message_re: str
) -> None:
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert response["ExecutedVersion"] == "$LATEST"
    assert list(body) == ["errorType", "errorMessage"]  # platform errors carry only these
    assert body["errorType"] == error_type
    assert re.fullmatch(message_re, body["errorMessage"]), body["errorMessage"]


def assert_fresh_and_working(lam: Any, name: str) -> None:
    """The next invoke works, on a new environment (count restarted, a cold start)."""
    response, body, log = invoke(lam, name, {"mode": "ok"})
    assert "FunctionError" not in response
    assert body == {"count": 1, "mode": "ok"}
    assert re.search(INIT_RE, log), log


# --- timeouts, memory, crashes (session server) --------------------------------------------------


def test_timeout(lambda_client: Any, create_function: Create) -> None:
    name = deploy(lambda_client, create_function, Timeout=1)
    _, warm, _ = invoke(lambda_client, name, {"mode": "ok"})
    assert warm == {"count": 1, "mode": "ok"}

    started = time.monotonic()
    response, body, log = invoke(lambda_client, name, {"mode": "sleep", "seconds": 5})
    elapsed = time.monotonic() - started
    rid = request_id_of(log)
    assert_platform_error(
        response,
        body,
        "Sandbox.Timedout",
        re.escape(f"RequestId: {rid} Error: Task timed out after 1.00 seconds"),
    )
    assert elapsed < 4.0, elapsed  # ended at its 1 s timeout, not after the 5 s sleep
    assert re.search(
        f"^\\d{{4}}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?Z {rid} "
        "Task timed out after 1.00 seconds$",
        log,
        re.MULTILINE,
    ), log
    assert f"END RequestId: {rid}\n" in log
    assert_fresh_and_working(lambda_client, name)


def test_out_of_memory(lambda_client: Any, create_function: Create) -> None:
    name = deploy(lambda_client, create_function, MemorySize=128, Timeout=30)
    invoke(lambda_client, name, {"mode": "ok"})
    response, body, log = invoke(lambda_client, name, {"mode": "oom"})
    rid = request_id_of(log)
    assert_platform_error(
        response,
        body,
        "Runtime.OutOfMemory",
        re.escape(f"RequestId: {rid} Error: Runtime exited with error: signal: killed"),
    )
    # The server is fine, and so is the function.
    assert "Functions" in lambda_client.list_functions()
    assert_fresh_and_working(lambda_client, name)


SPIN = """import time
def handler(event, context):
    wall, cpu = time.monotonic(), time.process_time()
    while time.monotonic() - wall < event["seconds"]:
        pass
    return (time.process_time() - cpu) / (time.monotonic() - wall)
"""


@pytest.mark.parametrize(("memory", "low", "high"), [(128, 0.0, 0.2), (1769, 0.4, 1.01)])
def test_cpu_share_follows_memory_from_the_first_invocation(
    lambda_client: Any, create_function: Create, memory: int, low: float, high: float
) -> None:
    """execution-environment.md: CPU in proportion to memory, one vCPU at 1,769 MB. A busy
    loop's CPU time over its wall time, on a fresh environment's first invocation: 128 MB gets
    ~7% of a CPU (cgroup cpu quota), 1,769 MB a whole one (the machine has two)."""
    name = deploy(
        lambda_client,
        create_function,
        MemorySize=memory,
        Timeout=10,
        Code={"ZipFile": make_zip({"app.py": SPIN})},
    )
    # 2 s: the quota lands when the server has seen READY, after the first invocation (sent
    # ahead) has begun; a slow server's moment at full speed must not tip the share.
    response, share, log = invoke(lambda_client, name, {"seconds": 2.0})
    assert "FunctionError" not in response, share
    assert re.search(INIT_RE, log), log  # a cold start: the share applies from the first one
    assert low <= share <= high, share


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("exit", re.escape("exit status 3")),
        ("kill", re.escape("signal: killed")),
        ("segv", r"signal: segmentation fault( \(core dumped\))?"),  # Go's name, as AWS's
    ],
    ids=["exit-status", "sigkill", "segfault"],
)
def test_runtime_crash(lambda_client: Any, create_function: Create, mode: str, reason: str) -> None:
    name = deploy(lambda_client, create_function, Timeout=10)
    invoke(lambda_client, name, {"mode": "ok"})
    response, body, log = invoke(lambda_client, name, {"mode": mode})
    rid = request_id_of(log)
    assert_platform_error(
        response,
        body,
        "Runtime.ExitError",
        re.escape(f"RequestId: {rid} Error: Runtime exited with error: ") + reason,
    )
    assert f"mode {mode}\n" in log  # what it printed before dying is in its tail
    assert_fresh_and_working(lambda_client, name)


# --- leaks (a server of our own) -----------------------------------------------------------------


def _alive(processes: dict[int, str]) -> list[int]:
    return sorted(pid for pid, started in processes.items() if start_time(pid) == started)


def descendants(root: int) -> dict[int, str]:
    """Every live process below `root`: pid -> start time."""
    children: dict[int, list[int]] = {}
    for pid in all_pids():
        match = re.search(r"^PPid:\s+(\d+)$", read_text(f"/proc/{pid}/status") or "", re.MULTILINE)
        if match:
            children.setdefault(int(match.group(1)), []).append(pid)
    found: dict[int, str] = {}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            started = start_time(child)
            if started is not None:
                found[child] = started
                todo.append(child)
    return found


def referencing(data_dir: Path, group: str) -> list[int]:
    """Processes whose command line names the data directory or that sit in the server's
    cgroups."""
    found = []
    for pid in all_pids():
        command = read_text(f"/proc/{pid}/cmdline") or ""
        groups = read_text(f"/proc/{pid}/cgroup") or ""
        in_group = f":/{group}/" in groups or f":/{group}\n" in groups
        if pid != os.getpid() and (in_group or str(data_dir) in command):
            found.append(pid)
    return found


def environment_of_invocation(
    lam: Any, name: str, event: dict[str, Any]
) -> tuple[Any, dict[int, str]]:
    """Invoke with a marker; while it runs, find the marked process and record every process of
    its environment (its memory cgroup). Returns (error body, those processes)."""
    marker = "lk" + uuid.uuid4().hex[:12]
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(invoke, lam, name, {**event, "marker": marker})
        found = poll(lambda: named(marker), lambda pids: bool(pids) or running.done(), 10)
        if not found and running.done():
            # A quick invocation may end between a look and the check of its end; a warm
            # environment's runtime keeps its new name, a dead one is gone.
            found = named(marker)
        assert found, f"no process named {marker} appeared while {event} ran"
        group = memory_group(found[0])
        assert group is not None, found
        assert group.startswith("/lamina-"), group
        members = group_members(group)
        assert set(found) <= set(members), (found, members)
        _, body, _ = running.result(timeout=60)
    return body, members


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Any]:
    live = start_server(tmp_path / "d")
    yield live
    live.stop()


def test_no_processes_or_cgroups_left_behind(own_server: Any) -> None:
    if not os.path.isdir("/sys/fs/cgroup/memory"):
        pytest.skip("needs cgroup v1 (the suite runs as root with strict isolation)")
    data_dir = Path(own_server.data_dir).resolve()
    group = "lamina-" + hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    lam = client(own_server.endpoint)
    short = deploy(lam, Timeout=1)
    small = deploy(lam, Timeout=30, MemorySize=128)

    failures: list[tuple[str, dict[str, Any], str]] = [
        (short, {"mode": "sleep", "seconds": 5}, "Sandbox.Timedout"),
        (short, {"mode": "sleep", "seconds": 5, "orphan": True}, "Sandbox.Timedout"),
        (small, {"mode": "exit", "delay": 0.3, "orphan": True}, "Runtime.ExitError"),
        (small, {"mode": "kill", "delay": 0.3}, "Runtime.ExitError"),
        (small, {"mode": "segv", "delay": 0.3}, "Runtime.ExitError"),
        (small, {"mode": "oom", "delay": 0.3, "orphan": True}, "Runtime.OutOfMemory"),
    ]
    for name, event, error_type in failures:
        body, members = environment_of_invocation(lam, name, event)
        assert body["errorType"] == error_type, (event, body)
        # Every process of that environment dies with it (the orphan too): the whole group.
        expected = 3 if event.get("orphan") else 1
        assert len(members) >= expected, (event, members)
        survivors = poll(partial(_alive, members), lambda alive: not alive, timeout=5)
        assert survivors == [], (event, survivors)

    # A warm environment stays alive; stopping the server must take it and everything else.
    body, warm = environment_of_invocation(lam, small, {"mode": "ok"})
    assert body == {"count": 1, "mode": "ok"}
    assert _alive(warm), "the warm environment's processes should still be running"
    tree = descendants(own_server.process.pid)
    assert set(warm) <= set(tree)
    assert set(warm) <= set(referencing(data_dir, group))
    own_server.stop()

    left = poll(
        lambda: sorted(set(_alive(tree)) | set(referencing(data_dir, group))),
        lambda found: not found,
        timeout=5,
    )
    assert left == [], [(pid, (read_text(f"/proc/{pid}/cmdline") or "")[:80]) for pid in left]
    assert glob.glob(f"/sys/fs/cgroup/*/{group}") == []


def _occupied_groups(data_dir: Path) -> int:
    """Cgroups of this server that hold processes: its environments and its stems."""
    parent = "lamina-" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    procs = glob.glob(f"/sys/fs/cgroup/memory/{parent}/*/cgroup.procs")
    return sum(1 for path in procs if Path(path).read_text().split())


@pytest.mark.parametrize("stems", [0, 6, None], ids=["0", "6", "unset"])
def test_stem_pool_size_is_a_setting(tmp_path: Path, stems: int | None) -> None:
    """LAMINA_STEM_POOL environments wait ahead of demand (after the runtime's first use), and
    with none at all cold starts still work, made on the spot. Unset, the pool is sized to the
    host's memory."""
    if not os.path.isdir("/sys/fs/cgroup/memory"):
        pytest.skip("needs cgroup v1 (the suite runs as root with strict isolation)")
    live = start_server(
        tmp_path / "d", env={"LAMINA_STEM_POOL": None if stems is None else str(stems)}
    )
    if stems is None:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        stems = max(2, min(48, memory // (512 << 20)))  # one per 512 MiB, 2 to 48
    try:
        lam = client(live.endpoint)
        name = deploy(lam, Timeout=5)
        _, body, _ = invoke(lam, name, {"mode": "ok"})
        assert body["mode"] == "ok"
        occupied = poll(
            lambda: _occupied_groups(live.data_dir), lambda n: n == stems + 1, timeout=20
        )
        assert occupied == stems + 1  # the environment that served, and the ready stems
    finally:
        live.stop()
